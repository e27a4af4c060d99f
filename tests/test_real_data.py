"""Checks on the real EnMAP data in ../shared/data (skipped in a clone without it)."""

import numpy as np
import pytest

import geohsr
from conftest import shared_or_skip


def test_bundled_demo_scene_metadata():
    cube = geohsr.open_cube(geohsr.demo_scene_path())
    assert cube.shape == (224, 64, 128)
    assert cube.rio.crs.to_epsg() == 32633 and cube.rio.nodata == -32768
    assert cube.wavelength.values[0] == pytest.approx(418.24)
    assert np.flatnonzero(cube.good_band.values == 0).tolist() == list(range(129, 135))


def test_enmap_tile_superresolve_roundtrip(tmp_path):
    p = shared_or_skip("enmap_potsdam", "enmap_potsdam_tile_128_96.tif")
    cube = geohsr.open_cube(p, chunks={"y": 16, "x": 16})
    assert cube.shape == (224, 32, 32)
    hr = geohsr.superresolve(cube, scale=4)
    out = geohsr.save_cube(hr, tmp_path / "x4.tif")
    back = geohsr.open_cube(out)
    for c in ("wavelength", "fwhm", "good_band"):
        np.testing.assert_array_equal(back[c].values, cube[c].values)
    assert list(back.band_name.values) == list(cube.band_name.values)
    assert back.rio.bounds() == pytest.approx(cube.rio.bounds())
    assert back.rio.resolution() == pytest.approx((7.5, -7.5))
    v = back.values
    bad = cube.good_band.values == 0
    assert (v[bad] == -32768).all()            # water-vapour bands pass through as nodata
    assert (v[~bad] != -32768).mean() > 0.99   # the good bands are filled
    # block means of the x4 product reproduce the input closely (bicubic is near-interpolating)
    lr = cube.values[~bad].astype(np.float64)
    avg = v[~bad].reshape(-1, 32, 4, 32, 4).mean(axis=(2, 4))
    assert np.abs(avg - lr).mean() / np.abs(lr).mean() < 0.05
