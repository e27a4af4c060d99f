"""Quality metrics with the definitions the papers use (design.md §9).

All functions take two arrays ``(bands, rows, cols)`` on the same scale (e.g. [0, 1] after
normalisation): the estimate first, the reference second.

* PSNR: one MSE over the whole cube, ``peak`` = data range (1.0 after normalisation).
* SSIM: per band, Gaussian 11×11 window, σ = 1.5, K1 = 0.01, K2 = 0.03, ``valid`` filtering,
  mean of the map, then mean over bands.
* SAM: mean over pixels of the spectral angle, in degrees.
* ERGAS: ``(100 / s) · sqrt(mean_b (RMSE_b / μ_b)²)``, μ_b = mean of reference band b.
* RMSE: global.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

EPS = 2.220446049250313e-16


def _pair(x, y):
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"shapes differ: {x.shape} vs {y.shape}")
    if x.ndim == 2:
        x, y = x[None], y[None]
    return x, y


def rmse(x, y) -> float:
    x, y = _pair(x, y)
    return float(np.sqrt(np.mean((x - y) ** 2)))


def psnr(x, y, peak: float = 1.0) -> float:
    """PSNR in dB from one MSE over the whole cube."""
    x, y = _pair(x, y)
    mse = np.mean((x - y) ** 2)
    return float("inf") if mse == 0 else float(10.0 * np.log10(peak * peak / mse))


def psnr_per_band(x, y, peak: float = 1.0) -> np.ndarray:
    x, y = _pair(x, y)
    mse = np.mean((x - y) ** 2, axis=(1, 2))
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(peak * peak / mse)


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    ax = np.arange(size) - (size - 1) / 2.0
    g = np.exp(-(ax ** 2) / (2 * sigma * sigma))
    w = np.outer(g, g)
    return w / w.sum()


def ssim_per_band(x, y, peak: float = 1.0, size: int = 11, sigma: float = 1.5,
                  k1: float = 0.01, k2: float = 0.03) -> np.ndarray:
    """SSIM of each band (Gaussian window, 'valid' filtering)."""
    x, y = _pair(x, y)
    if min(x.shape[1:]) < size:
        raise ValueError(f"SSIM needs images of at least {size}×{size} pixels")
    win = _gaussian_window(size, sigma)
    c1, c2 = (k1 * peak) ** 2, (k2 * peak) ** 2
    r = size // 2
    out = []
    for a, b in zip(x, y):
        def f(img):
            return ndimage.correlate(img, win, mode="constant")[r:img.shape[0] - r, r:img.shape[1] - r]
        mu_a, mu_b = f(a), f(b)
        saa = f(a * a) - mu_a ** 2
        sbb = f(b * b) - mu_b ** 2
        sab = f(a * b) - mu_a * mu_b
        m = ((2 * mu_a * mu_b + c1) * (2 * sab + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (saa + sbb + c2))
        out.append(m.mean())
    return np.asarray(out)


def ssim(x, y, peak: float = 1.0) -> float:
    return float(np.mean(ssim_per_band(x, y, peak)))


def sam_map(x, y) -> np.ndarray:
    """Spectral angle per pixel in degrees."""
    x, y = _pair(x, y)
    dot = np.sum(x * y, axis=0)
    nx = np.sqrt(np.sum(x * x, axis=0))
    ny = np.sqrt(np.sum(y * y, axis=0))
    cos = (dot + EPS) / ((nx + EPS) * (ny + EPS))
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def sam_degrees_torch(a, b):
    """:func:`sam_map` on torch tensors: per-pixel spectral angle in degrees over the band axis
    (-3) of two cubes or batches (float64 sums, float32 result, on their device)."""
    import torch

    dot = (a * b).sum(-3, dtype=torch.float64)
    na = a.double().pow(2).sum(-3).sqrt()
    nb = b.double().pow(2).sum(-3).sqrt()
    cos = ((dot + EPS) / ((na + EPS) * (nb + EPS))).clamp(-1.0, 1.0)
    return torch.rad2deg(torch.acos(cos)).float()


def sam(x, y) -> float:
    """Mean spectral angle in degrees."""
    return float(np.mean(sam_map(x, y)))


def ergas(x, y, scale: float) -> float:
    """ERGAS with the 100/s convention (lower is better)."""
    x, y = _pair(x, y)
    rmse_b = np.sqrt(np.mean((x - y) ** 2, axis=(1, 2)))
    mu_b = np.mean(y, axis=(1, 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(mu_b != 0, rmse_b / mu_b, 0.0)
    return float(100.0 / scale * np.sqrt(np.mean(ratio ** 2)))


def all_metrics(x, y, scale: float, peak: float = 1.0) -> dict:
    """PSNR, SSIM, SAM, ERGAS and RMSE in one dict."""
    return {
        "psnr": psnr(x, y, peak),
        "ssim": ssim(x, y, peak),
        "sam": sam(x, y),
        "ergas": ergas(x, y, scale),
        "rmse": rmse(x, y),
    }
