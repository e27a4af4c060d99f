"""Wald-protocol evaluation: degrade ×s, super-resolve, compare with the original.

Protocol (stated in every report): the reference is the input cube restricted to good bands
(``good_band == 1``) without invalid pixels, cropped to a multiple of ``s``; it is scaled to
[0, 1] by its largest value (so PSNR has peak 1, as in the papers); LR = degradation of the
reference (default MATLAB bicubic ×1/s, anti-aliased); each method super-resolves LR ×s; metrics
of :mod:`geohsr.metrics` compare the result with the reference. Bicubic is always reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr
from affine import Affine

from . import degrade, geo, metrics
from .errors import InputError
from .io import open_cube
from .tiling import valid_mask

DEGRADATIONS = ("bicubic", "torch-bicubic", "gaussian")


@dataclass
class EvaluationReport:
    """Metrics per method (``table``), band-wise curves and the protocol that produced them."""

    table: pd.DataFrame
    protocol: str
    wavelength: np.ndarray
    band_psnr: dict = field(default_factory=dict)
    band_sam: dict = field(default_factory=dict)  # mean SAM is per pixel; per band: SSIM
    band_ssim: dict = field(default_factory=dict)
    sam_maps: dict = field(default_factory=dict)

    def to_markdown(self) -> str:
        head = "| method | PSNR (dB) | SSIM | SAM (°) | ERGAS | RMSE |\n|---|---|---|---|---|---|\n"
        rows = "".join(f"| {m} | {r.psnr:.3f} | {r.ssim:.4f} | {r.sam:.3f} | {r.ergas:.3f} | {r.rmse:.5f} |\n"
                       for m, r in self.table.iterrows())
        return f"{head}{rows}\nProtocol: {self.protocol}\n"

    def to_html(self, title: str = "geohsr evaluation") -> str:
        import html

        table = self.table.to_html(float_format=lambda v: f"{v:.4f}", border=0)
        return (f"<html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head><body>"
                f"<h2>{html.escape(title)}</h2>{table}<p>{html.escape(self.protocol)}</p></body></html>\n")

    def to_csv(self, path=None):
        return self.table.to_csv(path)


def _reference(cube: xr.DataArray, scale: int) -> tuple[np.ndarray, np.ndarray]:
    data = np.asarray(cube.values)
    valid = valid_mask(data, cube.rio.nodata)
    good = (cube.good_band.values != 0) & valid.all(axis=(1, 2))
    if not good.any():
        raise InputError("no band is free of nodata; evaluate a crop without nodata pixels")
    h = (data.shape[1] // scale) * scale
    w = (data.shape[2] // scale) * scale
    if h < 4 * scale or w < 4 * scale:
        raise InputError(f"the scene is too small for ×{scale} evaluation (need at least "
                         f"{4 * scale}×{4 * scale} valid pixels)")
    ref = data[good, :h, :w].astype(np.float64)
    return ref, good


def degrade_for_eval(ref: np.ndarray, scale: int, degradation: str = "bicubic", seed: int = 0,
                     noise: float = 0.0) -> np.ndarray:
    if degradation == "bicubic":
        lr = degrade.bicubic_down(ref, scale)
    elif degradation == "torch-bicubic":
        lr = degrade.torch_bicubic(ref.astype(np.float32), 1.0 / scale)
    elif degradation == "gaussian":  # MulSR's test kernel: anisotropic k=13, λ=(2, 10), θ=π/2
        k = degrade.anisotropic_gaussian(13, 2.0, 10.0, np.pi / 2, scale=scale)
        lr = degrade.blur_downsample(ref, k, scale, "bicubic")
    else:
        raise InputError(f"unknown degradation {degradation!r}; choose {', '.join(DEGRADATIONS)}")
    if noise:
        lr = degrade.add_noise(lr, noise, seed)
    return np.asarray(lr, dtype=np.float32)


def evaluate(cube, methods=("bicubic",), scale: int = 4, *, degradation: str = "bicubic",
             noise: float = 0.0, seed: int = 0, device: str = "auto", weights: dict | None = None,
             value_scale: float | None = None) -> EvaluationReport:
    """Evaluate ``methods`` on ``cube`` with the Wald protocol (see the module docstring).

    ``value_scale``: divide the reference by this instead of its maximum (e.g. 1.0 for a cube
    already in [0, 1] as the papers' CAVE protocol, 10000 for reflectance × 10000)."""
    from .api import superresolve

    cube = open_cube(cube)
    methods = [m.strip() for m in (methods.split(",") if isinstance(methods, str) else methods)]
    if "bicubic" not in [m.lower() for m in methods]:
        methods = ["bicubic"] + methods
    ref, good = _reference(cube, scale)
    peak = float(np.max(np.abs(ref))) if value_scale is None else float(value_scale)
    if peak == 0:
        raise InputError("the reference is all zeros; nothing to evaluate")
    ref = ref / peak
    lr = degrade_for_eval(ref, scale, degradation, seed, noise)
    lr_da = xr.DataArray(lr, dims=("band", "y", "x"),
                         coords={k: ("band", v.values[good]) for k, v in cube.coords.items()
                                 if v.dims == ("band",) and k != "band"})
    lr_da = geo.with_grid(lr_da, Affine.scale(float(scale)), None)
    rows, bp, bs, sm = {}, {}, {}, {}
    for m in methods:
        sr = superresolve(lr_da, method=m, scale=scale, device=device,
                          weights=(weights or {}).get(m), dtype="float32").values.astype(np.float64)
        rows[m] = metrics.all_metrics(sr, ref, scale)
        bp[m] = metrics.psnr_per_band(sr, ref)
        bs[m] = metrics.ssim_per_band(sr, ref)
        sm[m] = metrics.sam_map(sr, ref)
    protocol = (f"Wald protocol ×{scale}: {int(good.sum())} good bands of {cube.sizes['band']}, "
                f"{ref.shape[1]}×{ref.shape[2]} px reference divided by "
                f"{'its max' if value_scale is None else 'the given scale'} ({peak:g}); "
                f"LR by {degradation} degradation"
                + (f" + noise σ={noise}" if noise else "")
                + "; PSNR from one MSE over the cube (peak 1), SSIM Gaussian 11/1.5 per band, "
                  "SAM mean degrees, ERGAS 100/s")
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "method"
    return EvaluationReport(table, protocol, cube.wavelength.values[good], bp, {}, bs, sm)
