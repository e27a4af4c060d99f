"""``method="auto"`` with a guide: the candidates measured on the user's own scene, the best kept.

The scene (a central crop of at most ``MAX_SIDE`` LR px a side) is reduced by the scale with
geohsr's sensor model (:mod:`geohsr.sensor`: a Gaussian MTF, by default of the gain measured
between the guide and the scene (:func:`geohsr.coregister.measure_mtf`), then sampling), and so
is the co-registered guide (it lands on the scene's own grid). Every candidate
super-resolves the reduced scene with the reduced guide back to the scene's grid (Wald's
protocol); PSNR (one MSE over the cube, peak = the crop's maximum) is measured on the held-out
second half of the crop along its longer side (the first half is reported too) and the best candidate runs on the real
scene. Candidates: bicubic, the classical fusion methods, the learned guided methods whose
shipped weights cover the scale (DualSR-GLP with DualSR's), and DualSR where its weights do.
"""

from __future__ import annotations

import warnings

import numpy as np
import xarray as xr
from affine import Affine

from . import geo, metrics
from .errors import InputError

MAX_SIDE = 240  # LR px of the crop the candidates are measured on


def candidates(scale: int) -> list[str]:
    """bicubic, every guided method whose shipped weights (if it needs any) cover the scale, and
    DualSR where its weights do."""
    from .methods import default_method, specs

    out = []
    for spec in specs():
        if spec.scales is not None and scale not in spec.scales:
            continue
        if spec.name == "bicubic" or (spec.guided and spec.weights_ready(scale)):
            out.append(spec.name)
    if default_method(scale) == "dualsr":
        out.append("dualsr")
    return out


def central_crop(cube: xr.DataArray, scale: int):
    """``(y0, x0, rows, cols)``: the central window (at most ``MAX_SIDE`` a side, whole LR pixels of
    the scale) where a choice is measured at reduced resolution; refused when the scene is too small."""
    h, w = cube.sizes["y"], cube.sizes["x"]
    ch, cw = min(h, MAX_SIDE) // scale * scale, min(w, MAX_SIDE) // scale * scale
    if min(ch, cw) < 6 * scale or max(ch, cw) < 12 * scale:
        raise InputError(f"the scene ({w}×{h} LR px) is too small to choose a method at ×{scale} "
                         f"(at least {12 * scale}×{6 * scale}); name a method with -m")
    y0, x0 = (h - ch) // 2, (w - cw) // 2
    return y0, x0, ch, cw


def reduced_pair(plan, y0: int, x0: int, ch: int, cw: int):
    """Wald's protocol on a window of a prepared (guided, co-registered) plan: the reference (the
    scene's used bands, invalid pixels 0), its valid mask, and the scene and guide reduced by the
    scale through the sensor model as georeferenced DataArrays, and the guide window it read on the
    HR grid: ``(ref, ok, lr, guide_low, guide_hr)``."""
    import torch

    from .sensor import guide_low
    from .tiling import valid_mask

    s, cube = plan.scale, plan.cube
    bands = plan.use_bands if plan.use_bands is not None else list(range(plan.bands))
    ref = np.asarray(cube.isel(y=slice(y0, y0 + ch), x=slice(x0, x0 + cw)).values)[bands]
    ok = valid_mask(ref, plan.nodata).all(0)
    ref = np.where(ok, ref, 0).astype(np.float32)
    gain = plan.guide.mtf_gain  # the scene's own MTF (engine.set_mtf)
    low = guide_low(torch.from_numpy(ref)[None], s, gain)[0].numpy()
    g = plan.guide.window(y0 * s, x0 * s, ch * s, cw * s)  # the guide on the window's HR grid
    g_low = guide_low(torch.from_numpy(g)[None], s, gain)[0].numpy()  # … on the window's own grid
    t = geo.cube_transform(cube) @ Affine.translation(x0, y0)
    lr = geo.with_grid(xr.DataArray(low, dims=("band", "y", "x"),
                                    coords={k: ("band", v.values[bands]) for k, v in cube.coords.items()
                                            if v.dims == ("band",) and k != "band"}),
                       t @ Affine.scale(s), cube.rio.crs)
    gd = geo.with_grid(xr.DataArray(g_low, dims=("band", "y", "x")), t, cube.rio.crs)
    return ref, ok, lr, gd, g


def choose(cube, guide, scale: int, *, device: str = "auto", names=None, mtf="measure") -> tuple[str, list[dict]]:
    """The best candidate for this scene and guide, and the table ``[{method, psnr_held_out,
    psnr_other_half}]`` (best first). ``mtf``: the scene's MTF gain, or ``"measure"``
    (:func:`geohsr.engine.prepare`); the candidates run with it on the reduced pair."""
    from .api import superresolve
    from .engine import prepare

    s = int(scale)
    plan = prepare(cube, "mtf-glp", s, guide=guide, device=device, mtf=mtf, fit=False)  # checks, co-registers, MTF
    y0, x0, ch, cw = central_crop(plan.cube, s)
    ref, ok, lr, gd, _ = reduced_pair(plan, y0, x0, ch, cw)
    peak = float(np.abs(ref[:, ok]).max()) or 1.0
    wide = cw >= ch  # held out: the second half along the longer side
    half = (cw if wide else ch) // 2
    rows = []
    for name in names or candidates(s):
        from .methods import get_method

        spec = get_method(name)
        try:
            with warnings.catch_warnings():  # the candidates' own notes are not the user's business here
                warnings.simplefilter("ignore")
                sr = superresolve(lr, method=name, scale=s, guide=gd if spec.guided else None, device=device,
                                  dtype="float32", coregister=False, mtf=plan.guide.mtf_gain).values
        except Exception as exc:  # noqa: BLE001  (a candidate that cannot run is left out, said why)
            rows.append({"method": name, "psnr_held_out": None, "psnr_other_half": None,
                         "note": str(exc).splitlines()[0][:120]})
            continue
        scores = []
        for part in (slice(half, None), slice(0, half)):
            sl = (slice(None), part) if wide else (part, slice(None))
            m = ok[sl]
            scores.append(metrics.psnr(sr[(slice(None),) + sl][:, m] / peak, ref[(slice(None),) + sl][:, m] / peak))
        rows.append({"method": name, "psnr_held_out": round(scores[0], 3), "psnr_other_half": round(scores[1], 3)})
    ran = [r for r in rows if r["psnr_held_out"] is not None]
    if not ran:
        raise InputError("no candidate method could run on this scene and guide; name one with -m")
    ran.sort(key=lambda r: -r["psnr_held_out"])
    return ran[0]["method"], ran + [r for r in rows if r["psnr_held_out"] is None]


def summary(table: list[dict], scale: int) -> str:
    """One line for logs and tags: the winner and every candidate's held-out PSNR."""
    parts = [f"{r['method']} {r['psnr_held_out']:.2f}" for r in table if r["psnr_held_out"] is not None]
    return (f"auto ×{scale}: {table[0]['method']} (held-out PSNR at reduced resolution, dB: "
            + ", ".join(parts) + ")")
