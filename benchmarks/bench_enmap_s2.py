"""A hyperspectral scene with a Sentinel-2-like guide at ratio 3 (EnMAP 30 m + S2 10 m), Wald protocol.

Reference: the scene's good bands (EnMAP: reflectance / 10000; Indian Pines: / its maximum).
LR: the reference through geohsr's sensor model (Gaussian MTF, gain 0.3 at the LR Nyquist,
sampled at the LR pixel centres) by 3. Guide: Sentinel-2 MSI's four 10 m bands (B2, B3, B4, B8;
the MSI spectral responses of `../shared/data/srf/enmapbox_Sentinel2_Full.srf.npz`) applied to the
reference, so on the reference's grid; then made to behave like another sensor: its own MTF (a
Gaussian with gain 0.15 at the guide's Nyquist, so blurrier than the HS model assumes), a
sub-pixel misregistration of (+0.4, -0.3) LR px (content shifted, georeference kept), a gain of
1.1 and Gaussian noise at 1 % of the guide's 99th percentile (seed 0). Every method runs
through `superresolve` as a user's run would (co-registration on: auto). PSNR from one MSE over
the cube (peak = the reference's maximum), SAM in degrees, ERGAS; seconds of wall time on this
machine. `auto` chooses on the LR scene and guide alone (it never sees the reference).

    python benchmarks/bench_enmap_s2.py [--scenes enmap_a,enmap_b,indian_pines] [--adapt-batches N]

``--adapt-batches N`` adds the learned methods (``--methods``) adapted on the scene itself (``adapt=dict(
batches=N)``: the LR scene and its guide reduced once more by 3 through the same sensor model;
IFMSR has no ×3 weights, so the shipped ×4 ones start it) — the issue's ``geohsr run enmap.tif -s 3
-m ifmsr --guide s2.tif --adapt 10`` with a batch budget instead of minutes, so that the numbers do
not depend on the machine's load. Those rows go to ``results/enmap_s2_adapt.json``. A method
without a guide (DualSR) adapts on the scene alone; with ``--adapt-psf measure`` the guide serves
only to measure the scene's MTF (``geohsr adapt … --guide s2.tif --psf measure``).
``--lr-mtf`` makes the LR scene with another blur (a Gaussian gain, or ``bicubic``); ``--mtf-gain``
is what the MTF-based methods are told (default: measure it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import xarray as xr
from affine import Affine
from scipy import ndimage

import geohsr
from geohsr import degrade, geo, metrics
from geohsr.sensor import blur, guide_low, mtf_sigma

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import methods_for  # noqa: E402

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data"
SCALE = 3
SHIFT = (0.4, -0.3)  # LR px the guide's content is moved by (down, right)
S2_10M = (1, 2, 3, 7)  # B2, B3, B4, B8 in the MSI table's order
SCENES = {
    "enmap_a": "enmap_potsdam/enmap_potsdam_mosaic_x160-224_y64-192.tif",
    "enmap_b": "enmap_potsdam/enmap_potsdam_mosaic_x96-224_y96-160.tif",
    "indian_pines": "indian_pines",
}


def s2_response(wavelength: np.ndarray) -> np.ndarray:
    z = np.load(DATA / "srf" / "enmapbox_Sentinel2_Full.srf.npz", allow_pickle=False)
    rows = []
    for j in S2_10M:
        n = int(z["srf_nbands"][j])
        rows.append(degrade.srf_matrix(wavelength, z["srf"][:n, j, 0] * 1000.0, z["srf"][:n, j, 1][None])[0])
    return np.stack(rows)


def load(name: str):
    """(reference (bands, H, W) float32 in [0, ~1], wavelengths, transform, crs)."""
    if name == "indian_pines":
        from geohsr.train.data import load_spectral_scenes

        sc = load_spectral_scenes(DATA / SCENES[name])[0]
        return sc.cube.astype(np.float32), np.asarray(sc.wavelength), Affine(20.0, 0, 500000, 0, -20.0, 4500000), "EPSG:32616"
    cube = geohsr.open_cube(DATA / SCENES[name])
    good = cube.good_band.values != 0
    ref = cube.values[good].astype(np.float32) / 10000.0
    return ref, cube.wavelength.values[good], cube.rio.transform(), cube.rio.crs


def case(ref, wl, t, crs, lr_mtf="0.3"):
    s = SCALE
    h, w = ref.shape[1] // s * s, ref.shape[2] // s * s
    ref = ref[:, :h, :w]
    if lr_mtf == "bicubic":  # the HS sensor: MATLAB's bicubic instead of a Gaussian MTF
        lr = np.asarray(degrade.bicubic_down(ref, s), np.float32)
    else:
        lr = guide_low(torch.from_numpy(ref)[None], s, float(lr_mtf))[0].numpy()
    g = degrade.project(ref, s2_response(wl)).astype(np.float32)
    g = blur(torch.from_numpy(g)[None], mtf_sigma(1, 0.15))[0].numpy()  # the guide sensor's own MTF
    g = np.stack([ndimage.shift(c, (SHIFT[0] * s, SHIFT[1] * s), order=3, mode="nearest") for c in g])
    rng = np.random.default_rng(0)
    g = 1.1 * g + rng.normal(0, 0.01 * float(np.percentile(g, 99)), g.shape)
    t_lr = t @ Affine.scale(s)
    cube = geo.with_grid(xr.DataArray(lr, dims=("band", "y", "x"), coords={"wavelength": ("band", wl)}), t_lr, crs)
    guide = geo.with_grid(xr.DataArray(g.astype(np.float32), dims=("band", "y", "x"),
                                       coords={"wavelength": ("band", [492.2, 560.3, 663.1, 833.3])}), t, crs)
    return ref, cube, guide


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenes", default=",".join(SCENES))
    ap.add_argument("--adapt-batches", type=int, default=0,
                    help="only the guided networks adapted on each scene for this many batches")
    ap.add_argument("--methods", default=None, help="methods to run [default: every method at x3; with "
                    "--adapt-batches: ifmsr (MulSR takes even scales only)]")
    ap.add_argument("--lr-mtf", default="0.3", help="the HS sensor's MTF gain at its Nyquist that makes the "
                    "LR scene, or bicubic (the protocol's default: 0.3)")
    ap.add_argument("--mtf-gain", default="measure", help="what the guided methods are told: measure "
                    "(geohsr's default) or a gain")
    ap.add_argument("--adapt-psf", default="gaussian", help="with --adapt-batches: how adaptation reduces "
                    "the scene and guide (gaussian = gain 0.3, measure = the gain measured against the guide, …)")
    a = ap.parse_args(argv)
    mtf = a.mtf_gain if a.mtf_gain == "measure" else float(a.mtf_gain)
    if not DATA.is_dir():
        sys.exit(f"{DATA} not found")
    res = {"benchmark": "enmap_s2", "protocol": __doc__.split("\n\n")[1].replace("\n", " "),
           "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__},
           "date": time.strftime("%Y-%m-%d"), "rows": []}
    for name in a.scenes.split(","):
        ref, cube, guide = case(*load(name), lr_mtf=a.lr_mtf)
        peak = float(ref.max())
        runs = ([(m, dict(batches=a.adapt_batches, psf=a.adapt_psf)) for m in (a.methods or "ifmsr").split(",")]
                if a.adapt_batches
                else [(m, None) for m in (a.methods.split(",") if a.methods else methods_for(SCALE))])
        for m, adapt in runs:
            guided = m == "auto" or geohsr.get_method(m).guided
            t0 = time.perf_counter()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    if adapt and not guided:  # a network without a guide: the guide only measures the MTF
                        from geohsr.adapt import adapt as run_adapt

                        done = run_adapt(cube, m, SCALE, guide=guide, progress=False, **adapt)
                        sr = geohsr.superresolve(cube, method=m, scale=SCALE, dtype="float32", weights=done.weights)
                        sr.attrs["geohsr_adapted"] = done.summary()
                    else:
                        sr = geohsr.superresolve(cube, method=m, scale=SCALE, guide=guide if guided else None,
                                                 dtype="float32", adapt=adapt, mtf=mtf)
                    sr.values  # noqa: B018  (compute inside the timer)
                except geohsr.GeohsrError as exc:
                    row = {"scene": name, "method": m, "error": str(exc)}
                    res["rows"].append(row)
                    print(json.dumps(row), flush=True)
                    continue
            dt = time.perf_counter() - t0
            x = sr.values.astype(np.float64)
            row = {"scene": name, "method": m, "chosen": sr.attrs.get("geohsr_method"),
                   "lr_shape": list(cube.shape), "psnr": round(metrics.psnr(x / peak, ref / peak), 3),
                   "sam": round(metrics.sam(x, ref), 3), "ergas": round(metrics.ergas(x, ref, SCALE), 3),
                   "seconds": round(dt, 2), "guide_offset": sr.attrs.get("geohsr_guide_offset"),
                   "auto": sr.attrs.get("geohsr_auto"), "adapted": sr.attrs.get("geohsr_adapted"),
                   "lr_mtf": a.lr_mtf, "mtf_gain": a.mtf_gain, "guide_mtf": sr.attrs.get("geohsr_guide_mtf"),
                   "adapt_psf": a.adapt_psf if a.adapt_batches else None,
                   "warnings": sorted({str(w.message)[:160] for w in caught if "offset" in str(w.message)
                                       or "too small" in str(w.message)})}
            res["rows"].append(row)
            print(json.dumps(row), flush=True)
    tail = "" if (a.lr_mtf, a.mtf_gain) == ("0.3", "measure") else f"_lr{a.lr_mtf}_mtf{a.mtf_gain}"
    tail += f"_psf{a.adapt_psf}" if a.adapt_batches and a.adapt_psf != "gaussian" else ""
    tail += f"_{a.methods.replace(',', '-')}" if a.adapt_batches and a.methods not in (None, "ifmsr") else ""
    out = HERE / "results" / (("enmap_s2_adapt" if a.adapt_batches else "enmap_s2") + tail + ".json")
    out.write_text(json.dumps(res, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
