"""Ship trained runs into models/ with their held-out metrics (model card + catalogue entry).

    python scripts/ship_models.py coarsr --run runs/coarsr_x4_compact --name coarsr_x4_compact \
        --eval benchmarks/results/dualsr_quality.json [--note ...]

    python scripts/ship_models.py guided --run runs/ifmsr_x4_compact --name ifmsr_x4_compact \
        --eval benchmarks/results/guided_cave_x4.json [--paper "IFMSR CAVE x4 44.64 dB"]
    python scripts/ship_models.py swir --run runs/swir/a-snlsr_s1 --name asnlsr_x4_compact \
        --eval benchmarks/results/swir_x4.json [--note ...]
    python scripts/ship_models.py rs --run runs/rs_x4 --name coarsr_x4_rs_compact \
        --eval benchmarks/results/rs_weights.jsonl   # the test scenes of the remote-sensing split
    python scripts/ship_models.py rs-refresh --eval benchmarks/results/rs_weights.jsonl
        # the remote-sensing cards' tables rebuilt from the current records (no retraining)
    python scripts/ship_models.py test --eval benchmarks/results/cave_test.jsonl
        # the CAVE weights' numbers on scenes that chose nothing, into their cards (no retraining)
    python scripts/ship_models.py note --name coarsr_x4_rs_compact --note "..."
        # a note added to a shipped card (replacing one that starts with the same first 40 characters)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from geohsr import weights as W


def reproduce_psnr(run: Path, card: dict, scene: str, crop: int) -> float:
    """The run's PSNR on one crop of a CAVE validation scene, exactly as eval_guided_cave measures it."""
    import importlib.util

    import numpy as np

    import geohsr
    from geohsr import metrics
    from geohsr.train.data import cave_scenes

    spec = importlib.util.spec_from_file_location("eval_guided_cave",
                                                  Path(__file__).resolve().parents[1] / "benchmarks" / "eval_guided_cave.py")
    ev = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ev)
    sc = next(s for s in cave_scenes(ev.SHARED / "cave", "val") if s.name == scene)
    hr, cube, guide = ev.scene_inputs(sc, card["scale"], crop)
    out = geohsr.superresolve(cube, card["method"], card["scale"], weights=str(run / "best.safetensors"), guide=guide,
                              coregister=False)  # the papers' protocol, as the card test measures it
    return metrics.psnr(np.clip(out.values, 0, 1), hr)


def _catalogue() -> dict:
    return json.loads((W.models_dir() / "catalog.json").read_text())


def _save_catalogue(cat: dict, edited: list[dict]) -> None:
    """Write ``cat`` back and re-render the cards of its ``edited`` entries."""
    for e in edited:
        (W.models_dir() / e["file"].replace(".safetensors", ".md")).write_text(W.model_card_markdown(e))
    (W.models_dir() / "catalog.json").write_text(json.dumps(cat, indent=2) + "\n")


def add_test_metrics(path: Path) -> None:
    """``benchmarks/bench_cave_test.py`` records → ``test_metrics`` of the CAVE catalogue entries
    (mean over the scenes of each cut, per scene), and their cards re-rendered."""
    recs = [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]
    cat, edited = _catalogue(), []
    cut_text = {"visible": "the scenes' bands at or below 720 nm (where geohsr uses the CAVE weights)",
                "all": "every band (400–2500 nm; geohsr takes the remote-sensing weights there when shipped)"}
    for e in cat["weights"]:
        mine = [r for r in recs if r["weights"] == e["file"].removesuffix(".safetensors")]
        if not mine:
            continue
        cuts = {}
        for which in ("visible", "all"):
            rs = [r for r in mine if r["cut"] == which]
            if not rs:
                continue
            cols = list(rs[0]["rows"])
            cuts[which] = {
                "bands": cut_text[which],
                "table": {c: {k: round(sum(r["rows"][c][k] for r in rs) / len(rs), 3) for k in ("psnr", "sam")}
                          for c in cols},
                "per_scene": {r["input"]: {c: r["rows"][c]["psnr"] for c in cols} for r in rs}}
        guided = e["method"] != "coarsr"
        proto = ("the papers' test degradation (anisotropic Gaussian λ = (2, 10), torch bicubic ×1/s, noise "
                 "σ = 3/255, seed 0), guide = the reference through the CIE 1931 observer, crops of at most "
                 "160 px" if guided else "MATLAB bicubic ×1/s (anti-aliased), whole scenes")
        e["test_metrics"] = {
            "protocol": "the test scenes of the remote-sensing split (Indian Pines, AVIRIS San Diego, AVIRIS "
                        "urban-3 — no wavelengths, so not in the visible cut —, EnMAP mosaic A; never trained "
                        f"on, never chose a checkpoint), each divided by its maximum; {proto}; PSNR from one "
                        "MSE over the cut (peak 1), SAM in degrees; mean over the scenes "
                        "(benchmarks/bench_cave_test.py)",
            "cuts": cuts}
        edited.append(e)
        print(e["file"], {k: v["table"] for k, v in cuts.items()})
    _save_catalogue(cat, edited)


RS_COLUMNS = ("bicubic", "coarsr_cave", "dualsr_cave", "coarsr_rs", "dualsr_rs", "dualsr_rs_ensemble")


def rs_metrics(path: Path, scale: int, test_scenes, notes) -> dict:
    """``held_out_metrics`` of remote-sensing weights at ``scale`` from the
    ``benchmarks/bench_rs_weights.py`` records (one per test scene): mean table, per scene, notes."""
    recs = [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]
    recs = [r for r in recs if r["scale"] == scale and r["input"] in test_scenes]
    cols = [c for c in RS_COLUMNS if all(c in r for r in recs)]
    table = {c: {"psnr": round(sum(r[c]["psnr"] for r in recs) / len(recs), 3),
                 "sam": round(sum(r[c]["sam"] for r in recs) / len(recs), 3)} for c in cols}
    per_scene = {r["input"]: {c: r[c]["psnr"] for c in cols} for r in recs}
    notes = [n for n in notes if not n.startswith("Per test scene")] + ["Per test scene, PSNR dB: " + "; ".join(
        f"{k}: " + ", ".join(f"{c} {v:.2f}" for c, v in row.items()) for k, row in per_scene.items())]
    if "dualsr_rs_ensemble" in cols:
        notes.append("dualsr_rs_ensemble: DualSR with these weights and --ensemble (the network's output "
                     "averaged over the 8 flips and 90° rotations of the input; 8× the network's time).")
    return {"protocol": f"the {len(recs)} test scenes of the remote-sensing split "
                        f"({', '.join(per_scene)}; never trained on, never chose a checkpoint), whole "
                        f"scenes / max, {recs[0]['protocol']}; mean over the scenes "
                        "(benchmarks/bench_rs_weights.py)",
            "table": table, "per_scene": per_scene, "notes": notes}


def refresh_rs(path: Path) -> None:
    """Re-measure nothing: the shipped remote-sensing entries' held-out tables rebuilt from the
    current ``bench_rs_weights.py`` records (e.g. after ``--ensemble`` added a row), cards re-rendered."""
    cat, edited = _catalogue(), []
    for e in cat["weights"]:
        if e.get("data", {}).get("kind") != "remote sensing":
            continue
        old = e["held_out_metrics"]
        e["held_out_metrics"] = rs_metrics(path, int(e["scale"]), e["data"]["test_scenes"],
                                           [n for n in old.get("notes", []) if not n.startswith("dualsr_rs_ensemble")])
        edited.append(e)
        print(e["file"], {k: v["psnr"] for k, v in e["held_out_metrics"]["table"].items()})
    _save_catalogue(cat, edited)


def add_notes(name: str, notes: list[str]) -> None:
    """``notes`` added to the held-out notes of the shipped entry ``name`` (a note replaces an old
    one with the same first 40 characters, so rerunning with a corrected text does not duplicate
    it); the card re-rendered from the catalogue."""
    cat = _catalogue()
    e = next((e for e in cat["weights"] if e["file"] == f"{name}.safetensors"), None)
    if e is None:
        raise SystemExit(f"{name}: not in models/catalog.json")
    m = e.setdefault("held_out_metrics", {})
    for note in notes:
        m["notes"] = [n for n in m.get("notes", []) if n[:40] != note[:40]] + [note]
    _save_catalogue(cat, [e])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("kind", choices=["coarsr", "guided", "swir", "rs", "rs-refresh", "test", "note"])
    ap.add_argument("--run", type=Path)
    ap.add_argument("--name")
    ap.add_argument("--eval", type=Path)
    ap.add_argument("--note", action="append", default=[])
    ap.add_argument("--reproduce-crop", type=int,
                    help="guided: record the PSNR on this crop of the first scene (a quick test number) "
                         "instead of the evaluated crop")
    a = ap.parse_args()
    if a.kind != "note" and a.eval is None:
        ap.error(f"{a.kind} needs --eval")
    if a.kind == "test":
        return add_test_metrics(a.eval)
    if a.kind == "rs-refresh":
        return refresh_rs(a.eval)
    if a.kind == "note":
        if not a.name or not a.note:
            ap.error("note needs --name and --note")
        return add_notes(a.name, a.note)
    if a.run is None or a.name is None:
        ap.error(f"{a.kind} needs --run and --name")
    card = json.loads((a.run / "card.json").read_text())
    if a.kind == "rs":  # benchmarks/bench_rs_weights.py records, one per test scene
        e = W.ship(a.run, a.name, rs_metrics(a.eval, card["scale"], card["data"]["test_scenes"], a.note))
        print(e["file"], e["sha256"])
        return
    res = json.loads(a.eval.read_text())
    if a.kind == "coarsr":  # benchmarks/eval_dualsr_cave.py output
        cv, en = res["cave_val"], res["enmap_mosaics"]
        notes = list(a.note)
        if en.get("table"):
            notes.insert(0, f"Real EnMAP mosaics (a sensor never seen in training), {en['protocol']}: "
                         + ", ".join(f"{m} {t['psnr']:.2f} dB / SAM {t['sam']:.2f}°" for m, t in en["table"].items()))
        metrics = {"protocol": f"CAVE validation scenes ({', '.join(s.split('_')[0] for s in cv['scenes'])}), "
                               f"full 512×512×31: {cv['protocol']}",
                   "table": cv["table"], "per_scene": cv["per_scene"], "notes": notes}
    elif a.kind == "guided":
        keep = ["bicubic", "dualsr", card["method"]]
        table = {m: {k: v for k, v in res["table"][m].items() if k != "seconds"} for m in keep if m in res["table"]}
        notes = list(a.note)
        if res.get("tiling", {}).get(card["method"]):
            t = res["tiling"][card["method"]]
            (key, _), = next(iter(t.values())).items()
            px = key.split("_")[1]
            notes.append(f"Tiled vs whole (PSNR between {px} LR tiles and the default tiling): "
                         + ", ".join(f"{k} {next(iter(v.values())):.1f} dB" for k, v in t.items()))
        elif res.get("tiling_note"):
            notes.append("Tiled vs whole: " + res["tiling_note"] + ".")
        if res.get("landsat"):
            lt = res["landsat"]["table"]
            notes.append("Landsat-7 ETM+ MS + real pan (1-band guide; R, G, B, NIR, SWIR1, SWIR2), Wald ×4, "
                         "6 scenes: " + ", ".join(f"{m} {lt[m]['psnr']:.2f} dB / SAM {lt[m]['sam']:.2f}°"
                                                  for m in lt))
        first = next(iter(res["per_scene"]))
        crop = res["crop"]
        psnr = res["per_scene"][first][card["method"]]["psnr"]
        if a.reproduce_crop:
            crop, psnr = a.reproduce_crop, reproduce_psnr(a.run, card, first, a.reproduce_crop)
        metrics = {"protocol": f"CAVE validation scenes ({', '.join(res['per_scene'])}), "
                               f"{res['crop']}×{res['crop']}×31: " + res["protocol"].replace("\n", " "),
                   "table": table, "notes": notes, "per_scene": {k: v for k, v in res["per_scene"].items()},
                   "reproduce": {"scene": first, "crop": crop, "psnr": psnr}}
    else:
        seed = "seed" + a.run.name.rsplit("_s", 1)[1]
        region = res["regions"][0]
        metrics = {"protocol": res["protocol"].replace("\n", " ") + f" Held-out regions: {', '.join(res['regions'])}.",
                   "table": {m: {k: v for k, v in t.items()} for m, t in res["table"].items()},
                   "notes": list(a.note),
                   "reproduce": {"region": region,
                                 "psnr_log": res["per_seed"][card["method"]][seed][region]["psnr_log"]}}
    e = W.ship(a.run, a.name, metrics)
    print(e["file"], e["sha256"])


if __name__ == "__main__":
    main()
