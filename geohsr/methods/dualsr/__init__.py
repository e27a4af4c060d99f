"""DualSR (Li, Yuan, Jia, Wang, IEEE TIP 2022) and its coarse stage CoarSR.

``coarsr``: the band-recurrent network alone (any of ×2, ×3, ×4, ×5, ×6, ×8 once trained; the
sub-pixel upsampler factors the scale into ×3 and ×2 steps, :func:`geohsr.nn.upsampler_factors`).
``dualsr``: CoarSR ×s output ``U`` refined by one training-free back-projection step with the
×(s/2) CoarSR output ``V`` on the same LR input (docs/methods.md, DualSR):

    Ud = imresize(U, 1/2)  (MATLAB bicubic, anti-aliased)
    λ  = min(mean spectral angle of (Ud, V) in degrees, 1)
    SR = U + imresize(λ · (V − Ud), 2)

λ is one number for the whole scene. To keep tiled == whole, each block returns ``U``,
``R = imresize(V − Ud, 2)`` and the per-pixel angle; λ is reduced over the whole scene
(``block_stat``) and ``SR = U + λ·R`` is formed afterwards (``finish``). At ×2, ``V`` is the LR input itself (×1).

**Odd scales** (×3, ×5; not in the paper, whose fine stage needs a ×s/2 model): the same step
with the ×s model alone, i.e. one back-projection onto the LR input — ``Ud = imresize(U, 1/s)``,
``V`` = the LR input, ``R = imresize(V − Ud, s)`` — which is what ×2 already does with factor 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ... import weights as W
from ...errors import WeightsError
from ...metrics import sam_degrees_torch
from .. import MethodSpec, Runner, TrainOption, TrainSpec, register
from .config import CONFIGS, CoarSRConfig, receptive_field

if TYPE_CHECKING:  # the network and torch load when a runner is built, not when the method registers
    import torch

    from .net import CoarSR

# receptive field of the paper config in LR pixels: head 1 + 2 ASFM × (4·2 + 2) + fuse 1 +
# upsampler/tail 2 = 24; + up to 4 for the fine stage's resizes (×2); + 2 for the nodata fill.
# Weights of a smaller config need less (``_halo_dualsr``: 22 for the shipped compact ×2 / ×4 pair).
NODATA_MARGIN = 2
HALO = 28


def _locate(scale: int, weights: str | None) -> tuple[str, str | None]:
    """(path, expected sha256) of ``weights``, or of the shipped CoarSR ×``scale`` weights."""
    if weights is not None:
        return weights, None
    entry = W.find("coarsr", scale)
    if entry is None:
        raise WeightsError(f"no shipped CoarSR weights for ×{scale}; shipped scales: "
                           f"{sorted({e['scale'] for e in W.catalog() if e['method'] == 'coarsr'}) or 'none'}"
                           " — train them with `geohsr train dualsr --scale "
                           f"{scale}` and pass --weights")
    return W.models_dir() / entry["file"], entry["sha256"]


def _config_of(meta: dict) -> CoarSRConfig:
    cfg = meta.get("config")
    return CoarSRConfig(**cfg) if isinstance(cfg, dict) else CONFIGS.get(cfg or "paper", CONFIGS["paper"]).arch


def _config(scale: int, weights: str | None) -> CoarSRConfig:
    """The CoarSR configuration of ``weights`` (a path) or of the shipped ×``scale`` weights."""
    return _config_of(W.read_metadata(_locate(scale, weights)[0]))


def _halo_coarsr(scale: int, weights) -> int:
    return receptive_field(_config(scale, None if weights is None else str(weights))) + NODATA_MARGIN


def back_factor(scale: int) -> int:
    """The fine stage's resize factor: 2 at even scales (the ×s/2 model), ``s`` at odd ones (the
    LR input)."""
    return 2 if scale % 2 == 0 else int(scale)


def _halo_dualsr(scale: int, weights) -> int:
    """U (×s) reaches its receptive field, then down ×f and up ×f (cubic, 2 px each at the ×s/f
    grid: 4f/s LR px); V (×s/f, or the LR itself) only the up ×f (2f/s LR px)."""
    wmap = _weights_pair(weights, scale)
    f = back_factor(scale)
    rf_u = receptive_field(_config(scale, wmap.get(scale)))
    rf_v = 0 if f == scale else receptive_field(_config(scale // f, wmap.get(scale // f)))
    return int(np.ceil(max(rf_u + 4 * f / scale, rf_v + 2 * f / scale))) + NODATA_MARGIN


def build_coarsr(scale: int, weights: str | None, device: torch.device) -> CoarSR:
    """CoarSR ×``scale`` with ``weights`` (a path) or the shipped weights for that scale."""
    from ...nn import fuse_weight_norm
    from .net import CoarSR

    path, sha = _locate(scale, weights)
    tensors, meta = W.load(path, sha)
    config = _config_of(meta)
    wscale = int(meta.get("scale", scale))
    if wscale != scale:
        raise WeightsError(f"{path}: weights are for ×{wscale}, not ×{scale}")
    model = CoarSR(scale, config)
    W.load_into(model, tensors, path)
    model.eval()
    fuse_weight_norm(model)
    return model.to(device).channels_last()


def coarse(model: CoarSR, x: torch.Tensor, scale: float) -> torch.Tensor:
    """CoarSR on a (bands, h, w) cube, or a batch (B, bands, h, w) of them, with its MATLAB/PIL
    bicubic skip."""
    import torch

    from ...resize import imresize

    bic = imresize(x, scale=scale, a=-0.5, antialias=False)
    with torch.inference_mode():
        if x.dim() == 4:
            return model.forward_cube(x, bic)
        return model.forward_cube(x[None], bic[None])[0]


def fine_stage(u: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, float]:
    """One DualSR back-projection step on whole cubes: returns (SR, λ). ``u`` (L, H, W) is the
    ×s output, ``v`` (L, H/2, W/2) the ×s/2 output on the same LR input."""
    from ...resize import imresize

    ud = imresize(u, size=tuple(v.shape[-2:]), a=-0.5, antialias=True)
    lam = min(float(sam_degrees_torch(ud, v).double().mean()), 1.0)
    return u + imresize(lam * (v - ud), size=tuple(u.shape[-2:]), a=-0.5, antialias=False), lam


def _build_coarsr_runner(scale, weights, device):
    model = build_coarsr(scale, weights, device)

    def run(x):
        return coarse(model, x, scale)

    return Runner(run, device)


def dualsr_planes(scale, weights, device):
    """DualSR's block function ``x (B, bands, h, w) -> (B, 2·bands + 1, s·h, s·w)``: U, R and the
    per-pixel angle (λ and ``SR = U + λ·R`` come scene-wide, :func:`_finish`)."""
    import torch

    from ...resize import imresize

    wmap = _weights_pair(weights, scale)
    f = back_factor(scale)
    main = build_coarsr(scale, wmap.get(scale), device)
    half = None if f == scale else build_coarsr(scale // f, wmap.get(scale // f), device)

    def run(x):
        u = coarse(main, x, scale)
        v = x if half is None else coarse(half, x, scale // f)
        ud = imresize(u, size=tuple(v.shape[-2:]), a=-0.5, antialias=True)
        r = imresize(v - ud, size=tuple(u.shape[-2:]), a=-0.5, antialias=False)
        ang = sam_degrees_torch(ud, v)
        ang_hr = ang.repeat_interleave(f, -2).repeat_interleave(f, -1)[:, None]
        return torch.cat([u, r, ang_hr], 1)

    return run


def _build_dualsr_runner(scale, weights, device):
    return Runner(dualsr_planes(scale, weights, device), device)


def _weights_pair(weights, scale: int) -> dict:
    """``weights`` for DualSR: None (shipped), or "A.safetensors,B.safetensors" (×s and ×s/2
    in any order; the scale is read from each file's metadata). A file whose metadata names
    ``companions`` ({scale: path relative to it}; scene adaptation writes them) brings those
    files along for scales not given. Given weights must include the ×``scale`` network (the ×s/2
    one may be left to the shipped file) and no file the run would not use — a ×2 file alone at ×4
    would otherwise run the shipped ×4 network without a word."""
    if weights is None:
        return {}
    pair = W.with_companions([p.strip() for p in str(weights).split(",")])
    uses = weight_scales(int(scale))
    if uses[0] not in pair or set(pair) - set(uses):
        got = ", ".join(f"{f'×{k}' if k else 'no scale in its metadata'} ({Path(p).name})"
                        for k, p in sorted(pair.items(), reverse=True))
        half = f" (and ×{uses[1]} for its fine stage, else the shipped one)" if len(uses) > 1 else ""
        raise WeightsError(f"--weights: DualSR ×{uses[0]} takes ×{uses[0]} weights{half}; got {got}")
    return pair


def _block_stat(planes: np.ndarray, bands: int, good=None) -> tuple[float, float]:
    """(sum, count) of the per-pixel angle over pixels valid in every (good) band."""
    ang = planes[2 * bands]
    hr = planes[:bands] if good is None else planes[:bands][good]
    ok = np.isfinite(hr).all(0) & np.isfinite(ang)
    return float(ang[ok].astype(np.float64).sum()), float(ok.sum())


def _finish(planes: np.ndarray, bands: int, total: float, count: float) -> np.ndarray:
    """SR = U + λ·R with λ = min(mean angle in degrees, 1) over the whole scene."""
    lam = min(total / count, 1.0) if count else 0.0
    return planes[:bands] + np.float32(lam) * planes[bands:2 * bands]


VISIBLE_MAX_NM = 720.0  # a scene whose bands all lie below this is a visible-range one (CAVE-like)


def pick_weights(scale: int, cube, scales=None) -> str | None:
    """The shipped weights for this scene, as a ``--weights`` value, or None (the default lookup):
    the remote-sensing ones for a scene whose bands reach beyond the visible (or whose wavelengths
    are unknown), the CAVE ones for a visible-only scene — when every file the run takes
    (``scales``, default ×s) is shipped for that kind."""
    wl = np.asarray(cube.coords["wavelength"].values, float) if "wavelength" in cube.coords else np.array([np.nan])
    visible = bool(np.isfinite(wl).any()) and float(np.nanmax(wl)) <= VISIBLE_MAX_NM
    kind = "CAVE" if visible else "remote sensing"
    hits = [W.find("coarsr", ws, kind=kind) for ws in (scales or (scale,))]
    if not all(hits):
        return None
    return ",".join(str(W.models_dir() / e["file"]) for e in hits)


def weight_scales(scale: int) -> tuple[int, ...]:
    """The CoarSR scales a DualSR run at ``scale`` takes: ×s, and ×s/2 at even scales above 2."""
    f = back_factor(scale)
    return (scale,) if f == scale else (scale, scale // f)


def build_net(scale: int, arch) -> CoarSR:
    """An untrained CoarSR ×``scale`` of ``arch`` (a :class:`CoarSRConfig`, its dict, or a size name)."""
    from .net import CoarSR

    cfg = arch if isinstance(arch, CoarSRConfig) else _config_of({"config": arch})
    return CoarSR(scale, cfg)


# both train CoarSR ×s (DualSR's fine stage is training-free); the task is imported when training
_TRAIN = TrainSpec(make_task=f"{__name__}.train:make_task", scales=(2, 3, 4, 5, 6, 8), options=(
    TrainOption("patch", "LR training patch side [default: the config's; smaller "
                "for small scenes, e.g. 16 for 100-px scenes at x4]", type=int),))

register(MethodSpec(
    name="coarsr",
    summary="CoarSR: band-recurrent CNN (DualSR's coarse stage), any band count",
    builder=_build_coarsr_runner,
    scales=(2, 3, 4, 5, 6, 8),
    halo=HALO,
    halo_for=_halo_coarsr,
    band_axis="joint",
    normalise=True,
    needs_weights=True,
    paper="Li et al., ICASSP 2021 / IEEE TIP 31:7252, 2022",
    configs=CONFIGS,
    build_net=build_net,
    pick_weights=pick_weights,
    train=_TRAIN,
    order=2,
))

register(MethodSpec(
    name="dualsr",
    summary="DualSR: CoarSR ×s + training-free back-projection with the ×s/2 model (odd s: onto the LR)",
    builder=_build_dualsr_runner,
    scales=(2, 3, 4, 5, 6, 8),
    halo=HALO,
    halo_for=_halo_dualsr,
    band_axis="joint",
    normalise=True,
    needs_weights=True,
    aux_per_band=1,  # R = imresize(V − Ud, 2)
    aux_extra=1,  # the per-pixel spectral angle of (Ud, V)
    block_stat=_block_stat,
    finish=_finish,
    weight_scales=weight_scales,
    paper="Li, Yuan, Jia, Wang, IEEE TIP 31:7252-7263, 2022",
    configs=CONFIGS,
    build_net=build_net,
    pick_weights=lambda s, cube: pick_weights(s, cube, weight_scales(s)),
    train=_TRAIN,
    order=1,
))
