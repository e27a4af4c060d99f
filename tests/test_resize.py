import numpy as np
import pytest
import torch
import torch.nn.functional as F

from geohsr.resize import contributions, cubic, imresize


def test_cubic_kernel_values():
    # Keys a = -0.5 at hand-computed points
    np.testing.assert_allclose(cubic(np.array([0.0, 0.25, 0.75, 1.0, 1.25, 1.75, 2.0, 2.5])),
                               [1.0, 0.8671875, 0.2265625, 0.0, -0.0703125, -0.0234375, 0.0, 0.0])


def test_upsample_first_sample_matches_hand_computation():
    # MATLAB imresize(1:4, 2): u = -0.25, taps at -2..1 mirrored to (1, 0, 0, 1)
    out = imresize(np.array([[1.0, 2.0, 3.0, 4.0]]), size=(1, 8))
    expected0 = -0.0234375 * 2 + 0.2265625 * 1 + 0.8671875 * 1 - 0.0703125 * 2
    assert out[0, 0] == pytest.approx(expected0)
    # interior samples of a linear ramp are exact (cubic convolution reproduces lines)
    ramp = imresize(np.arange(1.0, 11.0)[None], size=(1, 20))
    np.testing.assert_allclose(ramp[0, 4:16], 1 + (np.arange(4, 16) + 0.5) / 2 - 0.5, atol=1e-6)


def test_downsample_antialiased_ramp_and_constant():
    x = np.tile(np.arange(1.0, 33.0), (32, 1))
    y = imresize(x, scale=0.5)
    assert y.shape == (16, 16)
    # area-aligned: LR pixel j covers HR pixels 2j, 2j+1 -> value 2j + 1.5 (1-based ramp)
    np.testing.assert_allclose(y[5, 3:13], 2 * np.arange(3, 13) + 1.5, atol=1e-5)
    np.testing.assert_allclose(imresize(np.full((20, 12), 3.0), scale=0.25), 3.0, atol=1e-6)


def test_antialias_kernel_width():
    w, idx = contributions(32, 8, 0.25)
    assert w.shape[1] >= 16  # width 4/s = 16 taps when shrinking by 4
    np.testing.assert_allclose(w.sum(1), 1.0)


def test_torch_bicubic_interior_equals_a075_without_antialias():
    x = torch.rand(1, 2, 16, 16, dtype=torch.float64)
    ref = F.interpolate(x, scale_factor=4, mode="bicubic", align_corners=False)
    ours = imresize(x, scale=4, a=-0.75, antialias=False)
    # torch clamps indices at the border, MATLAB mirrors: compare away from the edges
    torch.testing.assert_close(ours[..., 8:-8, 8:-8], ref[..., 8:-8, 8:-8])


def test_numpy_and_torch_give_the_same():
    x = np.random.default_rng(0).random((3, 9, 11)).astype(np.float32)
    a = imresize(x, scale=3)
    b = imresize(torch.from_numpy(x), scale=3).numpy()
    np.testing.assert_array_equal(a, b)
    assert a.shape == (3, 27, 33) and a.dtype == np.float32
