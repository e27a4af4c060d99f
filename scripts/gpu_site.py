"""Pack the Python packages ``geohsr run`` needs and a lent GPU machine lacks into one small file.

The device machine (``/work/.library/device``) has PyTorch, xarray, scipy, scikit-image, click,
safetensors, tqdm, … but not rasterio, pyproj, rioxarray or dask, and it cannot download anything.
Their wheels are ~46 MB and the repository ~37 MB, over the 64 MiB a call carries; unpacked,
trimmed and ``xz``-compressed they fit:

* dropped: the packages' ``tests`` folders and ``.pyi`` stubs, pyproj's copy of PROJ's database
  (``proj.db``, 9 MB: rasterio ships one too; pyproj then reads ``PROJ_DATA``), the parts of dask
  a run never imports (``DROP``), and pyproj's copies of libraries rasterio bundles too
  (``SHARED_LIBS``: links to rasterio's instead; 8 MB, mostly libcurl).

``python scripts/gpu_site.py .gpu-site`` (here, where pip reaches the package registry) writes
``.gpu-site/site.tar.xz`` for CPython 3.12 on x86-64 Linux (the device's) and prints what a call
would carry. ``.gpu-site/`` belongs in ``.git/info/exclude``. On the device, with ``.gpu-site``
carried::

    mkdir -p /tmp/site && tar -xJf .gpu-site/site.tar.xz -C /tmp/site &&
    export PYTHONPATH=/tmp/site PROJ_DATA=/tmp/site/rasterio/proj_data &&
    python3 -m geohsr run geohsr/data/enmap_potsdam_demo.tif -s 4 -o $OUT/demo_x4.tif --device cuda

or ``bash scripts/gpu_run_check.sh $OUT``: that, CPU against CUDA, workers, batches, bf16 and
``--adapt`` on CUDA, then ``scripts/gpu_check_infer.py``, in one call.

``--python-version 3.11`` packs for this machine's interpreter instead, to check the trimmed set
here (``PYTHONPATH`` before a site that lacks those packages).
"""

from __future__ import annotations

import argparse
import lzma
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

# what geohsr imports that the device image lacks, with their own missing dependencies, as this
# repository's virtual environment pins them
PACKAGES = ("rasterio==1.4.4", "affine==3.0.1", "cligj==0.7.2", "click-plugins==1.1.1.2", "pyproj==3.7.2",
            "rioxarray==0.19.0", "dask==2026.8.0", "partd==1.4.2", "locket==1.0.0")
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
             "manylinux1_x86_64")
# paths (relative to the site) a GeoTIFF/COG run does not read
DROP = ("pyproj/proj_dir/share/proj/proj.db", "dask/dataframe", "dask/bag", "dask/diagnostics")
# pyproj's bundled libraries that rasterio bundles too (another build of the same library and
# soname major); not libproj: rasterio's exports its symbols under other names
SHARED_LIBS = ("libcurl", "libsqlite3", "libtiff", "libnghttp2")


def download(dest: Path, python_version: str) -> list[Path]:
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
           "--python-version", python_version, "--implementation", "cp", "-d", str(dest)]
    for p in PLATFORMS:
        cmd += ["--platform", p]
    subprocess.run(cmd + list(PACKAGES), check=True)
    tag = "cp" + python_version.replace(".", "")
    return sorted(w for w in dest.glob("*.whl") if "-py3-" in w.name or "-py2.py3-" in w.name or tag in w.name)


def lib_base(name: str) -> str:
    return name.split("-")[0] if "-" in name else name.split(".so")[0]


def share_libs(site: Path) -> None:
    """pyproj's copies of ``SHARED_LIBS`` become links to rasterio's, and every other library of
    rasterio's gets a link beside them, so what rasterio's copies need is found beside them too
    (their RPATH is ``$ORIGIN``) whichever package loads them first."""
    mine, theirs = site / "pyproj.libs", site / "rasterio.libs"
    by_base = {lib_base(p.name): p.name for p in theirs.iterdir()}
    for p in list(mine.iterdir()):
        if lib_base(p.name) in SHARED_LIBS and lib_base(p.name) in by_base:
            p.unlink()
            p.symlink_to(Path("..") / theirs.name / by_base[lib_base(p.name)])
    for name in by_base.values():
        if not (mine / name).exists():
            (mine / name).symlink_to(Path("..") / theirs.name / name)


def trim(site: Path) -> None:
    share_libs(site)
    for rel in DROP:
        p = site / rel
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()
    for p in [*site.rglob("tests"), *site.rglob("*.pyi")]:
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        elif p.exists():
            p.unlink()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--python-version", default="3.12")
    a = ap.parse_args()
    wheels = download(a.out / f"wheels-{a.python_version}", a.python_version)
    site = a.out / f"site-{a.python_version}"
    shutil.rmtree(site, ignore_errors=True)
    for w in wheels:
        with zipfile.ZipFile(w) as z:
            z.extractall(site)
    for so in site.rglob("*.so*"):  # zip extraction drops the executable bit the loader does not need
        so.chmod(0o755)
    trim(site)
    name = "site.tar.xz" if a.python_version == "3.12" else f"site-{a.python_version}.tar.xz"
    tmp = a.out / (name + ".tmp")
    with tarfile.open(tmp, "w:xz", preset=9 | lzma.PRESET_EXTREME) as t:
        for p in sorted(site.iterdir()):
            t.add(p, arcname=p.name)
    tmp.replace(a.out / name)
    shutil.rmtree(site)
    root = Path(__file__).resolve().parents[1]
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True).stdout
    repo = sum((root / f).stat().st_size for f in tracked.decode().split("\0") if f and (root / f).is_file())
    size = (a.out / name).stat().st_size
    print(f"{a.out / name}: {size / 2**20:.2f} MiB; with the tracked repository ({repo / 2**20:.2f} MiB): "
          f"{(size + repo) / 2**20:.2f} MiB of the 64 MiB a call carries")


if __name__ == "__main__":
    main()
