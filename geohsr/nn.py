"""Shared layers: weight-normed convolutions, residual units, sub-pixel upsamplers."""

from __future__ import annotations

import math

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


def res_body(n: int, blocks: int, bn: bool = False) -> nn.Sequential:
    return nn.Sequential(*[ResBlock(n, bn) for _ in range(blocks)])


class Upsampler(nn.Sequential):
    """Sub-pixel upsampling: n × [conv n→4n, PixelShuffle(2)] for s = 2^n, or conv n→9n +
    PixelShuffle(3) for s = 3. No activation."""

    def __init__(self, scale: int, n: int):
        layers = []
        if scale == 3:
            layers += [wn_conv2d(n, 9 * n), nn.PixelShuffle(3)]
        elif scale >= 2 and (scale & (scale - 1)) == 0:
            for _ in range(int(math.log2(scale))):
                layers += [wn_conv2d(n, 4 * n), nn.PixelShuffle(2)]
        else:
            raise ValueError(f"sub-pixel upsampler supports scales 2, 3, 4, 8, … not {scale}")
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
