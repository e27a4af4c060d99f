"""Experiment (session 10): DualSR with the guide's MTF-GLP detail added, on the Landsat-7 pairs ×2.

For the next step of `auto` with a guide: the learned upsampling and the guide's detail are not
exclusive. Per pair (Wald protocol as `bench_real_pairs.py`: reference = the 400² MS, LR = the
reference through geohsr's sensor model by 2, guide = the real pan reduced onto the MS grid):
bicubic; DualSR; DualSR + (MTF-GLP − bicubic), i.e. the guide detail MTF-GLP would inject, added
to DualSR's output instead of to bicubic's; and the same with a per-band gain β = clip(⟨d, r⟩ /
⟨d, d⟩, 0, 1) measured at reduced resolution (the LR scene reduced once more is the reference,
r = what DualSR misses there, d = the detail). PSNR over the 6 bands, peak 1.

    python benchmarks/exp_dualsr_plus_guide_detail.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
import xarray as xr
from affine import Affine

import geohsr
from geohsr import geo, metrics
from geohsr.sensor import guide_low

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_real_pairs import case, load  # noqa: E402

S = 2


def parts(c, g):
    d = geohsr.superresolve(c, "dualsr", S, clip="none").values
    glp = geohsr.superresolve(c, "mtf-glp", S, guide=g, clip="none").values
    return d, glp - geohsr.superresolve(c, "bicubic", S, clip="none").values


def main() -> None:
    rows = []
    for pair in (1, 7, 13, 19, 25, 32):
        ms, pan = load(pair)
        cube, guide = case(ms, pan, S)
        lr2 = guide_low(torch.from_numpy(cube.values)[None], S)[0].numpy()
        c2 = geo.with_grid(xr.DataArray(lr2, dims=("band", "y", "x"), coords={"wavelength": cube.wavelength}),
                           Affine.scale(float(S * S)), None)
        g2 = geo.with_grid(xr.DataArray(guide_low(torch.from_numpy(guide.values)[None], S)[0].numpy(),
                                        dims=("band", "y", "x")), Affine.scale(float(S)), None)
        d2, det2 = parts(c2, g2)
        r = cube.values - d2
        beta = np.clip((det2 * r).sum((1, 2)) / np.maximum((det2 * det2).sum((1, 2)), 1e-12), 0, 1)
        d, det = parts(cube, guide)
        bic = geohsr.superresolve(cube, "bicubic", S).values
        row = [metrics.psnr(x, ms) for x in (bic, d, d + det, d + beta[:, None, None] * det)]
        rows.append(row)
        print(pair, " ".join(f"{v:.2f}" for v in row), "beta", np.round(beta, 2))
    print("mean: bicubic %.2f, dualsr %.2f, dualsr+detail %.2f, dualsr+beta*detail %.2f" % tuple(np.mean(rows, 0)))


if __name__ == "__main__":
    main()
