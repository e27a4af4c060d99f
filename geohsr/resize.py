"""Area-aligned separable resampling with MATLAB ``imresize`` semantics.

A resize along one axis is a sparse linear map: output sample ``j`` (0-based) sits at input
coordinate ``u = (j + 0.5) / s - 0.5`` (pixel centres, area-aligned, never ``align_corners``),
and takes a weighted sum of the input samples whose distance to ``u`` lies inside the kernel
support. When shrinking with anti-aliasing the kernel is stretched by ``1/s`` (MATLAB's
default). Out-of-range indices are mirrored (half-sample symmetric, as MATLAB does).

The weights are computed once per (length, scale) in float64 and applied with gathers in
torch, so the cost is ``O(taps · N)`` per axis whatever the scale.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch


def cubic(x: np.ndarray, a: float = -0.5) -> np.ndarray:
    """Keys' cubic convolution kernel; ``a=-0.5`` is MATLAB/PIL bicubic, ``-0.75`` torch's."""
    ax = np.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    inner = (a + 2.0) * ax3 - (a + 3.0) * ax2 + 1.0
    outer = a * ax3 - 5.0 * a * ax2 + 8.0 * a * ax - 4.0 * a
    return np.where(ax <= 1.0, inner, np.where(ax <= 2.0, outer, 0.0))


def output_length(in_length: int, scale: float) -> int:
    """MATLAB's output size for a scale factor: ``ceil(in · scale)``."""
    return int(math.ceil(in_length * scale - 1e-9))


@functools.lru_cache(maxsize=256)
def contributions(
    in_length: int,
    out_length: int,
    scale: float,
    a: float = -0.5,
    antialias: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Weights ``(out, taps)`` and input indices ``(out, taps)`` of a 1-D cubic resize.

    Mirrors MATLAB ``imresize``'s ``contributions``: kernel width 4, stretched by ``1/scale``
    when shrinking with anti-aliasing; rows normalised to sum 1; symmetric boundary.
    """
    if in_length < 1 or out_length < 1:
        raise ValueError("resize lengths must be positive")
    width = 4.0
    if scale < 1 and antialias:
        kernel = lambda x: scale * cubic(scale * x, a)  # noqa: E731
        width = width / scale
    else:
        kernel = lambda x: cubic(x, a)  # noqa: E731
    j = np.arange(out_length, dtype=np.float64)
    u = (j + 0.5) / scale - 0.5
    left = np.floor(u - width / 2.0)
    taps = int(math.ceil(width)) + 2
    idx = left[:, None] + np.arange(taps)[None, :]
    w = kernel(u[:, None] - idx)
    w = w / w.sum(axis=1, keepdims=True)
    # symmetric (mirror, edge sample repeated) boundary, like MATLAB's aux = [1:n, n:-1:1]
    period = 2 * in_length
    m = np.mod(idx, period)
    idx = np.where(m < in_length, m, period - 1 - m).astype(np.int64)
    keep = np.any(w != 0, axis=0)
    return w[:, keep], idx[:, keep]


def _taps(x, dim, it, wt, shape):
    out = x.index_select(dim, it[:, 0]).mul_(wt[:, 0].reshape(shape))
    buf = torch.empty_like(out)
    for p in range(1, wt.shape[1]):  # one tap at a time
        torch.index_select(x, dim, it[:, p], out=buf)
        out.addcmul_(buf, wt[:, p].reshape(shape))
    return out


def resize_axis(x: torch.Tensor, dim: int, out_length: int, scale: float,
                a: float = -0.5, antialias: bool = True) -> torch.Tensor:
    """Resize tensor ``x`` along ``dim`` to ``out_length`` samples."""
    dim = dim % x.ndim
    w, idx = contributions(x.shape[dim], out_length, float(scale), a, antialias)
    wt = torch.as_tensor(w, dtype=x.dtype, device=x.device)
    it = torch.as_tensor(idx, device=x.device)
    shape = [1] * x.ndim
    shape[dim] = out_length
    if dim == 0 or x.shape[0] == 1 and dim == 1 or x.ndim < 3:
        return _taps(x, dim, it, wt, shape)
    # one slab of the leading axes at a time: the tap buffer is a fraction of the output
    lead = 0 if x.shape[0] > 1 else 1
    out_shape = list(x.shape)
    out_shape[dim] = out_length
    out = torch.empty(out_shape, dtype=x.dtype, device=x.device)
    step = max(1, -(-x.shape[lead] // 8))
    for k in range(0, x.shape[lead], step):
        sl = [slice(None)] * x.ndim
        sl[lead] = slice(k, k + step)
        out[tuple(sl)] = _taps(x[tuple(sl)], dim, it, wt, shape)
    return out


def imresize(x, scale: float | None = None, size: tuple[int, int] | None = None,
             a: float = -0.5, antialias: bool = True):
    """Cubic resize of the last two axes of ``x`` (numpy array or torch tensor).

    Give either ``scale`` (output = ``ceil(in · scale)``, MATLAB) or ``size`` (rows, cols);
    with ``size`` the per-axis scale is ``out / in``. Returns the same type as ``x``
    (numpy results in float32 unless ``x`` is float64).
    """
    is_numpy = isinstance(x, np.ndarray)
    t = torch.from_numpy(np.ascontiguousarray(x)) if is_numpy else x
    if not torch.is_floating_point(t):
        t = t.to(torch.float32)
    h, w = t.shape[-2], t.shape[-1]
    if size is None:
        if scale is None:
            raise ValueError("give scale or size")
        size = (output_length(h, scale), output_length(w, scale))
        sy = sx = float(scale)
    else:
        sy, sx = size[0] / h, size[1] / w
    # MATLAB resizes the dimension with the smaller scale first
    order = [(-2, size[0], sy), (-1, size[1], sx)]
    if sx < sy:
        order.reverse()
    for dim, n, s in order:
        t = resize_axis(t, dim, n, s, a, antialias)
    return t.numpy() if is_numpy else t
