"""The dask driver: :func:`superresolve` runs the engine (:mod:`geohsr.engine`) over dask chunks
(lazy for dask input, tiled in memory otherwise); and :func:`spectral_range`."""

from __future__ import annotations

import dask.array as dsa
import numpy as np
import xarray as xr

from . import engine
from .errors import InputError
from .io import open_cube
from .methods import get_method
from .tiling import plan_chunks, tiled_map

EAGER_BLOCK = 512  # LR pixels per side for in-memory inputs
GLOBAL_TILE = 192  # smallest default tile (LR px) of global-context methods (see benchmarks)


def superresolve(cube, method: str | None = None, scale: int = 4, *, guide=None, weights=None,
                 device: str = "auto", dtype=None, chunks=None, precision: str = "fp32",
                 coregister="auto", adapt: dict | None = None, clip="auto", merge: str | None = None,
                 ensemble: bool = False, mtf="measure") -> xr.DataArray:
    """Super-resolve a georeferenced cube by an integer ``scale`` with ``method`` (``"auto"``:
    :func:`auto_method`; default: ``"auto"`` with a guide — the candidate best on this scene,
    recorded in ``attrs["geohsr_auto"]`` —, else ``"bicubic"``).

    ``cube``: DataArray ``(band, y, x)`` (rioxarray conventions) or anything
    :func:`geohsr.open_cube` opens. Dask-backed input gives a lazy result with chunks scaled by
    ``scale``; in-memory input is processed in tiles and returned in memory. The result keeps
    CRS and bounds (transform · scale(1/s)), band coords (wavelength, fwhm, band names, bbl),
    nodata and, unless ``dtype`` says otherwise, the data type. ``precision="bf16"`` or
    ``"fp16"`` runs the networks under ``torch.autocast`` (for GPUs; the PSNR cost is measured in
    ``benchmarks/bench_precision.py``). With a guide, ``coregister`` measures the guide's offset
    from the scene (:mod:`geohsr.coregister`) and shifts the guide onto it when it is at least
    0.1 LR px (``"auto"``; ``True``: refuse when it cannot be measured; ``False``: skip); the
    result's ``attrs["geohsr_guide_offset"]`` says what was found. ``adapt=dict(minutes=10)``
    first fine-tunes the method's network on this scene (:func:`geohsr.adapt.adapt`, which takes
    the dict's keys: minutes, batches, out, seed, …) and applies the weights it keeps;
    ``attrs["geohsr_adapted"]`` records the held-out numbers. ``clip``: the range output values
    are clipped to, ``(lo, hi)`` (either None), ``"none"``, or ``"auto"`` (default: at 0 from below
    when the data cannot be negative — an unsigned input type, or GDAL scale/offset coords, i.e.
    digital numbers of a physical quantity —, else nothing; :func:`geohsr.engine.clip_range`).
    ``ensemble=True`` averages a learned method's output over the eight flips and 90° rotations
    of each block (self-ensemble: 8× the network's time; the gain is in ``benchmarks/RESULTS.md``);
    ``attrs["geohsr_ensemble"]`` records it. ``mtf``: for the methods that reduce the guide
    through the sensor's MTF (MTF-GLP, GSA, DualSR-GLP, and ``auto``'s measurement),
    ``"measure"`` (default) the blur of the scene relative to the guide as a Gaussian MTF gain at
    the LR Nyquist (:func:`geohsr.coregister.measure_mtf`), or give the gain (e.g. 0.3);
    ``attrs["geohsr_guide_mtf"]`` says which.
    """
    if merge is not None:
        return merged(cube, method, scale, merge, guide=guide, weights=weights, device=device, dtype=dtype,
                      chunks=chunks, precision=precision, coregister=coregister, clip=clip, ensemble=ensemble,
                      mtf=mtf)
    notes = {}
    if method is None:
        method = "auto" if guide is not None else "bicubic"
    if str(method).lower() == "auto":
        method, notes = auto_method(cube, scale, guide, device, mtf=mtf)
        if not get_method(method).guided:  # the guide did not help on this scene
            guide = None
        skipped = network_only_options(method, adapt=adapt, ensemble=ensemble)
        notes.update({tag: note for tag, note, _ in skipped.values()})
        adapt = None if "adapt" in skipped else adapt
        ensemble = ensemble and "ensemble" not in skipped
    if adapt:
        from .adapt import adapt as run_adapt

        opts = {"progress": False, **dict(adapt), "raise_on_interrupt": True}  # Ctrl-C: stop, do not go on
        res = run_adapt(cube, method, scale, weights=weights, guide=guide, **opts)
        weights = res.weights
        notes["geohsr_adapted"] = res.summary()
    plan = engine.prepare(cube, method, scale, guide=guide, weights=weights, device=device, dtype=dtype,
                          precision=precision, coregister=coregister, clip=clip, ensemble=ensemble, mtf=mtf)
    plan.notes.update(notes)
    return compute(plan, chunks)


_NETWORK_ONLY = (("adapt", "geohsr_adapted", "not adapted", "which has no network to adapt"),
                 ("ensemble", "geohsr_ensemble", "not applied", "which has no network"))


def network_only_options(method: str, *, adapt, ensemble) -> dict:
    """The options given that need a network which ``method`` (auto's choice) does not have:
    ``{option: (product tag, note, reason)}`` (options ``adapt``, ``ensemble``); the caller
    drops those options and records the notes instead of failing."""
    from .adapt import adaptable

    lacking = {"adapt": bool(adapt) and not adaptable(method),
               "ensemble": bool(ensemble) and not get_method(method).needs_weights}
    out = {}
    for option, tag, head, why in _NETWORK_ONLY:
        if lacking[option]:
            reason = f"auto chose {method}, {why}"
            out[option] = (tag, f"{head}: {reason}", reason)
    return out


def auto_method(cube, scale, guide=None, device="auto", mtf="measure") -> tuple[str, dict]:
    """``method="auto"``: with a guide, the candidate best on this scene at reduced resolution
    (:mod:`geohsr.select`, its reduction through the scene's MTF: ``mtf`` as in
    :func:`superresolve`); without, DualSR where shipped weights cover the scale, else bicubic.
    Returns the method and the attrs that record the choice."""
    from .methods import check_scale

    check_scale(scale)  # a bad scale fails before auto says what it chose
    if guide is None:
        from .methods import default_method, dualsr_scales

        name = default_method(int(scale))
        if name == "bicubic":  # say why, so a user asking ×7 (or a scale with no weights) is not surprised
            s, have = int(scale), ", ".join(f"×{k}" for k in dualsr_scales()) or "none"
            why = (f"no DualSR weights for ×{s}, `geohsr train dualsr --scale {s}` makes them"
                   if s in get_method("dualsr").scales else f"DualSR does not run at ×{s}")
            return name, {"geohsr_auto": f"auto: bicubic ({why}; shipped DualSR scales: {have})"}
        return name, {}
    from .select import choose, summary

    name, table = choose(cube, guide, int(scale), device=device, mtf=mtf)
    return name, {"geohsr_auto": summary(table, int(scale))}


def compute(plan: engine.Plan, chunks=None) -> xr.DataArray:
    """The dask driver on a prepared plan (what :func:`superresolve` returns)."""
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
    norm = _norm_scale(data, nodata) if spec.normalise else 1.0
    out = tiled_map(data, engine.sr_block, s, plan.halo, np.float32, (norm,), plan.block_kwargs(),
                    planes=plan.planes, blend=blend)
    out = _finish(plan, out)
    out = out.map_blocks(engine.cast_planes, out_dtype, out_nodata, clip=plan.clip, dtype=out_dtype,
                         meta=np.empty((0, 0, 0), dtype=out_dtype))

    hr = plan.wrap(out)
    if eager:
        hr = hr.compute(scheduler="threads")
    return hr


def merged(cube, method: str, scale: int, merge: str = "bicubic", **kw) -> xr.DataArray:
    """The whole cube from a method whose weights fix a band grid (SNLSR/A-SNLSR, ``bands="grid"``):
    the input's bands inside the grid's range from ``method`` (its grid bands interpolated
    linearly in wavelength to the input's band centres), the others from ``merge`` (an unguided
    method: bicubic, DualSR, …). ``attrs["geohsr_merge"]`` says which bands came from which."""
    cube = open_cube(cube)
    spec = get_method(method)
    if spec.bands != "grid":
        raise InputError(f"merge= is for methods with a fixed band grid (snlsr, a-snlsr); {spec.name} "
                         "returns every band already")
    if get_method(merge).guided or get_method(merge).bands == "grid":
        raise InputError(f"merge= takes an unguided method over any bands (bicubic, dualsr, coarsr), not {merge!r}")
    guide = kw.pop("guide", None)
    if guide is not None:
        raise InputError("merge= does not take a guide")
    model = superresolve(cube, method, scale, **kw)
    if not get_method(merge).needs_weights:  # a self-ensemble applies to networks only
        kw["ensemble"] = False
    other = superresolve(cube, merge, scale, **kw)
    grid = np.asarray(model.coords["wavelength"].values, float)
    wl = np.asarray(cube.coords["wavelength"].values, float)
    inside = np.isfinite(wl) & (wl >= grid.min()) & (wl <= grid.max()) & (cube.coords["good_band"].values != 0)
    m = np.zeros((len(wl), len(grid)), np.float32)  # linear interpolation along wavelength
    for i in np.flatnonzero(inside):
        k = int(np.clip(np.searchsorted(grid, wl[i]), 1, len(grid) - 1))
        f = (wl[i] - grid[k - 1]) / (grid[k] - grid[k - 1])
        m[i, k - 1], m[i, k] = 1 - f, f
    take = xr.DataArray(inside, dims=("band",))
    data = model.data.astype(np.float32)
    interp = (dsa.tensordot(m, data, axes=(1, 0)) if isinstance(data, dsa.Array)
              else np.tensordot(m, data, axes=(1, 0)))
    nodata = other.rio.nodata
    if nodata is not None and np.isfinite(nodata):  # nodata in the model's product stays nodata
        bad = model.data == nodata
        bad = bad.any(axis=0) if isinstance(bad, dsa.Array) else np.any(bad, axis=0)
        interp = dsa.where(bad[None], nodata, interp) if isinstance(interp, dsa.Array) else \
            np.where(bad[None], nodata, interp)
    interp = other.copy(data=interp.astype(other.dtype) if other.dtype.kind == "f" else
                        (dsa.rint(interp) if isinstance(interp, dsa.Array) else np.rint(interp)).astype(other.dtype))
    out = xr.where(take, interp, other, keep_attrs=True).transpose("band", "y", "x")
    out.attrs = dict(other.attrs)
    out = out.rio.write_crs(other.rio.crs) if other.rio.crs is not None else out
    if nodata is not None:
        out = out.rio.write_nodata(nodata, encoded=False)
    from .methods._guided import _ranges_text

    idx = np.flatnonzero(inside)
    note = (f"{spec.name} covers {grid.min():.0f}–{grid.max():.0f} nm: bands "
            f"{_ranges_text(idx, wl) if len(idx) else 'none'} come from {spec.name} (interpolated from its "
            f"{len(grid)}-band grid); the other {len(wl) - len(idx)} from {get_method(merge).name}")
    weights = "; ".join(a.attrs["geohsr_weights"] for a in (model, other) if a.attrs.get("geohsr_weights"))
    out.attrs.update(geohsr_method=f"{spec.name}+{get_method(merge).name}", geohsr_merge=note)
    if weights:
        out.attrs["geohsr_weights"] = weights
    return out


def _norm_scale(data: dsa.Array, nodata):
    """The normalisation scale (:func:`engine.absmax` per chunk, then :func:`engine.norm_scale`), lazy."""
    def part(b):
        return np.array(engine.absmax(b, nodata)).reshape((1, 1, 1))

    maxima = dsa.map_blocks(part, data, chunks=(1, 1, 1), dtype=np.float64)
    return dsa.maximum(maxima.max(), 1e-12)


def _finish(plan: engine.Plan, planes: dsa.Array) -> dsa.Array:
    """The HR bands of every chunk (:func:`engine.finish`): with a scene-wide statistic, summed
    lazily over all chunks (:func:`engine.block_stat`) first."""
    spec, nb, good = plan.spec, plan.bands, plan.use_bands
    chunks = ((nb,),) + planes.chunks[1:]
    if spec.finish is None:
        return planes if planes.shape[0] == nb else planes[:nb].rechunk(chunks)

    def part(b, i):
        return np.array(engine.block_stat(spec, b, nb, good)[i]).reshape((1, 1, 1))

    one = tuple((1,) * len(c) for c in planes.chunks)
    total = dsa.map_blocks(part, planes, 0, chunks=one, dtype=np.float64).sum()
    count = dsa.map_blocks(part, planes, 1, chunks=one, dtype=np.float64).sum()

    def fin(b, t, c):
        return engine.finish(spec, b, nb, (t, c))

    return dsa.map_blocks(fin, planes, total, count, chunks=chunks, dtype=np.float32)


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
