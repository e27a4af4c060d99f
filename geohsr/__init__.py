"""geohsr: super-resolution of georeferenced hyperspectral rasters.

>>> import geohsr
>>> cube = geohsr.open_cube("scene.tif", chunks="auto")
>>> hr = geohsr.superresolve(cube, method="bicubic", scale=4)
>>> geohsr.save_cube(hr, "scene_x4.tif")
"""

from importlib import resources as _resources

from . import accessor as _accessor  # noqa: F401  (registers the .hsr accessor)
from .api import spectral_range, superresolve
from .evaluate import evaluate
from .errors import GeohsrError, InputError, MethodError, OutputError, WeightsError
from .io import open_cube, save_cube
from .methods import MethodSpec, ModelConfig, Runner, TaskInfo, TrainOption, TrainSpec, get_method
from .methods import methods as methods
from .methods import register as register_method
from .methods import unregister as unregister_method

__version__ = "0.1.0"


def demo_scene_path() -> str:
    """Path of the bundled real EnMAP sample scene (224 bands, 64×128 px, 30 m, EPSG:32633)."""
    return str(_resources.files("geohsr") / "data" / "enmap_potsdam_demo.tif")


__all__ = [
    "open_cube", "save_cube", "superresolve", "evaluate", "spectral_range", "methods", "get_method", "demo_scene_path",
    "register_method", "unregister_method", "MethodSpec", "ModelConfig", "Runner", "TaskInfo", "TrainOption",
    "TrainSpec",
    "GeohsrError", "InputError", "MethodError", "OutputError", "WeightsError", "__version__",
]
