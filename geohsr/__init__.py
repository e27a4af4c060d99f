"""geohsr: super-resolution of georeferenced hyperspectral rasters.

>>> import geohsr
>>> cube = geohsr.open_cube("scene.tif", chunks="auto")
>>> hr = geohsr.superresolve(cube, method="bicubic", scale=4)
>>> geohsr.save_cube(hr, "scene_x4.tif")

The public names load their modules on first use (``lazy_loader``): ``import geohsr`` — and so
``geohsr --help``, ``geohsr info`` and the QGIS provider's method list — does not import torch.
"""

from importlib import resources as _resources

import lazy_loader as _lazy

from . import accessor as _accessor  # noqa: F401  (registers the .hsr accessor)
from .errors import GeohsrError, InputError, MethodError, OutputError, WeightsError

__version__ = "0.1.0"

__getattr__, _, _ = _lazy.attach(__name__, submod_attrs={
    "api": ["spectral_range", "superresolve"],
    "evaluate": ["evaluate"],
    "io": ["open_cube", "save_cube"],
    "methods": ["MethodSpec", "ModelConfig", "Runner", "TaskInfo", "TrainOption", "TrainSpec", "get_method",
                "methods"],
})


def demo_scene_path() -> str:
    """Path of the bundled real EnMAP sample scene (224 bands, 64×128 px, 30 m, EPSG:32633)."""
    return str(_resources.files("geohsr") / "data" / "enmap_potsdam_demo.tif")


def register_method(spec, *, replace: bool = False):
    """Add a :class:`MethodSpec` to the registry (:func:`geohsr.methods.register`)."""
    from .methods import register

    return register(spec, replace=replace)


def unregister_method(name: str) -> None:
    """Remove a method from the registry (:func:`geohsr.methods.unregister`)."""
    from .methods import unregister

    unregister(name)


__all__ = [
    "open_cube", "save_cube", "superresolve", "evaluate", "spectral_range", "methods", "get_method", "demo_scene_path",
    "register_method", "unregister_method", "MethodSpec", "ModelConfig", "Runner", "TaskInfo", "TrainOption",
    "TrainSpec",
    "GeohsrError", "InputError", "MethodError", "OutputError", "WeightsError", "__version__",
]


def __dir__():  # the lazy names are in __all__ with the eager ones
    return sorted(__all__)
