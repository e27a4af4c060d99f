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


GAIN_AT_NYQUIST = 0.3


def mtf_sigma(scale: int, gain: float = GAIN_AT_NYQUIST) -> float:
    """HR-pixel standard deviation of the Gaussian MTF with ``gain`` at the LR Nyquist frequency."""
    return scale * math.sqrt(-2.0 * math.log(gain)) / math.pi


def _gauss_kernel(sigma: float) -> torch.Tensor:
    r = max(1, int(math.ceil(3.0 * sigma)))
    x = torch.arange(-r, r + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return (k / k.sum()).float()


def _blur_axis(y: torch.Tensor, k: torch.Tensor, dim: int) -> torch.Tensor:
    r, n = k.numel() // 2, y.shape[dim]
    pad = (r, r, 0, 0) if dim == -1 else (0, 0, r, r)
    y = F.pad(y, pad, mode="reflect" if n > r else "replicate")
    return sum(k[i] * y.narrow(dim, i, n) for i in range(k.numel()))


def blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of ``(B, C, H, W)`` with mirrored edges, as a weighted sum of shifted
    views (a one-channel ``conv2d`` is an order of magnitude slower on the CPU)."""
    k = _gauss_kernel(sigma).to(x.device, x.dtype)
    b, c, h, w = x.shape
    y = _blur_axis(x.reshape(b * c, 1, h, w), k, -1)
    return _blur_axis(y, k, -2).reshape(b, c, h, w)


def guide_low(g: torch.Tensor, scale: int) -> torch.Tensor:
    """``G↓``: the guide through the sensor MTF, sampled at the LR pixel centres. Computed one axis
    at a time (blur, then sample, along rows, then along columns: the same linear operator, a
    quarter of the work on the second axis at ×4)."""
    from .resize import output_length, resize_axis

    k = _gauss_kernel(mtf_sigma(scale)).to(g.device, g.dtype)
    b, c, h, w = g.shape
    y = _blur_axis(g.reshape(b * c, 1, h, w), k, -2)
    y = resize_axis(y, -2, output_length(h, 1.0 / scale), 1.0 / scale, -0.5, False)
    y = _blur_axis(y, k, -1)
    y = resize_axis(y, -1, output_length(w, 1.0 / scale), 1.0 / scale, -0.5, False)
    return y.reshape(b, c, y.shape[-2], y.shape[-1])
