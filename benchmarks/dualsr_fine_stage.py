"""Why does (or doesn't) DualSR's fine stage help? A diagnostic on the CAVE validation scenes.

The fine stage (methods.md §2.3) replaces the half-resolution content of the ×s output ``U``
by that of the ×(s/2) output ``V`` (λ = min(mean SAM°, 1), usually 1):
``SR = U + λ · up2(V − down2(U))``. It can only help when ``V`` is closer to the truth at half
resolution than ``down2(U)`` is. This script measures both against ``down2(HR)`` (MATLAB bicubic),
plus PSNR(U) and PSNR(SR) on the full scenes (same protocol as ``eval_dualsr_cave.py``).

    python benchmarks/dualsr_fine_stage.py [--scale 4] [--weights X4,X2] [--out F]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from geohsr.degrade import imresize
from geohsr.methods.dualsr import build_coarsr, fine_stage
from geohsr.methods.dualsr import coarse as _coarse
from geohsr.metrics import sam_degrees_torch as _sam_deg
from geohsr.train.data import cave_scenes

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def _psnr(a, b) -> float:
    return float(-10 * torch.log10(((a.double() - b.double()) ** 2).mean()))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=int, default=4)
    ap.add_argument("--weights", default=None, help="X_s.safetensors,X_s/2.safetensors (default: shipped)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "dualsr_fine_stage.json")
    a = ap.parse_args()
    s = a.scale
    w = a.weights.split(",") if a.weights else [None, None]
    cpu = torch.device("cpu")
    main_m, half_m = build_coarsr(s, w[0], cpu), build_coarsr(s // 2, w[1], cpu)
    rows = {}
    for sc in cave_scenes(SHARED / "cave", "val"):
        hr = torch.from_numpy(np.ascontiguousarray(sc.cube, dtype=np.float32))
        H, W = hr.shape[-2:]
        lr = imresize(hr, size=(H // s, W // s), a=-0.5, antialias=True)
        hr2 = imresize(hr, size=(H // 2, W // 2), a=-0.5, antialias=True)
        u = _coarse(main_m, lr, s)
        v = _coarse(half_m, lr, s // 2)
        ud = imresize(u, size=(H // 2, W // 2), a=-0.5, antialias=True)
        sr, lam = fine_stage(u, v)
        rows[sc.name] = {"psnr_U": _psnr(u, hr), "psnr_DualSR": _psnr(sr, hr), "lambda": lam,
                         "half_psnr_downU": _psnr(ud, hr2), "half_psnr_V": _psnr(v, hr2),
                         "half_sam_downU": float(_sam_deg(ud, hr2).mean()),
                         "half_sam_V": float(_sam_deg(v, hr2).mean())}
        print(sc.name, {k: round(x, 3) for k, x in rows[sc.name].items()}, flush=True)
    mean = {k: float(np.mean([r[k] for r in rows.values()])) for k in next(iter(rows.values()))}
    res = {"scale": s, "weights": a.weights or "shipped compact", "per_scene": rows, "mean": mean,
           "protocol": "CAVE validation scenes 512×512×31 / 65535; LR = MATLAB bicubic ×1/s of HR; "
                       "half-resolution reference = MATLAB bicubic ×1/2 of HR; no clipping; "
                       "PSNR one MSE over the cube, peak 1; SAM mean degrees"}
    a.out.write_text(json.dumps(res, indent=1) + "\n")
    print("mean", {k: round(x, 3) for k, x in mean.items()})


if __name__ == "__main__":
    main()
