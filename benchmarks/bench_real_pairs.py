"""Real sensor pairs: the six Landsat-7 ETM+ MS + pan pairs, Wald protocol at ×2 and ×4.

Reference: the 400² MS (R, G, B, NIR, SWIR1, SWIR2; uint8 / 255). LR: the reference through
geohsr's sensor model (Gaussian MTF, gain 0.3 at Nyquist, sampled at the LR pixel centres,
:mod:`geohsr.sensor`) by the scale. Guide: the real 800² pan reduced the same way by 2 onto the
reference's 400² grid. No CRS (the guide is the exact HR grid). PSNR from one MSE over the 6 bands
(peak 1), SAM in degrees; times are the wall time of ``superresolve`` per method (2-core CPU
here). ``auto`` picks per pair on that pair's own LR at a further reduced resolution (it never
sees the reference). Writes ``results/real_pairs.json``.

    python benchmarks/bench_real_pairs.py [--scales 2,4] [--pairs 1,7,13,19,25,32]
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
import xarray as xr
from affine import Affine
from scipy.io import loadmat

import geohsr
from geohsr import geo, metrics
from geohsr.sensor import guide_low

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import methods_for  # noqa: E402

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data" / "landsat7_ms_pan"


def load(pair: int):
    ms = loadmat(DATA / f"{pair}_ms.mat")["cropped_im"].astype(np.float32).transpose(2, 0, 1) / 255.0
    pan = loadmat(DATA / f"{pair}_pan.mat")["cropped_gray"].astype(np.float32)[None] / 255.0
    return ms, pan


def case(ms, pan, s):
    lr = guide_low(torch.from_numpy(ms)[None], s)[0].numpy()
    g = guide_low(torch.from_numpy(pan)[None], 2)[0].numpy()  # pan 15 m → the MS 30 m grid
    cube = geo.with_grid(xr.DataArray(lr, dims=("band", "y", "x"),
                                      coords={"wavelength": ("band", [660.0, 560.0, 480.0, 835.0, 1650.0, 2220.0])}),
                         Affine.scale(float(s)), None)
    guide = geo.with_grid(xr.DataArray(g, dims=("band", "y", "x")), Affine.identity(), None)
    return cube, guide


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--scales", default="2,4")
    ap.add_argument("--pairs", default="1,7,13,19,25,32")
    ap.add_argument("--methods", default=None, help="comma-separated (default: all candidates)")
    ap.add_argument("--weights", action="append", default=[], metavar="METHOD=FILE",
                    help="other weights for a learned method (rows say which)")
    ap.add_argument("--out", default=str(HERE / "results" / "real_pairs.json"))
    ap.add_argument("--mtf-gain", default="measure", help="what MTF-GLP, GSA, DualSR-GLP and auto are "
                    "told about the MS blur relative to the pan: measure (geohsr's default) or a gain")
    a = ap.parse_args(argv)
    mtf = a.mtf_gain if a.mtf_gain == "measure" else float(a.mtf_gain)
    weights = dict(w.split("=", 1) for w in a.weights)
    if not DATA.is_dir():
        sys.exit(f"{DATA} not found")
    res = {"benchmark": "real_pairs", "protocol": __doc__.split("\n\n")[1].replace("\n", " "),
           "machine": {"platform": platform.platform(), "cpus": __import__("os").cpu_count(),
                       "torch": torch.__version__}, "date": time.strftime("%Y-%m-%d"), "rows": []}
    for s in map(int, a.scales.split(",")):
        for pair in map(int, a.pairs.split(",")):
            ms, pan = load(pair)
            cube, guide = case(ms, pan, s)
            for m in (a.methods.split(",") if a.methods else methods_for(s)):
                spec_guided = m == "auto" or geohsr.get_method(m).guided
                t0 = time.perf_counter()
                sr = geohsr.superresolve(cube, method=m, scale=s, guide=guide if spec_guided else None,
                                         dtype="float32", weights=weights.get(m), mtf=mtf)
                dt = time.perf_counter() - t0
                row = {"scale": s, "pair": pair, "method": m, "chosen": sr.attrs.get("geohsr_method"),
                       "psnr": round(metrics.psnr(sr.values, ms), 3), "sam": round(metrics.sam(sr.values, ms), 3),
                       "seconds": round(dt, 2), "weights": weights.get(m, "shipped"), "mtf_gain": a.mtf_gain,
                       "guide_mtf": sr.attrs.get("geohsr_guide_mtf")}
                res["rows"].append(row)
                print(json.dumps(row), flush=True)
    out = Path(a.out)
    out.write_text(json.dumps(res, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
