"""RGB-guided methods: MulSR (TGRS 2023) and IFMSR (TGRS 2023), band by band.

The runner takes LR blocks (B, bands, h, w), normalised by the scene maximum, and their guide
windows (B, 3, s·h, s·w) in [0, 1] aligned on the HR grid (:class:`geohsr.guide.GuideSource`).
DSCA's row/column recurrence (MulSR) and MCPA's patch search (IFMSR) see the whole tile, so
both are *global-context* methods: tiles overlap by ``halo`` LR pixels and are blended with
linear ramps (see :func:`geohsr.tiling.tiled_map`).
"""

from __future__ import annotations

import torch

from .. import weights as W
from ..nn import fuse_weight_norm
from . import MethodSpec, Runner, register

HALO = 16  # LR pixels of overlap between tiles (blended)
BAND_BATCH = 8  # bands pushed through the network together


def build_guided(method: str, scale: int, weights, device: torch.device):
    from ..train.guided import build_model

    tensors, meta, path = W.load_checked(method, scale, weights)
    model = build_model(method, scale, meta["config"])
    W.load_into(model, tensors, path)
    model.eval()
    fuse_weight_norm(model)
    model = model.to(device)
    for mod in model.modules():  # channels_last for the 2-D convolutions (MulSR also has 3-D ones)
        if isinstance(mod, torch.nn.Conv2d):
            mod.to(memory_format=torch.channels_last)
    return model


def _runner(method):
    def build(scale, weights, device):
        from ..nets import ifmsr as ifmsr_net
        from ..train.guided import band_triplet

        model = build_guided(method, scale, weights, device)
        triplet = band_triplet(method)

        def one(x, g):  # one block: (bands, h, w), guide (1, 3, s·h, s·w)
            n = x.shape[0]
            out = []
            extra = {}
            if method == "ifmsr":  # the patch index comes from the RGB: once per tile
                extra["idx"] = ifmsr_net.mcpa_index(g, model.p)
            for b0 in range(0, n, BAND_BATCH):
                bands = range(b0, min(n, b0 + BAND_BATCH))
                lr3 = torch.stack([x[list(triplet(i, n))] for i in bands])
                gb = g.expand(len(bands), -1, -1, -1)
                if "idx" in extra:
                    y = model(lr3, gb, extra["idx"].expand(len(bands), -1, -1))
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


for _name, _summary, _scales, _paper in (
        ("mulsr", "MulSR: RGB-guided two-branch (s/2, s) network, band by band (needs --guide)",
         (2, 4, 8, 16), "Li, Yuan, Wang, IEEE TGRS 61:5523110, 2023"),
        ("ifmsr", "IFMSR: RGB-induced feature modulation network, band by band (needs --guide)",
         (2, 3, 4, 8), "Li, Gong, Yuan, Wang, IEEE TGRS 61, 2023")):
    register(MethodSpec(name=_name, summary=_summary, builder=_runner(_name), guided=True,
                        scales=_scales, halo=HALO, context="global", normalise=True,
                        needs_weights=True, paper=_paper))
