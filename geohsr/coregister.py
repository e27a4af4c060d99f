"""Co-registration of an HR guide with the LR scene: a global sub-pixel shift.

The guide is reduced to the scene's grid with the sensor MTF (:func:`geohsr.sensor.guide_low`),
the scene's bands are averaged into an intensity, and scikit-image's ``phase_cross_correlation`` (upsampled,
1/20 px, both Hann-tapered) measures the shift between the two in windows spread over the scene; the median over
the windows is the scene's offset, their spread its uncertainty. The offset is in LR pixels,
``(dy, dx)``: the guide, as georeferenced, must move ``dy`` LR pixels down and ``dx`` right to
line up with the scene.
"""

from __future__ import annotations

import numpy as np

from .errors import InputError
from .tiling import valid_mask

WINDOW = 64  # LR pixels a side
MIN_VALID = 0.9  # share of a window that must be valid in both
MIN_WINDOW = 24  # a window holds at least MIN_WINDOW² LR px …
MIN_SIDE = 16  # … and MIN_SIDE a side (a 21 × 42 px scene is measured, a 16 × 16 one is not)


def _windows(h: int, w: int, n: int = 4):
    sy, sx = min(WINDOW, h), min(WINDOW, w)
    ys = np.unique(np.linspace(0, h - sy, max(1, min(n, h // sy + 1))).astype(int))
    xs = np.unique(np.linspace(0, w - sx, max(1, min(n, w // sx + 1))).astype(int))
    return (sy, sx), [(int(y), int(x)) for y in ys for x in xs]


def _window_pairs(plan):
    """``((rows, cols), windows)``: the windows of the scene (its used bands) and of the guide on the
    same footprint that are valid in both on at least ``MIN_VALID`` of their pixels, as
    ``[(scene (L, h, w), scene valid (h, w), guide (G, s·h, s·w) with NaN holes, valid in both)]``;
    ``windows`` None when the scene is smaller than a window."""
    cube, s, guide = plan.cube, plan.scale, plan.guide
    bands = plan.use_bands if plan.use_bands is not None else list(range(plan.bands))
    (sy, sx), wins = _windows(cube.sizes["y"], cube.sizes["x"])
    if min(sy, sx) < MIN_SIDE or sy * sx < MIN_WINDOW ** 2:
        return (sy, sx), None
    out = []
    for y0, x0 in wins:
        raw = np.asarray(cube.isel(y=slice(y0, y0 + sy), x=slice(x0, x0 + sx)).values)[bands]
        ok = valid_mask(raw, plan.nodata).all(0)
        g = guide.window(y0 * s, x0 * s, sy * s, sx * s, fill=False)
        m = ok & np.isfinite(g).all(0).reshape(sy, s, sx, s).all((1, 3))
        if m.mean() >= MIN_VALID:
            out.append((raw, ok, g, m))
    return (sy, sx), out


def estimate_offset(plan) -> dict:
    """``{"dy", "dx", "spread", "windows"}`` in LR pixels between ``plan.guide`` and the scene."""
    import torch
    from skimage.registration import phase_cross_correlation

    from .sensor import guide_low

    s = plan.scale
    (sy, sx), windows = _window_pairs(plan)
    if windows is None:
        W, H = plan.cube.sizes["x"], plan.cube.sizes["y"]
        raise InputError(f"the scene ({W}×{H} LR px) is too small to estimate the guide's offset "
                         f"(at least {MIN_WINDOW}×{MIN_WINDOW}, or as many pixels with "
                         f"{MIN_SIDE} a side); pass --no-coregister")
    pairs = [(raw.astype(np.float64), guide_low(torch.from_numpy(np.nan_to_num(g))[None], s)[0].numpy()
              .mean(0).astype(np.float64), m) for raw, _, g, m in windows]
    if not pairs:
        raise InputError("the guide and the scene overlap too little (no window of "
                         f"{sx}×{sy} LR px valid in both) to estimate the guide's offset; "
                         "check the guide's georeference or pass --no-coregister")
    shifts = []
    taper = np.outer(np.hanning(sy), np.hanning(sx))  # no edge discontinuity pulling towards 0
    for r, g, m in pairs:
        inten = r.mean(0)  # (a regression onto the guide would partly absorb the shift itself)
        inten = np.where(m, inten, inten[m].mean())
        gg = np.where(m, g, g[m].mean())
        shift, _, _ = phase_cross_correlation((inten - inten.mean()) * taper, (gg - gg.mean()) * taper,
                                              upsample_factor=20, normalization=None)
        shifts.append(shift)
    shifts = np.asarray(shifts)
    dy, dx = np.median(shifts, 0)
    spread = float(np.median(np.abs(shifts - [dy, dx]).max(1))) if len(shifts) > 1 else 0.0
    # phase_cross_correlation(reference, moving) gives the shift that registers moving (the guide)
    # onto the reference (the scene) -- measured: the guide's content offset itself
    return {"dy": float(dy), "dx": float(dx), "spread": spread, "windows": len(shifts)}


MIN_CORRECTION = 0.1  # LR px (two steps of the 1/20-px estimate): smaller offsets are reported, not corrected


def coregister_guide(plan, required: bool = False) -> dict | None:
    """Measure the guide's offset and, when at least ``MIN_CORRECTION`` LR px, shift the guide onto
    the scene (``GuideSource.offset``). A scene too small to measure on gets a warning and no
    correction, unless ``required`` (then a one-line error)."""
    import warnings

    try:
        off = estimate_offset(plan)
    except InputError as exc:
        if required or "overlap too little" in str(exc):
            raise
        warnings.warn(f"{exc}; the guide is used as it is")
        return None
    off["corrected"] = bool(max(abs(off["dy"]), abs(off["dx"])) >= MIN_CORRECTION)
    if off["corrected"]:
        plan.guide.offset = (-off["dy"] * plan.scale, -off["dx"] * plan.scale)  # read it from there
    return off


def measure_mtf(plan) -> dict:
    """The blur between the (co-registered) guide and the scene as the gain of a Gaussian MTF at
    the LR Nyquist frequency (:func:`geohsr.sensor.measure_gain`), measured on the windows the
    offset is measured on: ``{"gain", "r2", "r2_default", "windows"}``, ``gain`` None (with
    ``why``) when it cannot be measured."""
    from .sensor import measure_gain

    _, windows = _window_pairs(plan)
    if not windows:
        W, H = plan.cube.sizes["x"], plan.cube.sizes["y"]
        return {"gain": None, "why": f"the scene ({W}×{H} LR px) has no window of at least "
                                     f"{MIN_WINDOW}×{MIN_WINDOW} LR px valid in both", "windows": 0}
    pairs = [(np.where(ok, raw, 0).astype(np.float32), np.nan_to_num(g), m) for raw, ok, g, m in windows]
    out = measure_gain(pairs, plan.scale)
    out["windows"] = len(pairs)
    return out
