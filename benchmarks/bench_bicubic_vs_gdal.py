"""Time and peak memory of `geohsr run --method bicubic --scale 4` against GDAL's warper.

Builds a synthetic smooth float32 GeoTIFF (default 2000×2000×128, tiled, band-interleaved,
uncompressed), then times, as separate processes on the same file and output grid:

* ``geohsr run in.tif --method bicubic --scale 4 -q``
* ``rio warp in.tif out.tif --resampling cubic --res <res/4>`` (GDAL's warper via rasterio's CLI;
  ``gdalwarp -r cubic -tr`` when Debian's gdal-bin is installed and ``--gdalwarp`` is given)

and writes ``benchmarks/results/bicubic_vs_gdal.json`` (+ a line in ``RESULTS.md``).
Peak RSS comes from ``wait4`` of each child. Outputs are deleted after each run.

    python benchmarks/bench_bicubic_vs_gdal.py [--size 2000] [--bands 128] [--workdir /tmp/x]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import rasterio
from _common import timed, workdir
from affine import Affine

HERE = Path(__file__).resolve().parent


def make_input(path: Path, size: int, bands: int) -> None:
    prof = dict(driver="GTiff", count=bands, height=size, width=size, dtype="float32",
                crs="EPSG:32633", transform=Affine(30, 0, 300000, 0, -30, 5900000),
                tiled=True, blockxsize=256, blockysize=256, interleave="band", bigtiff="IF_SAFER")
    yy, xx = np.mgrid[0:256, 0:size].astype(np.float32)
    with rasterio.open(path, "w", **prof) as ds:
        for b in range(bands):
            for r0 in range(0, size, 256):
                h = min(256, size - r0)
                blk = 0.3 + 0.1 * np.sin((xx[:h] + b) * 0.05) * np.cos((yy[:h] + r0) * 0.03 + b)
                ds.write(blk.astype(np.float32), b + 1,
                         window=rasterio.windows.Window(0, r0, size, h))
            ds.update_tags(b + 1, wavelength=str(400 + 15 * b), wavelength_units="Nanometers")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=2000)
    ap.add_argument("--bands", type=int, default=128)
    ap.add_argument("--scale", type=int, default=4)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--gdalwarp", action="store_true", help="use gdalwarp instead of rio warp")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "bicubic_vs_gdal.json")
    a = ap.parse_args()

    work = workdir(a.workdir, "geohsr-bench-")
    src = work / "in.tif"
    if not src.exists():
        make_input(src, a.size, a.bands)
    res = 30.0 / a.scale
    geohsr_bin = str(Path(sys.executable).with_name("geohsr"))
    results = {}
    ours = work / "geohsr_x4.tif"
    results["geohsr"] = timed([geohsr_bin, "run", str(src), "--method", "bicubic", "--scale",
                               str(a.scale), "-o", str(ours), "-q", "--overwrite"])
    results["geohsr"]["output_gb"] = round(ours.stat().st_size / 1e9, 2)
    ours.unlink()
    ref = work / "gdal_x4.tif"
    if a.gdalwarp:
        cmd = ["gdalwarp", "-q", "-overwrite", "-r", "cubic", "-tr", str(res), str(res),
               "-co", "TILED=YES", "-co", "BIGTIFF=IF_SAFER", "-wo", "NUM_THREADS=ALL_CPUS",
               str(src), str(ref)]
    else:
        cmd = [str(Path(sys.executable).with_name("rio")), "warp", str(src), str(ref),
               "--resampling", "cubic", "--res", str(res), "--overwrite",
               "--co", "TILED=YES", "--co", "BIGTIFF=IF_SAFER"]
    results["gdal"] = timed(cmd)
    results["gdal"]["output_gb"] = round(ref.stat().st_size / 1e9, 2)
    ref.unlink()
    results["ratio_time_geohsr_over_gdal"] = round(results["geohsr"]["wall_s"] / results["gdal"]["wall_s"], 3)
    results["ratio_rss_geohsr_over_gdal"] = round(results["geohsr"]["peak_rss_mb"] / results["gdal"]["peak_rss_mb"], 3)
    results["input"] = {"size": a.size, "bands": a.bands, "dtype": "float32", "scale": a.scale,
                        "layout": "GTiff tiled 256, band-interleaved, uncompressed"}
    results["machine"] = {"platform": platform.platform(), "cpus": os.cpu_count(),
                          "python": platform.python_version(), "date": time.strftime("%Y-%m-%d")}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    if a.workdir is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
