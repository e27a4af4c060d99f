"""Scene adaptation on real remote-sensing scenes: DualSR before and after ``--adapt``.

Each scene (normalised by its maximum) is cut along its longer side: the first two thirds are
the *user's scene* that ``geohsr.adapt`` sees (it trains on three quarters of it and holds out
the last quarter to pick the checkpoint and decide keep-or-not); the last third is the **test
part**, which nothing chose. On the test part, Wald protocol: LR = the test part through geohsr's
sensor model (Gaussian MTF, gain 0.3 at the LR Nyquist, sampled at the LR pixel centres: the
degradation adaptation assumes) and, as a second protocol, MATLAB-bicubic ×1/s (anti-aliased:
the shipped cards' degradation). PSNR from one MSE over the cube, peak 1; the adaptation's own
held-out numbers are reported separately (they chose the checkpoint). Wall time on this machine.

    python benchmarks/bench_adapt.py [--scenes indian_pines,sandiego,enmap_a] [--minutes 10] [--scale 4]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import xarray as xr
from affine import Affine

import geohsr
from geohsr import degrade, geo, metrics
from geohsr.adapt import adapt
from geohsr.sensor import guide_low

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import upsert_jsonl  # noqa: E402

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data"
OUT = HERE / "results" / "adapt.jsonl"


def load(name: str) -> np.ndarray:
    from geohsr.train.data import load_spectral_scenes, raster_scenes

    if name == "indian_pines":
        return load_spectral_scenes(DATA / "indian_pines")[0].cube
    if name in ("sandiego", "hydice"):
        return load_spectral_scenes(DATA / "aviris_abu" / f"{name}.mat")[0].cube
    if name == "jasper_ridge":
        return load_spectral_scenes(DATA / "jasper_ridge" / "jasperRidge2_R198.mat")[0].cube
    if name.startswith("enmap_"):
        f = {"enmap_a": "enmap_potsdam_mosaic_x160-224_y64-192.tif",
             "enmap_b": "enmap_potsdam_mosaic_x96-224_y96-160.tif"}[name]
        return raster_scenes([DATA / "enmap_potsdam" / f])[0].cube
    raise SystemExit(f"unknown scene {name}")


def as_cube(a: np.ndarray) -> xr.DataArray:
    return geo.with_grid(xr.DataArray(np.ascontiguousarray(a, np.float32), dims=("band", "y", "x")),
                         Affine(30, 0, 0, 0, -30, 0), "EPSG:32633")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenes", default="indian_pines,sandiego,enmap_a")
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--scale", type=int, default=4)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    s = args.scale
    for name in args.scenes.split(","):
        cube = load(name)
        cube = cube / max(float(cube.max()), 1e-12)
        L, H, W = cube.shape
        axis = 1 if H >= W else 2
        n = cube.shape[axis]
        cut = (2 * n // 3) // s * s
        user = cube[:, :cut] if axis == 1 else cube[:, :, :cut]
        test = cube[:, cut:] if axis == 1 else cube[:, :, cut:]
        test = test[:, :test.shape[1] // s * s, :test.shape[2] // s * s]
        t0 = time.time()
        with tempfile.TemporaryDirectory() as tmp:
            res = adapt(as_cube(user), "dualsr", s, minutes=args.minutes, out=tmp, seed=args.seed,
                        progress=False)
            adapted = ",".join([str(Path(tmp) / "best.safetensors")] + [
                str(v) for k, v in sorted(_shipped(s).items(), reverse=True) if k != s])
            t_adapt = time.time() - t0
            rows = {}
            for proto in ("gaussian_mtf", "bicubic_aa"):
                ref = test
                low = (guide_low(torch.from_numpy(ref)[None], s)[0].numpy() if proto == "gaussian_mtf"
                       else degrade.bicubic_down(ref, s).astype(np.float32))
                lr = as_cube(low)
                out = {}
                for label, m, w in (("bicubic", "bicubic", None), ("dualsr_shipped", "dualsr", None),
                                    ("dualsr_adapted", "dualsr", adapted)):
                    sr = geohsr.superresolve(lr, m, s, weights=w).values
                    out[label] = round(metrics.psnr(np.clip(sr, 0, 1), ref), 3)
                out["dualsr_kept"] = out["dualsr_adapted"] if res.improved else out["dualsr_shipped"]
                rows[proto] = out
        rec = {"benchmark": "adapt", "method": "dualsr", "input": name, "scale": s,
               "bands": int(L), "shape": [int(H), int(W)], "user_part": list(user.shape[1:]),
               "test_part": list(test.shape[1:]), "minutes": args.minutes, "seed": args.seed,
               "batches": res.card["batches"], "adapt_wall_s": round(t_adapt, 1),
               "held_out_before_after": [round(res.before_db, 3), round(res.after_db, 3)],
               "kept": "adapted" if res.improved else "shipped", "test_psnr": rows,
               "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                           "torch": torch.__version__, "threads": torch.get_num_threads(),
                           "date": time.strftime("%Y-%m-%d")}}
        upsert_jsonl(OUT, rec)
        print(json.dumps(rec), flush=True)


def _shipped(s: int) -> dict:
    from geohsr import weights as W

    return {k: W.models_dir() / W.find("coarsr", k)["file"] for k in ((s, s // 2) if s > 2 else (s,))}


if __name__ == "__main__":
    main()
