"""SNLSR and A-SNLSR: abundance-domain SR of a fixed band grid (methods.md §5, §6).

A trained model fixes its band set: the weights' metadata hold the wavelength grid (centres and
FWHM) of its range. :func:`geohsr.api.prepare` resamples the input's bands onto that grid
(Gaussian SRFs at the input's band centres) or refuses when the input does not cover it; the
result has the model's bands and wavelengths. The runner applies the A-SNLSR log normalisation
to values divided by the scene maximum and inverts it on the output. The spectral non-local
attention sees a whole tile, so both are global-context methods (overlapping, blended tiles).
"""

from __future__ import annotations

import functools

import torch

from .. import weights as W
from ..errors import WeightsError
from . import MethodSpec, Runner, register

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
    from ..nets.snlsr import SNLSR, SNLSRConfig

    tensors, meta, path = W.load_checked(method, scale, weights)
    model = SNLSR(scale, SNLSRConfig(**meta["config"]))
    net = {k[4:]: v for k, v in tensors.items() if k.startswith("net.")} or tensors
    W.load_into(model, net, path)
    return model.eval().to(device)


def _runner(method):
    def build(scale, weights, device):
        from ..train.swir import from_log, to_log

        model = build_swir(method, scale, weights, device)

        def run(x):
            with torch.inference_mode():
                sr = model(to_log(x))[0]
            return from_log(sr.clamp(0, 1)).float()

        return Runner(run, device)

    return build


for _name, _summary, _paper in (
        ("snlsr", "SNLSR: abundance-domain SR with spectral non-local attention (fixed band grid)",
         "Hu, Wang, Jiang, Zhang, Ma, IEEE TIP 33:5260-5272, 2024"),
        ("a-snlsr", "A-SNLSR: SNLSR adapted to a target range (e.g. SWIR2) adversarially",
         "RMA-4DPL A-SNLSR (cross-spectral domain adaptation)")):
    register(MethodSpec(
        name=_name, summary=_summary, builder=_runner(_name), scales=(2, 4, 8), halo=HALO,
        context="global", bands="grid", band_axis="joint", normalise=True, needs_weights=True,
        paper=_paper))
