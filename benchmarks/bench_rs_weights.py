"""Remote-sensing weights on the test scenes of the fixed remote-sensing split.

The split (``geohsr.train.data.RS_SPLIT``) is by scene: the training scenes train, the
validation scenes choose the checkpoint, and only the **test** scenes (Indian Pines, AVIRIS San
Diego, AVIRIS urban-3, an EnMAP mosaic) are reported here. Each test scene is divided by its
maximum and cropped to a multiple of the scale. Wald protocol: LR = the scene through MATLAB
bicubic ×1/s (anti-aliased; the degradation the weights were trained with and the issue's
protocol); PSNR from one MSE over the cube (peak 1), SAM in degrees. Rows: bicubic, DualSR and
CoarSR with the CAVE weights (where shipped) and with the remote-sensing weights.

    python benchmarks/bench_rs_weights.py --scales 4,3 [--rs 4=models/x4.safetensors,2=...,3=...] [--ensemble]

``--ensemble`` adds DualSR with the remote-sensing weights under ``ensemble=True`` (the output
averaged over the 8 flips and 90° rotations of the input); ``--only-ensemble`` runs just that
row (and bicubic) and merges it into the recorded rows.

``--split train|val`` scores the scenes of that part of the split instead (recorded in
``results/rs_weights_<split>.jsonl``, never in the test file): the gain over bicubic on the
scenes the weights were trained on, against the test gain, tells whether a model is limited by
its fit (train ≈ test) or by its data (train ≫ test).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

import geohsr
from geohsr import degrade, metrics
from geohsr import weights as W
from geohsr.train.data import RS_SPLIT, rs_scene

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import upsert_jsonl  # noqa: E402
from bench_adapt import as_cube  # noqa: E402

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data"
OUT = HERE / "results" / "rs_weights.jsonl"


def shipped(kind: str) -> dict:
    """{scale: path} of the shipped CoarSR weights trained on ``kind`` data."""
    return {int(e["scale"]): str(W.models_dir() / e["file"]) for e in W.of_kind(kind, "coarsr")}


def wstr(files: dict, s: int, method: str):
    spec = geohsr.get_method(method)
    need = spec.scales_of_weights(s) if method == "dualsr" else (s,)
    if not all(k in files for k in need):
        return None
    return ",".join(files[k] for k in need)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scales", default="4,3")
    ap.add_argument("--split", default="test", choices=("train", "val", "test"))
    ap.add_argument("--scenes", default=None, help="scene names (default: those of --split)")
    ap.add_argument("--rs", default=None, help="scale=file,... (default: the shipped remote-sensing weights)")
    ap.add_argument("--ensemble", action="store_true",
                    help="also DualSR with the remote-sensing weights and ensemble=True (8 flips/rotations)")
    ap.add_argument("--only-ensemble", action="store_true", help="bicubic and the ensemble row only")
    ap.add_argument("--out", type=Path, default=None,
                    help="JSON-lines file for the rows (default: results/rs_weights[_<split>].jsonl, the recorded "
                         "rows of the shipped weights; give another file for experiments so those stay)")
    a = ap.parse_args()
    scenes = a.scenes or ",".join(RS_SPLIT[a.split])
    out = a.out or (OUT if a.split == "test" else OUT.with_name(f"rs_weights_{a.split}.jsonl"))
    rs = {int(k): v for k, v in (p.split("=", 1) for p in a.rs.split(","))} if a.rs else shipped("remote sensing")
    cave = shipped("CAVE")
    machine = {"platform": platform.platform(), "torch": torch.__version__}
    for s in map(int, a.scales.split(",")):
        for name in scenes.split(","):
            sc = rs_scene(DATA, name)
            hr = sc.cube[:, :sc.cube.shape[1] // s * s, :sc.cube.shape[2] // s * s].astype(np.float32)
            lr = as_cube(degrade.bicubic_down(hr, s).astype(np.float32))
            row = {"benchmark": "rs_weights", "split": a.split, "scale": s, "input": name, "bands": int(hr.shape[0]),
                   "size": f"{hr.shape[2]}x{hr.shape[1]}", "protocol": "MATLAB bicubic x1/s, peak 1",
                   "machine": machine, "date": time.strftime("%Y-%m-%d")}
            runs = [("bicubic", "bicubic", None, False)]
            for label, files in (("cave", cave), ("rs", rs)):
                for m in ("dualsr", "coarsr"):
                    w = wstr(files, s, m)
                    if w and not a.only_ensemble:
                        runs.append((f"{m}_{label}", m, w, False))
            w = wstr(rs, s, "dualsr")
            if (a.ensemble or a.only_ensemble) and w:  # never the shipped ones unasked
                runs.append(("dualsr_rs_ensemble", "dualsr", w, True))
            for label, m, w, ens in runs:
                t0 = time.perf_counter()
                sr = geohsr.superresolve(lr, m, s, weights=w, dtype="float32", clip="none", ensemble=ens).values
                row[label] = {"psnr": round(metrics.psnr(np.clip(sr, 0, 1), hr), 3),
                              "sam": round(metrics.sam(sr, hr), 3), "seconds": round(time.perf_counter() - t0, 2)}
            row["rs_weights"] = {k: Path(v).name for k, v in rs.items()}
            print(json.dumps({k: v for k, v in row.items() if k not in ("machine",)}), flush=True)
            if a.only_ensemble:  # merge into the scene's full row
                old = {}
                if out.exists():
                    for line in out.read_text().splitlines():
                        r = json.loads(line)
                        if r.get("scale") == s and r.get("input") == name:
                            old = r
                row = {**old, **row}
            upsert_jsonl(out, row)


if __name__ == "__main__":
    main()
