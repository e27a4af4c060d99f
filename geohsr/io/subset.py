"""A part of a scene from the command line: bands (numbers or a wavelength range), a pixel window
or a bounding box, and wavelengths from a text file for scenes that carry none.

What Python users do with ``cube.isel(...)`` / ``cube.sel(...)``; the CLI's ``--bands``,
``--wavelength-range``, ``--window``, ``--bbox`` and ``--wavelengths`` go through here, and the
streaming driver learns where the part lies in its file (:attr:`geohsr.engine.Plan.source_subset`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from ..errors import InputError


def _ints(text: str, what: str) -> list[int]:
    """"1-50,60,70-72" → [1, …, 50, 60, 70, 71, 72] (1-based, as written)."""
    out = []
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        a, sep, b = part.partition("-")
        try:
            lo, hi = int(a), int(b) if sep else int(a)
        except ValueError:
            raise InputError(f"{what} takes band numbers and ranges such as 1-50,60, not {text!r}") from None
        if lo > hi:
            raise InputError(f"{what}: range {part} is empty; write LOW-HIGH")
        out.extend(range(lo, hi + 1))
    return out


def _floats(text: str, n: int, what: str, example: str) -> list[float]:
    try:
        vals = [float(v) for v in str(text).replace(" ", "").split(",")]
    except ValueError:
        raise InputError(f"{what} takes {n} numbers, e.g. {example}, not {text!r}") from None
    if len(vals) != n:
        raise InputError(f"{what} takes {n} numbers, e.g. {example}, not {text!r}")
    return vals


def read_wavelengths(path, bands: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Band centres (nm) and, when given, FWHM from a text/CSV file: one line per band, the centre
    first and optionally the FWHM (comma, tab or space separated; ``#`` comments). Values below 100
    are taken as micrometres."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"--wavelengths: {p} does not exist")
    rows = []
    for line in p.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.replace(",", " ").replace(";", " ").split()
        try:
            rows.append([float(v) for v in parts[:2]])
        except ValueError:
            if rows:  # a header line is fine only before the numbers
                raise InputError(f"--wavelengths: {p}: cannot read {line!r}; one band per line: "
                                 "centre [fwhm]") from None
    if len(rows) != bands:
        raise InputError(f"--wavelengths: {p} lists {len(rows)} bands, the scene has {bands}; one line per band")
    wl = np.array([r[0] for r in rows], float)
    fwhm = np.array([r[1] for r in rows], float) if all(len(r) > 1 for r in rows) else None
    if np.nanmax(wl) < 100:  # micrometres
        wl, fwhm = wl * 1000.0, None if fwhm is None else fwhm * 1000.0
    return wl, fwhm


def subset(cube: xr.DataArray, *, bands=None, wavelength_range=None, window=None, bbox=None,
           wavelengths=None) -> tuple[xr.DataArray, tuple | None]:
    """The part of ``cube`` the options select, and where it lies in the cube: ``(row0, col0,
    1-based band indexes or None)``, or None when nothing was selected.

    ``bands``: "1-50,60" (1-based); ``wavelength_range``: "400-1000" (nm, band centres within);
    ``window``: "COL,ROW,WIDTH,HEIGHT" in pixels (GDAL's -srcwin order); ``bbox``:
    "MINX,MINY,MAXX,MAXY" in the cube's CRS (the pixels it touches); ``wavelengths``: a file of
    band centres for a cube without them (applied first)."""
    nb, h, w = cube.shape
    if wavelengths is not None:
        wl, fwhm = read_wavelengths(wavelengths, nb)
        cube = cube.assign_coords(wavelength=("band", wl))
        if fwhm is not None:
            cube = cube.assign_coords(fwhm=("band", fwhm))
    if all(v is None for v in (bands, wavelength_range, window, bbox)):
        return cube, None
    idx = np.arange(nb)
    if bands is not None:
        want = _ints(bands, "--bands")
        bad = [b for b in want if not 1 <= b <= nb]
        if bad:
            raise InputError(f"--bands: the scene has bands 1-{nb}; {bad[0]} is not one of them")
        idx = np.array(sorted(set(b - 1 for b in want)), int)
    if wavelength_range is not None:
        lo, hi = sorted(_floats(str(wavelength_range).replace("-", ",", 1), 2, "--wavelength-range", "400-1000"))
        wl = np.asarray(cube.coords["wavelength"].values, float) if "wavelength" in cube.coords else np.full(nb, np.nan)
        if not np.isfinite(wl).any():
            raise InputError("--wavelength-range needs band wavelengths and this scene has none; give "
                             "--wavelengths FILE or select with --bands")
        idx = idx[(wl[idx] >= lo) & (wl[idx] <= hi)]
        if idx.size == 0:
            raise InputError(f"--wavelength-range {lo:g}-{hi:g} nm holds no band of this scene "
                             f"({np.nanmin(wl):.0f}-{np.nanmax(wl):.0f} nm)")
    if window is not None and bbox is not None:
        raise InputError("give --window or --bbox, not both")
    r0, c0, rh, cw = 0, 0, h, w
    if window is not None:
        c0, r0, cw, rh = (int(v) for v in _floats(window, 4, "--window", "0,0,512,512"))
        if cw <= 0 or rh <= 0 or c0 < 0 or r0 < 0 or c0 + cw > w or r0 + rh > h:
            raise InputError(f"--window {window} is not inside the scene ({w}×{h} px); "
                             "COL,ROW,WIDTH,HEIGHT with COL+WIDTH <= width and ROW+HEIGHT <= height")
    if bbox is not None:
        from rasterio.windows import from_bounds

        minx, miny, maxx, maxy = _floats(bbox, 4, "--bbox", "365000,5800000,370000,5805000")
        if minx >= maxx or miny >= maxy:
            raise InputError(f"--bbox {bbox}: give MINX,MINY,MAXX,MAXY with MINX < MAXX and MINY < MAXY")
        win = from_bounds(minx, miny, maxx, maxy, transform=cube.rio.transform())
        rr0 = max(int(np.floor(win.row_off + 1e-9)), 0)
        cc0 = max(int(np.floor(win.col_off + 1e-9)), 0)
        rr1 = min(int(np.ceil(win.row_off + win.height - 1e-9)), h)
        cc1 = min(int(np.ceil(win.col_off + win.width - 1e-9)), w)
        if rr1 <= rr0 or cc1 <= cc0:
            b = cube.rio.bounds()
            raise InputError(f"--bbox {bbox} does not overlap the scene (bounds {b[0]:.6g},{b[1]:.6g},"
                             f"{b[2]:.6g},{b[3]:.6g}{', CRS ' + str(cube.rio.crs) if cube.rio.crs else ''})")
        r0, c0, rh, cw = rr0, cc0, rr1 - rr0, cc1 - cc0
    part = cube.isel(band=idx.tolist(), y=slice(r0, r0 + rh), x=slice(c0, c0 + cw))
    part.attrs = dict(cube.attrs)
    return part, (r0, c0, None if idx.size == nb else (idx + 1).tolist())
