"""Bicubic baseline: area-aligned cubic convolution (a = −0.5, MATLAB/PIL), per band."""

from __future__ import annotations

from .. import MethodSpec, Runner, register


def _build(scale: int, weights, device) -> Runner:
    import torch

    from ...resize import imresize

    def run(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return imresize(x, scale=scale, a=-0.5, antialias=False)

    return Runner(run, device)


register(MethodSpec(
    name="bicubic",
    summary="area-aligned cubic convolution (a=-0.5, MATLAB/PIL bicubic), band by band",
    builder=_build,
    halo=4,  # kernel support 2 LR px; 2x for the nodata fill
    paper="Keys 1981",
    order=0,
))
