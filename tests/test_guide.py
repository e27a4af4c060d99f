import numpy as np
import pytest
import xarray as xr
from affine import Affine
from pyproj import Transformer

import geohsr
from geohsr import geo
from geohsr.guide import align_guide, coverage

UTM = "EPSG:32633"


def field(e, n):
    return 0.5 + 0.2 * np.sin(e / 90.0) * np.cos(n / 130.0) + 0.1 * np.sin((e + n) / 250.0)


def _scene(h=12, w=16):
    t = Affine(30, 0, 365000, 0, -30, 5807000)
    da = xr.DataArray(np.ones((4, h, w), "float32"), dims=("band", "y", "x"))
    return geo.with_grid(da, t, UTM)


def _guide(tmp_path, crs, res, bounds, bands=3, name="g.tif", nodata=None, dtype="uint8",
           write_crs=True):
    from conftest import write_raster

    l, b, r, t = bounds
    w, h = int(round((r - l) / res)), int(round((t - b) / res))
    tr = Affine(res, 0, l, 0, -res, t)
    xs = l + (np.arange(w) + 0.5) * res
    ys = t - (np.arange(h) + 0.5) * res
    X, Y = np.meshgrid(xs, ys)
    if crs != UTM:
        E, N = Transformer.from_crs(crs, UTM, always_xy=True).transform(X, Y)
    else:
        E, N = X, Y
    f = field(E, N)
    data = np.stack([f * (1 + 0.1 * k) for k in range(bands)]) * 200
    return write_raster(tmp_path / name, data.astype(dtype), transform=tr,
                        crs=crs if write_crs else None, nodata=nodata,
                        wavelengths=None, fwhm=None)


def _hr_field(scene, s):
    t, H, W = geo.hr_transform(scene.rio.transform(), s), scene.sizes["y"] * s, scene.sizes["x"] * s
    xs = t.c + (np.arange(W) + 0.5) * t.a
    ys = t.f + (np.arange(H) + 0.5) * t.e
    E, N = np.meshgrid(xs, ys)
    return field(E, N), t


def test_guide_in_another_crs_and_resolution_lands_on_the_hr_grid(tmp_path):
    scene = _scene()
    to_ll = Transformer.from_crs(UTM, "EPSG:4326", always_xy=True)
    lon0, lat0 = to_ll.transform(364900, 5806500)
    lon1, lat1 = to_ll.transform(365600, 5807100)
    g = _guide(tmp_path, "EPSG:4326", 2e-5, (lon0, lat0, lon1, lat1), dtype="float32")
    al = align_guide(g, scene, 4)
    ref, t = _hr_field(scene, 4)
    assert al.shape == (3, 48, 64) and al.rio.crs == scene.rio.crs
    assert tuple(al.rio.transform()) == pytest.approx(tuple(t))
    a = al.values[0]
    assert np.isfinite(a).all() and 0 <= a.min() and a.max() <= 1
    assert np.corrcoef(a.ravel(), ref.ravel())[0, 1] > 0.99


def test_finer_guide_in_the_same_crs_is_area_averaged(tmp_path):
    scene = _scene()
    g = _guide(tmp_path, UTM, 2.5, (364990, 5806630, 365500, 5807010), bands=4, dtype="float32")
    al = align_guide(g, scene, 4)
    ref, _ = _hr_field(scene, 4)
    assert np.corrcoef(al.values[1].ravel(), ref.ravel())[0, 1] > 0.995


def test_pan_guide_is_repeated_and_two_bands_refused(tmp_path):
    scene = _scene()
    pan = _guide(tmp_path, UTM, 5, (364980, 5806620, 365500, 5807020), bands=1, name="pan.tif")
    al = align_guide(pan, scene, 2)
    np.testing.assert_array_equal(al.values[0], al.values[2])
    two = _guide(tmp_path, UTM, 5, (364980, 5806620, 365500, 5807020), bands=2, name="two.tif")
    with pytest.raises(geohsr.InputError, match="2 bands"):
        align_guide(two, scene, 2)


def test_partial_coverage_and_missing_crs_are_refused(tmp_path):
    scene = _scene()
    half = _guide(tmp_path, UTM, 5, (365000, 5806640, 365240, 5807000), name="half.tif")
    with pytest.raises(geohsr.InputError, match="covers only 50.0 %"):
        align_guide(half, scene, 2)
    nocrs = _guide(tmp_path, UTM, 5, (364980, 5806620, 365500, 5807020), name="nocrs.tif",
                   write_crs=False)
    with pytest.raises(geohsr.InputError, match="guide has no CRS"):
        align_guide(nocrs, scene, 2)
    assert coverage(geohsr.open_cube(half), scene.rio.bounds(), scene.rio.crs) == pytest.approx(0.5)
