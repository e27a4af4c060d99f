"""Shared inference of the RGB-guided methods (MulSR, IFMSR): band by band, three LR bands and the
guide per band.

The runner takes LR blocks (B, bands, h, w), normalised by the scene maximum, and their guide
windows (B, 3, s·h, s·w) in [0, 1] aligned on the HR grid (:class:`geohsr.guide.GuideSource`).
MulSR's row/column recurrence and IFMSR's patch search see the whole tile, so both are
*global-context* methods: tiles overlap by ``halo`` LR pixels and are blended with linear ramps
(see :func:`geohsr.tiling.tiled_map`).

A guided method's spec carries in ``extras``: ``band_triplet(i, n)`` (which three bands feed band
``i``) and, optionally, ``guide_index(rgb, model)`` (something computed once per tile from the
guide and passed to the model, IFMSR's patch index).
"""

from __future__ import annotations

import torch

from .. import weights as W
from ..nn import fuse_weight_norm
from . import MethodSpec, Runner, get_method

HALO = 16  # LR pixels of overlap between tiles (blended)
BAND_BATCH = 8  # bands pushed through the network together


def build_guided(method: str, scale: int, weights, device: torch.device):
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


def guided_runner(method: str):
    """The ``builder`` of a guided method's :class:`MethodSpec`."""
    def build(scale, weights, device):
        spec = get_method(method)
        model = build_guided(method, scale, weights, device)
        triplet = spec.extras["band_triplet"]
        index = spec.extras.get("guide_index")

        def one(x, g):  # one block: (bands, h, w), guide (1, 3, s·h, s·w)
            n = x.shape[0]
            out = []
            idx = None if index is None else index(g, model)  # once per tile
            for b0 in range(0, n, BAND_BATCH):
                bands = range(b0, min(n, b0 + BAND_BATCH))
                lr3 = torch.stack([x[list(triplet(i, n))] for i in bands])
                gb = g.expand(len(bands), -1, -1, -1)
                if idx is not None:
                    y = model(lr3, gb, idx.expand(len(bands), -1, -1))
                else:
                    y = model(lr3, gb)
                out.append(y[:, 0].float())
            return torch.cat(out, 0)

        def run(x, guide):  # blocks one after another: the band batch already fills the device
            guide = guide.contiguous(memory_format=torch.channels_last)
            with torch.inference_mode():
                return torch.stack([one(x[k], guide[k:k + 1]) for k in range(x.shape[0])])

        return Runner(run, device)

    return build


def guided_spec(**kw) -> MethodSpec:
    """A :class:`MethodSpec` with the guided methods' common settings."""
    name = kw["name"]
    base = dict(builder=guided_runner(name), guided=True, halo=HALO, context="global", normalise=True,
                needs_weights=True)
    base.update(kw)
    return MethodSpec(**base)
