"""Held-out quality of the RGB-guided methods on the CAVE validation scenes.

Protocol (the MulSR/IFMSR papers' test degradation): each validation scene (512 × 512 × 31,
/65535) is blurred by the anisotropic Gaussian k = 13, λ = (2, 10), θ = π/2 (off-centre),
downsampled by torch bicubic ×1/s, noised with σ = 3/255 (seed 0) and clipped; the HR RGB guide
is the scene projected through geohsr's CIE 1931 → sRGB response. Every method runs through the
product path (``geohsr.superresolve``: georeferenced cube, guide aligned and normalised by
geohsr, tiles blended). PSNR: one MSE over the cube, peak 1; SAM in degrees; SSIM Gaussian
11/1.5 per band; ERGAS 100/s; averaged over the scenes. DualSR / bicubic see the same LR input.

Also records the tiled-vs-whole agreement (PSNR between a run with the default tile size and a
run with 64-px LR tiles, and between the default and one whole-scene tile).

    python benchmarks/eval_guided_cave.py --scale 4 [--crop 512] [--out F]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import xarray as xr
from affine import Affine

import geohsr
from geohsr import degrade, geo, metrics
from geohsr.train.data import cave_scenes

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def scene_inputs(sc, scale: int, crop: int, seed: int = 0):
    h = min(crop, sc.cube.shape[1]) // scale * scale
    hr = sc.cube[:, :h, :h].astype(np.float32)
    lr = degrade.guided_test_degradation(hr, scale, np.random.default_rng(seed))
    rgb = degrade.project(hr, degrade.cie_rgb_response(sc.wavelength)).astype(np.float32)
    t = Affine(4.0 * scale, 0, 500000, 0, -4.0 * scale, 5800000)
    cube = geo.with_grid(xr.DataArray(lr, dims=("band", "y", "x"),
                                      coords={"wavelength": ("band", sc.wavelength)}), t, "EPSG:32633")
    guide = geo.with_grid(xr.DataArray(rgb, dims=("band", "y", "x")), geo.hr_transform(t, scale), "EPSG:32633")
    return hr, cube, guide


def landsat(methods, scale, wmap) -> dict:
    """Landsat-7 ETM+ MS (R, G, B, NIR, SWIR1, SWIR2; 400², uint8) with its real 800² pan: Wald
    protocol ×scale — LR = MATLAB-bicubic MS ×1/scale, guide = the pan resampled to the MS grid
    (a real 1-band guide sharpening SWIR bands; no CRS, so the guide is the exact HR grid)."""
    from scipy.io import loadmat

    root = SHARED / "landsat7_ms_pan"
    per = {}
    for ms_path in sorted(root.glob("*_ms.mat")):
        ms = np.moveaxis(loadmat(ms_path)["cropped_im"].astype(np.float32) / 255.0, -1, 0)
        pan = loadmat(str(ms_path).replace("_ms", "_pan"))["cropped_gray"].astype(np.float32)[None] / 255.0
        pan = degrade.bicubic_down(pan, pan.shape[-1] // ms.shape[-1]).astype(np.float32)
        lr = degrade.bicubic_down(ms, scale).astype(np.float32)
        t = Affine(1.0 * scale, 0, 0, 0, -1.0 * scale, 0)
        cube = geo.with_grid(xr.DataArray(lr, dims=("band", "y", "x")), t, None)
        guide = geo.with_grid(xr.DataArray(pan, dims=("band", "y", "x")), geo.hr_transform(t, scale), None)
        per[ms_path.stem] = {}
        for m in methods:
            kw = {"guide": guide, "coregister": False} if geohsr.get_method(m).guided else {}  # the papers' protocol
            sr = np.clip(geohsr.superresolve(cube, m, scale, weights=wmap.get(m), **kw).values, 0, 1)
            per[ms_path.stem][m] = metrics.all_metrics(sr, ms, scale)
            print(ms_path.stem, m, round(per[ms_path.stem][m]["psnr"], 3), flush=True)
    table = {m: {k: float(np.mean([per[s][m][k] for s in per])) for k in per[next(iter(per))][m]}
             for m in methods}
    return {"protocol": landsat.__doc__, "table": table, "per_scene": per}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=int, default=4)
    ap.add_argument("--crop", type=int, default=512)
    ap.add_argument("--methods", default="bicubic,dualsr,mulsr,ifmsr")
    ap.add_argument("--weights", action="append", default=[], help="METHOD=PATH (default: shipped)")
    ap.add_argument("--tiling", action="store_true", help="also measure tiled vs whole")
    ap.add_argument("--landsat", action="store_true",
                    help="also the Landsat-7 MS + PAN pairs (1-band pan guide, SWIR bands)")
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args()
    wmap = dict(w.split("=", 1) for w in a.weights)
    methods = a.methods.split(",")
    per_scene, tiling = {}, {}
    for sc in cave_scenes(SHARED / "cave", "val"):
        hr, cube, guide = scene_inputs(sc, a.scale, a.crop)
        per_scene[sc.name] = {}
        for m in methods:
            kw = {"guide": guide, "coregister": False} if geohsr.get_method(m).guided else {}  # the papers' protocol
            t0 = time.perf_counter()
            out = geohsr.superresolve(cube, m, a.scale, weights=wmap.get(m), **kw)
            sr = np.clip(out.values, 0, 1)
            row = metrics.all_metrics(sr, hr, a.scale)
            row["seconds"] = round(time.perf_counter() - t0, 1)
            per_scene[sc.name][m] = row
            print(sc.name, m, {k: round(v, 4) for k, v in row.items()}, flush=True)
            if a.tiling and kw:
                # at least 2 x 2 tiles: at x8 a 512-px crop is only 64 LR pixels
                t = max(16, min(64, min(cube.sizes["y"], cube.sizes["x"]) // 2))
                small = geohsr.superresolve(cube.chunk({"y": t, "x": t}), m, a.scale,
                                            weights=wmap.get(m), **kw).compute().values
                tiling.setdefault(m, {})[sc.name] = {
                    f"psnr_{t}px_tiles_vs_default": metrics.psnr(small, out.values)}
                print(sc.name, m, tiling[m][sc.name], flush=True)
    table = {m: {k: float(np.mean([per_scene[s][m][k] for s in per_scene])) for k in per_scene[next(iter(per_scene))][m]}
             for m in methods}
    res = {"protocol": __doc__.split("\n\n")[1], "scale": a.scale, "crop": a.crop, "table": table,
           "per_scene": per_scene, "tiling": tiling}
    if a.landsat:
        res["landsat"] = landsat(methods, a.scale, wmap)
        print(json.dumps(res["landsat"]["table"], indent=1))
    print(json.dumps(table, indent=1))
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()
