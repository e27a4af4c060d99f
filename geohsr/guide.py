"""High-resolution guide images (RGB, RGBN, pan) aligned onto the exact HR output grid.

The guide may have another CRS, resolution, extent, dtype and band count. It is warped onto
the HR grid of the output (``T_hr = T · scale(1/s)``, same CRS) with area averaging when it is
finer than that grid and bilinear interpolation otherwise; three channels are picked (bands
nearest to 640/550/460 nm, or the first three, or a pan band repeated) and scaled to [0, 1] by
a scene-wide 99.9th percentile, so every tile sees the same normalisation.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from affine import Affine

from . import geo
from .errors import InputError
from .io import open_cube

RGB_NM = (640.0, 550.0, 460.0)


def hr_grid(cube: xr.DataArray, scale: int) -> tuple[Affine, int, int]:
    t = geo.cube_transform(cube)
    return geo.hr_transform(t, scale), cube.sizes["y"] * scale, cube.sizes["x"] * scale


def pick_channels(guide: xr.DataArray) -> xr.DataArray:
    """Three channels: nearest to R, G, B when wavelengths are known, else the first three;
    a single (panchromatic) band is repeated."""
    n = guide.sizes["band"]
    if n == 1:
        return xr.concat([guide] * 3, "band")
    if n == 2:
        raise InputError("the guide has 2 bands; give an RGB(N) image or a 1-band panchromatic image")
    wl = guide.coords["wavelength"].values if "wavelength" in guide.coords else np.full(n, np.nan)
    if np.isfinite(wl).sum() >= 3:
        idx = [int(np.nanargmin(np.abs(wl - w))) for w in RGB_NM]
    else:
        idx = [0, 1, 2]
    return guide.isel(band=idx)


def coverage(guide: xr.DataArray, cube_bounds, cube_crs) -> float:
    """Fraction of the scene's bounding box that the guide's bounding box covers."""
    from rasterio.warp import transform_bounds

    gb = geo.bounds(geo.cube_transform(guide), guide.sizes["y"], guide.sizes["x"])
    if guide.rio.crs is not None and cube_crs is not None and guide.rio.crs != cube_crs:
        gb = transform_bounds(guide.rio.crs, cube_crs, *gb, densify_pts=21)
    l, b, r, t = cube_bounds
    w = max(0.0, min(r, gb[2]) - max(l, gb[0]))
    h = max(0.0, min(t, gb[3]) - max(b, gb[1]))
    area = (r - l) * (t - b)
    return float(w * h / area) if area > 0 else 0.0


def align_guide(guide, cube: xr.DataArray, scale: int, min_coverage: float = 0.999) -> xr.DataArray:
    """The guide warped onto the ×``scale`` grid of ``cube``: float32 ``(3, s·h, s·w)`` in [0, 1]
    (NaN where the guide has no data)."""
    from rasterio.enums import Resampling

    g = open_cube(guide)
    cube_crs = cube.rio.crs
    if cube_crs is not None and g.rio.crs is None:
        raise InputError("the guide has no CRS but the scene has one; georeference the guide "
                         "(gdal_edit.py -a_srs …) so it can be aligned")
    t_hr, H, W = hr_grid(cube, scale)
    if cube_crs is None:
        if g.rio.crs is not None:
            raise InputError("the scene has no CRS but the guide has one; they cannot be aligned")
        if g.sizes["y"] != H or g.sizes["x"] != W:
            raise InputError(f"without CRS the guide must be exactly {W}×{H} px (the ×{scale} grid), "
                             f"not {g.sizes['x']}×{g.sizes['y']}")
        g = g.copy()
        g = geo.with_grid(g, t_hr, None)
    cov = coverage(g, geo.bounds(t_hr, H, W), cube_crs)
    if cov < min_coverage:
        raise InputError(f"the guide covers only {100 * cov:.1f} % of the scene; give a guide that "
                         "covers the whole scene (or crop the scene to the guide)")
    g = pick_channels(g)
    nodata = g.rio.nodata
    data = g.astype("float32")
    if nodata is not None:
        data = data.where(g != nodata)
    data = data.rio.write_nodata(np.nan, encoded=False)
    g_res = abs(geo.cube_transform(g).a) if geo.cube_transform(g).b == 0 else None
    finer = g_res is not None and cube_crs is not None and g.rio.crs == cube_crs and g_res < abs(t_hr.a)
    warped = data.rio.reproject(cube_crs if cube_crs is not None else g.rio.crs, shape=(H, W),
                                transform=t_hr,
                                resampling=Resampling.average if finer else Resampling.bilinear,
                                nodata=np.nan)
    v = warped.values.astype("float32")
    hi = np.nanpercentile(v, 99.9) if np.isfinite(v).any() else 1.0
    lo = min(0.0, float(np.nanmin(v))) if np.isfinite(v).any() else 0.0
    v = np.clip((v - lo) / max(hi - lo, 1e-12), 0.0, 1.0)
    out = xr.DataArray(v, dims=("band", "y", "x"), coords={"band": [1, 2, 3]}, name="guide")
    return geo.with_grid(out, t_hr, cube_crs)
