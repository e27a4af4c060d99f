"""Quality metrics with the definitions the papers use (listed below).

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


# -- full resolution, no reference: QNR (Alparone et al., PE&RS 2008) ----------------------------
QNR_BLOCK = 32  # HR pixels: the Q-index block size of the pansharpening toolboxes


def qnr_block(scale: int, block: int = QNR_BLOCK) -> int:
    """LR pixels of the Q-index blocks at ``scale`` (``scale`` times that in HR pixels, the same ground)."""
    return max(4, int(round(block / scale)))


def _blocks(x: np.ndarray, b: int) -> np.ndarray:
    """``(n, H, W)`` → ``(n, blocks, b·b)``: non-overlapping ``b × b`` blocks (the remainder dropped)."""
    n, h, w = x.shape
    hb, wb = h // b, w // b
    if hb == 0 or wb == 0:
        raise ValueError(f"images of {w}×{h} px hold no {b}×{b} block")
    x = x[:, :hb * b, :wb * b].reshape(n, hb, b, wb, b).transpose(0, 1, 3, 2, 4)
    return x.reshape(n, hb * wb, b * b)


def q_matrix(x, y=None, block: int = QNR_BLOCK) -> np.ndarray:
    """Universal image quality index Q (Wang & Bovik 2002) of every band of ``x`` (n, H, W) with
    every band of ``y`` (m, H, W; default ``x``), computed on non-overlapping ``block × block``
    blocks and averaged over the blocks: an ``(n, m)`` matrix. A block where both bands are
    constant and equal counts as 1, one where the denominator vanishes otherwise as 0."""
    bx = _blocks(np.asarray(x, dtype=np.float64), block)
    by = bx if y is None else _blocks(np.asarray(y, dtype=np.float64), block)
    mx, my = bx.mean(-1), by.mean(-1)  # (n, nb)
    cx, cy = bx - mx[..., None], by - my[..., None]
    vx, vy = (cx ** 2).mean(-1), (cy ** 2).mean(-1)
    cov = np.einsum("ikp,jkp->kij", cx, cy) / bx.shape[-1]  # (nb, n, m)
    mx, my, vx, vy = mx.T, my.T, vx.T, vy.T  # (nb, n)
    num = 4.0 * cov * mx[:, :, None] * my[:, None, :]
    den = (vx[:, :, None] + vy[:, None, :]) * (mx[:, :, None] ** 2 + my[:, None, :] ** 2)
    same = (vx[:, :, None] == 0) & (vy[:, None, :] == 0) & (mx[:, :, None] == my[:, None, :])
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(den > 0, num / den, np.where(same, 1.0, 0.0))
    return q.mean(0)


def qnr(fused, lr, pan, pan_low, scale: int, block: int = QNR_BLOCK) -> dict:
    """QNR = (1 − D_λ)(1 − D_S) with α = β = 1 and p = q = 1 (Alparone et al. 2008).

    ``fused`` (N, s·h, s·w), ``lr`` (N, h, w): the same N bands; ``pan`` (s·h, s·w) the guide's
    intensity, ``pan_low`` (h, w) the guide reduced to the LR grid. Q on blocks of
    ``b = round(block / s)`` LR px and ``b·s`` HR px, so both cover the same ground.
    D_λ = mean over band pairs l ≠ r of |Q(F_l, F_r) − Q(M_l, M_r)|;
    D_S = mean over bands l of |Q(F_l, P) − Q(M_l, P_LR)|."""
    b = qnr_block(scale, block)
    hb = b * scale
    fused, lr = np.asarray(fused, dtype=np.float64), np.asarray(lr, dtype=np.float64)
    n = fused.shape[0]
    if n < 2:
        raise ValueError("D_λ needs at least two bands")
    qf, qm = q_matrix(fused, block=hb), q_matrix(lr, block=b)
    off = ~np.eye(n, dtype=bool)
    d_lambda = float(np.mean(np.abs(qf - qm)[off]))
    qfp = q_matrix(fused, np.asarray(pan, dtype=np.float64)[None], block=hb)[:, 0]
    qmp = q_matrix(lr, np.asarray(pan_low, dtype=np.float64)[None], block=b)[:, 0]
    d_s = float(np.mean(np.abs(qfp - qmp)))
    return {"d_lambda": d_lambda, "d_s": d_s, "qnr": (1.0 - d_lambda) * (1.0 - d_s)}
