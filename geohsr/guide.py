"""High-resolution guide images (RGB, RGBN, pan) aligned onto the exact HR output grid.

The guide may have another CRS, resolution, extent, dtype and band count. It is warped onto
the HR grid of the output (``T_hr = T · scale(1/s)``, same CRS) with area averaging when it is
finer than that grid and bilinear interpolation otherwise; three channels are picked (bands
nearest to 640/550/460 nm, or the first three, or a pan band repeated) and scaled to [0, 1] by
a scene-wide 99.9th percentile, so every tile sees the same normalisation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr
from affine import Affine

from . import geo
from .errors import InputError
from .io import open_cube, products
from .io.read import read_by_gdal
from .sensor import GAIN_AT_NYQUIST

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
        g = open_guide(guide)
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
        self.src_shape = (g.sizes["y"], g.sizes["x"])
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
        self.aligned = _aligned_origin(t, g.rio.crs, t_hr, self.dst_crs)
        self.lo, self.hi = 0.0, 1.0
        self.offset = (0.0, 0.0)  # (dy, dx) HR px the guide is read shifted by (co-registration)
        self.mtf_gain = GAIN_AT_NYQUIST  # the scene's MTF gain relative to the guide (engine.set_mtf)
        self.lo, self.hi = self._stats()

    def _warp(self, transform: Affine, h: int, w: int) -> np.ndarray:
        if self.aligned is not None and transform.b == 0 and transform.d == 0 \
                and abs(transform.a - self.t_hr.a) <= 1e-9 * abs(self.t_hr.a) \
                and abs(transform.e - self.t_hr.e) <= 1e-9 * abs(self.t_hr.e):
            # the guide's own pixel grid at the HR resolution: read (and shift) it, no warp
            col, row = ~self.t_hr @ (transform.c, transform.f)
            return self._shifted(self.aligned[0] + row, self.aligned[1] + col, h, w)
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

    def _read(self, r0: int, c0: int, h: int, w: int, step: int = 1) -> np.ndarray:
        """Source pixels ``[r0:r0+h, c0:c0+w]`` of the picked bands, float32, NaN outside the
        source and at its nodata (``step``: every step-th pixel, array-backed guides only)."""
        rows, cols = self.src_shape
        ya, yb, xa, xb = max(r0, 0), min(r0 + h, rows), max(c0, 0), min(c0 + w, cols)
        masked = self.nodata is not None and not np.isnan(self.nodata)
        if step > 1:
            v = self.array[:, ya:yb:step, xa:xb:step].astype(np.float32)
            if masked:
                v[v == np.float32(self.nodata)] = np.nan
            return v
        out = np.full((self.channels, h, w), np.nan, dtype=np.float32)
        if ya >= yb or xa >= xb:
            return out
        if self.array is not None:
            v = self.array[:, ya:yb, xa:xb]
        else:
            import rasterio
            from rasterio.windows import Window

            with rasterio.open(self.path) as ds:
                v = ds.read(self.bidx, window=Window(xa, ya, xb - xa, yb - ya), out_dtype=np.float32)
        dst = out[:, ya - r0:yb - r0, xa - c0:xb - c0]
        dst[...] = v
        if masked:
            dst[v == np.float32(self.nodata)] = np.nan
        return out

    def _shifted(self, fy: float, fx: float, h: int, w: int) -> np.ndarray:
        """``h × w`` pixels of the source grid from fractional source row/column ``(fy, fx)``:
        a plain read at whole pixels, else bilinear between the four neighbours, as GDAL's
        bilinear does for a pure translation at equal resolution (invalid neighbours left out
        and the weights renormalised; NaN where the pixel centre is off the source)."""
        iy, ix = int(np.floor(fy + 1e-6)), int(np.floor(fx + 1e-6))
        wy, wx = fy - iy, fx - ix
        wy, wx = (0.0 if wy < 1e-6 else wy), (0.0 if wx < 1e-6 else wx)
        v = self._read(iy, ix, h + (wy > 0), w + (wx > 0))
        if wy == 0 and wx == 0:
            return v
        ok = np.isfinite(v)
        whole = bool(ok.all())
        if not whole:
            v = np.where(ok, v, np.float32(0))
            ok = ok.astype(np.float32)
        for axis, f in ((1, wy), (2, wx)):
            if f > 0:
                a, b = [slice(None)] * 3, [slice(None)] * 3
                a[axis], b[axis] = slice(None, -1), slice(1, None)
                v = np.float32(1 - f) * v[tuple(a)] + np.float32(f) * v[tuple(b)]
                if not whole:
                    ok = np.float32(1 - f) * ok[tuple(a)] + np.float32(f) * ok[tuple(b)]
        if not whole:
            with np.errstate(invalid="ignore", divide="ignore"):
                v = np.where(ok > 0.25 - 1e-6, v / ok, np.nan).astype(np.float32)
            rows, cols = self.src_shape  # off the source: pixel centre outside its extent
            cy, cx = fy + np.arange(h) + 0.5, fx + np.arange(w) + 0.5
            v[:, (cy < 0) | (cy >= rows)] = np.nan
            v[:, :, (cx < 0) | (cx >= cols)] = np.nan
        return np.ascontiguousarray(v, dtype=np.float32)

    def _stats(self) -> tuple[float, float]:
        f = max(1, int(np.ceil(max(self.H, self.W) / 1024)))
        h, w = max(1, self.H // f), max(1, self.W // f)
        if self.aligned is not None and self.array is not None:  # every f-th pixel of the footprint
            r0, c0 = (int(v) for v in self.aligned)
            v = self._read(r0, c0, self.H, self.W, step=f)
        else:
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


def _aligned_origin(t: Affine, crs, t_hr: Affine, dst_crs) -> tuple[float, float] | None:
    """The guide's (row, column) under the HR grid's first pixel when the guide has the HR grid's
    CRS, orientation and pixel size and its pixel corners coincide with the HR grid's (whole-pixel
    offset): then windows are read, not warped. None otherwise."""
    if (crs is None) != (dst_crs is None) or (crs is not None and crs != dst_crs):
        return None
    if t.b != 0 or t.d != 0 or t_hr.b != 0 or t_hr.d != 0:
        return None
    if abs(t.a - t_hr.a) > 1e-9 * abs(t_hr.a) or abs(t.e - t_hr.e) > 1e-9 * abs(t_hr.e):
        return None
    col, row = ~t @ (t_hr.c, t_hr.f)
    if abs(col - round(col)) > 1e-6 or abs(row - round(row)) > 1e-6:
        return None
    return float(round(row)), float(round(col))


def open_guide(guide) -> xr.DataArray:
    """The guide as a cube: a path or DataArray as :func:`geohsr.open_cube` opens it, except that a
    PRISMA L2D product given as the guide is its own 5 m panchromatic band."""
    import os

    if isinstance(guide, (str, os.PathLike)) and products.is_prisma(Path(guide).expanduser()):
        return open_cube(guide, asset="pan")
    return open_cube(guide)


def _is_file_backed(g: xr.DataArray, guide) -> bool:
    """True when the guide was given as a path to a file GDAL reads (then windows are re-read
    from the file; a DataArray may have been modified after opening, so its values are used
    instead, as are those of NetCDF/HDF5/Zarr guides)."""
    import os

    return isinstance(guide, (str, os.PathLike)) and read_by_gdal(g)


def align_guide(guide, cube: xr.DataArray, scale: int, min_coverage: float = 0.999) -> xr.DataArray:
    """The guide warped onto the ×``scale`` grid of ``cube``: float32 ``(3, s·h, s·w)`` in [0, 1]
    (NaN where the guide has no data)."""
    src = GuideSource(guide, cube, scale, min_coverage)
    v = src.window(0, 0, src.H, src.W, fill=False)
    out = xr.DataArray(v, dims=("band", "y", "x"), coords={"band": [1, 2, 3]}, name="guide")
    return geo.with_grid(out, src.t_hr, cube.rio.crs)
