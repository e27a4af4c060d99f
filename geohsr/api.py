"""Public entry points: :func:`superresolve` and :func:`methods`."""

from __future__ import annotations

from dataclasses import dataclass

import dask.array as dsa
import numpy as np
import torch
import xarray as xr

from . import geo
from .dtypes import cast
from .errors import InputError, MethodError
from .io import open_cube
from .device import PRECISIONS, infer
from .methods import MethodSpec, get_method, load_runner, resolve_device
from .tiling import fill_invalid, plan_chunks, tiled_map, upsample_mask, valid_mask

EAGER_BLOCK = 512  # LR pixels per side for in-memory inputs
GLOBAL_TILE = 192  # smallest default tile (LR px) of global-context methods (see benchmarks)


def _sr_block(block, norm, *, sides, origin=(0, 0), **kw):
    """Super-resolve one block (with halo) and crop the halo.

    Returns float32 planes: the HR bands (NaN where the input was invalid), then the method's
    auxiliary planes (``MethodSpec.aux_per_band`` blocks of one plane per band in data units,
    then ``aux_extra`` unitless planes). With ``use_bands`` (the good bands of a method that
    takes all bands at once) the model sees only those bands; the others come back as NaN, so
    bad bands never feed the band recurrence."""
    return _sr_blocks([(block, sides, origin)], norm, **kw)[0]


def _sr_blocks(items, norm, *, method, scale, weights, device, nodata, mask_dilation,
               use_bands=None, guide=None, precision="fp32"):
    """:func:`_sr_block` for several ``(block, sides, origin)`` at once: blocks of the same shape
    go through the model as one device batch (:func:`geohsr.device.infer`)."""
    from .methods import get_method

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
        y = infer(runner, args, precision).numpy()
        for k, i in enumerate(idx):
            out[i] = _post_block(y[k], spec, pre[i][2], pre[i][3], norm, scale, mask_dilation, use_bands)
    return out


def _post_block(y, spec, valid, sides, norm, scale, mask_dilation, use_bands):
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


def _cast_block(y, *, out_dtype, out_nodata):
    return cast(y, out_dtype, out_nodata, np.isfinite(y))


def _norm_scalar(data: dsa.Array, nodata):
    """Global normalisation scale: the largest valid absolute value (lazy 0-d dask array)."""
    def absmax(b):
        v = valid_mask(b, nodata)
        a = np.abs(np.where(v, b, 0).astype(np.float64))
        return np.array(a.max() if a.size else 0.0).reshape((1, 1, 1))

    m = dsa.map_blocks(absmax, data, chunks=(1, 1, 1), dtype=np.float64).max()
    return dsa.maximum(m, 1e-12)


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
                    use_bands=self.use_bands, guide=self.guide, precision=self.precision)

    def wrap(self, data) -> xr.DataArray:
        """The HR DataArray around ``data``: band coords, attrs, HR grid, CRS, nodata."""
        cube = self.cube
        coords = {k: v for k, v in cube.coords.items() if v.dims == ("band",)}
        hr = xr.DataArray(data, dims=("band", "y", "x"), coords=coords, name=cube.name)
        hr.attrs = {k: v for k, v in cube.attrs.items() if k not in ("source", "_FillValue", "geohsr_band_map")}
        hr.attrs.update(geohsr_method=self.spec.name, geohsr_scale=self.scale)
        hr = geo.with_grid(hr, geo.hr_transform(geo.cube_transform(cube), self.scale), cube.rio.crs)
        if self.out_nodata is not None:
            hr = hr.rio.write_nodata(self.out_nodata, encoded=False)
        return hr


def prepare(cube, method: str, scale, *, guide=None, weights=None, device="auto", dtype=None,
            precision="fp32") -> Plan:
    """Validate the request (method, scale, guide, data type, nodata, weights) into a Plan."""
    if precision not in PRECISIONS:
        raise InputError(f"unknown precision {precision!r}; use fp32, bf16 or fp16")
    spec = get_method(method)
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
    if spec.bands == "grid":  # the model fixes its bands: resample the input onto its grid
        from .methods.swir import model_grid

        cube = resample_to_grid(cube, model_grid(spec.name, s, wpath), spec.name)
        nodata = cube.rio.nodata
    plan = Plan(spec, s, cube, out_dtype, nodata, nodata, str(resolve_device(device)), wpath,
                precision=precision, requested_device=str(device or "auto"))
    if spec.needs_weights:  # load now: bad weights fail here, not at compute time
        load_runner(spec.name, s, plan.weights, plan.device)
    plan.halo = spec.halo_of(s, plan.weights)
    if guide is not None:
        from .guide import GuideSource

        plan.guide = GuideSource(guide, cube, s)
    return plan


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


def resample_to_grid(cube: xr.DataArray, grid: dict, method: str = "the model") -> xr.DataArray:
    """The cube's good bands resampled onto a model's wavelength grid (Gaussian SRFs of the
    grid's FWHM evaluated at the input's band centres; lazy for dask input). Invalid pixels
    (nodata, NaN) stay invalid (NaN → the cube's nodata on output)."""
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
    res.attrs["geohsr_band_map"] = band_map  # lets the streaming path resample windows it reads
    res = geo.with_grid(res, geo.cube_transform(cube), cube.rio.crs)
    return res.rio.write_nodata(nodata, encoded=False) if nodata is not None else res


def _finish_lazy(spec, planes: dsa.Array, nb: int, good=None) -> dsa.Array:
    """Reduce the method's scene-wide statistic lazily, then finish every block with it."""
    def part(b, i):
        return np.array(spec.block_stat(b, nb, good)[i]).reshape((1, 1, 1))

    one = tuple((1,) * len(c) for c in planes.chunks)
    total = dsa.map_blocks(part, planes, 0, chunks=one, dtype=np.float64).sum()
    count = dsa.map_blocks(part, planes, 1, chunks=one, dtype=np.float64).sum()

    def fin(b, t, c):
        return spec.finish(b, nb, float(t), float(c))

    return dsa.map_blocks(fin, planes, total, count, chunks=((nb,),) + planes.chunks[1:],
                          dtype=np.float32)


def superresolve(cube, method: str = "bicubic", scale: int = 4, *, guide=None, weights=None,
                 device: str = "auto", dtype=None, chunks=None, precision: str = "fp32") -> xr.DataArray:
    """Super-resolve a georeferenced cube by an integer ``scale`` with ``method``.

    ``cube``: DataArray ``(band, y, x)`` (rioxarray conventions) or anything
    :func:`geohsr.open_cube` opens. Dask-backed input gives a lazy result with chunks scaled by
    ``scale``; in-memory input is processed in tiles and returned in memory. The result keeps
    CRS and bounds (transform · scale(1/s)), band coords (wavelength, fwhm, band names, bbl),
    nodata and, unless ``dtype`` says otherwise, the data type. ``precision="bf16"`` or
    ``"fp16"`` runs the networks under ``torch.autocast`` (for GPUs; the PSNR cost is measured in
    ``benchmarks/bench_precision.py``).
    """
    plan = prepare(cube, method, scale, guide=guide, weights=weights, device=device, dtype=dtype,
                   precision=precision)
    spec, s, cube, nb = plan.spec, plan.scale, plan.cube, plan.bands
    out_dtype, nodata, out_nodata = plan.out_dtype, plan.nodata, plan.out_nodata

    data = cube.data
    eager = not isinstance(data, dsa.Array)
    if eager:
        data = dsa.from_array(np.asarray(data), chunks=(nb, EAGER_BLOCK, EAGER_BLOCK))
    if chunks is not None:
        data = data.rechunk(chunks if not isinstance(chunks, dict)
                            else tuple(chunks.get(d, -1) for d in ("band", "y", "x")))
    blend = spec.context == "global"
    data = plan_chunks(data, s, plan.halo, spec.band_axis == "joint",
                       keep_spatial=chunks is not None, min_side=GLOBAL_TILE if blend else 0)
    norm = _norm_scalar(data, nodata) if spec.normalise else 1.0
    out = tiled_map(data, _sr_block, s, plan.halo, np.float32, (norm,), plan.block_kwargs(),
                    planes=plan.planes, blend=blend)
    if spec.finish is not None:
        out = _finish_lazy(spec, out, nb, plan.use_bands)
    out = out.map_blocks(_cast_block, dtype=out_dtype, out_dtype=out_dtype, out_nodata=out_nodata,
                         meta=np.empty((0, 0, 0), dtype=out_dtype))

    hr = plan.wrap(out)
    if eager:
        hr = hr.compute(scheduler="threads")
    return hr


def spectral_range(cube, lo: float, hi: float) -> xr.DataArray:
    """The bands of ``cube`` with ``lo <= wavelength <= hi`` nm (e.g. SWIR1 1000–1700)."""
    cube = open_cube(cube)
    wl = cube.coords["wavelength"].values
    if np.all(np.isnan(wl)):
        raise InputError("the cube has no wavelengths; a spectral range cannot be selected")
    idx = np.flatnonzero((wl >= lo) & (wl <= hi))
    if idx.size == 0:
        raise InputError(f"no band between {lo} and {hi} nm (the cube covers "
                         f"{np.nanmin(wl):.0f}–{np.nanmax(wl):.0f} nm)")
    return cube.isel(band=idx)
