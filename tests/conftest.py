"""Small georeferenced fixtures made on the fly (no files shipped for tests)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def geohsr_cmd(*args) -> list:
    """The command line that runs geohsr's CLI in a child process (this interpreter)."""
    return [sys.executable, "-m", "geohsr", *map(str, args)]


def smooth_field(bands, h, w, seed=0, offset=0.2):
    """A smooth positive random cube in about [0, 1] (sum of low-frequency sinusoids)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    out = np.empty((bands, h, w), dtype=np.float64)
    for b in range(bands):
        acc = np.full((h, w), offset)
        for _ in range(4):
            fy, fx = rng.uniform(0.02, 0.12, 2)
            ph = rng.uniform(0, 2 * np.pi)
            acc += 0.15 * rng.uniform(0.5, 1) * np.sin(2 * np.pi * (fy * yy + fx * xx) + ph)
        out[b] = acc
    return out


def write_raster(path, data, *, transform=None, crs="EPSG:32633", nodata=None,
                 wavelengths=None, units="Nanometers", fwhm=None, bbl=None,
                 descriptions=None, imagery_um=None, driver="GTiff"):
    data = np.asarray(data)
    count, h, w = data.shape
    transform = transform or Affine(30.0, 0.0, 365000.0, 0.0, -30.0, 5807000.0)
    prof = dict(driver=driver, count=count, height=h, width=w, dtype=data.dtype.name,
                transform=transform, nodata=nodata)
    if crs is not None:
        prof["crs"] = crs
    with rasterio.open(path, "w", **prof) as ds:
        ds.write(data)
        for i in range(count):
            tags = {}
            if wavelengths is not None:
                tags["wavelength"] = str(wavelengths[i])
                if units:
                    tags["wavelength_units"] = units
            if fwhm is not None:
                tags["fwhm"] = str(fwhm[i])
            if bbl is not None:
                tags["bbl"] = str(bbl[i])
            if tags:
                ds.update_tags(i + 1, **tags)
            if descriptions is not None:
                ds.set_band_description(i + 1, descriptions[i])
            if imagery_um is not None:
                ds.update_tags(i + 1, ns="IMAGERY", CENTRAL_WAVELENGTH_UM=str(imagery_um[i]))
    return Path(path)


@pytest.fixture
def make_raster(tmp_path):
    def _make(name="scene.tif", bands=5, h=24, w=36, dtype="float32", seed=0, scale=1.0, **kw):
        data = smooth_field(bands, h, w, seed) * scale
        if np.dtype(dtype).kind in "iu":
            data = np.rint(data)
        data = data.astype(dtype)
        if "wavelengths" not in kw:
            kw["wavelengths"] = list(np.linspace(450.0, 2400.0, bands).round(3))
        if "fwhm" not in kw:
            kw["fwhm"] = [10.5] * bands
        return write_raster(tmp_path / name, data, **kw), data

    return _make


def shared_or_skip(*parts) -> Path:
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"real data not available: {p} (clone without ../shared/data)")
    return p


def train_then_init(tmp_path, method, data, scales):
    """``geohsr train METHOD`` on ``data`` (tiny config, one batch) at ``scales[0]``, then a second,
    step-free run at ``scales[1]`` started from it with ``--init``. Returns the first run's weights,
    the second run's card and the CLI arguments both runs shared (for further invocations)."""
    import json

    from click.testing import CliRunner

    from geohsr.cli import main

    common = ["--data", str(data), "--config", "tiny", "--batch", "2", "-q", "--device", "cpu"]
    first, second = (tmp_path / f"x{s}" for s in scales)
    r = CliRunner().invoke(main, ["train", method, "--scale", str(scales[0]), "--out", str(first),
                                  "--batches", "1", "--val-every", "1", *common])
    assert r.exit_code == 0, r.output
    start = first / "best.safetensors"
    r = CliRunner().invoke(main, ["train", method, "--scale", str(scales[1]), "--out", str(second),
                                  "--batches", "0", "--val-every", "1", "--init", str(start), *common])
    assert r.exit_code == 0, r.output
    return start, json.loads((second / "card.json").read_text()), common


@pytest.fixture(autouse=True)
def _single_thread_torch():
    import torch

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    yield


@pytest.fixture(autouse=True)
def _cli_default_method_bicubic(monkeypatch):
    """CLI runs in tests use bicubic unless a test names a method (the CLI default `auto`
    picks DualSR when shipped weights cover the scale, which tests must not depend on)."""
    monkeypatch.setenv("GEOHSR_RUN_METHOD", "bicubic")


def load_script(name: str):
    """The module of ``scripts/<name>.py`` (developer scripts are not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parents[1] / "scripts" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
