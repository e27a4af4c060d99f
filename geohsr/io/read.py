"""open_cube: any supported raster → DataArray ``(band, y, x)`` with spectral coords and geo."""

from __future__ import annotations

import json
import os
import re
import warnings
from pathlib import Path

import numpy as np
import xarray as xr

from ..errors import InputError
from . import products
from . import spectral as spec

ENVI_DATA_EXT = ("", ".img", ".dat", ".raw", ".bsq", ".bil", ".bip", ".bin")
_GDAL_BAND_KEY = re.compile(r"^Band_\d+$")  # GDAL's ENVI band names, kept as band_name instead
NETCDF_EXT = (".nc", ".nc4", ".netcdf", ".h5", ".hdf5", ".he5", ".cdf")


def _find_envi_pair(path: Path) -> tuple[Path, Path] | None:
    """(data, header) for an ENVI file given either the header or the data file."""
    if path.suffix.lower() == ".hdr":
        for ext in ENVI_DATA_EXT:
            cand = path.with_suffix(ext) if ext else path.with_suffix("")
            if cand != path and cand.is_file():
                return cand, path
        raise InputError(f"{path}: ENVI header without its data file (looked for "
                         f"{', '.join(path.stem + e for e in ENVI_DATA_EXT if e)}); put them side by side")
    for hdr in (path.with_suffix(".hdr"), Path(str(path) + ".hdr")):
        if hdr.is_file():
            return path, hdr
    return None


def _read_envi_header(hdr: Path) -> dict:
    from spectral.io import envi

    try:
        return envi.read_envi_header(str(hdr))
    except Exception as exc:  # spectral raises its own types for malformed headers
        raise InputError(f"{hdr}: not a valid ENVI header ({exc}); fix or remove it") from None


def _check_file(path: Path) -> None:
    if not path.exists():
        raise InputError(f"{path}: no such file; check the path")
    if path.is_dir() and not (path / ".zgroup").exists() and not (path / "zarr.json").exists() \
            and path.suffix.lower() != ".zarr":
        raise InputError(f"{path}: is a directory, not a raster; give a GeoTIFF, ENVI, NetCDF or Zarr path")
    if path.is_file():
        if not os.access(path, os.R_OK):
            raise InputError(f"{path}: permission denied; make the file readable")
        if path.stat().st_size == 0:
            raise InputError(f"{path}: the file is empty; re-export or re-download it")


def open_cube(source, chunks=None, *, asset: str | None = None, mask_and_scale: bool = False) -> xr.DataArray:
    """Open a hyperspectral raster as a DataArray with dims ``(band, y, x)``.

    ``source`` is a path (GeoTIFF/COG, ENVI ``.hdr`` or data file, NetCDF, Zarr, a STAC item
    JSON) or an existing DataArray. ``chunks`` (e.g. ``"auto"`` or ``{"y": 512, "x": 512}``)
    makes the result lazy with dask. Coords on ``band``: ``wavelength`` and ``fwhm`` in nm,
    ``band_name``, ``good_band``, and where the file sets them GDAL's ``scale_factor``,
    ``add_offset`` and ``units`` (kept through :func:`geohsr.superresolve` and written back);
    CRS and transform via rioxarray; nodata via ``rio.nodata``. Values stay as stored (DN)
    unless ``mask_and_scale`` (:func:`decode`: DN·scale + offset, nodata → NaN, float32).

    Sensor products as delivered (:mod:`geohsr.io.products`): an EnMAP L1C/L2A product (its
    folder, ``METADATA.XML`` or ``SPECTRAL_IMAGE`` GeoTIFF: the band table comes from the XML) and
    a PRISMA L2D ``.he5`` (``asset="pan"``: its 5 m panchromatic band instead of the cube).
    """
    if mask_and_scale:
        return decode(open_cube(source, chunks, asset=asset))
    if isinstance(source, xr.DataArray):
        da = _normalise_dataarray(source)
        return da.chunk(chunks) if chunks is not None else da
    if isinstance(source, xr.Dataset):
        return open_cube(_pick_variable(source, "<Dataset>"), chunks)
    if not isinstance(source, (str, os.PathLike)):
        if hasattr(source, "__array__"):  # numpy, dask, torch: no georeference, no band table
            raise InputError("a bare array has no georeference and no band table: wrap it as an xarray "
                             "DataArray, xr.DataArray(cube, dims=('band', 'y', 'x')) (add the CRS and "
                             "transform with rioxarray's da.rio.write_crs / write_transform if it has them), "
                             "and pass that")
        raise InputError(f"expected a raster path or an xarray DataArray (band, y, x), got "
                         f"{type(source).__name__}")
    path = Path(os.fspath(source)).expanduser()
    enmap = products.enmap_product(path) if path.exists() else None  # a product folder, XML or image
    if enmap is not None:
        return _open_gdal(enmap[0], chunks, product=products.enmap_metadata(enmap[1]))
    _check_file(path)
    suffix = path.suffix.lower()
    if products.is_prisma(path):
        if asset not in (None, "cube", "pan"):
            raise InputError(f"{path.name}: a PRISMA product has the parts 'cube' and 'pan', not {asset!r}")
        return products.open_prisma(path, _prisma_chunks(chunks), part=asset or "cube")
    if suffix in (".zip", ".tar", ".gz", ".tgz", ".7z"):
        raise InputError(f"{path}: an archive; unpack it and give the raster (an EnMAP delivery: the "
                         "product folder inside, or its METADATA.XML)")
    if suffix == ".xml":
        raise InputError(f"{path}: an XML file is not a raster (geohsr reads an EnMAP product's "
                         "ENMAP01-…-METADATA.XML with its SPECTRAL_IMAGE beside it); give the image file")
    if suffix == ".json":
        return _open_stac_item(path, chunks, asset)
    if suffix == ".zarr" or path.is_dir():
        try:
            ds = xr.open_zarr(path, chunks=chunks if chunks is not None else None,
                              decode_coords="all", mask_and_scale=False)  # raw values, nodata kept
        except Exception as exc:
            raise InputError(f"{path}: not a readable Zarr store ({exc})") from None
        da = _pick_variable(ds, path)
        if chunks is None:
            da = da.load()
        return _normalise_dataarray(da)
    if suffix == ".mat":
        raise InputError(f"{path}: a MATLAB .mat file holds bare arrays (no georeference, no band "
                         "table); load it with scipy.io.loadmat, wrap the cube as an xarray DataArray "
                         "(band, y, x) and pass that to geohsr.superresolve, or convert it to GeoTIFF")
    if suffix in NETCDF_EXT:
        try:
            ds = xr.open_dataset(path, chunks=chunks, decode_coords="all", mask_and_scale=False)
        except Exception as exc:
            raise InputError(f"{path}: not a readable NetCDF/HDF5 file ({exc})") from None
        return _normalise_dataarray(_pick_variable(ds, path))
    return _open_gdal(path, chunks)


def _open_gdal(path: Path, chunks, stac_bands=None, product=None) -> xr.DataArray:
    import rasterio
    import rioxarray

    header = None
    pair = _find_envi_pair(path) if path.suffix.lower() in ENVI_DATA_EXT + (".hdr",) else None
    if pair is not None:
        path, hdr_path = pair
        header = _read_envi_header(hdr_path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            with rasterio.open(path) as ds:
                info = spec.SpectralInfo(ds.count)
                if product is not None:  # the product's own band table first (EnMAP METADATA.XML)
                    _check_product_bands(product, ds.count, path)
                    info.fill("wavelength", spec._floats(product.wavelength))
                    info.fill("fwhm", spec._floats(product.fwhm))
                spec.from_stac_bands(info, stac_bands)
                if header is not None:
                    spec.from_envi_header(info, header)
                spec.from_rasterio(info, ds)
                if header is not None and all(v is not None for v in info.wavelength):
                    # "band N" is what geohsr writes for its default "band N (<wl> Nanometers)" (GDAL
                    # appends the wavelength itself): read it back as that default
                    info.band_name = [d if n == f"band {i + 1}" and d and d.startswith(n + " (") else n
                                      for i, (n, d) in enumerate(zip(info.band_name, ds.descriptions))]
                nodata = ds.nodata
                if nodata is None and header is not None and "data ignore value" in header:
                    nodata = float(header["data ignore value"])
                dtype = ds.dtypes[0]
                if len(set(ds.dtypes)) > 1:
                    raise InputError(f"{path}: bands have different data types {set(ds.dtypes)}; "
                                     "convert to one type (gdal_translate -ot Float32)")
                if np.dtype(dtype).kind == "c":
                    raise InputError(f"{path}: complex data ({dtype}) is not supported; "
                                     "convert to amplitude/reflectance first")
                rotated = not ds.transform.is_rectilinear
                transform, crs = ds.transform, ds.crs
                tags = ds.tags()
                radiometry = _radiometry(ds)
                if product is not None and "scale_factor" not in radiometry \
                        and (np.any(product.gain != 1.0) or np.any(product.offset != 0.0)):
                    radiometry.update(scale_factor=product.gain, add_offset=product.offset)
            with warnings.catch_warnings():  # geohsr keeps per-band scales/offsets itself (_radiometry)
                warnings.filterwarnings("ignore", r"(Scales|Offsets) differ across bands", UserWarning)
                da = rioxarray.open_rasterio(path, chunks=_chunk_dict(chunks), mask_and_scale=False,
                                             parse_coordinates=not rotated)
    except InputError:
        raise
    except rasterio.errors.RasterioIOError as exc:
        msg = str(exc).splitlines()[0] if str(exc) else "unreadable"
        raise InputError(f"{path}: not a readable raster ({msg}); "
                         "give a GeoTIFF, ENVI, NetCDF or Zarr file") from None
    if isinstance(da, list):
        raise InputError(f"{path}: holds several subdatasets; open one of them")
    da = da.assign_coords(band=np.arange(1, da.sizes["band"] + 1))
    da = da.assign_coords(info.coords())
    if radiometry:
        da = da.assign_coords({k: ("band", v) for k, v in radiometry.items()})
    # rioxarray copies band 1's tags into attrs: keep only dataset-level tags
    da.attrs = {k: v for k, v in tags.items()
                if k not in ("AREA_OR_POINT", "wavelength_units") and not _GDAL_BAND_KEY.match(k)}
    if header is not None and "reflectance scale factor" in header:
        da.attrs["reflectance_scale_factor"] = float(header["reflectance scale factor"])
    da.attrs["source"] = str(path)
    if product is not None:
        da.attrs["sensor_product"] = product.label
    if crs is not None:
        da = da.rio.write_crs(crs)
    da = da.rio.write_transform(transform)
    da = da.rio.write_nodata(nodata, encoded=False) if nodata is not None else da
    da.name = da.name or "reflectance"
    return da


def _check_product_bands(product, count: int, path: Path) -> None:
    if len(product.wavelength) != count:
        raise InputError(f"{product.xml.name} describes {len(product.wavelength)} bands but {path.name} has "
                         f"{count}; they are not from the same product")


def read_by_gdal(cube: xr.DataArray) -> bool:
    """Whether ``cube`` was opened from a file GDAL reads band by band (a GeoTIFF, ENVI, …), so
    that windows of it can be re-read from that file (streaming, file-backed guides); False for
    in-memory cubes and for NetCDF/HDF5/Zarr sources, which xarray reads."""
    src = str(cube.attrs.get("source", ""))
    return bool(src) and Path(src).suffix.lower() not in NETCDF_EXT + (".zarr", "")


def _prisma_chunks(chunks) -> dict | None:
    """``chunks`` as a dict by dimension for the PRISMA reader (``{}``: all bands in one chunk, dask's
    automatic size across)."""
    if chunks is None:
        return None
    d = _chunk_dict(chunks)
    if isinstance(d, dict):
        return d
    return dict.fromkeys(("band", "y", "x"), d) if d else {}


def _chunk_dict(chunks):
    """``chunks`` as rioxarray wants it (a dict by dimension: tuples are deprecated there).
    ``"auto"`` keeps the bands of a pixel together (geohsr's methods read all bands of a window;
    GDAL's band-interleaved blocks would otherwise give one-band chunks) and sizes the windows
    automatically."""
    if chunks is None or isinstance(chunks, dict):
        return chunks
    if isinstance(chunks, str) and chunks == "auto":
        return {"band": -1, "y": "auto", "x": "auto"}
    if isinstance(chunks, (tuple, list)) and len(chunks) == 3:
        return dict(zip(("band", "y", "x"), chunks))
    return chunks


RADIOMETRY = ("scale_factor", "add_offset", "units")  # per-band coords: value = DN·scale + offset


def _radiometry(ds) -> dict:
    """GDAL's per-band scale/offset (e.g. EnMAP's 0.0001) and units, when any is set."""
    out = {}
    scales = [1.0 if v is None else float(v) for v in ds.scales]
    offsets = [0.0 if v is None else float(v) for v in ds.offsets]
    if any(v != 1.0 for v in scales) or any(v != 0.0 for v in offsets):
        out["scale_factor"], out["add_offset"] = np.array(scales), np.array(offsets)
    units = [u or "" for u in ds.units]
    if any(units):
        out["units"] = np.array(units, dtype=object)
    return out


def decode(da: xr.DataArray) -> xr.DataArray:
    """Physical values (``mask_and_scale``, as rioxarray does it): DN·scale_factor + add_offset per
    band, nodata and NaN → NaN, float32; the scale/offset coords and the nodata value are dropped."""
    from ..tiling import valid_mask

    nodata = da.rio.nodata
    scale = da.coords["scale_factor"].values if "scale_factor" in da.coords else np.ones(da.sizes["band"])
    offset = da.coords["add_offset"].values if "add_offset" in da.coords else np.zeros(da.sizes["band"])
    s = xr.DataArray(scale.astype(np.float32), dims="band")
    o = xr.DataArray(offset.astype(np.float32), dims="band")

    def _mask(x):
        return np.where(valid_mask(x, nodata), x.astype(np.float32), np.float32(np.nan))

    vals = xr.apply_ufunc(_mask, da, dask="parallelized", output_dtypes=[np.float32])
    out = (vals * s + o).astype(np.float32)
    out.attrs = {k: v for k, v in da.attrs.items() if k not in ("_FillValue", "scale_factor", "add_offset")}
    out = out.drop_vars([c for c in ("scale_factor", "add_offset") if c in out.coords])
    out = out.rio.write_crs(da.rio.crs) if da.rio.crs is not None else out
    out = out.rio.write_transform(da.rio.transform(recalc=False))
    return out.rio.write_nodata(np.nan, encoded=False)


def _open_stac_item(path: Path, chunks, asset: str | None) -> xr.DataArray:
    try:
        item = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: not a STAC item JSON ({exc})") from None
    assets = item.get("assets") or {}
    if not assets:
        raise InputError(f"{path}: STAC item has no assets")
    if asset is None:
        asset = next((k for k, a in assets.items() if "data" in (a.get("roles") or [])), None) \
            or next(iter(assets))
    if asset not in assets:
        raise InputError(f"{path}: STAC item has no asset {asset!r}; choose one of {sorted(assets)}")
    a = assets[asset]
    href = a["href"]
    target = (path.parent / href) if "://" not in href and not os.path.isabs(href) else Path(href)
    bands = a.get("eo:bands") or item.get("properties", {}).get("eo:bands")
    _check_file(target)
    return _open_gdal(target, chunks, stac_bands=bands)


def _pick_variable(ds: xr.Dataset, where) -> xr.DataArray:
    cands = [v for v in ds.data_vars if ds[v].ndim in (2, 3)]
    if len(cands) != 1:
        raise InputError(f"{where}: expected one 2-D or 3-D data variable, found "
                         f"{sorted(cands) or 'none'}; select one and pass the DataArray")
    return ds[cands[0]]


def _normalise_dataarray(da: xr.DataArray) -> xr.DataArray:
    """Bring a DataArray to ``(band, y, x)`` with the spectral coords present."""
    import rioxarray  # noqa: F401  (registers .rio)

    if da.ndim == 2:
        da = da.expand_dims("band")
    if da.ndim != 3:
        raise InputError(f"expected a 3-D cube (band, y, x), got dims {da.dims}")
    ydim = next((d for d in da.dims if d in ("y", "lat", "latitude", "row", "rows", "northing")), None)
    xdim = next((d for d in da.dims if d in ("x", "lon", "longitude", "col", "cols", "easting")), None)
    if ydim is None or xdim is None:
        ydim, xdim = da.dims[-2], da.dims[-1]
    bdim = next(d for d in da.dims if d not in (ydim, xdim))
    ren = {k: v for k, v in {bdim: "band", ydim: "y", xdim: "x"}.items() if k != v}
    if ren:
        if bdim in da.coords and bdim != "band" and bdim in ("wavelength", "wavelengths", "wl"):
            da = da.assign_coords({"wavelength_": (bdim, np.asarray(da[bdim].values, float))})
            da = da.drop_vars(bdim)
        da = da.rename(ren)
        if "wavelength_" in da.coords:
            da = da.rename({"wavelength_": "wavelength"})
    da = da.transpose("band", "y", "x")
    info = spec.from_coords(da) if "band" in da.dims else spec.SpectralInfo(da.sizes["band"])
    if "band" not in da.coords or da["band"].dtype.kind not in "iu":
        da = da.assign_coords(band=np.arange(1, da.sizes["band"] + 1))
    if all(v is None for v in info.wavelength) and "wavelength" in da.attrs:
        info.fill("wavelength", spec._floats(np.atleast_1d(da.attrs["wavelength"])))
    da = da.assign_coords(info.coords())
    da = da.rio.set_spatial_dims(x_dim="x", y_dim="y")
    if da.rio.nodata is None:
        nd = da.attrs.get("nodata", da.encoding.get("_FillValue", da.attrs.get("_FillValue")))
        if nd is not None:
            da = da.rio.write_nodata(nd, encoded=False)
    return da
