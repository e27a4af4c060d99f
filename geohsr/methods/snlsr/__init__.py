"""SNLSR and A-SNLSR: abundance-domain SR of a fixed band grid (docs/methods.md, SNLSR/A-SNLSR).

A trained model fixes its band set: the weights' metadata hold the wavelength grid (centres and
FWHM) of its range (``MethodSpec.band_grid``). :func:`geohsr.engine.prepare` resamples the input's bands onto that grid
(Gaussian SRFs at the input's band centres) or refuses when the input does not cover it; the
result has the model's bands and wavelengths. The runner applies the A-SNLSR log normalisation
to values divided by the scene maximum and inverts it on the output. The spectral non-local
attention sees a whole tile, so both are global-context methods (overlapping, blended tiles).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from ... import weights as W
from ...errors import WeightsError
from ...transforms import from_log, to_log
from .. import MethodSpec, Runner, TrainOption, TrainSpec, register
from .config import ASNLSR_CONFIGS, SNLSR_CONFIGS

if TYPE_CHECKING:  # the network and torch load when a runner is built, not when the method registers
    import torch

    from .net import SNLSR

HALO = 8


@functools.lru_cache(maxsize=8)
def model_grid(method: str, scale: int, weights) -> dict:
    """The wavelength grid (``wavelength``, ``fwhm``, ``range``) a model was trained on."""
    path, _ = W.resolve(method, scale, weights)
    meta = W.read_metadata(path)
    if "wavelength" not in meta or "fwhm" not in meta:
        raise WeightsError(f"{path}: no wavelength grid in the weights' metadata; not {method} weights")
    return {"wavelength": [float(v) for v in meta["wavelength"]], "fwhm": float(meta["fwhm"]),
            "range": meta.get("range")}


def build_swir(method: str, scale: int, weights, device: torch.device):
    tensors, meta, path = W.load_checked(method, scale, weights)
    model = build_net(scale, meta["config"])
    net = {k[4:]: v for k, v in tensors.items() if k.startswith("net.")} or tensors
    W.load_into(model, net, path)
    return model.eval().to(device)


def _runner(method):
    def build(scale, weights, device):
        import torch

        model = build_swir(method, scale, weights, device)

        def run(x):
            with torch.inference_mode():
                sr = model(to_log(x))[0]
            return from_log(sr.clamp(0, 1)).float()

        return Runner(run, device)

    return build


def build_net(scale: int, arch: dict) -> SNLSR:
    from .net import SNLSR, SNLSRConfig

    return SNLSR(scale, SNLSRConfig(**arch))


def _grid(method):
    return lambda scale, weights: model_grid(method, scale, None if weights is None else str(weights))


_Opt = TrainOption
COMMON_OPTIONS = (
    _Opt("source-range", "nm", str, "1000-1700", in_command="always"),
    _Opt("target-range", "nm", str, "1700-2500", in_command="always"),
    _Opt("crop", "HR training crop (pixels)", int, 64, in_command="always"),
    _Opt("endmember-init", "start the endmembers from LR training pixels or at random",
         ("pixels", "random"), "pixels", in_command="always"),
    _Opt("sam-weight", "weight of the SAM loss terms", float, 0.1),
    _Opt("sam-domain", "SAM loss on the log-normalised values (the papers') or on reflectance",
         ("log", "linear"), "log"),
    _Opt("psf", "degradation PSF (.mat key 'data'), e.g. <data>/psf/asnlsr_psf_32x32.mat "
         "[default: a Gaussian fit of it]", "file", None),
)
SNLSR_OPTIONS = COMMON_OPTIONS + (
    _Opt("l1-only", "the official code's L1-only loss"),
    _Opt("frozen-unmixing", "freeze encoder and endmembers (the A-SNLSR repository's baseline)"),
)
ASNLSR_OPTIONS = COMMON_OPTIONS + (
    _Opt("alpha", "gradient-reversal weight", float, 0.01, in_command="always"),
    _Opt("alpha-rampup", "ramp alpha up over N batches", int, 0),
)

for _name, _summary, _paper, _configs, _options, _inputs, _order in (
        ("snlsr", "SNLSR: abundance-domain SR with spectral non-local attention (fixed band grid)",
         "Hu, Wang, Jiang, Zhang, Ma, IEEE TIP 33:5260-5272, 2024", SNLSR_CONFIGS, SNLSR_OPTIONS,
         ("source",), 5),
        ("a-snlsr", "A-SNLSR: SNLSR adapted to a target range (e.g. SWIR2) adversarially",
         "RMA-4DPL A-SNLSR (cross-spectral domain adaptation)", ASNLSR_CONFIGS, ASNLSR_OPTIONS,
         ("source", "target"), 6)):
    register(MethodSpec(
        name=_name, summary=_summary, builder=_runner(_name), scales=(2, 4, 8), halo=HALO,
        context="global", bands="grid", band_axis="joint", normalise=True, needs_weights=True,
        paper=_paper, configs=_configs, build_net=build_net, band_grid=_grid(_name),
        train=TrainSpec(entry=f"{__name__}.train:entry", options=_options, inputs=_inputs, init=False,
                        scales=(2, 4, 8)),
        tile_tolerance=5e-3, order=_order))  # RMS at 32-px LR tiles (blended)
