"""MulSR (Li, Yuan, Wang, IEEE TGRS 61:5523110, 2023): RGB-guided, two branches at ×s/2 and ×s,
band by band (shared guided inference: :mod:`geohsr.methods._guided`)."""

from __future__ import annotations

from .. import TrainOption, TrainSpec, register
from .._guided import guided_spec
from .config import CONFIGS, band_triplet

PER_BAND_STEPS = TrainOption("per-band-steps", "the papers' one optimiser step per band "
                             "(default: one random band per sample, one step per batch)")
GUIDE_PERTURB = TrainOption("guide-perturb", "share of samples (0-1) whose synthetic guide is "
                            "perturbed like a real one: random response (pan-like too), sub-pixel "
                            "misregistration, brightness, noise", type=float, default=0.0)


# even scales only: the two branches work at s/2 and s, joined by ×2 steps (×6 is PRISMA's ratio)
SCALES = (2, 4, 6, 8, 16)


def build_net(scale: int, arch: dict):
    from .net import MulSR

    return MulSR(scale, n=arch["n"], n_sge=arch["n_sge"])


register(guided_spec(
    name="mulsr",
    summary="MulSR: RGB-guided two-branch (s/2, s) network, band by band (needs --guide)",
    scales=SCALES,
    scales_why="MulSR's first branch works at s/2, so the scale must be even (at odd scales use "
               "ifmsr, mtf-glp or dualsr-glp)",
    paper="Li, Yuan, Wang, IEEE TGRS 61:5523110, 2023",
    configs=CONFIGS,
    build_net=build_net,
    extras={"band_triplet": band_triplet, "scale_free": True},
    train=TrainSpec(make_task="geohsr.train.guided:make_task", options=(PER_BAND_STEPS, GUIDE_PERTURB),
                    scales=(2, 4, 6, 8)),
    tile_tolerance=2e-3,  # RMS, 32-px LR tiles (blended; the default tiles are ≥ 192 px)
    order=3,
))
