"""An RGB guide on a VNIR–SWIR scene: the learned guided methods with the guide on every band (the
old behaviour) and only on the bands it informs (now), per spectral range.

Scene: the EnMAP test mosaic (``enmap_a`` of the remote-sensing split; 218 good bands, reflectance),
divided by its maximum. Wald protocol at ×4: LR = the scene through geohsr's sensor model (Gaussian
MTF, gain 0.3 at Nyquist); guide = an RGB rendering of the HR scene (CIE 1931 → linear sRGB,
``geohsr.degrade.cie_rgb_response``, scaled to [0, 1]) with its band wavelengths (R 610, G 550,
B 465 nm) or without them (then geohsr measures per band at reduced resolution where the scene
allows — this 32 × 16 LR px scene is too small — and otherwise assumes an RGB camera). PSNR (peak 1)
per range: 400–700, 700–1000, 1000–1700, 1700–2500 nm, and over the cube.

    python benchmarks/bench_guide_bands.py [--methods ifmsr,mulsr]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import xarray as xr

import geohsr
from geohsr import degrade, engine, geo, metrics
from geohsr.api import compute
from geohsr.sensor import guide_low
from geohsr.train.data import rs_scene

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import upsert_jsonl  # noqa: E402
from bench_adapt import as_cube  # noqa: E402

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data"
OUT = HERE / "results" / "guide_bands.jsonl"
RANGES = ((400, 700), (700, 1000), (1000, 1700), (1700, 2500))
S = 4


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--methods", default="ifmsr,mulsr")
    a = ap.parse_args()
    sc = rs_scene(DATA, "enmap_a")
    hr = sc.cube[:, :sc.cube.shape[1] // S * S, :sc.cube.shape[2] // S * S].astype(np.float32)
    wl = np.asarray(sc.wavelength, float)
    low = guide_low(torch.from_numpy(hr)[None], S)[0].numpy()
    cube = as_cube(low).assign_coords(wavelength=("band", wl))
    resp = degrade.cie_rgb_response(wl)  # (3, bands)
    rgb = np.tensordot(resp, hr, axes=(1, 0)).astype(np.float32)
    rgb = np.clip(rgb / np.percentile(rgb, 99.9), 0, 1)
    t_hr = geo.hr_transform(geo.cube_transform(cube), S)

    def guide(with_wl):
        coords = {"wavelength": ("band", [610.0, 550.0, 465.0])} if with_wl else {}
        return geo.with_grid(xr.DataArray(rgb, dims=("band", "y", "x"), coords=coords), t_hr, cube.rio.crs)

    def ranges(sr):
        out = {}
        for lo, hi in RANGES:
            m = (wl >= lo) & (wl < hi)
            if m.any():
                out[f"{lo}-{hi}"] = round(metrics.psnr(np.clip(sr[m], 0, 1), hr[m]), 2)
        out["all"] = round(metrics.psnr(np.clip(sr, 0, 1), hr), 2)
        return out

    rows = {"bicubic": ranges(geohsr.superresolve(cube, "bicubic", S).values),
            "coarsr": ranges(geohsr.superresolve(cube, "coarsr", S).values)}
    for m in a.methods.split(","):
        for label, with_wl, everywhere in (("guide on every band", True, True),
                                           ("guide where it informs (wavelengths)", True, False),
                                           ("guide without wavelengths", False, False)):
            t0 = time.perf_counter()
            with warnings.catch_warnings(record=True) as w:
                warnings.simplefilter("always")
                if everywhere:  # the old behaviour: the plan's per-band guide use set to every band
                    plan = engine.prepare(cube, m, S, guide=guide(with_wl), coregister=False)
                    plan.fitted = np.ones(plan.bands, np.float32)
                    sr = compute(plan).values
                else:
                    sr = geohsr.superresolve(cube, m, S, guide=guide(with_wl), coregister=False).values
            note = [str(x.message) for x in w if "informs" in str(x.message)]
            rows[f"{m}: {label}"] = {**ranges(sr), "seconds": round(time.perf_counter() - t0, 1),
                                     "note": note[0] if note else "every band"}
    for k, v in rows.items():
        print(f"{k:48s} {json.dumps(v)}", flush=True)
    upsert_jsonl(OUT, {"benchmark": "guide_bands", "input": "enmap_a", "scale": S, "rows": rows,
                       "machine": {"platform": platform.platform(), "torch": torch.__version__},
                       "date": time.strftime("%Y-%m-%d")})


if __name__ == "__main__":
    main()
