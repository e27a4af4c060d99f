"""Shared layers: weight-normed convolutions, residual units, sub-pixel upsamplers."""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import weight_norm


def wn_conv2d(cin: int, cout: int, k: int = 3, bias: bool = True, stride: int = 1) -> nn.Module:
    """Weight-normed 2-D convolution with "same" padding."""
    return weight_norm(nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=bias))


def wn_conv3d(cin: int, cout: int, k: tuple[int, int, int]) -> nn.Module:
    return weight_norm(nn.Conv3d(cin, cout, k, padding=tuple(v // 2 for v in k)))


class ResBlock(nn.Module):
    """``x + conv(ReLU(conv(x)))`` with weight-normed 3×3 convs (optional BN after each conv,
    reproducing the official DualSR code's accidental BatchNorm)."""

    def __init__(self, n: int, bn: bool = False):
        super().__init__()
        layers = [wn_conv2d(n, n)]
        if bn:
            layers.append(nn.BatchNorm2d(n))
        layers += [nn.ReLU(inplace=True), wn_conv2d(n, n)]
        if bn:
            layers.append(nn.BatchNorm2d(n))
        self.body = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.body(x)

    def make_identity(self) -> None:
        """Zero the last convolution (its weight-norm magnitude and bias): the block then passes
        its input through unchanged, and training grows it from there (a network deepened this
        way computes what the shallower one did)."""
        last = [m for m in self.body if isinstance(m, nn.Conv2d)][-1]
        last.parametrizations.weight.original0.data.zero_()
        last.bias.data.zero_()


def res_body(n: int, blocks: int, bn: bool = False) -> nn.Sequential:
    return nn.Sequential(*[ResBlock(n, bn) for _ in range(blocks)])


def upsampler_factors(scale: int) -> list[int]:
    """The sub-pixel steps of ×``scale``: 3 once for a scale divisible by 3, factors of 2, then any
    other prime (5, 7, …) as one step; e.g. 4 → [2, 2], 6 → [3, 2], 12 → [3, 2, 2], 5 → [5]."""
    if scale < 2:
        raise ValueError(f"the sub-pixel upsampler needs a scale >= 2, not {scale}")
    out, s = [], int(scale)
    if s % 3 == 0:
        out.append(3)
        s //= 3
    while s % 2 == 0:
        out.append(2)
        s //= 2
    p = 3
    while s > 1:
        while s % p == 0:
            out.append(p)
            s //= p
        p += 2
    return out


class Upsampler(nn.Sequential):
    """Sub-pixel upsampling, one [conv n→f²n, PixelShuffle(f)] per factor f of
    :func:`upsampler_factors` (2, 4, 8: repeated ×2 steps; 3: one ×3 step, as the published
    networks; 6: ×3 then ×2; any other integer likewise). No activation."""

    def __init__(self, scale: int, n: int):
        layers = []
        for f in upsampler_factors(scale):
            layers += [wn_conv2d(n, f * f * n), nn.PixelShuffle(f)]
        super().__init__(*layers)


def fuse_weight_norm(model: nn.Module) -> nn.Module:
    """Fold weight-norm parametrizations into plain weights (faster inference)."""
    for m in model.modules():
        if parametrize.is_parametrized(m, "weight"):
            parametrize.remove_parametrizations(m, "weight", leave_parametrized=True)
    return model


class Unit(nn.Module):
    """``x + conv3×3(ReLU(conv3×3(x)))``, weight-normed."""

    def __init__(self, n: int = 64):
        super().__init__()
        self.c1, self.c2 = wn_conv2d(n, n), wn_conv2d(n, n)

    def forward(self, x):
        return x + self.c2(F.relu(self.c1(x)))
