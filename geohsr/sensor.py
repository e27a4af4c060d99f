"""The sensor model geohsr assumes when it reduces an HR image to the LR grid (classical fusion,
guide co-registration): a Gaussian MTF with a stated gain at the LR Nyquist frequency, then
sampling at the LR pixel centres.

The Gaussian's response at ``f = 1/(2s)`` cycles per HR pixel is ``exp(−2π²σ²f²) = G``, so its
standard deviation is ``σ = s·√(−2 ln G)/π`` HR pixels; ``G = 0.3`` (``GAIN_AT_NYQUIST``) is the
generic value of the pansharpening literature (≈ 0.99 LR px of blur at any scale).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .resize import imresize

GAIN_AT_NYQUIST = 0.3


def mtf_sigma(scale: int, gain: float = GAIN_AT_NYQUIST) -> float:
    """HR-pixel standard deviation of the Gaussian MTF with ``gain`` at the LR Nyquist frequency."""
    return scale * math.sqrt(-2.0 * math.log(gain)) / math.pi


def _gauss_kernel(sigma: float) -> torch.Tensor:
    r = max(1, int(math.ceil(3.0 * sigma)))
    x = torch.arange(-r, r + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return (k / k.sum()).float()


def blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of ``(B, C, H, W)`` with mirrored edges, as a weighted sum of shifted
    views (a one-channel ``conv2d`` is an order of magnitude slower on the CPU)."""
    k = _gauss_kernel(sigma).to(x.device, x.dtype)
    r = k.numel() // 2
    b, c, h, w = x.shape
    y = x.reshape(b * c, 1, h, w)
    y = F.pad(y, (r, r, 0, 0), mode="reflect" if w > r else "replicate")
    y = sum(k[i] * y[..., i:i + w] for i in range(k.numel()))
    y = F.pad(y, (0, 0, r, r), mode="reflect" if h > r else "replicate")
    y = sum(k[i] * y[..., i:i + h, :] for i in range(k.numel()))
    return y.reshape(b, c, h, w)


def guide_low(g: torch.Tensor, scale: int) -> torch.Tensor:
    """``G↓``: the guide through the sensor MTF, sampled at the LR pixel centres."""
    return imresize(blur(g, mtf_sigma(scale)), scale=1.0 / scale, a=-0.5, antialias=False)
