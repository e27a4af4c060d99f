"""Degradations that turn HR cubes into LR (+ RGB) training and evaluation inputs.

Arrays are ``(bands, rows, cols)`` float (numpy or torch where noted). Every random choice takes
a ``numpy.random.Generator`` or a seed, so degradations are reproducible.

* :func:`bicubic_down` — MATLAB ``imresize(x, 1/s)`` (a = −0.5, anti-aliased, MATLAB indexing).
* :func:`torch_bicubic` — ``F.interpolate(mode="bicubic", align_corners=False)`` (a = −0.75).
* :func:`gaussian_kernel`, :func:`anisotropic_gaussian` — blur kernels, the latter with the
  off-centre (KernelGAN/ZSSR) convention of MulSR/IFMSR when ``scale`` is given.
* :func:`blur_downsample` — blur then downsample in the three MulSR modes.
* :func:`psf_stride` — A-SNLSR's fixed PSF, zero padding and strided sampling.
* :func:`add_noise`, :func:`project` (response matrix, e.g. RGB from HSI),
  :func:`srf_matrix` (SRF curves → matrix), :func:`gaussian_spectral_resample`.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from .resize import imresize


def _rng(rng) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def bicubic_down(x, scale: int):
    """MATLAB-compatible bicubic downsampling by an integer factor (anti-aliased)."""
    return imresize(x, scale=1.0 / scale, a=-0.5, antialias=True)


def bicubic_up(x, scale: int):
    """MATLAB/PIL bicubic upsampling (a = −0.5), area-aligned."""
    return imresize(x, scale=float(scale), a=-0.5, antialias=False)


def torch_bicubic(x, scale: float):
    """torch bicubic resize by ``scale`` (a = −0.75, no anti-aliasing, clamped borders)."""
    is_np = isinstance(x, np.ndarray)
    t = torch.as_tensor(np.asarray(x, dtype=np.float32) if is_np else x)
    out = F.interpolate(t[None], scale_factor=scale, mode="bicubic", align_corners=False)[0]
    return out.numpy() if is_np else out


def gaussian_kernel(size: int, sigma: float) -> np.ndarray:
    """Centred isotropic Gaussian kernel, normalised to sum 1."""
    ax = np.arange(size) - (size - 1) / 2.0
    g = np.exp(-(ax ** 2) / (2.0 * sigma * sigma))
    k = np.outer(g, g)
    return k / k.sum()


def anisotropic_gaussian(size: int, lambda1: float, lambda2: float, theta: float,
                         scale: int | None = None) -> np.ndarray:
    """Anisotropic Gaussian with eigen-variances ``lambda1, lambda2`` rotated by ``theta``.

    With ``scale`` the centre sits at ``k//2 + 0.5·(s − k mod 2)`` on both axes (the
    KernelGAN/ZSSR convention MulSR and IFMSR use), otherwise at the kernel centre.
    """
    c, s_ = np.cos(theta), np.sin(theta)
    rot = np.array([[c, -s_], [s_, c]])
    cov = rot @ np.diag([lambda1, lambda2]) @ rot.T
    inv = np.linalg.inv(cov)
    if scale is None:
        mu = np.array([(size - 1) / 2.0] * 2)
    else:
        mu = np.array([size // 2 + 0.5 * (scale - size % 2)] * 2)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    d = np.stack([xx - mu[1], yy - mu[0]], -1)
    k = np.exp(-0.5 * np.einsum("...i,ij,...j->...", d, inv, d))
    return k / k.sum()


def blur(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Correlate every band with ``kernel`` (reflect boundary, as scipy.ndimage.correlate)."""
    return np.stack([ndimage.correlate(b, kernel, mode="reflect") for b in np.asarray(x, np.float64)])


def blur_downsample(x: np.ndarray, kernel: np.ndarray, scale: int, mode: str = "bicubic") -> np.ndarray:
    """Blur + downsample: ``bicubic``/``bilinear`` (reflect correlate then torch resize ×1/s)
    or ``direction`` (replicate pad (k−1)/2, kernel applied as a stride-s convolution)."""
    x = np.asarray(x, dtype=np.float64)
    if mode in ("bicubic", "bilinear"):
        b = torch.from_numpy(blur(x, kernel).astype(np.float32))[None]
        out = F.interpolate(b, scale_factor=1.0 / scale, mode=mode, align_corners=False)[0]
        return out.numpy()
    if mode == "direction":
        k = kernel.shape[0]
        p0, p1 = (k - 1) // 2, k - 1 - (k - 1) // 2
        t = torch.from_numpy(x.astype(np.float32))[:, None]
        t = F.pad(t, (p0, p1, p0, p1), mode="replicate")
        w = torch.from_numpy(kernel.astype(np.float32))[None, None]
        return F.conv2d(t, w, stride=scale)[:, 0].numpy()
    raise ValueError(f"unknown downsampling mode {mode!r}; use bicubic, bilinear or direction")


def psf_stride(x: np.ndarray, psf: np.ndarray, scale: int) -> np.ndarray:
    """A-SNLSR/DAEM degradation: zero-pad by (k − s)//2 at top/left (array size H + k − s),
    output (i, j) = Σ of the k×k window starting at (i·s, j·s) times the PSF (correlation)."""
    x = np.asarray(x, dtype=np.float32)
    k = psf.shape[0]
    pad = (k - scale) // 2
    t = torch.from_numpy(x)[:, None]
    t = F.pad(t, (pad, k - scale - pad, pad, k - scale - pad))
    w = torch.from_numpy(np.asarray(psf, np.float32))[None, None]
    return F.conv2d(t, w, stride=scale)[:, 0].numpy()


def add_noise(x: np.ndarray, sigma: float, rng=None, clip: tuple | None = None) -> np.ndarray:
    """Add white Gaussian noise of standard deviation ``sigma`` (optionally clipped)."""
    out = np.asarray(x) + _rng(rng).normal(0.0, sigma, size=np.shape(x))
    return np.clip(out, *clip) if clip is not None else out


def project(x: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Spectral projection ``(m × bands) · x`` per pixel, e.g. RGB = P · HSI."""
    return np.tensordot(np.asarray(matrix, np.float64), np.asarray(x, np.float64), axes=(1, 0))


def srf_matrix(wavelengths, curve_wavelengths, curves, normalise: bool = True) -> np.ndarray:
    """Response matrix ``(m × bands)`` sampling ``m`` response curves at the band centres.

    ``curves`` is ``(m, len(curve_wavelengths))`` (e.g. CIE 1931 x̄ȳz̄ or a camera's RGB);
    rows are normalised to sum 1 unless ``normalise=False``.
    """
    wl = np.asarray(wavelengths, np.float64)
    m = np.stack([np.interp(wl, curve_wavelengths, c, left=0.0, right=0.0) for c in np.atleast_2d(curves)])
    if normalise:
        s = m.sum(axis=1, keepdims=True)
        if np.any(s == 0):
            raise ValueError("a response curve does not overlap the band centres")
        m = m / s
    return m


def gaussian_spectral_resample(x: np.ndarray, wavelengths, n_out: int,
                               remove: list[tuple[float, float]] = ()) -> tuple[np.ndarray, np.ndarray]:
    """A-SNLSR §6.1: resample to ``n_out`` bands with Gaussian SRFs, then drop absorption bands.

    Centres = linspace(first λ, last λ, n_out); FWHM = (last − first)/n_out; each Gaussian is
    evaluated on linspace(first, last, n_in) and normalised to sum 1. Output bands whose centre
    lies in any ``remove`` range (inclusive) are dropped. Returns (cube, centres).
    """
    wl = np.asarray(wavelengths, np.float64)
    first, last = wl[0], wl[-1]
    centres = np.linspace(first, last, n_out)
    fwhm = (last - first) / n_out
    sigma = fwhm / (2.0 * np.sqrt(2.0 * np.log(2.0)))
    grid = np.linspace(first, last, wl.size)
    w = np.exp(-0.5 * ((grid[None, :] - centres[:, None]) / sigma) ** 2)
    w /= w.sum(axis=1, keepdims=True)
    out = np.tensordot(w, np.asarray(x, np.float64), axes=(1, 0))
    keep = np.ones(n_out, bool)
    for lo, hi in remove:
        keep &= ~((centres >= lo) & (centres <= hi))
    return out[keep], centres[keep]


def select_range(wavelengths, lo: float, hi: float) -> np.ndarray:
    """Indices of bands with ``lo <= λ <= hi`` (e.g. SWIR1 1000–1700, SWIR2 1700–2500 nm)."""
    wl = np.asarray(wavelengths, np.float64)
    return np.flatnonzero((wl >= lo) & (wl <= hi))


def load_mat_kernel(path, key: str = "data") -> np.ndarray:
    """A kernel/matrix stored in a MATLAB .mat file (e.g. ``psf/asnlsr_psf_32x32.mat``)."""
    from scipy.io import loadmat

    return np.asarray(loadmat(str(path))[key], dtype=np.float64)


# XYZ → linear sRGB (IEC 61966-2-1, D65 white)
_XYZ_TO_SRGB = np.array([[3.2404542, -1.5371385, -0.4985314],
                         [-0.9692660, 1.8760108, 0.0415560],
                         [0.0556434, -0.2040259, 1.0572252]])


def cie_rgb_response(wavelengths) -> np.ndarray:
    """A camera-like RGB response ``(3 × bands)`` from the CIE 1931 2° observer shipped with
    geohsr: x̄ȳz̄ sampled at the band centres, mapped to linear sRGB primaries, negative lobes
    clipped, each row normalised to sum 1 (a flat spectrum of value v gives RGB = v).
    Rows are R, G, B."""
    from importlib.resources import files

    path = files("geohsr") / "data" / "cie1931_2deg_xyz_cmf.csv"
    tab = np.loadtxt(str(path), delimiter=",", comments="#")
    xyz = srf_matrix(wavelengths, tab[:, 0], tab[:, 1:].T, normalise=False)
    rgb = np.clip(_XYZ_TO_SRGB @ xyz, 0.0, None)
    s = rgb.sum(axis=1, keepdims=True)
    if np.any(s <= 0):
        raise ValueError("the bands do not overlap the visible range (380–780 nm); an RGB "
                         "response cannot be synthesised")
    return rgb / s


def guided_test_degradation(hr: np.ndarray, scale: int, rng=None, *, noise: float = 3.0 / 255,
                            kernel: str = "mulsr") -> np.ndarray:
    """The MulSR/IFMSR test degradation (docs/methods.md, MulSR and IFMSR): anisotropic Gaussian k = 13,
    off-centre, reflect correlate, torch bicubic ×1/s, Gaussian noise σ = 3/255, clip to [0, 1].
    ``kernel="mulsr"``: λ1 = 2, λ2 = 10, θ = π/2; ``"ifmsr"``: λ1 ~ U(2, 5), λ2 ~ U(8, 12),
    θ ~ U(0, π) drawn from ``rng``."""
    rng = _rng(rng)
    if kernel == "mulsr":
        k = anisotropic_gaussian(13, 2.0, 10.0, np.pi / 2, scale=scale)
    elif kernel == "ifmsr":
        k = anisotropic_gaussian(13, rng.uniform(2, 5), rng.uniform(8, 12), rng.uniform(0, np.pi),
                                 scale=scale)
    else:
        raise ValueError(f"unknown test kernel {kernel!r}; use mulsr or ifmsr")
    lr = blur_downsample(hr, k, scale, "bicubic")
    if noise:
        lr = add_noise(lr, noise, rng)
    return np.clip(lr, 0.0, 1.0).astype(np.float32)


# water-vapour absorption ranges removed from SWIR grids (A-SNLSR §6.1: SWIR_1, SWIR_2)
ABSORPTION_NM = ((1310.0, 1550.0), (1800.0, 1980.0))


def spectral_grid(lo: float, hi: float, bands_out: int = 30,
                  remove=ABSORPTION_NM) -> tuple[np.ndarray, float]:
    """A fixed band grid for a wavelength range: ``n`` Gaussian bands with centres
    ``linspace(lo, hi, n)`` and FWHM ``(hi − lo)/n`` (A-SNLSR §6.1), ``n`` the smallest count
    that leaves ``bands_out`` centres outside the absorption ranges. Returns (centres, fwhm)."""
    if not hi > lo:
        raise ValueError(f"empty wavelength range {lo}-{hi} nm")
    for n in range(bands_out, 8 * bands_out + 1):
        c = np.linspace(lo, hi, n)
        keep = np.ones(n, bool)
        for a, b in remove:
            keep &= ~((c >= a) & (c <= b))
        if keep.sum() >= bands_out:  # (one more than asked happens for some ranges: drop the last)
            return c[keep][:bands_out], (hi - lo) / n
    raise ValueError(f"cannot place {bands_out} bands in {lo}-{hi} nm outside {remove}")


def resample_matrix(wavelengths, centres, fwhm: float) -> np.ndarray:
    """``(len(centres) × bands)`` Gaussian SRF weights evaluated at the actual band centres,
    each row normalised to sum 1, using input bands within 1.5 FWHM of the centre. Raises
    ``ValueError`` when a target band has none (the input does not cover the grid)."""
    wl = np.asarray(wavelengths, np.float64)
    c = np.asarray(centres, np.float64)
    sigma = fwhm / (2.0 * np.sqrt(2.0 * np.log(2.0)))
    d = wl[None, :] - c[:, None]
    near = np.abs(d) <= 1.5 * fwhm
    bad = ~near.any(axis=1)
    if bad.any():
        miss = ", ".join(f"{v:.0f}" for v in c[bad][:5])
        raise ValueError(f"no input band within {1.5 * fwhm:.1f} nm of {miss} nm")
    w = np.exp(-0.5 * (d / sigma) ** 2) * near
    return w / w.sum(axis=1, keepdims=True)
