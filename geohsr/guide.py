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


class GuideSource:
    """A guide aligned lazily onto the HR grid of ``cube``: :meth:`window` warps just the part a
    tile needs (GDAL reads only the source blocks it touches), so a guide of any size streams
    with the tiles. Checks (CRS, coverage, band count) and the scene-wide normalisation (99.9th
    percentile of a decimated warp of the whole footprint) happen once, up front. Picklable:
    file-backed guides travel as a path."""

    def __init__(self, guide, cube: xr.DataArray, scale: int, min_coverage: float = 0.999,
                 channels: str = "rgb"):
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
                raise InputError(f"without CRS the guide must be exactly {W}×{H} px (the ×{scale} "
                                 f"grid), not {g.sizes['x']}×{g.sizes['y']}")
            g = geo.with_grid(g.copy(), t_hr, None)
        cov = coverage(g, geo.bounds(t_hr, H, W), cube_crs)
        if cov < min_coverage:
            raise InputError(f"the guide covers only {100 * cov:.1f} % of the scene; give a guide that "
                             "covers the whole scene (or crop the scene to the guide)")
        if channels == "all":  # every band, scaled but not clipped (classical fusion)
            picked = g
            self.bidx = [int(b) for b in g.coords["band"].values]
        else:
            picked = pick_channels(g)
            self.bidx = [int(b) for b in picked.coords["band"].values] if g.sizes["band"] > 1 else [1, 1, 1]
        self.channels, self.clip = len(self.bidx), channels != "all"
        self.wavelength = (picked.coords["wavelength"].values.astype(float) if "wavelength" in picked.coords
                           else np.full(self.channels, np.nan))
        self.path = g.attrs.get("source") if _is_file_backed(g, guide) else None
        self.array = None if self.path else np.asarray(picked.values, dtype=np.float32)
        self.src_transform = geo.cube_transform(g)
        self.src_crs = g.rio.crs
        self.nodata = g.rio.nodata
        self.dst_crs = cube_crs if cube_crs is not None else g.rio.crs
        self.t_hr, self.H, self.W = t_hr, H, W
        t = geo.cube_transform(g)
        g_res = abs(t.a) if t.b == 0 and t.d == 0 else None
        finer = (g_res is not None and cube_crs is not None and g.rio.crs == cube_crs
                 and g_res < abs(t_hr.a))
        from rasterio.enums import Resampling

        self.resampling = Resampling.average if finer else Resampling.bilinear
        self.lo, self.hi = 0.0, 1.0
        self.offset = (0.0, 0.0)  # (dy, dx) HR px the guide is read shifted by (co-registration)
        self.lo, self.hi = self._stats()

    def _warp(self, transform: Affine, h: int, w: int) -> np.ndarray:
        import rasterio
        from rasterio.warp import reproject

        out = np.full((self.channels, h, w), np.nan, dtype=np.float32)
        src_crs, dst_crs = self.src_crs, self.dst_crs
        if src_crs is None and dst_crs is None:  # both in the same pixel frame: plain resampling
            src_crs = dst_crs = "EPSG:3857"
        kw = dict(src_transform=self.src_transform, src_crs=src_crs, dst_transform=transform,
                  dst_crs=dst_crs, resampling=self.resampling, dst_nodata=np.nan,
                  src_nodata=self.nodata)
        if self.array is not None:
            for k in range(self.channels):
                reproject(self.array[k], out[k], **kw)
        else:
            with rasterio.open(self.path) as ds:
                for k, b in enumerate(self.bidx):
                    reproject(rasterio.band(ds, b), out[k], **kw)
        return out

    def _stats(self) -> tuple[float, float]:
        f = max(1, int(np.ceil(max(self.H, self.W) / 1024)))
        h, w = max(1, self.H // f), max(1, self.W // f)
        v = self._warp(self.t_hr @ Affine.scale(self.W / w, self.H / h), h, w)
        if not np.isfinite(v).any():
            raise InputError("the guide holds no valid pixel over the scene")
        hi = float(np.nanpercentile(v, 99.9))
        lo = min(0.0, float(np.nanmin(v)))
        return lo, max(hi, lo + 1e-12)

    def window(self, y0: int, x0: int, h: int, w: int, fill: bool = True) -> np.ndarray:
        """Guide pixels ``[y0:y0+h, x0:x0+w]`` of the HR grid, float32 (channels, h, w) scaled so the
        scene's 99.9th percentile is 1 (and clipped to [0, 1] for ``channels="rgb"``); pixels
        without guide data are filled from the nearest valid one (``fill``) or NaN."""
        dy, dx = self.offset
        v = self._warp(self.t_hr @ Affine.translation(x0 + dx, y0 + dy), h, w)
        v = (v - self.lo) / (self.hi - self.lo)
        if self.clip:
            v = np.clip(v, 0.0, 1.0, where=np.isfinite(v), out=v)
        if fill:
            ok = np.isfinite(v)
            if not ok.all():
                from .tiling import fill_invalid

                v = fill_invalid(v, ok, empty_value=0.0)
        return v


def _is_file_backed(g: xr.DataArray, guide) -> bool:
    """True when the guide was given as a path (then windows are re-read from the file; a
    DataArray may have been modified after opening, so its values are used instead)."""
    import os

    return isinstance(guide, (str, os.PathLike)) and bool(g.attrs.get("source"))


def align_guide(guide, cube: xr.DataArray, scale: int, min_coverage: float = 0.999) -> xr.DataArray:
    """The guide warped onto the ×``scale`` grid of ``cube``: float32 ``(3, s·h, s·w)`` in [0, 1]
    (NaN where the guide has no data)."""
    src = GuideSource(guide, cube, scale, min_coverage)
    v = src.window(0, 0, src.H, src.W, fill=False)
    out = xr.DataArray(v, dims=("band", "y", "x"), coords={"band": [1, 2, 3]}, name="guide")
    return geo.with_grid(out, src.t_hr, cube.rio.crs)
