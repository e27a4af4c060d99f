"""`geohsr run` against the Python API for the same output.

Scenes: the bundled demo (EnMAP, 128 × 64 × 224, float32) and a synthetic 384 × 384 × 64 float32
scene; DualSR ×4 (shipped weights). API = ``save_cube(superresolve(open_cube(path)), out)`` in
this process after a warm-up; CLI = ``geohsr run path -s 4 -m dualsr -o out -q`` as a fresh
process (Python start and imports included: what a user waits for). Both outputs are compared
(max abs difference, and relative to the largest value: the CLI runs two blocks at a time with
one thread each, the API's dask threads use torch's default, so float32 sums may round
differently). Best of 2; wall seconds; the ratio CLI / API.

    python benchmarks/bench_cli_api.py
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import xarray as xr
from affine import Affine

import geohsr
from geohsr import geo

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import upsert_jsonl  # noqa: E402

HERE = Path(__file__).resolve().parent
OUT = HERE / "results" / "cli_api.jsonl"
GEOHSR = Path(sys.executable).with_name("geohsr")


def synthetic(path: Path, bands=64, h=384, w=384) -> Path:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:h, 0:w]
    data = np.stack([0.3 + 0.2 * np.sin(xx / (5 + b % 7) + b) * np.cos(yy / 9) for b in range(bands)])
    data = (data + 0.01 * rng.standard_normal(data.shape)).astype(np.float32)
    cube = geo.with_grid(xr.DataArray(data, dims=("band", "y", "x"),
                                      coords={"wavelength": ("band", np.linspace(420, 2400, bands))}),
                         Affine(30, 0, 365000, 0, -30, 5807000), "EPSG:32633")
    return geohsr.save_cube(cube, path)


def best(fn, n=2):
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return min(ts)


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--scenes", default="demo,synthetic_384x384x64")
    ap.add_argument("--repeat", type=int, default=2)
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="geohsr-cli-api-"))
    make = {"demo": lambda: geohsr.demo_scene_path(),
            "synthetic_384x384x64": lambda: synthetic(work / "syn.tif")}
    for name in a.scenes.split(","):
        src = make[name]()
        api_out, cli_out = work / f"{name}_api.tif", work / f"{name}_cli.tif"

        def api():
            geohsr.save_cube(geohsr.superresolve(geohsr.open_cube(src), "dualsr", 4), api_out, overwrite=True)

        def cli():
            subprocess.run([str(GEOHSR), "run", str(src), "-s", "4", "-m", "dualsr", "-o", str(cli_out),
                            "--overwrite", "-q"], check=True, capture_output=True)

        if name == "demo":
            api()  # warm-up: model load, allocator
        t_api, t_cli = best(api, a.repeat), best(cli, a.repeat)
        x, y = geohsr.open_cube(api_out).values.astype(np.float64), geohsr.open_cube(cli_out).values
        rec = {"benchmark": "cli_vs_api", "method": "dualsr", "input": name, "scale": 4,
               "lr_shape": list(geohsr.open_cube(src).shape), "api_s": round(t_api, 2),
               "cli_s": round(t_cli, 2), "ratio": round(t_cli / t_api, 2),
               "max_abs_diff": float(np.nanmax(np.abs(x - y))),
               "max_rel_diff": float(np.nanmax(np.abs(x - y)) / np.nanmax(np.abs(x))),
               "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                           "torch": torch.__version__, "date": time.strftime("%Y-%m-%d")}}
        upsert_jsonl(OUT, rec)
        print(json.dumps(rec), flush=True)


if __name__ == "__main__":
    main()
