"""Grid math for super-resolution: the HR grid shares bounds and CRS with the LR grid.

``T_hr = T_lr · Affine.scale(1/s)``: the upper-left corner stays, pixels shrink by ``s``.
Pixel centres (rioxarray coords) of the HR grid are ``T_hr · (j + 0.5, i + 0.5)``; building them
with ``linspace`` or reusing the first LR centre shifts the product by ``(res − res/s)/2``.
"""

from __future__ import annotations

import numpy as np
import rioxarray  # noqa: F401  (registers .rio)
import xarray as xr
from affine import Affine


def hr_transform(transform: Affine, scale: int) -> Affine:
    """Transform of the ×``scale`` grid (rotated and sheared transforms included)."""
    return transform @ Affine.scale(1.0 / scale)


def centre_coords(transform: Affine, height: int, width: int) -> tuple[np.ndarray, np.ndarray] | None:
    """1-D pixel-centre coords (y, x) of a rectilinear grid; None for rotated/sheared ones."""
    if not (transform.b == 0 and transform.d == 0):
        return None
    x = transform.c + (np.arange(width) + 0.5) * transform.a
    y = transform.f + (np.arange(height) + 0.5) * transform.e
    return y, x


def cube_transform(cube: xr.DataArray) -> Affine:
    """The affine transform of a cube: from its coords when rectilinear, else as written."""
    if "x" in cube.coords and "y" in cube.coords and cube.sizes["x"] > 1 and cube.sizes["y"] > 1:
        return cube.rio.transform(recalc=True)
    return cube.rio.transform(recalc=False)


def bounds(transform: Affine, height: int, width: int) -> tuple[float, float, float, float]:
    """(left, bottom, right, top) of the grid's four corners (any affine)."""
    xs, ys = zip(*[transform @ c for c in ((0, 0), (width, 0), (0, height), (width, height))])
    return min(xs), min(ys), max(xs), max(ys)


def with_grid(da: xr.DataArray, transform: Affine, crs) -> xr.DataArray:
    """Attach CRS, transform and matching centre coords to ``da`` (dims ``band, y, x``); a new
    DataArray sharing ``da``'s values (rioxarray's own writes would deep-copy them each time)."""
    h, w = da.sizes["y"], da.sizes["x"]
    cc = centre_coords(transform, h, w)
    da = da.drop_vars([c for c in ("x", "y", "spatial_ref") if c in da.coords]).copy(deep=False)
    if cc is not None:
        da = da.assign_coords(y=cc[0], x=cc[1])
    if crs is not None:
        da.rio.write_crs(crs, inplace=True)
    da.rio.write_transform(transform, inplace=True)
    return da
