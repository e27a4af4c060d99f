"""Training-free fusion of an LR hyperspectral cube with an HR guide (pan, RGB(N), multispectral).

Both methods share one sensor model and one regression, fitted once per scene at low resolution
(so every block of a scene uses the same coefficients and tiling is exact):

* **sensor MTF**: a Gaussian whose response at the LR Nyquist frequency is ``GAIN_AT_NYQUIST``
  (0.3, the generic value of the pansharpening literature); its standard deviation in HR pixels
  is ``σ = s·√(−2 ln G) / π``;
* **the guide at low resolution**: the guide blurred by that MTF and sampled at the LR pixel
  centres (area-aligned cubic, :func:`geohsr.resize.imresize`), ``G↓``; back on the HR grid by
  bicubic interpolation, ``G↓↑`` (the generalised Laplacian pyramid's low-pass);
* **MTF-GLP with regression-based injection** (hypersharpening, Selva et al. 2015): every HS band
  ``k`` is regressed on the guide bands at LR, ``HS_k ≈ Σ_j a_kj G↓_j + c_k``, and gets
  ``Σ_j a_kj (G_j − G↓↑_j)`` added to its bicubic upsampling;
* **GSA** (Gram–Schmidt adaptive, Aiazzi et al. 2007): the guide's intensity ``P`` (the mean of
  its bands) is regressed on the HS bands at LR, ``P↓ ≈ Σ_k w_k HS_k + b``, giving the synthetic
  intensity ``I``; ``P`` is matched to ``I``'s mean and deviation, and band ``k`` gets
  ``g_k (P_eq − I)`` with ``g_k = cov(HS_k, I) / var(I)`` at LR.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ...resize import imresize

from ...sensor import GAIN_AT_NYQUIST, guide_low, mtf_sigma  # noqa: F401  (the shared sensor model)

FIT_WINDOW = 128  # LR pixels a side of each window the regression samples
FIT_WINDOWS = 16  # at most this many windows, on a regular grid over the scene
FIT_MARGIN = 4  # LR pixels read around each window so the blur sees real data


def _up(x: torch.Tensor, scale: int) -> torch.Tensor:
    return imresize(x, scale=scale, a=-0.5, antialias=False)


def glp(x: torch.Tensor, g: torch.Tensor, coef: torch.Tensor, scale: int) -> torch.Tensor:
    """MTF-GLP hypersharpening of a batch: ``x`` (B, L, h, w), ``g`` (B, G, s·h, s·w),
    ``coef`` (B, L, G + 1) (the last column, the intercept, cancels in the detail)."""
    detail = g - _up(guide_low(g, scale), scale)
    a = coef[:, :, :-1]
    return _up(x, scale) + torch.einsum("blg,bghw->blhw", a, detail)


def gsa(x: torch.Tensor, g: torch.Tensor, coef: torch.Tensor, scale: int) -> torch.Tensor:
    """GSA of a batch: ``coef`` (B, L + 1, 3): rows ``k < L`` hold (w_k, g_k, 0); the last row
    (b, gain, offset) of the intensity regression and of the matching ``P_eq = gain·P + offset``."""
    up = _up(x, scale)
    w, gk = coef[:, :-1, 0], coef[:, :-1, 1]
    b, gain, off = coef[:, -1, 0], coef[:, -1, 1], coef[:, -1, 2]
    intensity = torch.einsum("bl,blhw->bhw", w, up) + b[:, None, None]
    p = g.mean(1)
    p_eq = gain[:, None, None] * p + off[:, None, None]
    return up + gk[:, :, None, None] * (p_eq - intensity)[:, None]


# -- the scene-wide fit ------------------------------------------------------------------------
def _windows(h: int, w: int) -> list[tuple[int, int, int, int]]:
    n = max(1, int(math.ceil(math.sqrt(FIT_WINDOWS))))
    ys = np.unique(np.linspace(0, max(0, h - FIT_WINDOW), n).astype(int))
    xs = np.unique(np.linspace(0, max(0, w - FIT_WINDOW), n).astype(int))
    return [(int(y), int(x), min(FIT_WINDOW, h - y), min(FIT_WINDOW, w - x)) for y in ys for x in xs]


def lr_samples(plan) -> tuple[np.ndarray, np.ndarray]:
    """Valid LR pixels of the scene's (good) bands and of the guide at LR: ``(hs (L, n), g↓ (G, n))``."""
    from ...tiling import valid_mask

    cube, s, guide = plan.cube, plan.scale, plan.guide
    bands = plan.use_bands if plan.use_bands is not None else list(range(plan.bands))
    H, W = cube.sizes["y"], cube.sizes["x"]
    hs_all, g_all = [], []
    for y0, x0, h, w in _windows(H, W):
        t, l = min(FIT_MARGIN, y0), min(FIT_MARGIN, x0)
        bt, r = min(FIT_MARGIN, H - y0 - h), min(FIT_MARGIN, W - x0 - w)
        raw = np.asarray(cube.isel(y=slice(y0 - t, y0 + h + bt), x=slice(x0 - l, x0 + w + r)).values)[bands]
        ok = valid_mask(raw, plan.nodata).all(0)
        gw = guide.window((y0 - t) * s, (x0 - l) * s, raw.shape[1] * s, raw.shape[2] * s, fill=False)
        gfin = np.isfinite(gw).all(0)
        gl = guide_low(torch.from_numpy(np.nan_to_num(gw))[None], s)[0].numpy()
        gok = imresize(torch.from_numpy(gfin[None, None].astype(np.float32)), scale=1.0 / s,
                       antialias=True)[0, 0].numpy() > 0.999
        sl = (slice(t, t + h), slice(l, l + w))
        m = (ok & gok)[sl]
        hs_all.append(raw[(slice(None),) + sl][:, m].astype(np.float64))
        g_all.append(gl[(slice(None),) + sl][:, m].astype(np.float64))
    hs, g = np.concatenate(hs_all, 1), np.concatenate(g_all, 1)
    return hs, g


def _lstsq(a: np.ndarray, b: np.ndarray, ridge: float = 1e-6) -> np.ndarray:
    """Least squares ``a @ x ≈ b`` with a tiny ridge relative to ``a``'s scale (no intercept
    column penalised differently: the data are centred first)."""
    ata = a.T @ a
    ata[np.diag_indices_from(ata)] += ridge * max(float(np.trace(ata)) / len(ata), 1e-30)
    return np.linalg.solve(ata, a.T @ b)


def _check(n: int, name: str) -> None:
    from ...errors import InputError

    if n < 16:
        raise InputError(f"{name}: only {n} LR pixels where both the scene and the guide are valid; "
                         "the guide must overlap the scene's valid area")


def fit_glp(plan) -> np.ndarray:
    """(L, G + 1): per band the guide-band coefficients and the intercept, in data units."""
    hs, g = lr_samples(plan)
    _check(hs.shape[1], "mtf-glp")
    gm, hm = g.mean(1, keepdims=True), hs.mean(1, keepdims=True)
    a = _lstsq((g - gm).T, (hs - hm).T).T  # (L, G)
    c = hm[:, 0] - a @ gm[:, 0]
    return np.concatenate([a, c[:, None]], 1).astype(np.float32)


def fit_gsa(plan) -> np.ndarray:
    """(L + 1, 3): per band (w_k, g_k, 0); then (b, gain, offset)."""
    hs, g = lr_samples(plan)
    _check(hs.shape[1], "gsa")
    p = g.mean(0)
    hm, pm = hs.mean(1), p.mean()
    w = _lstsq((hs - hm[:, None]).T, p - pm)  # (L,)
    b = pm - w @ hm
    inten = w @ hs + b
    iv = max(float(inten.var()), 1e-30)
    gk = ((hs - hm[:, None]) @ (inten - inten.mean())) / (hs.shape[1] * iv)
    gain = math.sqrt(iv / max(float(p.var()), 1e-30))
    off = float(inten.mean()) - gain * float(pm)
    out = np.zeros((len(hm) + 1, 3))
    out[:-1, 0], out[:-1, 1] = w, gk
    out[-1] = (b, gain, off)
    return out.astype(np.float32)
