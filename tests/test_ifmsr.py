"""IFMSR network (methods.md §4): shapes, MCPA index, band order, swap-bug flag, size."""

import pytest
import torch

from geohsr.methods.ifmsr.net import IFMSR, MCPA, band_triplet, mcpa_index


def test_parameter_count_near_the_spec():
    n = sum(p.numel() for p in IFMSR(4).parameters())
    assert 1.6e6 < n < 1.85e6  # "with MCPA + RDE ≈ 1.73 M"


def test_band_triplet():
    assert band_triplet(0, 5) == (1, 0, 2)
    assert band_triplet(2, 5) == (1, 2, 3)
    assert band_triplet(4, 5) == (3, 4, 2)


def test_mcpa_index_finds_the_duplicate_patch():
    torch.manual_seed(0)
    rgb = torch.rand(1, 3, 12, 12)
    rgb[..., 6:9, 9:12] = rgb[..., 0:3, 0:3]  # patch 0 repeated at patch (2, 3)
    idx = mcpa_index(rgb, 3)
    assert idx.shape == (1, 16, 3)
    assert idx[0, 0, 0].item() == 2 * 4 + 3 and idx[0, 11, 0].item() == 0
    assert not (idx[0] == torch.arange(16)[:, None]).any()  # never the patch itself


def test_mcpa_pads_odd_sizes():
    m = MCPA(4)
    x = torch.rand(1, 4, 10, 7)
    idx = mcpa_index(torch.rand(1, 3, 10, 7), 3)
    assert m(x, idx, 3).shape == x.shape


@pytest.mark.parametrize("swap_bug", [False, True])
def test_shapes_and_bug_flag(swap_bug):
    torch.manual_seed(0)
    m = IFMSR(2, n=8, modules=1, swap_bug=swap_bug).eval()
    lr, rgb = torch.rand(1, 4, 5, 6), torch.rand(1, 3, 10, 12)
    with torch.inference_mode():
        assert m.forward_cube(lr, rgb).shape == (1, 4, 10, 12)


def test_swap_bug_changes_the_hsi_stream():
    torch.manual_seed(0)
    a = IFMSR(2, n=8, modules=1).eval()
    b = IFMSR(2, n=8, modules=1, swap_bug=True).eval()
    b.load_state_dict(a.state_dict())
    lr, rgb = torch.rand(1, 3, 5, 6), torch.rand(1, 3, 10, 12)
    with torch.inference_mode():
        assert not torch.allclose(a(lr, rgb), b(lr, rgb))
