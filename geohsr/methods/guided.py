"""RGB-guided methods: MulSR (TGRS 2023) and IFMSR (TGRS 2023), band by band.

The runner takes the LR block (bands, h, w), normalised by the scene maximum, and the guide
window (3, s·h, s·w) in [0, 1] aligned on the HR grid (:class:`geohsr.guide.GuideSource`).
DSCA's row/column recurrence (MulSR) and MCPA's patch search (IFMSR) see the whole tile, so
both are *global-context* methods: tiles overlap by ``halo`` LR pixels and are blended with
linear ramps (see :func:`geohsr.tiling.tiled_map`).
"""

from __future__ import annotations

import torch

from .. import weights as W
from ..errors import WeightsError
from ..nn import fuse_weight_norm
from . import MethodSpec, register

HALO = 16  # LR pixels of overlap between tiles (blended)
BAND_BATCH = 8  # bands pushed through the network together


def build_guided(method: str, scale: int, weights, device: torch.device):
    from ..train.guided import build_model

    if weights is None:
        entry = W.find(method, scale)
        if entry is None:
            shipped = sorted({e["scale"] for e in W.catalog() if e["method"] == method})
            raise WeightsError(f"no shipped {method} weights for ×{scale} (shipped: "
                               f"{', '.join(f'×{s}' for s in shipped) or 'none'}); train them with "
                               f"`geohsr train {method} --scale {scale}` and pass --weights")
        path, sha = W.models_dir() / entry["file"], entry["sha256"]
    else:
        path, sha = weights, None
    tensors, meta = W.load(path, sha)
    if meta.get("method") not in (None, method):
        raise WeightsError(f"{path}: these are {meta.get('method')} weights, not {method}")
    wscale = int(meta.get("scale", scale))
    if wscale != scale:
        raise WeightsError(f"{path}: weights are for ×{wscale}, not ×{scale}")
    cfg = meta.get("config")
    if not isinstance(cfg, dict):
        raise WeightsError(f"{path}: no architecture in the weights' metadata")
    model = build_model(method, scale, cfg)
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
        model = build_guided(method, scale, weights, device)
        from ..nets import ifmsr as ifmsr_net
        from ..nets import mulsr as mulsr_net

        triplet = mulsr_net.band_triplet if method == "mulsr" else ifmsr_net.band_triplet

        def run(x, guide):
            x = x.to(device)
            g = guide.to(device)[None].contiguous(memory_format=torch.channels_last)
            n = x.shape[0]
            out = []
            with torch.inference_mode():
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
            return torch.cat(out, 0).cpu()

        return run

    return build


register(MethodSpec(
    name="mulsr",
    summary="MulSR: RGB-guided two-branch (s/2, s) network, band by band (needs --guide)",
    builder=_runner("mulsr"),
    guided=True,
    scales=(2, 4, 8, 16),
    halo=HALO,
    context="global",
    normalise=True,
    needs_weights=True,
    paper="Li, Yuan, Wang, IEEE TGRS 61:5523110, 2023",
))

register(MethodSpec(
    name="ifmsr",
    summary="IFMSR: RGB-induced feature modulation network, band by band (needs --guide)",
    builder=_runner("ifmsr"),
    guided=True,
    scales=(2, 3, 4, 8),
    halo=HALO,
    context="global",
    normalise=True,
    needs_weights=True,
    paper="Li, Gong, Yuan, Wang, IEEE TGRS 61, 2023",
))
