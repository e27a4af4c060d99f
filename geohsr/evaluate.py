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


def evaluate(cube, methods=None, scale: int = 4, *, degradation: str = "bicubic",
             noise: float = 0.0, seed: int = 0, device: str = "auto", weights: dict | None = None,
             value_scale: float | None = None, guide=None, coregister="auto", mtf="measure"):
    """Evaluate ``methods`` on ``cube`` with the Wald protocol (see the module docstring).

    ``value_scale``: divide the reference by this instead of its maximum (e.g. 1.0 for a cube
    already in [0, 1] as the papers' CAVE protocol, 10000 for reflectance × 10000).
    With a ``guide``: :func:`evaluate_pair` (reduced-resolution and QNR scores, a :class:`PairReport`;
    the degradation is geohsr's sensor model with the scene's MTF gain, ``mtf``: measured against
    the guide or given; ``methods=None`` the candidates of ``auto``)."""
    from .api import superresolve

    if guide is not None:
        return evaluate_pair(cube, guide, methods, scale, device=device, coregister=coregister, mtf=mtf)

    cube = open_cube(cube)
    methods = [m.strip() for m in (methods.split(",") if isinstance(methods, str) else methods or ["bicubic"])]
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


# -- a scene and a real guide: reduced resolution (Wald) and full resolution (QNR) -------------------
QNR_MAX_BANDS = 32  # D_λ compares every pair of bands: at most this many, evenly spaced
RANGES = ((400, 700), (700, 1000), (1000, 1700), (1700, 2500))  # nm: VIS, NIR, SWIR1, SWIR2


@dataclass
class PairReport:
    """A scene with a real guide: ``reduced`` (Wald protocol, with a reference), ``full`` (QNR, no
    reference), the guide's measured ``offset`` and the protocol text."""

    reduced: pd.DataFrame
    full: pd.DataFrame
    offset: dict | None
    protocol: str
    notes: dict = field(default_factory=dict)
    ranges: pd.DataFrame | None = None  # reduced-resolution PSNR per spectral range (wavelengths known)
    mtf: dict | None = None  # the scene's MTF gain, measured against the guide or given (engine.set_mtf)

    @property
    def table(self) -> pd.DataFrame:
        """Both tables side by side (the CSV report), with the per-range PSNR columns."""
        t = self.reduced.join(self.full, how="outer")
        if self.ranges is not None and not self.ranges.empty:
            t = t.join(self.ranges.add_prefix("psnr_"), how="outer")
        return t

    def _ranges_markdown(self) -> str:
        if self.ranges is None or self.ranges.empty:
            return ""
        cols = list(self.ranges.columns)
        head = "| method | " + " | ".join(f"{c} nm" for c in cols) + " |\n" + "|---" * (len(cols) + 1) + "|\n"
        rows = "".join(f"| {m} | " + " | ".join(f"{v:.2f}" if np.isfinite(v) else "–" for v in r) + " |\n"
                       for m, r in self.ranges.iterrows())
        return ("## Reduced resolution per spectral range (PSNR dB, same peak)\n\n"
                "Where a guide helps and where it does not: a guided method below bicubic in a range is "
                "one the guide does not inform.\n\n" + head + rows + "\n")

    def _offset_line(self) -> str:
        from .engine import mtf_note

        o = self.offset
        line = ("Guide offset: not measured (--no-coregister)." if not o else
                f"Guide offset from the scene: dy = {o['dy']:+.2f}, dx = {o['dx']:+.2f} LR px "
                f"(spread {o['spread']:.2f} over {o['windows']} windows), "
                f"{'corrected' if o['corrected'] else 'below 0.1 LR px, not corrected'}.")
        return line + (f" Scene MTF: {mtf_note(self.mtf)}." if self.mtf else "")

    def to_markdown(self) -> str:
        red = "| method | PSNR (dB) | SSIM | SAM (°) | ERGAS | RMSE |\n|---|---|---|---|---|---|\n" + "".join(
            f"| {m} | {r.psnr:.3f} | {r.ssim:.4f} | {r.sam:.3f} | {r.ergas:.3f} | {r.rmse:.5f} |\n"
            if np.isfinite(r.psnr) else f"| {m} | – | – | – | – | – |\n" for m, r in self.reduced.iterrows())
        full = "| method | D_λ | D_S | QNR |\n|---|---|---|---|\n" + "".join(
            f"| {m} | {r.d_lambda:.4f} | {r.d_s:.4f} | {r.qnr:.4f} |\n" if np.isfinite(r.qnr)
            else f"| {m} | – | – | – |\n" for m, r in self.full.iterrows())
        notes = "".join(f"- {m}: {t}\n" for m, t in self.notes.items())
        return (f"## Reduced resolution (Wald protocol, with a reference)\n\n{red}\n{self._ranges_markdown()}"
                f"## Full resolution (no reference)\n\n{full}\n{self._offset_line()}\n\n"
                + (f"Not run:\n{notes}\n" if notes else "") + f"Protocol: {self.protocol}\n")

    def to_html(self, title: str = "geohsr evaluation") -> str:
        import html

        fmt = dict(float_format=lambda v: f"{v:.4f}", border=0, na_rep="–")
        return (f"<html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head><body>"
                f"<h2>{html.escape(title)}</h2><h3>Reduced resolution (Wald protocol)</h3>"
                f"{self.reduced.to_html(**fmt)}"
                + ("" if self.ranges is None or self.ranges.empty else
                   f"<h3>Reduced resolution per spectral range (PSNR dB)</h3>{self.ranges.to_html(**fmt)}")
                + f"<h3>Full resolution (QNR, no reference)</h3>"
                f"{self.full.to_html(**fmt)}<p>{html.escape(self._offset_line())}</p>"
                f"<p>{html.escape(self.protocol)}</p></body></html>\n")

    def to_csv(self, path=None):
        return self.table.to_csv(path)


def _masked_metrics(sr: np.ndarray, ref: np.ndarray, ok: np.ndarray, scale: int) -> dict:
    """:func:`metrics.all_metrics` on the valid pixels (SSIM on the whole window, invalid pixels 0 in both)."""
    x, y = sr[:, ok][:, None], ref[:, ok][:, None]
    return {"psnr": metrics.psnr(x, y), "ssim": metrics.ssim(np.where(ok, sr, 0), np.where(ok, ref, 0)),
            "sam": metrics.sam(x, y), "ergas": metrics.ergas(x, y, scale), "rmse": metrics.rmse(x, y)}


def evaluate_pair(cube, guide, methods=None, scale: int = 4, *, device: str = "auto",
                  coregister="auto", mtf="measure") -> PairReport:
    """Score ``methods`` (default: the candidates of ``method="auto"``; bicubic always) on a scene
    with a real HR ``guide``, with no ground truth at the guide's resolution:

    * reduced resolution (Wald): the scene and the co-registered guide reduced by ``scale``
      through geohsr's sensor model (:mod:`geohsr.sensor`; the Gaussian MTF of the gain measured
      between guide and scene, or ``mtf`` when given), super-resolved back and compared with
      the scene (PSNR from one MSE over the cube with peak = the scene's largest value, SSIM, SAM,
      ERGAS, RMSE over its valid pixels);
    * full resolution: each method's product from the real scene and guide, scored by QNR
      (:func:`geohsr.metrics.qnr`, at most ``QNR_MAX_BANDS`` evenly spaced bands).
    """
    import torch

    from .api import superresolve
    from .engine import prepare
    from .methods import get_method
    from .select import candidates, reduced_pair
    from .sensor import guide_low

    s = int(scale)
    plan = prepare(cube, "mtf-glp", s, guide=guide, device=device, coregister=coregister, mtf=mtf, fit=False)
    gain = plan.guide.mtf_gain
    names = [m.strip() for m in (methods.split(",") if isinstance(methods, str) else methods or candidates(s))]
    names = list(dict.fromkeys(["bicubic"] + [m for m in names if m.lower() != "bicubic"]))
    h, w = plan.cube.sizes["y"] // s * s, plan.cube.sizes["x"] // s * s
    if h < 8 * s or w < 8 * s:
        raise InputError(f"the scene is too small for ×{s} evaluation with a guide (at least "
                         f"{8 * s}×{8 * s} px)")
    ref, ok, lr, gd, g_hr = reduced_pair(plan, 0, 0, h, w)
    peak = float(np.abs(ref[:, ok]).max()) or 1.0
    full_lr = np.asarray(plan.cube.isel(y=slice(0, h), x=slice(0, w)).values)[
        plan.use_bands if plan.use_bands is not None else slice(None)].astype(np.float64)
    okf = valid_mask(full_lr, plan.nodata).all(0)
    pick = np.unique(np.linspace(0, full_lr.shape[0] - 1, min(QNR_MAX_BANDS, full_lr.shape[0])).astype(int))
    pan = g_hr.mean(0, keepdims=True)
    pan_low = guide_low(torch.from_numpy(pan)[None], s, gain)[0, 0].numpy()
    ok_hr = np.repeat(np.repeat(okf, s, 0), s, 1)
    m_lr = np.where(okf, full_lr[pick], 0)
    red, full, notes, per_range = {}, {}, {}, {}
    wl = np.asarray(plan.cube.coords["wavelength"].values, float) if "wavelength" in plan.cube.coords else None
    if wl is not None:
        wl = wl[plan.use_bands] if plan.use_bands is not None else wl
    spans = [(lo, hi) for lo, hi in RANGES if wl is not None and ((wl >= lo) & (wl < hi)).any()]
    for name in names:
        g_req = get_method(name).guided if name != "auto" else True
        try:
            sr = superresolve(lr, method=name, scale=s, guide=gd if g_req else None, device=device,
                              dtype="float32", coregister=False, mtf=gain).values.astype(np.float64)
            red[name] = _masked_metrics(sr / peak, ref / peak, ok, s)
            per_range[name] = {f"{lo}-{hi}": metrics.psnr(sr[(wl >= lo) & (wl < hi)][:, ok] / peak,
                                                         ref[(wl >= lo) & (wl < hi)][:, ok] / peak)
                               for lo, hi in spans}
            hr = superresolve(plan.cube.isel(y=slice(0, h), x=slice(0, w)), method=name, scale=s,
                              guide=guide if g_req else None, device=device, dtype="float32",
                              coregister=coregister, mtf=gain)
            hr = np.asarray(hr.values)[plan.use_bands if plan.use_bands is not None and hr.sizes["band"]
                                       == plan.bands else slice(None)].astype(np.float64)
            full[name] = metrics.qnr(np.where(ok_hr, hr[pick], 0), m_lr, np.where(ok_hr, pan[0], 0),
                                     np.where(okf, pan_low, 0), s)
        except Exception as exc:  # noqa: BLE001  (a method that cannot run here is reported, not fatal)
            notes[name] = str(exc).splitlines()[0][:160]
    if not red:
        raise InputError("no method could run on this scene and guide")
    reduced = pd.DataFrame.from_dict(red, orient="index")
    fulltab = pd.DataFrame.from_dict(full, orient="index")
    ranges = pd.DataFrame.from_dict(per_range, orient="index") if spans and len(spans) > 1 else None
    if ranges is not None:
        ranges.index.name = "method"
    reduced.index.name = fulltab.index.name = "method"
    protocol = (f"×{s}, {len(ref)} bands, {w}×{h} LR px. Reduced resolution: scene and co-registered "
                f"guide through a Gaussian MTF with gain {gain:.2f} at Nyquist, sampled ×1/{s}, "
                f"super-resolved ×{s} and compared with the scene (PSNR from one MSE over the cube, "
                f"peak = the scene's maximum {peak:g}; SSIM Gaussian 11/1.5; SAM mean degrees; "
                f"ERGAS 100/s; valid pixels). Full resolution: QNR = (1 − D_λ)(1 − D_S), α = β = p = q = 1 "
                f"(Alparone et al. 2008), Q index on non-overlapping blocks of "
                f"{metrics.qnr_block(s)} LR / {metrics.qnr_block(s) * s} HR px, "
                f"{len(pick)} evenly spaced bands, P = the mean of the guide's bands, P_LR = P through "
                "the same MTF and sampling.")
    return PairReport(reduced, fulltab, plan.guide_offset, protocol, notes, ranges, plan.guide_mtf)
