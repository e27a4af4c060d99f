"""IFMSR (Li, Gong, Yuan, Wang, IEEE TGRS 61, 2023): RGB-induced feature modulation, band by band
(shared guided inference: :mod:`geohsr.methods._guided`)."""

from __future__ import annotations

from .. import TrainOption, TrainSpec, register
from .._guided import guided_spec
from ..mulsr import GUIDE_PERTURB, PER_BAND_STEPS
from .config import CONFIGS, band_triplet

SWAP_BUG = TrainOption("swap-bug", "reproduce the official code's channel-swap bug")


def build_net(scale: int, arch: dict):
    from .net import IFMSR

    return IFMSR(scale, n=arch["n"], modules=arch["modules"], swap_bug=bool(arch.get("swap_bug", False)))


def guide_index(rgb, model):
    """The patch index MCPA takes, computed once per tile from the RGB."""
    from .net import mcpa_index

    return mcpa_index(rgb, model.p)


SCALES = (2, 3, 4, 5, 6, 8)  # no layer depends on the scale (nearest ×s, MCPA patches of 3s)


register(guided_spec(
    name="ifmsr",
    summary="IFMSR: RGB-induced feature modulation network, band by band (needs --guide)",
    scales=SCALES,
    paper="Li, Gong, Yuan, Wang, IEEE TGRS 61, 2023",
    configs=CONFIGS,
    build_net=build_net,
    extras={"band_triplet": band_triplet, "guide_index": guide_index, "scale_free": True},
    train=TrainSpec(make_task="geohsr.train.guided:make_task", options=(PER_BAND_STEPS, GUIDE_PERTURB, SWAP_BUG),
                    scales=SCALES),
    tile_tolerance=5e-2,  # RMS, 32-px LR tiles (blended; the default tiles are ≥ 192 px)
    order=4,
))
