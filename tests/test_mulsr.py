"""MulSR network (methods.md §3.1): shapes, band order, parameter count, DSCA recurrence."""

import pytest
import torch

from geohsr.methods.mulsr.net import DSCA, MulSR, band_triplet


def test_parameter_count_matches_the_spec():
    n = sum(p.numel() for p in MulSR(8).parameters())
    assert abs(n - 4.64e6) < 0.02e6  # "≈ 4.64 M, independent of s"
    assert sum(p.numel() for p in MulSR(4).parameters()) == n


def test_band_triplet_order():
    assert band_triplet(0, 10) == (1, 2, 0)
    assert band_triplet(5, 10) == (4, 6, 5)
    assert band_triplet(9, 10) == (8, 7, 9)
    assert band_triplet(0, 1) == (0, 0, 0)


@pytest.mark.parametrize("scale", [2, 4])
def test_shapes(scale):
    m = MulSR(scale, n=8, n_sge=1).eval()
    lr = torch.rand(1, 4, 6, 5)
    rgb = torch.rand(1, 3, 6 * scale, 5 * scale)
    with torch.inference_mode():
        assert m.forward_cube(lr, rgb).shape == (1, 4, 6 * scale, 5 * scale)
    with pytest.raises(ValueError):
        MulSR(3)


def test_dsca_passes_context_across_the_whole_map():
    torch.manual_seed(0)
    d = DSCA(4).eval()
    x = torch.zeros(1, 4, 9, 9)
    x2 = x.clone()
    x2[..., 0, 0] = 1.0
    with torch.inference_mode():
        diff = (d(x2) - d(x)).abs().sum(1)[0]
    assert (diff > 0).all()  # row/column recurrences reach every pixel
