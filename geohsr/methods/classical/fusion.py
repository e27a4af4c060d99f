"""Training-free fusion of an LR hyperspectral cube with an HR guide (pan, RGB(N), multispectral).

Both methods share one sensor model and one regression, fitted once per scene at low resolution
(so every block of a scene uses the same coefficients and tiling is exact):

* **sensor MTF**: a Gaussian whose response at the LR Nyquist frequency is the scene's gain
  ``G`` — measured against the guide by default (:func:`geohsr.coregister.measure_mtf`), given by
  the user, or ``GAIN_AT_NYQUIST`` (0.3, the generic value of the pansharpening literature) —;
  its standard deviation in HR pixels is ``σ = s·√(−2 ln G) / π``;
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


def _gain(gain) -> float:
    """A scene's MTF gain as a number: the runners get it as a ``(B,)`` tensor (one scene: all equal)."""
    if gain is None:
        return GAIN_AT_NYQUIST
    return float(gain.reshape(-1)[0]) if isinstance(gain, torch.Tensor) else float(gain)


def glp_detail(up: torch.Tensor, g: torch.Tensor, coef: torch.Tensor, scale: int, gain=None) -> torch.Tensor:
    """The detail MTF-GLP adds to the bicubic upsampling ``up`` (B, L, H, W): per band
    ``Σ_j a_kj (G_j − G↓↑_j)``, ``coef`` (B, L, G + 1) (the intercept cancels); ``G↓`` through the
    Gaussian MTF of ``gain`` at the LR Nyquist (default ``GAIN_AT_NYQUIST``)."""
    detail = g - _up(guide_low(g, scale, _gain(gain)), scale)
    b, l, h, w = up.shape
    return torch.bmm(coef[:, :, :-1].to(up.dtype), detail.reshape(b, -1, h * w)).view(b, l, h, w)


def glp(x: torch.Tensor, g: torch.Tensor, coef: torch.Tensor, scale: int, gain=None) -> torch.Tensor:
    """MTF-GLP hypersharpening of a batch: ``x`` (B, L, h, w), ``g`` (B, G, s·h, s·w),
    ``coef`` (B, L, G + 1) (the last column, the intercept, cancels in the detail); ``gain``: the
    scene's MTF gain (:func:`glp_detail`)."""
    detail = g - _up(guide_low(g, scale, _gain(gain)), scale)
    up = _up(x, scale)
    b, l, h, w = up.shape
    up.view(b, l, h * w).baddbmm_(coef[:, :, :-1].to(up.dtype), detail.reshape(b, -1, h * w))
    return up


def _gsa_terms(up, g, coef):
    coef = coef.to(up.dtype)
    w, gk = coef[:, :-1, 0], coef[:, :-1, 1]
    b, gain, off = coef[:, -1, 0], coef[:, -1, 1], coef[:, -1, 2]
    intensity = torch.einsum("bl,blhw->bhw", w, up) + b[:, None, None]
    p_eq = gain[:, None, None] * g.mean(1) + off[:, None, None]
    return gk[:, :, None, None], (p_eq - intensity)[:, None]


def gsa_detail(up: torch.Tensor, g: torch.Tensor, coef: torch.Tensor) -> torch.Tensor:
    """The detail GSA adds to the bicubic upsampling ``up``: ``g_k (P_eq − I)``."""
    gk, d = _gsa_terms(up, g, coef)
    return gk * d


def gsa(x: torch.Tensor, g: torch.Tensor, coef: torch.Tensor, scale: int, gain=None) -> torch.Tensor:
    """GSA of a batch: ``coef`` (B, L + 1, 3): rows ``k < L`` hold (w_k, g_k, 0); the last row
    (b, gain, offset) of the intensity regression and of the matching ``P_eq = gain·P + offset``.
    (The MTF ``gain`` enters only the fit, at low resolution.)"""
    up = _up(x, scale)
    gk, d = _gsa_terms(up, g, coef)
    return up.addcmul_(gk, d)


# -- the scene-wide fit ------------------------------------------------------------------------
def _windows(h: int, w: int) -> list[tuple[int, int, int, int]]:
    """At most ``FIT_WINDOWS`` windows on a regular grid, no more per axis than the scene holds
    side by side (a small scene is read once, not as overlapping copies)."""
    n = max(1, int(math.ceil(math.sqrt(FIT_WINDOWS))))
    ys = np.unique(np.linspace(0, max(0, h - FIT_WINDOW), min(n, -(-h // FIT_WINDOW))).astype(int))
    xs = np.unique(np.linspace(0, max(0, w - FIT_WINDOW), min(n, -(-w // FIT_WINDOW))).astype(int))
    return [(int(y), int(x), min(FIT_WINDOW, h - y), min(FIT_WINDOW, w - x)) for y in ys for x in xs]


def lr_windows(plan) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Windows of the scene's (good) bands and of the guide at LR (:func:`guide_low`), with the
    mask of pixels valid in both: ``[(hs (L, h, w), g↓ (G, h, w), valid (h, w))]``, float32."""
    from ...tiling import fill_invalid, valid_mask

    cube, s, guide = plan.cube, plan.scale, plan.guide
    bands = plan.use_bands if plan.use_bands is not None else list(range(plan.bands))
    H, W = cube.sizes["y"], cube.sizes["x"]
    gain = guide.mtf_gain
    out = []
    for y0, x0, h, w in _windows(H, W):
        t, l = min(FIT_MARGIN, y0), min(FIT_MARGIN, x0)
        bt, r = min(FIT_MARGIN, H - y0 - h), min(FIT_MARGIN, W - x0 - w)
        raw = np.asarray(cube.isel(y=slice(y0 - t, y0 + h + bt), x=slice(x0 - l, x0 + w + r)).values)[bands]
        valid = valid_mask(raw, plan.nodata)
        ok = valid.all(0)
        raw = fill_invalid(raw.astype(np.float32), valid)  # nodata never enters the reduced pass
        gw = guide.window((y0 - t) * s, (x0 - l) * s, raw.shape[1] * s, raw.shape[2] * s, fill=False)
        gfin = np.isfinite(gw).all(0)
        gl = guide_low(torch.from_numpy(np.nan_to_num(gw))[None], s, gain)[0].numpy()
        if gfin.all():
            gok = np.ones(gl.shape[1:], dtype=bool)
        else:  # LR pixels whose sensor footprint holds no guide hole
            gok = imresize(torch.from_numpy(gfin[None, None].astype(np.float32)), scale=1.0 / s,
                           antialias=True)[0, 0].numpy() > 0.999
        sl = (slice(None), slice(t, t + h), slice(l, l + w))
        out.append((raw[sl], gl[sl], (ok & gok)[sl[1:]]))
    return out


def lr_samples(windows) -> tuple[np.ndarray, np.ndarray]:
    """Valid LR pixels of :func:`lr_windows`: ``(hs (L, n), g↓ (G, n))``."""
    return (np.concatenate([hs[:, m] for hs, _, m in windows], 1).astype(np.float64),
            np.concatenate([g[:, m] for _, g, m in windows], 1).astype(np.float64))


GATE_MIN = 4  # the injection gain is measured on windows of at least this many reduced px a side
INFORM_NM = 150.0  # a guide band informs the HS bands whose centre lies within this of its own


def informing_bands(plan) -> np.ndarray | None:
    """``(L, G)`` bool: the guide bands near each HS band (centres within ``INFORM_NM``), from the
    wavelengths; None when the scene's or the guide's wavelengths are unknown."""
    gwl = np.asarray(plan.guide.wavelength, dtype=float)
    bands = plan.use_bands if plan.use_bands is not None else list(range(plan.bands))
    hwl = np.asarray(plan.cube.coords["wavelength"].values, dtype=float)[bands] \
        if "wavelength" in plan.cube.coords else np.full(len(bands), np.nan)
    if not (np.isfinite(gwl).all() and np.isfinite(hwl).all()):
        return None
    return np.abs(hwl[:, None] - gwl[None, :]) <= INFORM_NM


def reduced_detail_stats(windows, scale: int, detail_fn, gain: float = GAIN_AT_NYQUIST):
    """Wald's protocol on the fit windows: each LR window reduced by the scale through the sensor
    model (the Gaussian MTF of ``gain``) and fused with its guide↓; ``detail_fn(up, g)`` gives the
    detail the method adds to the bicubic upsampling ``up`` of the reduced window. Per HS band ``(⟨d, r⟩, ⟨d, d⟩, ⟨r, r⟩)`` with
    ``d`` that detail and ``r`` the true detail (window − ``up``) over the valid interior pixels,
    or None when no window has ``GATE_MIN``·s LR px a side."""
    dr = dd = rr = None
    for hs, g, m in windows:
        h, w = hs.shape[1] // scale * scale, hs.shape[2] // scale * scale
        if h < GATE_MIN * scale or w < GATE_MIN * scale:
            continue
        m_ = m[:h, :w].copy()
        e = scale  # the interior: reflected window edges do not count
        m_[:e], m_[-e:], m_[:, :e], m_[:, -e:] = False, False, False, False
        ref = torch.from_numpy(np.ascontiguousarray(hs[:, :h, :w], dtype=np.float32))[None]
        up = _up(guide_low(ref, scale, gain), scale)  # float32 throughout: the fast kernels
        d = detail_fn(up, torch.from_numpy(np.ascontiguousarray(g[:, :h, :w], dtype=np.float32))[None])
        keep = torch.from_numpy(np.flatnonzero(m_))
        d = d[0].reshape(d.shape[1], -1).index_select(1, keep).double()
        r = (ref - up)[0].reshape(ref.shape[1], -1).index_select(1, keep).double()
        parts = ((d * r).sum(1).numpy(), (d * d).sum(1).numpy(), (r * r).sum(1).numpy())
        dr, dd, rr = parts if dr is None else (dr + parts[0], dd + parts[1], rr + parts[2])
    return None if dr is None else (dr, dd, rr)


def injection_gain(stats, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per HS band the share ``β = clip(⟨d, r⟩ / ⟨d, d⟩, 0, 1)`` of the injected detail that helps
    at reduced resolution, and the squared error left with it (``⟨r, r⟩ − 2β⟨d, r⟩ + β²⟨d, d⟩``).
    A guide that does not inform a band (another spectral range, misregistration, another date)
    gets β ≈ 0 there. Without stats: β = 1, error 0."""
    if stats is None:
        return np.ones(n), np.zeros(n)
    dr, dd, rr = stats
    with np.errstate(divide="ignore", invalid="ignore"):
        beta = np.clip(np.where(dd > 0, dr / dd, 0.0), 0.0, 1.0)
    return beta, rr - 2 * beta * dr + beta ** 2 * dd


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
    """(L, G + 1): per band the guide-band coefficients and the intercept, in data units. Each HS
    band is regressed on every guide band and, when the wavelengths are known, on the guide bands
    near it (:func:`informing_bands`); the coefficients are scaled by their injection gain
    measured at reduced resolution (:func:`injection_gain`) and the choice with the smaller
    reduced-resolution error is kept per band."""
    windows = lr_windows(plan)
    hs, g = lr_samples(windows)
    _check(hs.shape[1], "mtf-glp")
    gm, hm = g.mean(1, keepdims=True), hs.mean(1, keepdims=True)
    s, mtf = plan.scale, plan.guide.mtf_gain

    def gated(a):  # the coefficients scaled by their measured injection gain, and the error left
        coef = torch.from_numpy(np.concatenate([a, np.zeros((len(a), 1))], 1))[None]
        beta, err = injection_gain(reduced_detail_stats(
            windows, s, lambda up, gg: glp_detail(up, gg, coef, s, mtf), mtf), len(a))
        return a * beta[:, None], err

    a, err = gated(_lstsq((g - gm).T, (hs - hm).T).T)  # (L, G): every guide band
    allowed = informing_bands(plan)
    if allowed is not None and not allowed.all():  # … or only those near each band, when better
        near = np.zeros_like(a)
        for cols in {tuple(r) for r in allowed}:  # one regression per set of nearby guide bands
            rows, cols = np.all(allowed == cols, 1), np.asarray(cols)
            if cols.any():
                near[np.ix_(rows, cols)] = _lstsq((g[cols] - gm[cols]).T, (hs[rows] - hm[rows]).T).T
        near, err_near = gated(near)
        a = np.where((err_near < err)[:, None], near, a)
    c = hm[:, 0] - a @ gm[:, 0]
    return np.concatenate([a, c[:, None]], 1).astype(np.float32)


def fit_gsa(plan) -> np.ndarray:
    """(L + 1, 3): per band (w_k, g_k, 0); then (b, gain, offset). The gains ``g_k`` are scaled by
    the injection gain measured at reduced resolution (:func:`injection_gain`)."""
    windows = lr_windows(plan)
    hs, g = lr_samples(windows)
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
    s, coef = plan.scale, torch.from_numpy(out.copy())[None]
    out[:-1, 1] *= injection_gain(reduced_detail_stats(
        windows, s, lambda up, gg: gsa_detail(up, gg, coef), plan.guide.mtf_gain), len(hm))[0]
    return out.astype(np.float32)
