"""Shared inference of the RGB-guided methods (MulSR, IFMSR): band by band, three LR bands and the
guide per band.

The runner takes LR blocks (B, bands, h, w), normalised by the scene maximum, and their guide
windows (B, 3, s·h, s·w) in [0, 1] aligned on the HR grid (:class:`geohsr.guide.GuideSource`).
MulSR's row/column recurrence and IFMSR's patch search see the whole tile, so both are
*global-context* methods: tiles overlap by ``halo`` LR pixels and are blended with linear ramps
(see :func:`geohsr.tiling.tiled_map`).

A guided method's spec carries in ``extras``: ``band_triplet(i, n)`` (which three bands feed band
``i``), optionally ``guide_index(rgb, model)`` (something computed once per tile from the
guide and passed to the model, IFMSR's patch index), and ``scale_free`` (no layer depends on the
scale: adapting at a scale with no shipped weights starts from another scale's, :mod:`geohsr.adapt`).

**The guide only where it informs** (:func:`guide_use`, the spec's scene-wide ``fit``): an RGB
guide says nothing about the NIR or SWIR bands (with one, IFMSR gains ~7 dB in 400–700 nm and loses
~5 dB beyond 700 nm). Each band uses the guide only when a guide band lies within 150 nm of it
(both images' wavelengths known), or, when they are not known, when the guided network beats
the unguided one on that band at reduced resolution (Wald's protocol on a central crop). The
other bands come from the unguided network, CoarSR ×s with its shipped weights (bicubic where
there are none); a warning says which bands use the guide.
"""

from __future__ import annotations

import warnings

from typing import TYPE_CHECKING

import numpy as np

from .. import weights as W
from . import MethodSpec, Runner, get_method

if TYPE_CHECKING:  # torch loads when a runner is built, not when the method registers
    import torch

HALO = 16  # LR pixels of overlap between tiles (blended)
ASSUMED_RGB_NM = (610.0, 550.0, 465.0)  # a guide without wavelengths, where nothing can be measured
BAND_BATCH = 8  # bands pushed through the network together


def build_guided(method: str, scale: int, weights, device: torch.device):
    import torch

    from ..nn import fuse_weight_norm

    spec = get_method(method)
    tensors, meta, path = W.load_checked(method, scale, weights)
    model = spec.build_net(scale, meta["config"])
    W.load_into(model, tensors, path)
    model.eval()
    fuse_weight_norm(model)
    model = model.to(device)
    for mod in model.modules():  # channels_last for the 2-D convolutions (MulSR also has 3-D ones)
        if isinstance(mod, torch.nn.Conv2d):
            mod.to(memory_format=torch.channels_last)
    return model


def unguided_entry(scale: int) -> dict | None:
    """The catalogue entry of the unguided network that takes the bands a guide does not inform:
    CoarSR ×s, the remote-sensing weights where shipped (those bands lie beyond the visible, where
    :func:`geohsr.methods.dualsr.pick_weights` gives CoarSR the same file), else any shipped ×s
    weights; None: bicubic takes them."""
    return W.find("coarsr", scale, kind="remote sensing") or W.find("coarsr", scale)


def _unguided(scale: int, device: torch.device):
    """The unguided stand-in for bands the guide does not inform (:func:`unguided_entry`), a
    function of a normalised block (bands, h, w)."""
    from ..resize import imresize

    entry = unguided_entry(scale)
    if entry:
        from .dualsr import build_coarsr, coarse

        net = build_coarsr(scale, str(W.models_dir() / entry["file"]), device)
        return lambda x: coarse(net, x, scale)
    return lambda x: imresize(x, scale=scale, a=-0.5, antialias=False)


def guided_runner(method: str):
    """The ``builder`` of a guided method's :class:`MethodSpec`."""
    def build(scale, weights, device):
        import torch

        spec = get_method(method)
        model = build_guided(method, scale, weights, device)
        triplet = spec.extras["band_triplet"]
        index = spec.extras.get("guide_index")
        fallback = []  # built on first use

        def one(x, g, which):  # one block: (bands, h, w), guide (1, 3, s·h, s·w); the bands to run
            n = x.shape[0]
            out = []
            idx = None if index is None else index(g, model)  # once per tile
            for b0 in range(0, len(which), BAND_BATCH):
                bands = which[b0:b0 + BAND_BATCH]
                lr3 = torch.stack([x[list(triplet(i, n))] for i in bands])
                gb = g.expand(len(bands), -1, -1, -1)
                if idx is not None:
                    y = model(lr3, gb, idx.expand(len(bands), -1, -1))
                else:
                    y = model(lr3, gb)
                out.append(y[:, 0].float())
            return torch.cat(out, 0)

        def block(x, g, use):
            n = x.shape[0]
            guided = [i for i in range(n) if use is None or use[i] > 0.5]
            if len(guided) == n:
                return one(x, g, guided)
            if not fallback:
                fallback.append(_unguided(scale, device))
            y = fallback[0](x).float()
            if guided:
                y[guided] = one(x, g, guided)
            return y

        def run(x, guide, use=None):  # blocks one after another: the band batch fills the device
            guide = guide.contiguous(memory_format=torch.channels_last)
            with torch.inference_mode():
                return torch.stack([block(x[k], guide[k:k + 1], None if use is None else use[k].tolist())
                                    for k in range(x.shape[0])])

        return Runner(run, device)

    return build


def _ranges_text(idx: np.ndarray, wl) -> str:
    """Bands as 1-based ranges, with their wavelengths when known: "1–57 (418–702 nm), 60"."""
    parts, start = [], None
    for k, i in enumerate(idx):
        if start is None:
            start = i
        if k + 1 == len(idx) or idx[k + 1] != i + 1:
            txt = f"{start + 1}" if start == i else f"{start + 1}–{i + 1}"
            if wl is not None and np.isfinite(wl[[start, i]]).all():
                txt += f" ({wl[start]:.0f} nm)" if start == i else f" ({wl[start]:.0f}–{wl[i]:.0f} nm)"
            parts.append(txt)
            start = None
    return ", ".join(parts)


def _measured_use(plan) -> np.ndarray | None:
    """Per band: does the guided network beat the unguided one at reduced resolution (a central crop
    of the scene and its guide reduced by the scale, Wald)? None when the scene is too small."""
    import torch

    from ..errors import InputError
    from ..methods import load_runner
    from ..select import central_crop, reduced_pair

    s = plan.scale
    try:
        y0, x0, ch, cw = central_crop(plan.cube, s)
    except InputError:
        return None
    ref, ok, lr, gd, _ = reduced_pair(plan, y0, x0, ch, cw)
    low = np.nan_to_num(np.asarray(lr.values, np.float32))
    norm = max(float(np.abs(low).max()), 1e-12)
    runner = load_runner(plan.spec.name, s, plan.weights, plan.device)
    x, g = torch.from_numpy(low / norm)[None], torch.from_numpy(np.asarray(gd.values, np.float32))[None]
    n = low.shape[0]
    err = []
    for use in (np.ones((1, n), np.float32), np.zeros((1, n), np.float32)):
        y = runner.batch(x.to(runner.device), g.to(runner.device), torch.from_numpy(use).to(runner.device))
        y = y[0].cpu().numpy() * norm
        err.append(((y - ref)[:, ok] ** 2).mean(1))
    return err[0] < err[1]


def guide_use(plan) -> np.ndarray:
    """``(bands,)`` float32: 1 where a band uses the guide, 0 where the unguided network takes it
    (see the module docstring); warns when some bands do not use it."""
    from .classical.fusion import informing_bands

    n = plan.bands
    wl = np.asarray(plan.cube.coords["wavelength"].values, float) if "wavelength" in plan.cube.coords else None
    near = informing_bands(plan)
    if near is not None:
        use, how = near.any(1), "by the guide's and the scene's band wavelengths (guide bands within 150 nm)"
    else:
        use = _measured_use(plan)
        how = ("measured at reduced resolution (the guide's band wavelengths are unknown; give them as "
               "GDAL band tags 'wavelength' to decide by them)")
        if use is None and wl is not None and np.isfinite(wl).all():  # too small to measure
            use = (np.abs(wl[:, None] - np.asarray(ASSUMED_RGB_NM)[None]) <= 150.0).any(1)
            how = ("assumed: the guide has no band wavelengths and the scene is too small to measure, so it "
                   "is taken for an RGB camera (465/550/610 nm); give the guide's wavelengths as GDAL band "
                   "tags 'wavelength'")
            if use.all():
                warnings.warn(f"{plan.spec.name}: the guide has no band wavelengths; it was assumed to be "
                              f"an RGB camera covering every band of this scene", UserWarning, stacklevel=2)
        elif use is None:
            use = np.ones(n, bool)
            warnings.warn(f"{plan.spec.name}: neither the scene nor the guide has band wavelengths and the "
                          "scene is too small to measure which bands the guide informs; it is used on every "
                          "band", UserWarning, stacklevel=2)
    if not use.all():
        entry = unguided_entry(plan.scale)
        other = f"CoarSR ×{plan.scale} ({entry['file']})" if entry else "bicubic"
        used = np.flatnonzero(use)
        warnings.warn(f"{plan.spec.name}: the guide informs {len(used)} of {n} bands, "
                      f"{_ranges_text(used, wl) if len(used) else 'none'}, {how}; the other "
                      f"{n - len(used)} come from {other}", UserWarning, stacklevel=2)
    return use.astype(np.float32)


def guided_spec(**kw) -> MethodSpec:
    """A :class:`MethodSpec` with the guided methods' common settings."""
    name = kw["name"]
    base = dict(builder=guided_runner(name), guided=True, halo=HALO, context="global", normalise=True,
                needs_weights=True, fit=guide_use)
    base.update(kw)
    return MethodSpec(**base)
