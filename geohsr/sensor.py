"""The sensor model geohsr assumes when it reduces an HR image to the LR grid (classical fusion,
guide co-registration): a Gaussian MTF with a stated gain at the LR Nyquist frequency, then
sampling at the LR pixel centres.

The Gaussian's response at ``f = 1/(2s)`` cycles per HR pixel is ``exp(−2π²σ²f²) = G``, so its
standard deviation is ``σ = s·√(−2 ln G)/π`` HR pixels; ``G = 0.3`` (``GAIN_AT_NYQUIST``) is the
generic value of the pansharpening literature (≈ 0.99 LR px of blur at any scale).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


GAIN_AT_NYQUIST = 0.3


def mtf_sigma(scale: int, gain: float = GAIN_AT_NYQUIST) -> float:
    """HR-pixel standard deviation of the Gaussian MTF with ``gain`` at the LR Nyquist frequency."""
    return scale * math.sqrt(-2.0 * math.log(gain)) / math.pi


def _gauss_kernel(sigma: float) -> torch.Tensor:
    import torch  # here, not at the top: the CLI and the registry read this module's constants

    r = max(1, int(math.ceil(3.0 * sigma)))
    x = torch.arange(-r, r + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return (k / k.sum()).float()


def _blur_axis(y: torch.Tensor, k: torch.Tensor, dim: int) -> torch.Tensor:
    import torch.nn.functional as F

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


def guide_low(g: torch.Tensor, scale: int, gain: float = GAIN_AT_NYQUIST) -> torch.Tensor:
    """``G↓``: the guide through the sensor MTF (``gain`` at the LR Nyquist frequency), sampled at
    the LR pixel centres. Computed one axis at a time (blur, then sample, along rows, then along
    columns: the same linear operator, a quarter of the work on the second axis at ×4)."""
    from .resize import output_length, resize_axis

    k = _gauss_kernel(mtf_sigma(scale, gain)).to(g.device, g.dtype)
    b, c, h, w = g.shape
    y = _blur_axis(g.reshape(b * c, 1, h, w), k, -2)
    y = resize_axis(y, -2, output_length(h, 1.0 / scale), 1.0 / scale, -0.5, False)
    y = _blur_axis(y, k, -1)
    y = resize_axis(y, -1, output_length(w, 1.0 / scale), 1.0 / scale, -0.5, False)
    return y.reshape(b, c, y.shape[-2], y.shape[-1])


class SensorModel:
    """How scene adaptation reduces an HR image to the LR grid (``psf`` of :func:`geohsr.adapt.adapt`,
    ``--psf``):

    * ``"gaussian"`` (default) or ``"gaussian:G"``: the Gaussian MTF with gain ``G`` (default 0.3) at
      the LR Nyquist frequency, sampled at the LR pixel centres (:func:`guide_low`);
    * ``"bicubic"``: MATLAB's anti-aliased bicubic ×1/s (:func:`geohsr.degrade.bicubic_down`: how
      the shipped weights' training pairs were made);
    * a file: a measured PSF (``.npy``, or ``.mat`` with the kernel under ``data``) on the HR grid,
      applied as A-SNLSR does (:func:`geohsr.degrade.psf_stride`: correlation, stride s);
    * (``"measure"``, in :func:`geohsr.adapt.adapt` only: the Gaussian of the gain measured between
      the scene and its guide.)"""

    def __init__(self, psf=None):
        from pathlib import Path

        import numpy as np

        from .errors import InputError

        self.kind, self.gain, self.kernel, self.source = "gaussian", GAIN_AT_NYQUIST, None, ""
        text = "gaussian" if psf is None else str(psf)
        if text.lower().startswith("gaussian"):
            _, _, g = text.partition(":")
            try:
                self.gain = float(g) if g else GAIN_AT_NYQUIST
            except ValueError:
                self.gain = -1.0
            if not 0.0 < self.gain < 1.0:
                raise InputError(f"--psf {text}: the gain at Nyquist must lie between 0 and 1 (e.g. gaussian:0.3)")
        elif text.lower() == "bicubic":
            self.kind = "bicubic"
        else:
            path = Path(text)
            if not path.is_file():
                raise InputError(f"--psf {text}: not gaussian[:GAIN], bicubic or a PSF file (.npy, or .mat "
                                 "with the kernel under 'data')")
            from .degrade import load_mat_kernel

            k = np.load(path) if path.suffix.lower() == ".npy" else load_mat_kernel(path)
            k = np.asarray(k, np.float64)
            if k.ndim != 2 or k.shape[0] != k.shape[1] or not np.isfinite(k).all() or k.sum() <= 0:
                raise InputError(f"--psf {text}: the PSF must be a square 2-D kernel of finite values with a "
                                 f"positive sum, got shape {k.shape}")
            self.kind, self.kernel, self.source = "psf", k / k.sum(), str(path)

    def reduce(self, hr, scale: int):
        """``(…, H, W)`` float32 array → the LR grid (``(…, H/s, W/s)``), as a float32 array."""
        import numpy as np

        x = np.ascontiguousarray(hr, dtype=np.float32)
        if self.kind == "bicubic":
            from .degrade import bicubic_down

            return np.asarray(bicubic_down(x, scale), np.float32)
        lead, (h, w) = x.shape[:-2], x.shape[-2:]
        flat = x.reshape((-1, 1, h, w))
        if self.kind == "psf":
            from .degrade import psf_stride

            k = self.kernel.shape[0]
            if k < scale:
                from .errors import InputError

                raise InputError(f"the PSF ({k}×{k} HR px) is smaller than the scale ×{scale}")
            y = psf_stride(flat[:, 0], self.kernel, scale)
            return y.reshape(lead + y.shape[-2:])
        import torch

        y = guide_low(torch.from_numpy(flat), scale, self.gain).numpy()
        return y.reshape(lead + y.shape[-2:])

    def describe(self, scale: int) -> str:
        if self.kind == "bicubic":
            return f"MATLAB bicubic ×1/{scale} (anti-aliased; geohsr.degrade.bicubic_down)"
        if self.kind == "psf":
            return (f"the PSF in {self.source} ({self.kernel.shape[0]}×{self.kernel.shape[0]} HR px), "
                    f"correlation with stride {scale} (geohsr.degrade.psf_stride)")
        return (f"Gaussian MTF, gain {self.gain:.3g} at the LR Nyquist frequency"
                + (f" ({self.source})" if self.source else "")
                + ", then sampling at the LR pixel centres (geohsr.sensor.guide_low)")


# -- the blur between a guide and the scene, measured --------------------------------------------
GAIN_RANGE = (0.15, 0.95)  # gains measured or accepted (0.15: 3σ stays within the fusion halo)
GAIN_STEP = 0.01
MEASURE_COMPONENTS = 20  # principal components of the scene the reduced guide is projected on
MIN_FIT = 0.5  # R² below this: the guide explains too little of the scene to measure its blur


def own_gain(relative: float, scale: int, guide_gain: float = GAIN_AT_NYQUIST) -> float:
    """The scene sensor's own MTF gain at the LR Nyquist from the gain measured relative to the
    guide: the guide is itself blurred by its sensor (taken as a Gaussian of ``guide_gain`` at the
    guide's Nyquist), so the measured blur is the scene's less the guide's, and Gaussian variances
    add: ``σ² = σ_rel² + σ_guide²``. Clamped to ``GAIN_RANGE``."""
    sigma = math.hypot(mtf_sigma(scale, relative), mtf_sigma(1, guide_gain))
    g = math.exp(-0.5 * (math.pi * sigma / scale) ** 2)
    return float(min(max(g, GAIN_RANGE[0]), GAIN_RANGE[1]))


def check_gain(gain) -> float:
    """A gain at the LR Nyquist given by the user, checked against ``GAIN_RANGE``."""
    from .errors import InputError

    try:
        g = float(gain)
    except (TypeError, ValueError):
        g = float("nan")
    lo, hi = GAIN_RANGE
    if not lo <= g <= hi:
        raise InputError(f"the MTF gain at Nyquist must lie between {lo} and {hi} (e.g. 0.3), not {gain!r}; "
                         "or 'measure' to measure it against the guide")
    return g


def measure_gain(pairs, scale: int) -> dict:
    """The Gaussian MTF that best relates an HR guide to the LR scene.

    ``pairs``: ``[(hs (L, h, w), guide (G, s·h, s·w), valid (h, w))]`` windows of the scene (LR) and
    of the co-registered guide (HR), same footprint. For every candidate gain ``G`` the guide is
    reduced to the LR grid (:func:`guide_low`) and projected onto the span of the scene's first
    ``MEASURE_COMPONENTS`` principal components (the guide's bands are combinations of the
    scene's spectra, whatever its band count); the share of the reduced guide's variance that the
    scene explains, R², peaks at the blur the scene has relative to the guide (its own MTF less the
    guide's). Coarse grid, then ``GAIN_STEP`` around the best. Returns ``{"gain", "r2",
    "r2_default"}`` (``r2_default``: at ``GAIN_AT_NYQUIST``), or ``{"gain": None, "r2", "why"}``
    when the guide explains less than ``MIN_FIT`` of the scene at any gain."""
    import numpy as np
    import torch

    interior = []
    for hs, g, m in pairs:  # the windows' reflected edges do not count
        m = m.copy()
        e = 2
        m[:e], m[-e:], m[:, :e], m[:, -e:] = False, False, False, False
        interior.append(m)
    x = np.concatenate([hs[:, m] for (hs, _, _), m in zip(pairs, interior)], 1).T.astype(np.float64)
    x -= x.mean(0)
    k = max(1, min(MEASURE_COMPONENTS, x.shape[1], x.shape[0] // 10))
    u = np.linalg.svd(x, full_matrices=False)[0][:, :k]  # orthonormal basis of the scene's variance
    guides = [torch.from_numpy(np.ascontiguousarray(g, dtype=np.float32))[None] for _, g, _ in pairs]

    def r2(gain: float) -> float:
        y = np.concatenate([guide_low(g, scale, gain)[0].numpy()[:, m] for g, m in zip(guides, interior)],
                           1).T.astype(np.float64)
        y -= y.mean(0)
        tot = float((y * y).sum())
        res = y - u @ (u.T @ y)
        return 1.0 - float((res * res).sum()) / tot if tot > 0 else 0.0

    lo, hi = GAIN_RANGE
    scores = {round(g, 2): r2(g) for g in np.arange(lo, hi + 1e-9, 0.05)}
    best = max(scores, key=scores.get)
    for g in np.arange(max(lo, best - 0.04), min(hi, best + 0.04) + 1e-9, GAIN_STEP):
        g = round(float(g), 2)
        if g not in scores:
            scores[g] = r2(g)
    best = max(scores, key=scores.get)
    if scores[best] < MIN_FIT:
        return {"gain": None, "r2": scores[best],
                "why": f"the guide explains only {scores[best]:.2f} of the scene's detail (R²)"}
    default = scores.get(GAIN_AT_NYQUIST)
    return {"gain": best, "r2": scores[best], "r2_default": r2(GAIN_AT_NYQUIST) if default is None else default}
