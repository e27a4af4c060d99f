"""save_cube: atomic, streaming writes of a ``(band, y, x)`` cube with its spectral metadata."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import sys
import threading
import warnings
from pathlib import Path

import dask.array as dsa
import numpy as np
import xarray as xr

from ..dtypes import cast, check_nodata_fits
from ..errors import OutputError
from . import spectral as spec

FORMATS = ("GTiff", "COG", "ENVI", "Zarr", "NetCDF")
_EXT_FORMAT = {".tif": "GTiff", ".tiff": "GTiff", ".gtiff": "GTiff", ".zarr": "Zarr",
               ".nc": "NetCDF", ".nc4": "NetCDF", ".hdr": "ENVI", ".img": "ENVI",
               ".dat": "ENVI", ".bsq": "ENVI", ".envi": "ENVI"}
_FORMAT_EXT = {"GTiff": ".tif", "COG": ".tif", "ENVI": ".img", "Zarr": ".zarr", "NetCDF": ".nc"}


def format_for(path, fmt: str | None = None) -> str:
    """The output format: ``fmt`` if given (case-insensitive), else from the file extension."""
    if fmt:
        for f in FORMATS:
            if f.lower() == str(fmt).lower():
                return f
        raise OutputError(f"unknown output format {fmt!r}; choose one of {', '.join(FORMATS)}")
    ext = Path(path).suffix.lower()
    if ext not in _EXT_FORMAT:
        raise OutputError(f"{path}: cannot tell the format from '{ext or 'no extension'}'; "
                          f"use .tif, .img/.hdr, .zarr or .nc, or pass --format")
    return _EXT_FORMAT[ext]


def default_extension(fmt: str) -> str:
    return _FORMAT_EXT[format_for("x.tif", fmt)]


def envi_paths(path: Path) -> tuple[Path, Path]:
    """(data, header) paths of an ENVI product named by either file."""
    if path.suffix.lower() == ".hdr":
        return path.with_suffix(".img"), path
    return path, path.with_suffix(".hdr")


def _dest_paths(path: Path, fmt: str) -> list[Path]:
    return list(envi_paths(path)) if fmt == "ENVI" else [path]


def check_destination(path, fmt: str | None = None, overwrite: bool = False,
                      sources: tuple = ()) -> tuple[Path, str]:
    """Validate an output path before any work is done. Returns (path, format)."""
    path = Path(os.fspath(path)).expanduser()
    fmt = format_for(path, fmt)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"{parent}: output directory does not exist; create it first")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{parent}: output directory is not writable; choose another -o path")
    for dest in _dest_paths(path, fmt):
        for src in sources:
            if src is not None and Path(src).exists() and dest.exists() and \
                    os.path.samefile(src, dest):
                raise OutputError(f"{dest}: output would overwrite the input; choose another -o path")
        if dest.exists() and not overwrite:
            raise OutputError(f"{dest}: already exists; pass --overwrite (overwrite=True) to replace it")
        if dest.exists() and dest.is_dir() and fmt != "Zarr":
            raise OutputError(f"{dest}: is a directory; choose a file name")
    return path, fmt


def check_space(path, shape, dtype) -> None:
    """Refuse, in one line, an output that cannot fit in the free space where it goes (e.g. a
    mistyped ``-s 1000``): ``shape`` (bands, rows, cols) of the product."""
    import shutil

    nbytes = int(np.prod([int(v) for v in shape], dtype=np.float64) * np.dtype(dtype).itemsize)
    folder = Path(path).resolve().parent
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return
    if nbytes > free:
        b, h, w = shape
        raise OutputError(f"the output would be {_gb(nbytes)} ({w}×{h} px × {b} bands × "
                          f"{np.dtype(dtype).name}) but {folder} has {_gb(free)} free; choose a "
                          "smaller --scale, fewer bands, another --dtype or another place")


def _gb(n: float) -> str:
    return f"{n / 2 ** 30:.1f} GB" if n >= 2 ** 30 else f"{n / 2 ** 20:.0f} MB"


def _tmp_name(path: Path, suffix: str | None = None) -> Path:
    return path.with_name(f".{path.stem}.geohsr-tmp-{os.getpid()}-{threading.get_ident()}"
                          f"{path.suffix if suffix is None else suffix}")


def raise_os(exc: OSError, path: Path):
    if getattr(exc, "errno", None) in (errno.ENOSPC, errno.EFBIG) or "No space left" in str(exc) \
            or "File too large" in str(exc):
        raise OutputError(f"{path}: disk full while writing; free space or choose another "
                          "-o location (nothing was written)") from None
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    raise OutputError(f"{path}: cannot write ({first}); check free disk space, file size limits "
                      "and permissions — nothing was written") from None


class _RasterioTarget:
    """A ``__setitem__`` target for ``dask.array.store`` writing windows into an open dataset."""

    def __init__(self, ds, dtype, nodata):
        self.ds, self.dtype, self.nodata = ds, np.dtype(dtype), nodata
        self.lock = threading.Lock()

    def __setitem__(self, key, value):
        from rasterio.windows import Window

        bs, ys, xs = key
        value = np.asarray(value)
        if value.dtype != self.dtype:
            value = cast(value, self.dtype, self.nodata)
        idx = list(range(bs.start + 1, bs.stop + 1))
        win = Window(xs.start, ys.start, xs.stop - xs.start, ys.stop - ys.start)
        with self.lock:
            self.ds.write(value, indexes=idx, window=win)


def progress_context(progress):
    """Progress on stderr for the dask tasks computed inside: ``True``/``"bar"`` a tqdm bar,
    ``"json"`` one ``{"progress": f}`` line per percent (machine-readable, for the QGIS
    plugin), ``False``/``None``/``"none"`` nothing."""
    if not progress or progress == "none":
        return contextlib.nullcontext()
    if progress == "json":
        return _JsonProgress()
    from tqdm.dask import TqdmCallback

    return TqdmCallback(desc="geohsr", unit="task", leave=False, mininterval=0.5)


_JSON_WINDOW = [0.0, 1.0]  # the part of the command's 0 → 1 that JSON progress lines now cover


def set_json_window(lo: float = 0.0, hi: float = 1.0) -> None:
    """Map the JSON progress written from now on onto ``lo`` → ``hi`` of the command's progress:
    ``geohsr run --adapt`` reports the adaptation in the first part and the super-resolution in
    the rest, so the line the QGIS plugin reads counts up once. The CLI resets it after each
    command."""
    _JSON_WINDOW[:] = [lo, hi]


class JsonPercent:
    """Writes ``{"progress": 0.42, "phase": "network"}`` to stderr each time the whole percentage
    grows (the machine-readable progress the QGIS plugin reads). ``span``: the share of the whole
    run this phase covers, so a run of several phases counts up once from 0 to 1; the value never
    goes back. Thread-safe (``update`` may come from several training threads)."""

    def __init__(self, total: int = 0, span=(0.0, 1.0), phase: str = "write"):
        self.total, self.done, self.last = total, 0, -1
        self.span, self.phase = span, phase
        self._lock = threading.Lock()

    def update(self, k: int = 1) -> None:
        with self._lock:
            self.done += k
            self._write()

    def advance_to(self, done: int) -> None:
        """Set the count done (never lowered)."""
        with self._lock:
            if done > self.done:
                self.done = done
                self._write()

    def _write(self) -> None:
        lo, hi = self.span
        f = lo + (hi - lo) * min(self.done / max(self.total, 1), 1.0)
        w0, w1 = _JSON_WINDOW
        pct = int(100 * (w0 + (w1 - w0) * f) + 1e-9)
        if pct > self.last:
            self.last = pct
            sys.stderr.write(json.dumps({"progress": round(pct / 100, 2), "phase": self.phase}) + "\n")
            sys.stderr.flush()


class _JsonProgress:
    """dask callback reporting the fraction of tasks done through :class:`JsonPercent`."""

    def __enter__(self):
        from dask.callbacks import Callback

        percent = JsonPercent()

        class _CB(Callback):
            def _start_state(self, dsk, state):  # one more computation: its tasks count too
                percent.total += sum(len(state[k]) for k in ("ready", "waiting", "running", "finished"))

            def _posttask(self, key, result, dsk, state, worker_id):
                percent.update()

        self.cb = _CB()
        self.cb.__enter__()
        return self

    def __exit__(self, *exc):
        self.cb.__exit__(*exc)
        return False


def save_cube(cube: xr.DataArray, path, *, format: str | None = None, dtype=None,
              nodata=None, overwrite: bool = False, compress: str | None = None,
              progress: bool | str = False) -> Path:
    """Write ``cube`` to ``path`` atomically (temporary file renamed into place).

    Formats: GeoTIFF (tiled, BigTIFF when needed), COG, ENVI (header with wavelength, fwhm,
    bbl, band names, map info), Zarr, NetCDF. Per-band tags and descriptions carry the
    spectral metadata. ``dtype`` defaults to the cube's (integers rounded and clipped).
    Dask-backed cubes are streamed block by block. Returns the written path.
    """
    from ..io.read import open_cube

    cube = open_cube(cube)
    src = cube.attrs.get("source")
    path, fmt = check_destination(path, format, overwrite, sources=(src,))
    dtype = np.dtype(dtype or cube.dtype)
    if dtype.kind not in "iuf":
        raise OutputError(f"cannot write data type {dtype}; choose an integer or float dtype")
    nodata = cube.rio.nodata if nodata is None else nodata
    if nodata is not None and dtype.kind in "iu":
        try:
            check_nodata_fits(nodata, dtype)
        except ValueError:
            raise OutputError(f"nodata {nodata} does not fit {dtype}; pass another --dtype or nodata") from None
    check_space(path, cube.shape, dtype)
    try:
        if fmt in ("GTiff", "COG", "ENVI"):
            _save_gdal(cube, path, fmt, dtype, nodata, overwrite, compress, progress)
        else:
            _save_xarray(cube, path, fmt, dtype, nodata, overwrite, progress)
    except OSError as exc:
        if isinstance(exc, OutputError):
            raise
        raise_os(exc, path)
    return path


def raster_profile(cube: xr.DataArray, driver: str, dtype, nodata, compress) -> dict:
    count, height, width = cube.shape
    prof = dict(driver=driver, count=count, height=height, width=width, dtype=dtype.name,
                crs=cube.rio.crs, transform=cube.rio.transform(recalc=False), nodata=nodata)
    if driver == "GTiff":
        block = 256 if min(height, width) >= 256 else 16 * max(1, min(height, width) // 16)
        prof.update(tiled=min(height, width) >= 16, blockxsize=max(16, block),
                    blockysize=max(16, block), interleave="band", bigtiff="IF_SAFER")
        if not prof["tiled"]:
            del prof["blockxsize"], prof["blockysize"]
        if compress:
            prof["compress"] = compress
    if prof["crs"] is None:
        del prof["crs"]
    return prof


def write_metadata(ds, cube: xr.DataArray, info: spec.SpectralInfo, fmt: str) -> None:
    tags = {k: str(v) for k, v in cube.attrs.items()
            if k not in ("source", "nodata", "_FillValue") and isinstance(v, (str, int, float))}
    if tags:
        ds.update_tags(**tags)
    for name, attr in (("scale_factor", "scales"), ("add_offset", "offsets"), ("units", "units")):
        if name in cube.coords and cube.coords[name].dims == ("band",):
            setattr(ds, attr, tuple(cube.coords[name].values.tolist()))
    for i in range(cube.sizes["band"]):
        ds.set_band_description(i + 1, spec.description(info, i))
        ds.update_tags(i + 1, **spec.band_tags(info, i))
        if fmt != "ENVI":
            img = spec.imagery_tags(info, i)
            if img:
                ds.update_tags(i + 1, ns="IMAGERY", **img)


def _store(cube: xr.DataArray, target, progress: bool) -> None:
    data = cube.data
    if not isinstance(data, dsa.Array):
        target[(slice(0, cube.shape[0]), slice(0, cube.shape[1]), slice(0, cube.shape[2]))] = data
        return
    with progress_context(progress):
        dsa.store(data, target, lock=False, compute=True)


def _save_gdal(cube, path: Path, fmt, dtype, nodata, overwrite, compress, progress) -> None:
    import rasterio
    import rasterio.shutil

    info = spec.from_coords(cube)
    driver = "ENVI" if fmt == "ENVI" else "GTiff"
    if fmt == "ENVI":
        data_path, hdr_path = envi_paths(path)
        tmp = _tmp_name(data_path)
        tmp_hdr = tmp.with_suffix(".hdr")
        made = [tmp, tmp_hdr, Path(str(tmp) + ".aux.xml")]
    else:
        tmp = _tmp_name(path, ".tif")
        made = [tmp, Path(str(tmp) + ".aux.xml")]
    cog_tmp = _tmp_name(path, ".cog.tif") if fmt == "COG" else None
    if cog_tmp is not None:
        made.append(cog_tmp)
    try:
        with rasterio.Env(GDAL_PAM_ENABLED="NO"), warnings.catch_warnings():
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            with rasterio.open(tmp, "w", **raster_profile(cube, driver, dtype, nodata, compress)) as ds:
                write_metadata(ds, cube, info, fmt)
                _store(cube, _RasterioTarget(ds, dtype, nodata), progress)
            if fmt == "COG":
                rasterio.shutil.copy(tmp, cog_tmp, driver="COG", BIGTIFF="IF_SAFER",
                                     COMPRESS=compress or "DEFLATE", BLOCKSIZE=256)
        if fmt == "ENVI":
            finish_envi_header(tmp_hdr, info, nodata, envi_description(cube, path))
            os.replace(tmp, data_path)
            os.replace(tmp_hdr, hdr_path)
        else:
            os.replace(cog_tmp if fmt == "COG" else tmp, path)
    finally:  # temporaries (all of them after an error; the COG's source after success)
        for p in made:
            with contextlib.suppress(OSError):
                p.unlink()


def finish_envi_header(hdr_path: Path, info: spec.SpectralInfo, nodata, description: str | None = None) -> None:
    """Add wavelength, fwhm, bbl, band names, data ignore value and a description (not the
    temporary file's name GDAL puts there) to GDAL's ENVI header."""
    from spectral.io import envi

    hdr = envi.read_envi_header(str(hdr_path))
    if all(v is not None for v in info.wavelength):
        hdr["wavelength"] = [spec.fmt(v) for v in info.wavelength]
        hdr["wavelength units"] = "Nanometers"
    if all(v is not None for v in info.fwhm):
        hdr["fwhm"] = [spec.fmt(v) for v in info.fwhm]
    hdr["bbl"] = [str(1 if v is None else int(v)) for v in info.good_band]
    # GDAL shows an ENVI band as "<band name> (<wavelength> <units>)": the names go without it
    hdr["band names"] = [spec.envi_band_name(info, i) for i in range(info.n)]
    hdr["description"] = description or "geohsr output"
    if nodata is not None:
        hdr["data ignore value"] = spec.fmt(nodata)
    envi.write_envi_header(str(hdr_path), hdr)


def envi_description(cube: xr.DataArray, path: Path) -> str:
    """The ENVI header's description: the file's name and what geohsr made of which source."""
    a = cube.attrs
    what = f" ({a['geohsr_method']} ×{a['geohsr_scale']})" if "geohsr_method" in a else ""
    return f"{Path(path).name}{what}, written by geohsr"


def _save_xarray(cube, path: Path, fmt, dtype, nodata, overwrite, progress) -> None:
    name = cube.name or "reflectance"
    out = cube
    if np.dtype(out.dtype) != dtype:
        out = xr.apply_ufunc(cast, out, kwargs=dict(dtype=dtype, nodata=nodata),
                             dask="parallelized", output_dtypes=[dtype], keep_attrs=True)
    out = out.copy()
    out.attrs = {k: v for k, v in cube.attrs.items() if k not in ("_FillValue", "source")
                 and isinstance(v, (str, int, float))}
    if nodata is not None:
        out.attrs["nodata"] = nodata
    out = out.rio.write_crs(cube.rio.crs) if cube.rio.crs is not None else out
    out = out.rio.write_transform(cube.rio.transform(recalc=False))
    ds = out.to_dataset(name=name)
    # nodata as the CF _FillValue (what NetCDF/Zarr readers look for), in the data's type
    ds[name].encoding = {"_FillValue": None if nodata is None else np.asarray(nodata).astype(dtype)[()]}
    for c in ("wavelength", "fwhm"):
        ds[c].encoding = {"_FillValue": None}
    tmp = _tmp_name(path)
    try:
        with progress_context(progress):
            if fmt == "Zarr":
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # zarr v3 spec notes on string coords
                    ds.to_zarr(tmp, mode="w", consolidated=True)
            else:
                ds.to_netcdf(tmp)
        if path.exists() and overwrite:
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        os.replace(tmp, path)
    except BaseException:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True) if tmp.is_dir() else tmp.unlink()
        raise
