import numpy as np
import pytest
import xarray as xr
from affine import Affine

import geohsr
from geohsr import geo


def _cube(h=24, w=36, transform=None, crs="EPSG:32633", bands=3, seed=0):
    from conftest import smooth_field

    da = xr.DataArray(smooth_field(bands, h, w, seed).astype("float32"), dims=("band", "y", "x"))
    t = transform or Affine(30.0, 0.0, 365000.0, 0.0, -30.0, 5807000.0)
    return geo.with_grid(da, t, crs)


@pytest.mark.parametrize("scale", [2, 3, 4, 8])
@pytest.mark.parametrize("h,w", [(24, 36), (17, 5), (1, 1), (7, 30)])
def test_hr_grid_transform_bounds_and_centres(scale, h, w):
    cube = _cube(h, w)
    hr = geohsr.superresolve(cube, scale=scale)
    t = cube.rio.transform()
    assert hr.shape == (3, h * scale, w * scale)
    assert tuple(hr.rio.transform()) == pytest.approx(tuple(t @ Affine.scale(1 / scale)))
    assert hr.rio.bounds() == pytest.approx(cube.rio.bounds())
    assert hr.rio.crs == cube.rio.crs
    res = 30.0 / scale
    np.testing.assert_allclose(hr.x.values, 365000.0 + (np.arange(w * scale) + 0.5) * res)
    np.testing.assert_allclose(hr.y.values, 5807000.0 - (np.arange(h * scale) + 0.5) * res)
    # the mean of each s×s block of HR centres is the LR centre
    np.testing.assert_allclose(hr.x.values.reshape(w, scale).mean(1), cube.x.values)


def test_rotated_transform_is_scaled_as_a_matrix(tmp_path):
    from conftest import write_raster, smooth_field

    t = Affine.translation(500000, 4000000) @ Affine.rotation(20) @ Affine.scale(10, -10)
    p = write_raster(tmp_path / "rot.tif", smooth_field(2, 12, 16).astype("float32"), transform=t)
    cube = geohsr.open_cube(p)
    assert "x" not in cube.coords
    hr = geohsr.superresolve(cube, scale=4)
    assert tuple(hr.rio.transform(recalc=False)) == pytest.approx(tuple(t @ Affine.scale(0.25)))
    out = geohsr.save_cube(hr, tmp_path / "rot_x4.tif")
    import rasterio

    with rasterio.open(out) as ds:
        assert tuple(ds.transform) == pytest.approx(tuple(t @ Affine.scale(0.25)))
        for corner in ((0, 0), (16, 12), (0, 12)):
            hx = ds.transform @ (corner[0] * 4, corner[1] * 4)
            np.testing.assert_allclose(hx, t @ corner, atol=1e-6)


def test_sheared_transform_keeps_corners():
    t = Affine(10, 2, 1000, 1, -10, 5000)
    cube = _cube(8, 6, transform=t)
    assert "x" not in cube.coords
    hr = geohsr.superresolve(cube, scale=2)
    assert geo.bounds(hr.rio.transform(recalc=False), 16, 12) == pytest.approx(geo.bounds(t, 8, 6))


def _subpixel_shift(a, b):
    """Shift (dy, dx) of b relative to a, in pixels, by a weighted least-squares fit of the
    cross-power spectrum phase at low frequencies (Hann-windowed)."""
    h, w = a.shape
    win = np.outer(np.hanning(h), np.hanning(w))
    fa, fb = np.fft.fft2((a - a.mean()) * win), np.fft.fft2((b - b.mean()) * win)
    r = fb * np.conj(fa)
    ky = np.fft.fftfreq(h)[:, None] * np.ones((1, w))
    kx = np.ones((h, 1)) * np.fft.fftfreq(w)[None, :]
    sel = (np.abs(ky) <= 0.08) & (np.abs(kx) <= 0.08) & ((ky != 0) | (kx != 0))
    wgt = np.abs(r[sel])
    A = np.stack([ky[sel], kx[sel]], 1) * -2 * np.pi * np.sqrt(wgt)[:, None]
    phi = np.angle(r[sel]) * np.sqrt(wgt)
    return np.linalg.lstsq(A, phi, rcond=None)[0]


@pytest.mark.parametrize("scale", [2, 4])
def test_block_averaged_output_is_not_shifted(scale):
    cube = _cube(96, 96, bands=1, seed=3)
    hr = geohsr.superresolve(cube, scale=scale)
    back = hr.values[0].reshape(96, scale, 96, scale).mean(axis=(1, 3))
    dy, dx = _subpixel_shift(cube.values[0], back)
    assert abs(dy) < 0.05 and abs(dx) < 0.05
    # the check itself sees the classic bug: a grid off by (res - res/s)/2
    off = (scale - 1) // 2 + 1 if scale > 1 else 0
    shifted = np.roll(hr.values[0], off, axis=1).reshape(96, scale, 96, scale).mean(axis=(1, 3))
    assert abs(_subpixel_shift(cube.values[0], shifted)[1]) > 0.2


def test_no_crs_gives_output_without_crs():
    cube = _cube(crs=None)
    hr = geohsr.superresolve(cube, scale=2)
    assert hr.rio.crs is None
