"""Reading and writing georeferenced hyperspectral cubes."""

from .read import open_cube
from .write import FORMATS, save_cube

__all__ = ["open_cube", "save_cube", "FORMATS"]
