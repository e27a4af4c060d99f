"""Sensor products as the agencies deliver them, read without a conversion step.

* **EnMAP L1C / L2A** (DLR): a product folder holding ``…-SPECTRAL_IMAGE.TIF`` (map-projected,
  int16, band-sequential) and ``…-METADATA.XML``. The GeoTIFF carries the grid but not the band
  table; the XML's ``bandCharacterisation`` gives each band's centre wavelength, FWHM, gain and
  offset (L2A: gain 1e-4, i.e. reflectance × 10000). Open the XML, the image or the folder.
  L1B (two detector images in sensor geometry) has no map grid and is refused.
* **PRISMA L2D** (ASI): one HDF-EOS5 file ``PRS_L2D_….he5``. The swath ``PRS_L2D_HCO`` holds
  ``VNIR_Cube`` and ``SWIR_Cube`` stored (rows, bands, columns) as uint16, each detector's bands
  in *decreasing* wavelength with unused slots at wavelength 0; the file attributes hold the band
  tables (``List_Cw_Vnir``, ``List_Fwhm_Vnir``, …), the DN → reflectance scaling
  (``L2ScaleVnirMin`` + DN · (``L2ScaleVnirMax`` − ``L2ScaleVnirMin``) / 65535, the same for SWIR
  and PAN), the map grid (``Epsg_Code`` and the upper-left / lower-right pixel centres
  ``Product_ULcorner_easting`` …; see :func:`_prisma_grid`) and 0 is the fill value.
  ``PRS_L2D_PCO`` holds the 5 m panchromatic ``Cube``, placed on the cube's outer corner: geohsr
  uses it when the same file is given as ``--guide`` (co-registration then measures any offset). L1, L2B and
  L2C are in sensor geometry and are refused.

Both come back as geohsr's usual ``(band, y, x)`` cube: values as stored (DN) with the per-band
``scale_factor`` / ``add_offset`` coords that turn them into physical units (``mask_and_scale``
or :func:`geohsr.io.read.decode` applies them), nodata set; PRISMA's bands detector by detector
(VNIR, then SWIR, each in increasing wavelength: the wavelength steps back once, where the
detectors overlap), as the EnMAP-Box imports them, so that no method sees the DN of the two
detectors' scalings interleaved.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError

ENMAP_XML = "-METADATA.XML"
_ENMAP_IMAGE = re.compile(r"-SPECTRAL_IMAGE(_COG)?\.(tif|tiff)$", re.IGNORECASE)
_ENMAP_LEVEL = re.compile(r"_(L1B|L1C|L2A)[-_]", re.IGNORECASE)


# --- EnMAP ------------------------------------------------------------------------------------


@dataclass
class EnmapMetadata:
    """The band table of an EnMAP product (from its ``METADATA.XML``)."""

    xml: Path
    level: str
    wavelength: np.ndarray
    fwhm: np.ndarray
    gain: np.ndarray
    offset: np.ndarray

    @property
    def label(self) -> str:
        return f"EnMAP {self.level}"


def _enmap_level(name: str) -> str | None:
    m = _ENMAP_LEVEL.search(name.replace("____", "_"))
    return m.group(1).upper() if m else None


def _is_enmap_xml(p: Path) -> bool:
    return p.name.upper().endswith(ENMAP_XML) and p.name.upper().startswith("ENMAP")


def enmap_product(path: Path) -> tuple[Path, Path] | None:
    """``(spectral image, metadata XML)`` when ``path`` is an EnMAP product's ``METADATA.XML``,
    its ``SPECTRAL_IMAGE`` GeoTIFF (with the XML beside it) or the product folder; else None.
    Raises :class:`InputError` for an EnMAP product geohsr cannot use (L1B, a missing image)."""
    path = Path(path)
    if path.is_dir():
        xmls = sorted(p for p in path.iterdir() if _is_enmap_xml(p))
        if len(xmls) != 1:
            return None
        xml = xmls[0]
    elif _is_enmap_xml(path):
        xml = path
    elif _ENMAP_IMAGE.search(path.name):
        stem = _ENMAP_IMAGE.sub("", path.name)
        cands = [p for p in path.parent.iterdir() if p.name.upper() == (stem + ENMAP_XML).upper()]
        return (path, cands[0]) if cands else None
    else:
        return None
    level = _enmap_level(xml.name)
    if level == "L1B":
        raise InputError(f"{xml.name}: an EnMAP L1B product is in sensor geometry (no map grid); "
                         "order the L1C (orthorectified radiance) or L2A (reflectance) product instead")
    stem = xml.name[:-len(ENMAP_XML)]
    images = sorted((p for p in xml.parent.iterdir()
                     if p.name.upper().startswith(stem.upper()) and _ENMAP_IMAGE.search(p.name)),
                    key=lambda p: "_COG" in p.name.upper())  # the plain GeoTIFF first
    if not images:
        raise InputError(f"{xml}: no {stem}-SPECTRAL_IMAGE.TIF beside the metadata; geohsr reads the "
                         "GeoTIFF delivery of EnMAP products — unpack the whole product folder")
    return images[0], xml


def enmap_metadata(xml: Path) -> EnmapMetadata:
    """Parse the band table of an EnMAP ``METADATA.XML``."""
    try:
        root = ET.parse(xml).getroot()
    except (ET.ParseError, OSError) as exc:
        raise InputError(f"{xml}: not a readable EnMAP metadata file ({exc})") from None
    table = root.find(".//bandCharacterisation")
    bands = [] if table is None else table.findall("bandID")
    if not bands:
        raise InputError(f"{xml}: no bandCharacterisation in the EnMAP metadata; is it the product's "
                         "METADATA.XML?")

    def col(tag: str, default: float) -> np.ndarray:
        vals = []
        for b in bands:
            el = b.find(tag)
            try:
                vals.append(float(el.text) if el is not None and el.text else default)
            except ValueError:
                vals.append(default)
        return np.array(vals, dtype=np.float64)

    order = np.argsort([int(b.get("number", i + 1)) for i, b in enumerate(bands)], kind="stable")
    return EnmapMetadata(xml, _enmap_level(xml.name) or "product", col("wavelengthCenterOfBand", np.nan)[order],
                         col("FWHMOfBand", np.nan)[order], col("GainOfBand", 1.0)[order],
                         col("OffsetOfBand", 0.0)[order])


# --- PRISMA -----------------------------------------------------------------------------------

PRISMA_CUBE = "HDFEOS/SWATHS/PRS_L2D_HCO/Data Fields"
PRISMA_PAN = "HDFEOS/SWATHS/PRS_L2D_PCO/Data Fields"
PRISMA_RES = {"HCO": 30.0, "PCO": 5.0}  # nominal pixel size (m) of the cube and the pan


def is_prisma(path: Path) -> bool:
    """Whether ``path`` is a PRISMA HDF-EOS5 product (by its name or its swaths)."""
    path = Path(path)
    if path.name.upper().startswith("PRS_") and path.suffix.lower() == ".he5":
        return True
    if path.suffix.lower() not in (".he5", ".h5", ".hdf5") or not path.is_file():
        return False
    try:
        import h5py

        with h5py.File(path, "r") as f:
            return "HDFEOS/SWATHS" in f and any(k.startswith("PRS_") for k in f["HDFEOS/SWATHS"])
    except OSError:
        return False


def _attr(f, name: str):
    if name not in f.attrs:
        raise InputError(f"{f.filename}: the PRISMA file has no attribute {name}; is it a complete L2D product?")
    v = f.attrs[name]
    return v.decode() if isinstance(v, bytes) else v


def _prisma_grid(f, res: float = PRISMA_RES["HCO"]):
    """(Affine, CRS) of the 30 m cube grid of a PRISMA L2D file.

    ``Product_ULcorner_*`` / ``Product_LRcorner_*`` locate the upper-left and lower-right pixels.
    Whether they are the pixels' centres (what the EnMAP-Box importer assumes) or the grid's outer
    corners is decided from the spacing they imply: ``(LR − UL) / (n − 1)`` is 30 m for centres,
    ``(LR − UL) / n`` for outer corners; a file that fits neither is refused rather than read off
    by half a pixel. Without the lower-right corner, the upper-left is taken as a pixel centre."""
    from affine import Affine
    from rasterio.crs import CRS

    cube = f[PRISMA_CUBE]
    var = next((v for v in ("VNIR_Cube", "SWIR_Cube") if v in cube), None)
    if var is None:
        raise InputError(f"{f.filename}: no VNIR_Cube or SWIR_Cube in the PRISMA file; is the product complete?")
    rows, cols = cube[var].shape[0], cube[var].shape[2]
    ul_e, ul_n = float(_attr(f, "Product_ULcorner_easting")), float(_attr(f, "Product_ULcorner_northing"))
    epsg = int(_attr(f, "Epsg_Code"))
    x0, y0 = ul_e - res / 2, ul_n + res / 2
    if "Product_LRcorner_easting" in f.attrs and "Product_LRcorner_northing" in f.attrs and rows > 1 and cols > 1:
        de = float(f.attrs["Product_LRcorner_easting"]) - ul_e
        dn = ul_n - float(f.attrs["Product_LRcorner_northing"])
        tol = 1e-3 * res
        if abs(de / cols - res) <= tol and abs(dn / rows - res) <= tol:
            x0, y0 = ul_e, ul_n  # the outer corners
        elif abs(de / (cols - 1) - res) > tol or abs(dn / (rows - 1) - res) > tol:
            raise InputError(f"{f.filename}: the corner attributes do not fit a {res:g} m grid of {cols} × {rows} "
                             "pixels; the grid cannot be placed exactly — convert the product with the EnMAP-Box "
                             "or prismaread and open the GeoTIFF")
    return Affine(res, 0.0, x0, 0.0, -res, y0), CRS.from_epsg(epsg)


def _prisma_level(f) -> str:
    swaths = list(f["HDFEOS/SWATHS"]) if "HDFEOS/SWATHS" in f else []
    for s in swaths:
        m = re.match(r"PRS_(L\d[A-D]?)_", s)
        if m:
            return m.group(1)
    return "unknown"


def open_prisma(path: Path, chunks: dict | None = None, part: str = "cube"):
    """A PRISMA L2D product as a ``(band, y, x)`` DataArray: ``part="cube"`` the VNIR and SWIR
    bands (each detector in increasing wavelength, VNIR first); ``part="pan"`` the 5 m
    panchromatic band.
    ``chunks`` (a dict by ``band``/``y``/``x``): dask-backed, each chunk reading only its window
    of the file; None: loaded."""
    import h5py
    import xarray as xr

    from .. import geo  # (imports rioxarray: registers .rio)
    from . import spectral as spec

    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise InputError(f"{path}: not a readable HDF5 file ({exc})") from None
    with f:
        level = _prisma_level(f)
        if level != "L2D":
            raise InputError(f"{path.name}: a PRISMA {level} product is in sensor geometry (no map grid); "
                             "use the L2D product (geocoded reflectance)")
        group = PRISMA_CUBE if part == "cube" else PRISMA_PAN
        if group not in f:
            raise InputError(f"{path.name}: no {group} in this PRISMA file; is the product complete?")
        detectors = _prisma_detectors(f, path.name) if part == "cube" else None
        pan_scale = None if part == "cube" else (float(_attr(f, "L2ScalePanMin")), float(_attr(f, "L2ScalePanMax")))
        transform, crs = _prisma_grid(f)
    if part == "pan":  # the pan shares the cube's outer corner, at 5 m
        r = PRISMA_RES["PCO"]
        transform = type(transform)(r, 0.0, transform.c, 0.0, -r, transform.f)
    try:
        ds = xr.open_dataset(path, engine="h5netcdf", group=group, phony_dims="access", chunks=None,
                             mask_and_scale=False, decode_times=False)  # lazily indexed: windows read on demand
    except Exception as exc:
        raise InputError(f"{path}: cannot read {group} ({exc})") from None
    if part == "cube":
        da, info, radiometry = _prisma_cube(ds, detectors, chunks)
    else:
        lo, hi = pan_scale
        v = ds["Cube"]
        da = _chunked(v.rename(dict(zip(v.dims, ("y", "x")))).expand_dims("band"), chunks)
        info = spec.SpectralInfo(1, band_name=["panchromatic"])
        radiometry = {"scale_factor": np.array([(hi - lo) / 65535.0]), "add_offset": np.array([lo])}
    da = da.assign_coords(band=np.arange(1, da.sizes["band"] + 1))
    da = da.assign_coords(info.coords()).assign_coords({k: ("band", v) for k, v in radiometry.items()})
    da = geo.with_grid(da, transform, crs)
    da.attrs = {"source": str(path), "sensor_product": f"PRISMA {level}" + (" panchromatic" if part == "pan" else "")}
    da.name = "reflectance"
    da.rio.write_nodata(0, encoded=False, inplace=True)  # in place: a copy would duplicate a loaded scene
    return da


def _prisma_detectors(f, name: str) -> list[tuple]:
    """``(variable, centre wavelengths, FWHM, flags, L2 scale min, max)`` of each detector in the file."""
    out = []
    for det, var in (("Vnir", "VNIR_Cube"), ("Swir", "SWIR_Cube")):
        if var not in f[PRISMA_CUBE]:
            continue
        cw = np.asarray(_attr(f, f"List_Cw_{det}"), dtype=np.float64)
        fw = np.asarray(f.attrs.get(f"List_Fwhm_{det}", np.full(cw.shape, np.nan)), dtype=np.float64)
        flags = np.asarray(f.attrs.get(f"List_Cw_{det}_Flags", np.ones(cw.shape)), dtype=np.int64)
        nb = f[PRISMA_CUBE][var].shape[1]
        if len(cw) != nb:
            raise InputError(f"{name}: List_Cw_{det} has {len(cw)} entries for {nb} {var} bands")
        out.append((var, cw, fw, flags, float(_attr(f, f"L2Scale{det}Min")), float(_attr(f, f"L2Scale{det}Max"))))
    return out


def _prisma_cube(ds, detectors: list[tuple], chunks: dict | None):
    """The detectors of the swath dataset ``ds`` as one ``(band, y, x)`` array, VNIR then SWIR
    (as the EnMAP-Box imports PRISMA: sorting the two together would interleave the overlap,
    ~920–1010 nm, and its DN of two scalings), each in increasing wavelength; with its
    :class:`SpectralInfo` and per-band scale/offset."""
    import xarray as xr

    from . import spectral as spec

    parts, wl, fwhm, good, scale, offset = [], [], [], [], [], []
    for var, cw, fw, flags, lo, hi in detectors:
        v = ds[var]
        v = v.rename(dict(zip(v.dims, ("y", "band", "x"))))
        keep = np.flatnonzero(cw > 0)
        keep = keep[np.argsort(cw[keep], kind="stable")]  # increasing wavelength (stored decreasing)
        # chunked (or loaded) in the file's own layout, then selected and transposed in memory: the
        # file is read by plain slabs (xarray's lazy transpose and an index list make h5py read
        # point by point: minutes for a scene)
        k0 = int(keep.min())
        slab = _chunked(v.isel(band=slice(k0, int(keep.max()) + 1)), chunks)
        parts.append(slab.isel(band=keep - k0).transpose("band", "y", "x"))
        wl.append(cw[keep]), fwhm.append(fw[keep]), good.append((flags[keep] != 0).astype(np.int8))
        scale.append(np.full(len(keep), (hi - lo) / 65535.0)), offset.append(np.full(len(keep), lo))
    da = xr.concat(parts, dim="band", coords="minimal", compat="override", join="override")
    if chunks is not None:  # the two detectors' chunks: one again
        da = da.chunk({"band": chunks.get("band", -1)})
    wl, fwhm, good = np.concatenate(wl), np.concatenate(fwhm), np.concatenate(good)
    info = spec.SpectralInfo(len(wl), wavelength=list(wl), fwhm=list(fwhm), good_band=[int(g) for g in good])
    return da, info, {"scale_factor": np.concatenate(scale), "add_offset": np.concatenate(offset)}


def _chunked(v, chunks: dict | None):
    """``v`` as dask chunks over its lazily indexed file variable (each chunk reads its own
    window), or loaded when ``chunks`` is None; the band axis in one chunk unless asked."""
    if chunks is None:
        return v.load()
    return v.chunk({d: chunks.get(d, -1 if d == "band" else "auto") for d in v.dims})
