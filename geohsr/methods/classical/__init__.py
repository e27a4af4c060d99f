"""Training-free classical fusion with an HR guide: MTF-GLP hypersharpening and GSA
(:mod:`.fusion`). Any integer scale, any guide band count (pan, RGB(N), multispectral); the
regression is fitted once per scene at low resolution (``MethodSpec.fit``), so blocks are
processed locally and tiling is exact."""

from __future__ import annotations

import math

from ...sensor import GAIN_RANGE, mtf_sigma
from .. import MethodSpec, Runner, register

# how far an HR pixel sees, in LR px: the bicubic upsampling (2) of the guide's low-pass, whose LR
# samples take the MTF blur (3σ ≤ 1.9 LR px at the smallest gain accepted, plus rounding to whole
# HR px: 2) at the four cubic taps of the unfiltered downsampling (2 HR px: 1), + 2 for the nodata
# fill (as bicubic's halo)
HALO = 2 + int(math.ceil(3 * mtf_sigma(1, GAIN_RANGE[0]))) + 1 + 2


def _fusion(name: str):
    """:mod:`.fusion`'s ``name``, imported on first use (torch loads with the first run, not at
    registration)."""
    from . import fusion

    return getattr(fusion, name)


def _runner(name: str):
    """The builder of :mod:`.fusion`'s ``name``."""
    def build(scale, weights, device):
        fn = _fusion(name)

        def run(x, guide, coef, gain):  # gain: the scene's MTF gain, (B,) (MethodSpec.uses_mtf)
            return fn(x, guide, coef, scale, gain)

        return Runner(run, device)

    return build


def deferred_fit(name: str):
    """:mod:`.fusion`'s regression ``name`` as a ``MethodSpec.fit``."""
    def fit(*args, **kwargs):
        return _fusion(name)(*args, **kwargs)

    return fit


_COMMON = dict(guided=True, scales=None, halo=HALO, context="local", band_axis="joint",
               normalise=False, needs_weights=False, guide_channels="all", uses_mtf=True)

register(MethodSpec(
    name="mtf-glp",
    summary="MTF-GLP hypersharpening: guide detail per band through a regression fitted at LR "
            "(training-free, any guide, any scale)",
    builder=_runner("glp"), fit=deferred_fit("fit_glp"),
    paper="Aiazzi et al., PE&RS 72(5), 2006 (MTF-GLP); Selva et al., IEEE JSTSP 9(6), 2015 "
          "(hypersharpening)",
    order=7, **_COMMON))

register(MethodSpec(
    name="gsa",
    summary="GSA: Gram-Schmidt adaptive component substitution (training-free, any guide, any scale)",
    builder=_runner("gsa"), fit=deferred_fit("fit_gsa"),
    paper="Aiazzi, Baronti, Selva, IEEE TGRS 45(10):3230-3239, 2007",
    order=8, **_COMMON))
