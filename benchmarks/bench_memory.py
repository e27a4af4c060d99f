"""Peak memory of `geohsr run` on a scene whose ×4 output is larger than 10 GB.

Builds a synthetic int16 GeoTIFF (default 3000 × 3000 × 64, tiled, band-interleaved), runs
``geohsr run in.tif --scale 4 --method <m> --memory-limit <MB>`` as a child process and records
wall time and peak RSS (``wait4``). With ``--crop N`` the run uses an N×N crop of the scene (for
the slow learned methods). Writes its record into ``benchmarks/results/memory.jsonl`` (replacing the one of the same
configuration). ``--source prisma`` writes the same scene as a PRISMA L2D ``.he5`` instead (uint16, the two detectors
stored rows × bands × columns in decreasing wavelength, as delivered), which xarray reads block by block.

    python benchmarks/bench_memory.py [--size 3000] [--bands 64] [--method bicubic] [--crop 0] [--source prisma]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import rasterio
from _common import KEY_FIELDS, timed, upsert_jsonl, workdir
from affine import Affine
from rasterio.windows import Window

HERE = Path(__file__).resolve().parent


def make_input(path: Path, size: int, bands: int) -> None:
    prof = dict(driver="GTiff", count=bands, height=size, width=size, dtype="int16", nodata=-32768,
                crs="EPSG:32633", transform=Affine(30, 0, 300000, 0, -30, 5900000), tiled=True,
                blockxsize=256, blockysize=256, interleave="band", bigtiff="IF_SAFER")
    with rasterio.open(path, "w", **prof) as ds:
        for r0 in range(0, size, 512):
            h = min(512, size - r0)
            for b in range(bands):
                blk = field(size, r0, h, b)
                ds.write(blk.astype(np.int16), b + 1, window=Window(0, r0, size, h))
        for b in range(bands):
            ds.update_tags(b + 1, wavelength=str(400 + 30 * b), wavelength_units="Nanometers")


def field(size: int, r0: int, h: int, b: int) -> np.ndarray:
    xx = np.arange(size, dtype=np.float32)
    yy = np.arange(r0, r0 + h, dtype=np.float32)[:, None]
    return 3000 + 1500 * np.sin(xx * 0.013 + b * 0.1) * np.cos(yy * 0.017 - b * 0.05)


def make_prisma(path: Path, size: int, bands: int) -> None:
    """The scene of :func:`make_input` as a PRISMA L2D file: the first half of the bands the VNIR
    detector, the rest SWIR, each stored (rows, bands, columns) in decreasing wavelength."""
    import h5py

    wl = 400.0 + 30.0 * np.arange(bands)
    nv = bands // 2
    with h5py.File(path, "w") as f:
        g = f.require_group("HDFEOS/SWATHS/PRS_L2D_HCO/Data Fields")
        for det, idx in (("Vnir", np.arange(nv)[::-1]), ("Swir", np.arange(nv, bands)[::-1])):
            d = g.create_dataset(f"{det.upper()}_Cube", shape=(size, len(idx), size), dtype="uint16")
            for r0 in range(0, size, 512):
                h = min(512, size - r0)
                d[r0:r0 + h] = np.stack([field(size, r0, h, b) for b in idx], axis=1).astype(np.uint16)
            f.attrs[f"List_Cw_{det}"] = wl[idx].astype(np.float32)
            f.attrs[f"List_Fwhm_{det}"] = np.full(len(idx), 10.0, np.float32)
            f.attrs[f"L2Scale{det}Min"], f.attrs[f"L2Scale{det}Max"] = 0.0, 1.0
        f.attrs["Epsg_Code"] = 32633
        f.attrs["Product_ULcorner_easting"], f.attrs["Product_ULcorner_northing"] = 300015.0, 5899985.0
        f.attrs["Product_LRcorner_easting"] = 300015.0 + 30.0 * (size - 1)
        f.attrs["Product_LRcorner_northing"] = 5899985.0 - 30.0 * (size - 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=3000)
    ap.add_argument("--bands", type=int, default=64)
    ap.add_argument("--scale", type=int, default=4)
    ap.add_argument("--method", default="bicubic")
    ap.add_argument("--memory-limit", type=float, default=2048)
    ap.add_argument("--crop", type=int, default=0, help="use an N×N crop (0: whole scene)")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--keep", action="store_true", help="keep the input for the next run")
    ap.add_argument("--source", choices=("geotiff", "prisma"), default="geotiff")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "memory.jsonl")
    a = ap.parse_args()
    work = workdir(a.workdir, "geohsr-mem-")
    if a.source == "prisma":
        if a.crop:
            ap.error("--crop is for the GeoTIFF source")
        src = work / f"PRS_L2D_STD_mem_{a.size}x{a.bands}.he5"
        if not src.exists():
            make_prisma(src, a.size, a.bands)
    else:
        src = work / f"in_{a.size}x{a.bands}.tif"
        if not src.exists():
            make_input(src, a.size, a.bands)
    if a.crop:
        crop = work / f"crop_{a.crop}.tif"
        with rasterio.open(src) as ds:
            prof = ds.profile
            prof.update(width=a.crop, height=a.crop,
                        transform=ds.window_transform(Window(0, 0, a.crop, a.crop)))
            data = ds.read(window=Window(0, 0, a.crop, a.crop))
        with rasterio.open(crop, "w", **prof) as out:
            out.write(data)
        src = crop
    dst = work / "out.tif"
    geohsr = str(Path(sys.executable).with_name("geohsr"))
    cmd = [geohsr, "run", str(src), "--scale", str(a.scale), "--method", a.method, "-o", str(dst),
           "--memory-limit", str(a.memory_limit), "--overwrite", "-q"]
    run = timed(cmd)
    wall = run["wall_s"]
    lr = (a.bands, a.size, a.size) if not a.crop else (a.bands, a.crop, a.crop)
    rec = {
        "benchmark": "memory", "method": a.method, "scale": a.scale, "input": list(lr),
        **({"source": "PRISMA L2D .he5 (xarray reads it)"} if a.source == "prisma" else {}),
        "input_dtype": "uint16" if a.source == "prisma" else "int16", "output_gb": round(dst.stat().st_size / 1e9, 2),
        "memory_limit_mb": a.memory_limit, "wall_s": round(wall, 1),
        "peak_rss_mb": run["peak_rss_mb"],
        "lr_mpix_bands_per_s": round(lr[0] * lr[1] * lr[2] / 1e6 / wall, 2),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "python": platform.python_version()}, "date": time.strftime("%Y-%m-%d"),
    }
    dst.unlink()
    if not a.keep and a.workdir is None:
        for p in work.iterdir():
            p.unlink()
        work.rmdir()
    upsert_jsonl(a.out, rec, KEY_FIELDS + ("source",))
    print(json.dumps(rec, indent=2))


if __name__ == "__main__":
    main()
