"""Held-out quality of the shipped CoarSR/DualSR weights on the CAVE validation scenes.

Protocol (the papers'): each validation scene (full 512 × 512 × 31, values / 65535 so the data
are in [0, 1]) is degraded by MATLAB bicubic ×1/s; bicubic, CoarSR and DualSR super-resolve it;
PSNR from one MSE over the cube with peak 1, SSIM Gaussian 11/1.5 per band, SAM in degrees,
ERGAS 100/s; averaged over the scenes. Also: the same on the real EnMAP mosaics (reflectance /
10000, good bands), a sensor the models never saw.

    python benchmarks/eval_dualsr_cave.py --scale 4 [--weights4 A --weights2 B] [--out F]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import xarray as xr
from affine import Affine

import geohsr
from geohsr import geo
from geohsr.train.data import cave_scenes

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def _mean(reports):
    tab = {}
    for m in reports[0].table.index:
        tab[m] = {k: float(np.mean([r.table.loc[m, k] for r in reports])) for k in reports[0].table.columns}
    return tab


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=int, default=4)
    ap.add_argument("--weights", default=None, help="comma-separated weights for DualSR (×s,×s/2)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "dualsr_quality.json")
    a = ap.parse_args()
    s = a.scale
    methods = ["bicubic", "coarsr", "dualsr"]
    wmain = None
    if a.weights:
        wmain = a.weights.split(",")[0]
    weights = {"coarsr": wmain, "dualsr": a.weights}
    reps, per_scene = [], {}
    for sc in cave_scenes(SHARED / "cave", "val"):
        da = geo.with_grid(xr.DataArray(sc.cube, dims=("band", "y", "x"),
                                        coords={"wavelength": ("band", sc.wavelength)}),
                           Affine(1, 0, 0, 0, -1, 0), None)
        r = geohsr.evaluate(da, methods, s, value_scale=1.0, weights=weights)
        print(sc.name, r.table.round(4).to_dict("index"), flush=True)
        reps.append(r)
        per_scene[sc.name] = r.table.to_dict("index")
    cave = {"protocol": reps[0].protocol.replace("divided by the given scale (1)",
                                                   "CAVE / 65535 (data in [0, 1])"),
            "scenes": [sc for sc in ("balloons_ms", "flowers_ms", "superballs_ms")],
            "table": _mean(reps), "per_scene": per_scene}
    enmap = []
    for p in sorted((SHARED / "enmap_potsdam").glob("enmap_potsdam_mosaic_*.tif")):
        r = geohsr.evaluate(p, methods, s, value_scale=10000.0, weights=weights)
        print(p.name, r.table.round(4).to_dict("index"), flush=True)
        enmap.append(r)
    result = {"scale": s, "cave_val": cave,
              "enmap_mosaics": {"protocol": enmap[0].protocol if enmap else "",
                                "files": [p.name for p in sorted((SHARED / "enmap_potsdam").glob("enmap_potsdam_mosaic_*.tif"))],
                                "table": _mean(enmap) if enmap else {}}}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
