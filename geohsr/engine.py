"""The processing engine both drivers call: the plan, the block function, the scene-wide passes.

* :func:`prepare` checks a request (method, scale, guide, data type, nodata, weights) into a
  :class:`Plan` before any pixel is touched;
* :func:`sr_blocks` super-resolves blocks read with their halo (one device batch per block shape)
  into float32 *planes* (the HR bands, then the method's auxiliary planes) with the halo cropped;
* the scene-wide passes: :func:`absmax` (the normalisation scale, per block then the maximum),
  :func:`block_stat` / :func:`finish` (a method's scene-wide statistic, e.g. DualSR's λ: per
  block, summed, then applied) and :func:`cast_planes` (back to the product's data type).

:func:`geohsr.superresolve` runs them over dask chunks (:mod:`geohsr.api`); ``geohsr run`` streams
windows of a file through them (:mod:`geohsr.stream`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import dask.array as dsa
import numpy as np
import torch
import xarray as xr

from . import geo
from .device import PRECISIONS, infer
from .dtypes import cast, cast_finite
from .errors import InputError, MethodError
from .io import open_cube
from .methods import MethodSpec, get_method, load_runner, resolve_device
from .tiling import fill_invalid, upsample_mask, valid_mask


@dataclass
class Plan:
    """Everything checked and decided before any pixel is touched."""

    spec: MethodSpec
    scale: int
    cube: xr.DataArray
    out_dtype: np.dtype
    nodata: float | None
    out_nodata: float | None
    device: str
    weights: str | None
    guide: object = None  # a geohsr.guide.GuideSource for guided methods
    precision: str = "fp32"  # fp32, or bf16 / fp16 mixed-precision inference
    requested_device: str = "auto"  # what blocks ask for: each process (dask worker) resolves it
    halo: int = 0  # LR pixels of halo for these weights (MethodSpec.halo_of)
    # bands="grid" methods: (input band indices, matrix, nodata) taking the input's bands onto the
    # model's grid; the streamed driver applies it to every window it reads (apply_band_map)
    band_map: tuple | None = None
    fitted: object = None  # MethodSpec.fit's scene-wide parameters (a float32 array)
    guide_offset: dict | None = None  # the guide's measured offset (geohsr.coregister), LR px
    guide_mtf: dict | None = None  # the scene's MTF gain, measured against the guide or given (set_mtf)
    clip: tuple | None = None  # (lo, hi) output values are clipped to (either None)
    # the scene as a window and band subset of its source file: (row0, col0, 1-based band indexes
    # or None), for drivers that read the file directly (geohsr run --window/--bbox/--bands)
    source_subset: tuple | None = None
    notes: dict = field(default_factory=dict)  # extra attrs/tags of the product (e.g. geohsr_auto)
    ensemble: bool = False  # self-ensemble: the network's output averaged over 8 flips/rotations

    @property
    def bands(self) -> int:
        return self.cube.sizes["band"]

    @property
    def planes(self) -> int:
        return self.spec.planes(self.bands)

    @property
    def use_bands(self) -> list[int] | None:
        """Good bands (bbl = 1) for methods that take all bands at once, when some are bad."""
        if self.spec.band_axis != "joint":
            return None
        good = np.flatnonzero(self.cube.coords["good_band"].values != 0)
        return good.tolist() if 0 < good.size < self.bands else None

    def block_kwargs(self) -> dict:
        return dict(method=self.spec.name, scale=self.scale, weights=self.weights,
                    device=self.requested_device, nodata=self.nodata, mask_dilation=self.spec.mask_dilation,
                    use_bands=self.use_bands, guide=self.guide, precision=self.precision,
                    fitted=self.fitted, ensemble=self.ensemble)

    def wrap(self, data) -> xr.DataArray:
        """The HR DataArray around ``data``: band coords, attrs, HR grid, CRS, nodata."""
        cube = self.cube
        coords = {k: v for k, v in cube.coords.items() if v.dims == ("band",)}
        hr = xr.DataArray(data, dims=("band", "y", "x"), coords=coords, name=cube.name)
        hr.attrs = {k: v for k, v in cube.attrs.items() if k not in ("source", "_FillValue", "sensor_product")}
        from . import __version__

        hr.attrs.update(geohsr_method=self.spec.name, geohsr_scale=self.scale, geohsr_version=__version__)
        if self.spec.needs_weights:
            hr.attrs["geohsr_weights"] = weights_provenance(self)
        if self.ensemble:
            hr.attrs["geohsr_ensemble"] = ENSEMBLE_NOTE
        if self.clip is not None:
            hr.attrs["geohsr_clip"] = ",".join("" if v is None else f"{v:g}" for v in self.clip)
        hr.attrs.update(self.notes)
        if self.guide_offset is not None:
            o = self.guide_offset
            hr.attrs["geohsr_guide_offset"] = (f"dy={o['dy']:+.3f} dx={o['dx']:+.3f} LR px "
                                               f"({'corrected' if o['corrected'] else 'not corrected'})")
        if self.guide_mtf is not None:
            hr.attrs["geohsr_guide_mtf"] = mtf_note(self.guide_mtf)
        hr = geo.with_grid(hr, geo.hr_transform(geo.cube_transform(cube), self.scale), cube.rio.crs)
        if self.out_nodata is not None:
            hr = hr.rio.write_nodata(self.out_nodata, encoded=False)
        return hr


def clip_range(cube: xr.DataArray, clip="auto") -> tuple | None:
    """``(lo, hi)`` the product is clipped to. ``"auto"``: ``(0, None)`` for data that cannot be
    negative (an unsigned data type, or GDAL scale/offset coords: digital numbers of a physical
    quantity such as reflectance), else None; ``"none"``/None: None; a number: ``(lo, None)``;
    a pair or ``"lo,hi"`` (either may be empty): that range."""
    if clip is None or (isinstance(clip, str) and clip.lower() == "none"):
        return None
    if isinstance(clip, str) and clip.lower() == "auto":
        unsigned = np.dtype(cube.dtype).kind == "u"
        return (0.0, None) if unsigned or "scale_factor" in cube.coords else None
    if isinstance(clip, str):
        parts = [p.strip() for p in clip.split(",")]
        try:
            vals = [float(p) if p else None for p in parts]
        except ValueError:
            raise InputError(f"--clip takes auto, none, LO or LO,HI (e.g. 0 or 0,10000), not {clip!r}") from None
        clip = vals[0] if len(vals) == 1 else tuple(vals)
    if isinstance(clip, (int, float)):
        return (float(clip), None)
    lo, hi = clip
    if lo is not None and hi is not None and lo > hi:
        raise InputError(f"--clip range {lo},{hi} is empty; give LO <= HI")
    return (lo, hi)


ENSEMBLE_NOTE = "self-ensemble: the network's output averaged over the 8 flips and 90° rotations of each block"


def prepare(cube, method: str, scale, *, guide=None, weights=None, device="auto", dtype=None,
            precision="fp32", coregister="auto", clip="auto", ensemble: bool = False, mtf="measure",
            fit: bool = True) -> Plan:
    """Validate the request (method, scale, guide, data type, nodata, weights) into a Plan.
    ``ensemble``: average the network's output over the eight flips and 90° rotations of each
    block (:func:`ensemble_infer`; eight times the network's time). ``mtf``: for methods that
    reduce the guide through the sensor MTF (:attr:`MethodSpec.uses_mtf`), ``"measure"`` it
    against the guide (:func:`set_mtf`) or its gain at the LR Nyquist (e.g. 0.3). ``fit=False``
    skips the method's scene-wide fit (callers that want only the checked, co-registered guide and
    the scene's MTF: ``auto``'s choice, ``evaluate --guide``, adaptation's measured sensor model)."""
    if precision not in PRECISIONS:
        raise InputError(f"unknown precision {precision!r}; use fp32, bf16 or fp16")
    spec = get_method(method)
    if ensemble and not spec.needs_weights:
        raise MethodError(f"--ensemble averages a network's outputs; {spec.name} has no network: drop "
                          "--ensemble or choose a learned method (dualsr, mulsr, ifmsr, …)")
    s = spec.check_scale(scale)
    cube = open_cube(cube)
    if spec.guided and guide is None:
        raise MethodError(f"method {spec.name!r} needs an HR guide image; pass guide= (--guide RGB.tif)")
    if guide is not None and not spec.guided:
        raise MethodError(f"method {spec.name!r} takes no guide; drop --guide or choose a guided method")
    nb, h, w = cube.shape
    if nb == 0 or h == 0 or w == 0:
        raise InputError(f"the cube is empty (bands, rows, cols = {nb}, {h}, {w}); nothing to super-resolve")
    if np.dtype(cube.dtype).kind not in "iuf":
        raise InputError(f"unsupported data type {cube.dtype}; convert to integer or float")
    out_dtype = np.dtype(dtype or cube.dtype)
    if out_dtype.kind not in "iuf":
        raise InputError(f"unsupported output data type {out_dtype}; choose an integer or float type")
    nodata = cube.rio.nodata
    if nodata is not None and out_dtype.kind in "iu":
        info = np.iinfo(out_dtype)
        if not (np.isfinite(nodata) and info.min <= nodata <= info.max):
            raise InputError(f"nodata {nodata} does not fit output dtype {out_dtype}; choose another dtype")
    wpath = None if weights is None else str(weights)
    if wpath is None and spec.pick_weights is not None:  # the shipped weights that suit this scene
        wpath = spec.pick_weights(s, cube)
    band_map = None
    if spec.bands == "grid":  # the model fixes its bands: resample the input onto its grid
        cube, band_map = resample_to_grid(cube, spec.band_grid(s, wpath), spec.name, with_map=True)
        nodata = cube.rio.nodata
    plan = Plan(spec, s, cube, out_dtype, nodata, nodata, str(resolve_device(device)), wpath,
                precision=precision, requested_device=str(device or "auto"), band_map=band_map,
                ensemble=bool(ensemble))
    if spec.needs_weights:  # load now: bad weights fail here, not at compute time
        load_runner(spec.name, s, plan.weights, plan.device)
    plan.halo = spec.halo_of(s, plan.weights)
    plan.clip = clip_range(cube, clip)
    if guide is not None:
        from .guide import GuideSource

        plan.guide = GuideSource(guide, cube, s, channels=spec.guide_channels)
        if coregister:  # measure the guide's offset and shift it onto the scene
            from .coregister import coregister_guide

            plan.guide_offset = coregister_guide(plan, required=coregister is True)
        if spec.uses_mtf:
            set_mtf(plan, mtf)
    if fit and spec.fit is not None:  # scene-wide parameters, before any block
        plan.fitted = np.asarray(spec.fit(plan), dtype=np.float32)
    return plan


def set_mtf(plan: Plan, mtf="measure") -> dict:
    """The scene sensor's MTF gain at the LR Nyquist, onto ``plan.guide.mtf_gain`` and
    ``plan.guide_mtf``: ``"measure"`` — the blur beyond the guide's
    (:func:`geohsr.coregister.measure_mtf`, on the co-registered guide) plus the guide sensor's own
    (:func:`geohsr.sensor.own_gain`); when it cannot be measured, a warning and ``GAIN_AT_NYQUIST``
    — or a number (checked against ``GAIN_RANGE``)."""
    from .sensor import GAIN_AT_NYQUIST, check_gain, own_gain

    if isinstance(mtf, str) and mtf.strip().lower() == "measure":
        import warnings

        from .coregister import measure_mtf

        info = {**measure_mtf(plan), "measured": True}
        if info["gain"] is None:
            warnings.warn(f"the guide's blur relative to the scene could not be measured ({info['why']}); "
                          f"assuming an MTF gain of {GAIN_AT_NYQUIST} at Nyquist (set one with --mtf-gain)")
            info["gain"] = GAIN_AT_NYQUIST
        else:  # the scene sensor's own MTF: the measured blur plus the guide sensor's own
            info["relative"] = info["gain"]
            info["gain"] = own_gain(info["relative"], plan.scale)
    else:
        info = {"gain": check_gain(mtf), "measured": False}
    plan.guide.mtf_gain = float(info["gain"])
    plan.guide_mtf = info
    return info


def mtf_source(info: dict) -> str:
    """Where a plan's MTF gain (:func:`set_mtf`) came from, in words."""
    if not info.get("measured"):
        return "given"
    if "why" in info:
        return f"assumed: not measurable, {info['why']}"
    n = info["windows"]
    return (f"measured against the guide: {info['relative']:.2f} relative to it, R² {info['r2']:.4f} "
            f"({info['r2_default']:.4f} at 0.3) on {n} window{'s' if n != 1 else ''}, plus the guide's own MTF "
            "taken as 0.3 at its Nyquist")


def mtf_note(info: dict) -> str:
    """One line on the MTF gain a plan used (logs, the product's ``geohsr_guide_mtf`` tag)."""
    return f"gain {info['gain']:.2f} at the LR Nyquist ({mtf_source(info)})"


def weights_provenance(plan: Plan) -> str:
    """The weights files a plan's method runs with and their sha256 (for the product's tags):
    ``"coarsr_x4_compact.safetensors sha256:ab12…; …"``; given files by name, shipped ones as in
    the catalogue."""
    from pathlib import Path

    from . import weights as W

    given = [p.strip() for p in str(plan.weights).split(",")] if plan.weights else []
    if given and plan.spec.needs_weights:  # and the files they bring along (W.with_companions)
        given = list(dict.fromkeys(given + list(W.with_companions(given).values())))
    shipped = {str(W.models_dir() / e["file"]): e["sha256"] for e in W.catalog()}
    parts = [f"{Path(p).name} sha256:{shipped[p]} (shipped)" if p in shipped else
             f"{Path(p).name} sha256:{W.sha256(p)}" for p in given]
    if not given:
        for s in plan.spec.scales_of_weights(plan.scale):
            hits = plan.spec.shipped_entries(s)
            if hits:
                parts.append(f"{hits[0]['file']} sha256:{hits[0]['sha256']} (shipped)")
    return "; ".join(parts)


def apply_band_map(data: np.ndarray, band_map) -> np.ndarray:
    """``(idx, matrix, nodata)``: the bands ``idx`` of ``data`` combined by ``matrix``; pixels
    that are nodata/NaN in any contributing band become NaN."""
    idx, mat, nodata = band_map
    raw = np.asarray(data)[idx]
    x = raw.astype(np.float32)
    bad = ~np.isfinite(x)
    if nodata is not None and np.isfinite(nodata):
        bad |= raw == nodata
    x[bad] = 0.0
    out = np.tensordot(mat, x, axes=(1, 0)).astype(np.float32, copy=False)
    if bad.any():  # invalid only where a band with non-zero weight is invalid
        out[np.tensordot((mat > 0).astype(np.float32), bad.astype(np.float32), axes=(1, 0)) > 0] = np.nan
    return out


def resample_to_grid(cube: xr.DataArray, grid: dict, method: str = "the model", with_map: bool = False):
    """The cube's good bands resampled onto a model's wavelength grid (Gaussian SRFs of the
    grid's FWHM evaluated at the input's band centres; lazy for dask input). Invalid pixels
    (nodata, NaN) stay invalid (NaN → the cube's nodata on output). ``with_map``: also return
    the band map (for :func:`apply_band_map` on windows read later)."""
    from . import degrade

    wl = cube.coords["wavelength"].values.astype(np.float64)
    good = np.isfinite(wl) & (cube.coords["good_band"].values != 0)
    centres = np.asarray(grid["wavelength"], np.float64)
    lo, hi = float(centres.min()), float(centres.max())
    if not good.any():
        raise InputError(f"{method} works on {lo:.0f}–{hi:.0f} nm and needs band wavelengths; this "
                         "cube has none (set them: ENVI 'wavelength', GDAL band tags or STAC eo:bands)")
    try:
        m = degrade.resample_matrix(wl[good], centres, grid["fwhm"])
    except ValueError as e:
        raise InputError(f"the cube ({np.nanmin(wl[good]):.0f}–{np.nanmax(wl[good]):.0f} nm) does not "
                         f"cover {method}'s bands {lo:.0f}–{hi:.0f} nm ({e}); pick another method or "
                         "weights trained for this range") from None
    idx = np.flatnonzero(good)
    nodata = cube.rio.nodata
    band_map = (idx, m.astype(np.float32), nodata)
    data = cube.data
    if isinstance(data, dsa.Array):
        data = data.rechunk({0: -1})
        out = data.map_blocks(apply_band_map, band_map, dtype=np.float32,
                              chunks=((len(centres),),) + data.chunks[1:])
    else:
        out = apply_band_map(np.asarray(data), band_map)
    res = xr.DataArray(out, dims=("band", "y", "x"), name=cube.name,
                       coords={"band": np.arange(1, len(centres) + 1), "wavelength": ("band", centres),
                               "fwhm": ("band", np.full(len(centres), float(grid["fwhm"]))),
                               "band_name": ("band", [f"{c:.1f} nm" for c in centres]),
                               "good_band": ("band", np.ones(len(centres), np.int8))})
    res.attrs = {k: v for k, v in cube.attrs.items() if k not in ("_FillValue",)}
    res = geo.with_grid(res, geo.cube_transform(cube), cube.rio.crs)
    if nodata is not None:
        res = res.rio.write_nodata(nodata, encoded=False)
    return (res, band_map) if with_map else res


def sr_block(block, norm, *, sides, origin=(0, 0), **kw):
    """Super-resolve one block (with halo) and crop the halo.

    Returns float32 planes: the HR bands (NaN where the input was invalid), then the method's
    auxiliary planes (``MethodSpec.aux_per_band`` blocks of one plane per band in data units,
    then ``aux_extra`` unitless planes). With ``use_bands`` (the good bands of a method that
    takes all bands at once) the model sees only those bands; the others come back as NaN, so
    bad bands never feed the band recurrence."""
    return sr_blocks([(block, sides, origin)], norm, **kw)[0]


def _dihedral(t: torch.Tensor, k: int, inverse: bool = False) -> torch.Tensor:
    """The ``k``-th (0–7) of the eight flips/90° rotations of the last two axes, or its inverse."""
    if inverse:
        t = t.flip(-1) if k >= 4 else t
        return torch.rot90(t, -(k % 4), (-2, -1))
    t = torch.rot90(t, k % 4, (-2, -1))
    return t.flip(-1) if k >= 4 else t


def ensemble_infer(runner, args: list[torch.Tensor], precision: str, spatial: int) -> torch.Tensor:
    """:func:`geohsr.device.infer` averaged over the eight flips and 90° rotations of the blocks
    (the "self-ensemble" of single-image SR): each copy of the first ``spatial`` arguments (the LR
    blocks, then the guide windows) goes through the network, its output is turned back, and the
    outputs are averaged. Block sides are preserved as a set, so any block a method takes works."""
    acc = None
    for k in range(8):
        a = [_dihedral(x, k).contiguous() if i < spatial else x for i, x in enumerate(args)]
        y = _dihedral(infer(runner, a, precision), k, inverse=True)
        acc = y.clone() if acc is None else acc.add_(y)
    return acc.div_(8)


def sr_blocks(items, norm, *, method, scale, weights, device, nodata, mask_dilation,
               use_bands=None, guide=None, precision="fp32", fitted=None, ensemble=False):
    """:func:`sr_block` for several ``(block, sides, origin)`` at once: blocks of the same shape
    go through the model as one device batch (:func:`geohsr.device.infer`; with ``ensemble``,
    :func:`ensemble_infer`)."""
    spec = get_method(method)
    runner = load_runner(method, scale, weights, device)
    norm = float(norm)
    pre = []
    for block, sides, origin in items:
        x = np.asarray(block)
        valid = valid_mask(x, nodata)
        xf = fill_invalid(x.astype(np.float32, copy=False), valid)
        if norm != 1.0:
            xf = xf / np.float32(norm)
        if use_bands is not None:
            xf = xf[list(use_bands)]
        g = None
        if guide is not None:  # the guide window under this block (halo included), read now
            g = guide.window(origin[0] * scale, origin[1] * scale, x.shape[1] * scale, x.shape[2] * scale)
        pre.append((np.ascontiguousarray(xf, dtype=np.float32), g, valid, sides))
    groups: dict[tuple, list[int]] = {}
    for i, (xf, g, _, _) in enumerate(pre):
        groups.setdefault((xf.shape, None if g is None else g.shape), []).append(i)
    out: list = [None] * len(pre)
    for idx in groups.values():
        args = [torch.from_numpy(np.stack([pre[i][0] for i in idx]))]
        if guide is not None:
            args.append(torch.from_numpy(np.stack([pre[i][1] for i in idx])))
        if fitted is not None:  # in data units: a normalised method sees them normalised too
            f = fitted / np.float32(norm) if spec.fit_in_data_units and spec.normalise and norm != 1.0 else fitted
            args.append(torch.from_numpy(np.repeat(f[None], len(idx), 0)))
        if spec.uses_mtf and guide is not None:  # the scene's MTF gain (set_mtf), one per block
            args.append(torch.full((len(idx),), float(guide.mtf_gain)))
        y = (ensemble_infer(runner, args, precision, 1 + (guide is not None)) if ensemble
             else infer(runner, args, precision)).numpy()
        for k, i in enumerate(idx):
            out[i] = post_block(y[k], spec, pre[i][2], pre[i][3], norm, scale, mask_dilation, use_bands)
    return out


def post_block(y, spec, valid, sides, norm, scale, mask_dilation, use_bands):
    """Model output of one block → planes in data units, halo cropped, NaN where invalid."""
    nb = valid.shape[0]
    per = 1 + spec.aux_per_band
    lg = nb if use_bands is None else len(use_bands)
    if norm != 1.0:
        y[:lg * per] *= np.float32(norm)
    if use_bands is not None:  # put the good bands back among all bands
        full = np.empty((nb * per + spec.aux_extra,) + y.shape[1:], dtype=np.float32)
        for k in range(per):
            blk = full[k * nb:(k + 1) * nb]
            blk[:] = np.nan if k == 0 else 0.0
            blk[list(use_bands)] = y[k * lg:(k + 1) * lg]
        full[nb * per:] = y[lg * per:]
        y = full
    t, b, l, r = (v * scale for v in sides)
    sl = (slice(None), slice(t, y.shape[1] - b), slice(l, y.shape[2] - r))
    y = y[sl]
    if not valid.all():
        hr_invalid = np.logical_not(upsample_mask(valid, scale, mask_dilation)[sl])
        y[:nb][hr_invalid] = np.nan
    return y


# -- scene-wide passes -------------------------------------------------------------------------
def absmax(block: np.ndarray, nodata) -> float:
    """The largest valid absolute value of a block (0 for an empty one)."""
    v = valid_mask(block, nodata)
    a = np.abs(np.where(v, block, 0).astype(np.float64))
    return float(a.max()) if a.size else 0.0


def norm_scale(maxima) -> float:
    """The normalisation scale of a scene from its blocks' :func:`absmax`."""
    return max(max(maxima, default=0.0), 1e-12)


def block_stat(spec: MethodSpec, planes: np.ndarray, bands: int, good=None) -> tuple[float, float]:
    """``(sum, count)`` of the method's scene-wide statistic over one block's planes (``good``:
    the bands it is taken over, :attr:`Plan.use_bands`)."""
    return spec.block_stat(planes, bands, good)


def finish(spec: MethodSpec, planes: np.ndarray, bands: int, stat=None) -> np.ndarray:
    """The HR bands of a block's planes (with the scene's summed statistic, when the method has one)."""
    if spec.finish is None:
        return planes[:bands]
    return spec.finish(planes, bands, float(stat[0]), float(stat[1]))


def cast_planes(hr: np.ndarray, out_dtype, out_nodata, give_up: bool = False, clip=None) -> np.ndarray:
    """Float HR bands → the product's data type (NaN/inf → nodata), clipped to ``clip`` (lo, hi)
    first. ``give_up``: ``hr`` may be overwritten (cast a few bands at a time, no float copies)."""
    if clip is not None and (clip[0] is not None or clip[1] is not None):
        if not give_up:
            hr = hr.copy()
        np.clip(hr, clip[0], clip[1], out=hr)  # NaN stays NaN
    if give_up:
        return cast_finite(hr, out_dtype, out_nodata)
    return cast(hr, out_dtype, out_nodata, np.isfinite(hr))
