import numpy as np
import pytest

from geohsr import metrics


def test_psnr_rmse_by_hand():
    y = np.zeros((2, 4, 4))
    x = y.copy()
    x[0, 0, 0] = 0.4  # MSE = 0.16 / 32 = 0.005
    assert metrics.rmse(x, y) == pytest.approx(np.sqrt(0.005))
    assert metrics.psnr(x, y) == pytest.approx(10 * np.log10(1 / 0.005))
    assert metrics.psnr(y, y) == float("inf")
    assert metrics.psnr(x, y, peak=2.0) == pytest.approx(10 * np.log10(4 / 0.005))


def test_sam_degrees_by_hand():
    y = np.zeros((2, 1, 2))
    y[0] = 1.0
    x = y.copy()
    x[:, 0, 1] = [1.0, 1.0]  # 45 degrees at one pixel, 0 at the other
    assert metrics.sam(x, y) == pytest.approx(22.5, abs=1e-6)
    np.testing.assert_allclose(metrics.sam_map(x, y)[0], [0.0, 45.0], atol=1e-5)


def test_ergas_by_hand():
    y = np.stack([np.full((4, 4), 0.5), np.full((4, 4), 0.25)])
    x = y + np.array([0.05, 0.05])[:, None, None]
    # RMSE_b / mu_b = 0.1 and 0.2 -> sqrt(mean(0.01, 0.04)) = sqrt(0.025)
    assert metrics.ergas(x, y, scale=4) == pytest.approx(25 * np.sqrt(0.025))


def test_ssim_identical_and_constant_offset():
    rng = np.random.default_rng(0)
    y = rng.random((2, 32, 32))
    assert metrics.ssim(y, y) == pytest.approx(1.0)
    # constant images: luminance term only, (2ab + c1) / (a^2 + b^2 + c1)
    a, b = np.full((1, 16, 16), 0.5), np.full((1, 16, 16), 0.25)
    c1 = 0.01 ** 2
    assert metrics.ssim(a, b) == pytest.approx((2 * 0.5 * 0.25 + c1) / (0.25 + 0.0625 + c1))
    assert metrics.ssim(y + 0.1 * rng.standard_normal(y.shape), y) < 0.95


def test_all_metrics_keys():
    y = np.random.default_rng(1).random((3, 16, 16))
    m = metrics.all_metrics(y * 0.9, y, scale=2)
    assert set(m) == {"psnr", "ssim", "sam", "ergas", "rmse"}
    assert m["sam"] == pytest.approx(0.0, abs=1e-5)


def test_q_index_by_hand_and_block_alignment():
    rng = np.random.default_rng(0)
    x = rng.random((3, 64, 64))
    q = metrics.q_matrix(x, block=32)
    np.testing.assert_allclose(np.diag(q), 1.0)
    a, b = x[0, :32, 32:], x[1, :32, 32:]  # one block by the formula of Wang & Bovik
    c = ((a - a.mean()) * (b - b.mean())).mean()
    by_hand = 4 * c * a.mean() * b.mean() / ((a.var() + b.var()) * (a.mean() ** 2 + b.mean() ** 2))
    assert metrics.q_matrix(x[:2, :32, 32:64], block=32)[0, 1] == pytest.approx(by_hand)
    assert metrics.q_matrix(np.ones((2, 8, 8)), block=4)[0, 1] == 1.0  # constant and equal


def test_qnr_is_zero_distortion_for_a_replicated_product_and_sees_spectral_damage():
    rng = np.random.default_rng(1)
    s, base = 4, rng.random((24, 24))
    lr = base * np.arange(1, 7)[:, None, None] + 0.05 * rng.random((6, 24, 24))  # correlated bands
    pan = rng.random((24 * s, 24 * s))
    pan_low = pan.reshape(24, s, 24, s).mean((1, 3))
    nearest = lr.repeat(s, 1).repeat(s, 2)  # every HR block has its LR block's statistics
    assert metrics.qnr(nearest, lr, pan, pan_low, s)["d_lambda"] == pytest.approx(0.0, abs=1e-12)
    damaged = nearest.copy()
    damaged[::2] = np.roll(damaged[::2], 5, axis=2)  # half the bands moved: inter-band relations break
    r = metrics.qnr(damaged, lr, pan, pan_low, s)
    assert r["d_lambda"] > 0.1 and r["qnr"] == pytest.approx((1 - r["d_lambda"]) * (1 - r["d_s"]))
