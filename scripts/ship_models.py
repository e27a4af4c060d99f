"""Ship trained runs into models/ with their held-out metrics (model card + catalogue entry).

    python scripts/ship_models.py guided --run runs/ifmsr_x4_compact --name ifmsr_x4_compact \
        --eval benchmarks/results/guided_cave_x4.json [--paper "IFMSR CAVE x4 44.64 dB"]
    python scripts/ship_models.py swir --run runs/swir/a-snlsr_s1 --name asnlsr_x4_compact \
        --eval benchmarks/results/swir_x4.json [--note ...]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from geohsr import weights as W


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("kind", choices=["guided", "swir"])
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--eval", type=Path, required=True)
    ap.add_argument("--note", action="append", default=[])
    a = ap.parse_args()
    res = json.loads(a.eval.read_text())
    card = json.loads((a.run / "card.json").read_text())
    if a.kind == "guided":
        keep = ["bicubic", "dualsr", card["method"]]
        table = {m: {k: v for k, v in res["table"][m].items() if k != "seconds"} for m in keep if m in res["table"]}
        notes = list(a.note)
        if res.get("tiling", {}).get(card["method"]):
            t = res["tiling"][card["method"]]
            notes.append("Tiled vs whole (PSNR between 64-px LR tiles and the default tiling): "
                         + ", ".join(f"{k} {v['psnr_64px_tiles_vs_default']:.1f} dB" for k, v in t.items()))
        if res.get("landsat"):
            lt = res["landsat"]["table"]
            notes.append("Landsat-7 ETM+ MS + real pan (1-band guide; R, G, B, NIR, SWIR1, SWIR2), Wald ×4, "
                         "6 scenes: " + ", ".join(f"{m} {lt[m]['psnr']:.2f} dB / SAM {lt[m]['sam']:.2f}°"
                                                  for m in lt))
        first = next(iter(res["per_scene"]))
        metrics = {"protocol": f"CAVE validation scenes ({', '.join(res['per_scene'])}), "
                               f"{res['crop']}×{res['crop']}×31: " + res["protocol"].replace("\n", " "),
                   "table": table, "notes": notes, "per_scene": {k: v for k, v in res["per_scene"].items()},
                   "reproduce": {"scene": first, "crop": res["crop"],
                                 "psnr": res["per_scene"][first][card["method"]]["psnr"]}}
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
