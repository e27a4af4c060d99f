import dask
import dask.array as dsa
import numpy as np
import pytest
import xarray as xr
from affine import Affine

import geohsr
from geohsr import geo


def _raise_scheduler(*args, **kwargs):
    raise AssertionError("something was computed while building the graph")


def _cube(bands=6, h=37, w=29, dtype="float32", nodata=None, seed=1, scale=1.0):
    from conftest import smooth_field

    data = smooth_field(bands, h, w, seed) * scale
    data = data.astype(dtype) if np.dtype(dtype).kind == "f" else np.rint(data).astype(dtype)
    da = xr.DataArray(data, dims=("band", "y", "x"))
    da = geo.with_grid(da, Affine(20.0, 0, 1000.0, 0, -20.0, 9000.0), "EPSG:32632")
    if nodata is not None:
        da = da.rio.write_nodata(nodata, encoded=False)
    return da


def _with_holes(da, nodata):
    v = da.values.copy()
    v[:, 5:9, 3:12] = nodata            # a hole through every band
    v[2] = nodata                       # an all-nodata band (like EnMAP water vapour)
    v[4, 20:, 20:] = nodata             # a band-specific gap at the corner
    return da.copy(data=v)


CHUNKINGS = [(1, 3, 3), (-1, 2, 5), (-1, 16, 16), (2, 10, 7), (-1, 37, 29), (3, 11, 29)]


@pytest.mark.parametrize("chunks", CHUNKINGS)
@pytest.mark.parametrize("scale", [2, 3])
def test_tiled_equals_whole_with_nodata(chunks, scale):
    cube = _with_holes(_cube(nodata=-9999.0), -9999.0)
    whole = geohsr.superresolve(cube, scale=scale).values
    lazy = cube.chunk(dict(zip(("band", "y", "x"), chunks)))
    tiled = geohsr.superresolve(lazy, scale=scale)
    assert isinstance(tiled.data, dsa.Array)
    t = tiled.values
    assert t.shape == whole.shape
    np.testing.assert_array_equal(t == -9999.0, whole == -9999.0)
    ok = whole != -9999.0
    data_range = np.ptp(cube.values[cube.values != -9999.0])
    assert np.max(np.abs(t[ok] - whole[ok])) <= 1e-5 * data_range


def test_building_the_graph_computes_nothing():
    cube = _cube(nodata=-9999.0).chunk({"y": 10, "x": 10})
    with dask.config.set(scheduler=_raise_scheduler):
        hr = geohsr.superresolve(cube, scale=4)
        assert isinstance(hr.data, dsa.Array)
    assert hr.shape == (6, 148, 116)


def test_output_chunks_are_input_chunks_times_scale():
    cube = _cube(h=40, w=48).chunk({"band": -1, "y": 20, "x": 16})
    hr = geohsr.superresolve(cube, scale=4)
    assert hr.chunks == ((6,), (80, 80), (64, 64, 64))


def test_nodata_is_masked_and_does_not_leak():
    cube = _with_holes(_cube(nodata=-9999.0), -9999.0)
    hr = geohsr.superresolve(cube, scale=2).values
    assert (hr[2] == -9999.0).all()                       # bad band passes through as nodata
    assert (hr[:, 10:18, 6:24] == -9999.0).all()          # the hole, upsampled
    valid = hr[[0, 1, 3, 5]][:, hr[0] != -9999.0]
    assert valid.min() > -1.0 and valid.max() < 2.0       # no sentinel leaked into valid pixels
    ref = geohsr.superresolve(_cube(nodata=-9999.0), scale=2).values
    # bands next to the all-nodata band are not affected by it (away from the hole)
    np.testing.assert_allclose(hr[1, 30:, 30:], ref[1, 30:, 30:], atol=1e-6)
    np.testing.assert_allclose(hr[3, 30:, 30:], ref[3, 30:, 30:], atol=1e-6)


def test_valid_zeros_stay_valid():
    cube = _cube()
    v = cube.values.copy()
    v[:, :10, :10] = 0.0
    hr = geohsr.superresolve(cube.copy(data=v), scale=2)
    assert np.isfinite(hr.values).all()
    np.testing.assert_allclose(hr.values[:, 2:16, 2:16], 0.0, atol=1e-6)


def test_nan_input_without_nodata():
    cube = _cube()
    v = cube.values.copy()
    v[0, 3, 4] = np.nan
    hr = geohsr.superresolve(cube.copy(data=v), scale=2).values
    assert np.isnan(hr[0, 6:8, 8:10]).all()
    assert np.isfinite(hr[1:]).all() and np.isfinite(hr[0]).sum() == hr[0].size - 4


def test_int16_scaled_reflectance_keeps_dtype_and_never_wraps():
    cube = _cube(dtype="int16", nodata=-32768, scale=30000.0)  # values near the int16 limit
    hr = geohsr.superresolve(cube, scale=4)
    assert hr.dtype == np.int16 and hr.rio.nodata == -32768
    f = geohsr.superresolve(cube, scale=4, dtype="float32").values
    v = hr.values
    assert (v != -32768).all()                   # overshoot clipped, never the nodata value
    np.testing.assert_array_equal(v, np.clip(np.rint(f), -32767, 32767).astype(np.int16))


def test_uint16_small_chunks_equal_whole():
    cube = _cube(dtype="uint16", scale=5000.0, nodata=0)
    whole = geohsr.superresolve(cube, scale=3).values
    tiled = geohsr.superresolve(cube.chunk({"y": 4, "x": 4}), scale=3).values
    np.testing.assert_array_equal(whole, tiled)
