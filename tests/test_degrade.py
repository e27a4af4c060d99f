import numpy as np
import pytest
import xarray as xr
from affine import Affine

from geohsr import degrade, geo
from geohsr.evaluate import evaluate


def test_gaussian_kernels():
    k = degrade.gaussian_kernel(7, 1.2)
    assert k.sum() == pytest.approx(1) and k[3, 3] == k.max()
    np.testing.assert_allclose(k, k.T)
    a = degrade.anisotropic_gaussian(21, 1.0, 1.0, 0.3)
    yy, xx = np.mgrid[0:21, 0:21]
    assert (a * yy).sum() == pytest.approx(10) and (a * xx).sum() == pytest.approx(10)


def test_anisotropic_off_centre_convention():
    # MulSR/IFMSR: centre at k//2 + 0.5·(s − k mod 2) -> 7.5 for k = 13, s = 4
    a = degrade.anisotropic_gaussian(13, 1.0, 1.0, 0.0, scale=4)
    yy, xx = np.mgrid[0:13, 0:13]
    assert (a * yy).sum() == pytest.approx(7.5, abs=1e-3)
    assert (a * xx).sum() == pytest.approx(7.5, abs=1e-3)
    b = degrade.anisotropic_gaussian(13, 2.0, 10.0, np.pi / 2, scale=4)
    # (x, y) ordering of the ZSSR/KernelGAN code: θ = π/2 turns λ2 onto the column axis
    var_y = (b * (yy - 7.5) ** 2).sum()
    var_x = (b * (xx - 7.5) ** 2).sum()
    assert var_x > 3 * var_y


def test_blur_downsample_modes():
    x = np.random.default_rng(0).random((2, 16, 16))
    delta = np.zeros((5, 5))
    delta[2, 2] = 1
    d = degrade.blur_downsample(x, delta, 4, "direction")
    np.testing.assert_allclose(d, x[:, ::4, ::4], atol=1e-6)
    for mode in ("bicubic", "bilinear"):
        assert degrade.blur_downsample(x, delta, 4, mode).shape == (2, 4, 4)
    c = np.full((1, 16, 16), 0.3)
    k = degrade.gaussian_kernel(7, 1.5)
    for mode in ("bicubic", "bilinear", "direction"):
        np.testing.assert_allclose(degrade.blur_downsample(c, k, 2, mode), 0.3, atol=1e-6)
    with pytest.raises(ValueError):
        degrade.blur_downsample(x, k, 2, "nearest")


def test_psf_stride_index_mapping():
    x = np.random.default_rng(1).random((1, 40, 40)).astype(np.float32)
    psf = np.zeros((32, 32))
    psf[0, 0] = 1.0
    out = degrade.psf_stride(x, psf, 4)
    assert out.shape == (1, 10, 10)
    # pad (32 − 4)//2 = 14: out(i, j) = x[4i − 14, 4j − 14] (zero outside)
    for i, j in ((4, 4), (9, 5), (0, 0)):
        yi, xj = 4 * i - 14, 4 * j - 14
        exp = x[0, yi, xj] if yi >= 0 and xj >= 0 else 0.0
        assert out[0, i, j] == pytest.approx(exp)


def test_real_asnlsr_psf():
    from conftest import shared_or_skip

    psf = degrade.load_mat_kernel(shared_or_skip("psf", "asnlsr_psf_32x32.mat"))
    assert psf.shape == (32, 32) and psf.sum() == pytest.approx(1.0, abs=1e-6)
    out = degrade.psf_stride(np.ones((1, 128, 128), np.float32), psf, 4)
    assert out.shape == (1, 32, 32) and out[0, 8:24, 8:24] == pytest.approx(1.0, abs=1e-5)


def test_noise_is_seeded():
    x = np.zeros((2, 50, 50))
    a, b = degrade.add_noise(x, 0.1, 3), degrade.add_noise(x, 0.1, 3)
    np.testing.assert_array_equal(a, b)
    assert a.std() == pytest.approx(0.1, rel=0.05)
    assert not np.array_equal(a, degrade.add_noise(x, 0.1, 4))
    assert degrade.add_noise(x + 0.99, 0.1, 1, clip=(0, 1)).max() <= 1


def test_projection_and_srf_matrix():
    wl = np.arange(400.0, 701.0, 10.0)
    curves_wl = np.linspace(380, 720, 100)
    curves = np.stack([np.exp(-0.5 * ((curves_wl - c) / 30) ** 2) for c in (600, 540, 450)])
    m = degrade.srf_matrix(wl, curves_wl, curves)
    assert m.shape == (3, 31)
    np.testing.assert_allclose(m.sum(1), 1)
    cube = np.full((31, 4, 5), 0.25)
    np.testing.assert_allclose(degrade.project(cube, m), 0.25)
    assert np.argmax(m[0]) == 20 and np.argmax(m[2]) == 5


def test_cie_rgb_from_shared_srf():
    from conftest import shared_or_skip

    p = shared_or_skip("srf", "cie1931_2deg_xyz_cmf.csv")
    arr = np.genfromtxt(p, delimiter=",", skip_header=0)
    arr = arr[~np.isnan(arr).any(1)]
    m = degrade.srf_matrix(np.arange(400.0, 701.0, 10.0), arr[:, 0], arr[:, 1:4].T)
    assert m.shape == (3, 31) and np.all(m >= 0)


def test_gaussian_spectral_resample_asnlsr_counts():
    wl1 = np.linspace(1000, 1700, 120)
    x = np.full((120, 3, 3), 2.0)
    y, c = degrade.gaussian_spectral_resample(x, wl1, 45, remove=[(1310, 1550)])
    assert y.shape[0] == 30 and len(c) == 30
    np.testing.assert_allclose(y, 2.0)
    assert not np.any((c >= 1310) & (c <= 1550))
    wl2 = np.linspace(1700, 2500, 130)
    y2, c2 = degrade.gaussian_spectral_resample(np.ones((130, 2, 2)), wl2, 38, remove=[(1800, 1980)])
    assert y2.shape[0] == 30
    np.testing.assert_array_equal(degrade.select_range(wl1, 1000, 1100), np.flatnonzero(wl1 <= 1100))


def _const_cube(values, h=32, w=32):
    data = np.stack([np.full((h, w), v, np.float32) for v in values])
    da = xr.DataArray(data, dims=("band", "y", "x"))
    return geo.with_grid(da, Affine(10, 0, 0, 0, -10, 0), "EPSG:32633")


def test_evaluate_known_answers():
    rep = evaluate(_const_cube([0.2, 0.5, 0.8]), ["bicubic"], 4)
    r = rep.table.loc["bicubic"]
    assert r.psnr == float("inf") or r.psnr > 100
    assert r.ssim == pytest.approx(1.0) and r.sam == pytest.approx(0.0, abs=1e-4)
    assert r.ergas == pytest.approx(0.0, abs=1e-5) and r.rmse == pytest.approx(0.0, abs=1e-6)
    assert "Wald protocol ×4" in rep.protocol and "| bicubic |" in rep.to_markdown()
    assert rep.band_psnr["bicubic"].shape == (3,)


def test_evaluate_a_textured_scene_reports_bicubic_and_drops_bad_bands(make_raster):
    path, _ = make_raster(bands=6, h=48, w=48, bbl=[1, 1, 0, 1, 1, 1])
    rep = evaluate(path, "bicubic", 2)
    assert list(rep.table.index) == ["bicubic"]
    assert "5 good bands of 6" in rep.protocol
    assert 25 < rep.table.loc["bicubic"].psnr < 80
    csv = rep.to_csv()
    assert csv.splitlines()[0].startswith("method,psnr,ssim,sam,ergas,rmse")
