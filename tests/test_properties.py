"""Property-based tests (hypothesis) of the invariants."""

import numpy as np
import xarray as xr
from affine import Affine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import geohsr
from geohsr import geo

SETTINGS = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@st.composite
def transforms(draw):
    res = draw(st.floats(0.5, 500))
    rot = draw(st.sampled_from([0.0, 0.0, 15.0, -40.0]))
    x0 = draw(st.floats(-1e6, 1e6))
    y0 = draw(st.floats(-1e6, 1e7))
    return Affine.translation(x0, y0) @ Affine.rotation(rot) @ Affine.scale(res, -res)


def _cube(data, transform, crs="EPSG:32633", nodata=None):
    da = geo.with_grid(xr.DataArray(data, dims=("band", "y", "x")), transform, crs)
    return da.rio.write_nodata(nodata, encoded=False) if nodata is not None else da


@SETTINGS
@given(h=st.integers(1, 20), w=st.integers(1, 20), scale=st.integers(2, 5), t=transforms(),
       crs=st.sampled_from(["EPSG:32633", "EPSG:4326", None]))
def test_geometry_invariants(h, w, scale, t, crs):
    cube = _cube(np.ones((1, h, w), "float32"), t, crs)
    hr = geohsr.superresolve(cube, scale=scale)
    assert hr.shape == (1, h * scale, w * scale)
    ht = hr.rio.transform(recalc=False)
    np.testing.assert_allclose(tuple(ht), tuple(t @ Affine.scale(1 / scale)), rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(geo.bounds(ht, h * scale, w * scale), geo.bounds(t, h, w),
                               rtol=1e-12, atol=1e-6)
    assert hr.rio.crs == cube.rio.crs


@SETTINGS
@given(data=st.data(), scale=st.integers(2, 3), bands=st.integers(1, 3),
       h=st.integers(5, 40), w=st.integers(5, 40))
def test_tiled_equals_whole_for_random_chunkings(data, scale, bands, h, w):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    arr = rng.random((bands, h, w)).astype("float32")
    holes = rng.random((bands, h, w)) < 0.1
    arr[holes] = -1.0
    cube = _cube(arr, Affine(10, 0, 0, 0, -10, 0), nodata=-1.0)
    cy, cx = data.draw(st.integers(1, h)), data.draw(st.integers(1, w))
    whole = geohsr.superresolve(cube, scale=scale).values
    tiled = geohsr.superresolve(cube.chunk({"y": cy, "x": cx}), scale=scale).values
    np.testing.assert_array_equal(whole == -1.0, tiled == -1.0)
    ok = whole != -1.0
    assert np.abs(whole[ok] - tiled[ok]).max(initial=0) <= 1e-5


@SETTINGS
@given(seed=st.integers(0, 2**16), scale=st.integers(2, 4), sentinel=st.sampled_from([-9999.0, 1e6, 0.0]))
def test_nodata_never_leaks_into_valid_pixels(seed, scale, sentinel):
    rng = np.random.default_rng(seed)
    arr = (rng.random((2, 16, 16)) * 0.5 + 0.25).astype("float32")
    arr[rng.random(arr.shape) < 0.2] = sentinel
    hr = geohsr.superresolve(_cube(arr, Affine(1, 0, 0, 0, -1, 0), nodata=sentinel), scale=scale).values
    valid = hr[hr != sentinel]
    # bicubic of values in [0.25, 0.75] stays within a small overshoot: no sentinel influence
    assert valid.size and valid.min() > 0.0 and valid.max() < 1.0


@SETTINGS
@given(seed=st.integers(0, 2**16), dtype=st.sampled_from(["uint8", "int16", "uint16", "int32"]))
def test_integer_outputs_never_wrap(seed, dtype):
    info = np.iinfo(dtype)
    rng = np.random.default_rng(seed)
    lo, hi = max(info.min, -2**31 + 1), min(info.max, 2**31 - 1)
    arr = rng.choice([lo, hi], size=(1, 12, 12)).astype(dtype)  # max contrast: max overshoot
    hr = geohsr.superresolve(_cube(arr, Affine(1, 0, 0, 0, -1, 0)), scale=3)
    f = geohsr.superresolve(_cube(arr.astype("float64"), Affine(1, 0, 0, 0, -1, 0)), scale=3).values
    v = hr.values
    assert hr.dtype == np.dtype(dtype)
    expect = np.clip(np.rint(f), info.min, info.max)
    assert np.abs(v.astype(np.float64) - expect).max() <= (1 if dtype == "int32" else 0)


@SETTINGS
@given(seed=st.integers(0, 2**16),
       case=st.sampled_from([("int16", -32768), ("int16", None), ("uint8", 0), ("uint16", 65535),
                             ("int32", 5), ("float32", None), ("float32", -9999.0), ("float64", None)]))
def test_streaming_cast_equals_the_reference_cast(seed, case):
    """``cast_finite`` (in place, a few bands at a time: what ``geohsr run`` uses to stay within
    its memory limit) gives exactly what :func:`cast` gives with every non-finite value invalid."""
    from geohsr.dtypes import cast, cast_finite

    dtype, nodata = case
    rng = np.random.default_rng(seed)
    v = (rng.standard_normal((11, 9, 7)) * 4e4).astype(np.float32)
    v[rng.random(v.shape) < 0.05] = np.nan
    v[rng.random(v.shape) < 0.02] = np.inf
    v[rng.random(v.shape) < 0.02] = -np.inf
    if nodata is not None:
        v[rng.random(v.shape) < 0.05] = nodata
    ref = cast(v.copy(), dtype, nodata, np.isfinite(v))
    got = cast_finite(v.copy(), dtype, nodata, slab=3)
    assert got.dtype == ref.dtype and np.array_equal(got, ref, equal_nan=True)
