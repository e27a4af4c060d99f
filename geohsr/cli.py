"""The ``geohsr`` command line (click). Progress goes to stderr, results to stdout."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
import traceback
import warnings
from pathlib import Path

import click

from .errors import GeohsrError

# `run --adapt N --progress json`: the adaptation counts the progress line up to this share, the
# super-resolution the rest (the run's own length is not known in advance)
ADAPT_PROGRESS_SHARE = 0.5
CONTEXT = dict(auto_envvar_prefix="GEOHSR", show_default=True, help_option_names=["-h", "--help"])


def _warning_line(message, category, filename, lineno, line=None):
    return f"Warning: {message}\n"


def _show_warning(message, category, filename, lineno, file=None, line=None):
    click.echo(f"Warning: {message}", err=True)


def _terminate(signum, frame):
    """SIGTERM (e.g. Cancel in QGIS) unwinds like Ctrl-C, so temporary files are removed."""
    raise KeyboardInterrupt


@contextlib.contextmanager
def _quiet_c_stderr():
    """Send what C libraries (GDAL, libtiff) print straight to file descriptor 2 to /dev/null,
    while Python's sys.stderr (errors, progress) keeps going to the terminal."""
    try:
        real = sys.stderr.fileno() == 2
    except (AttributeError, OSError, ValueError):
        real = False
    if not real or os.environ.get("GEOHSR_DEBUG"):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    old = sys.stderr
    sys.stderr = open(saved, "w", buffering=1, closefd=False, encoding=old.encoding, errors="replace")
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        sys.stderr = old
        os.close(devnull)
        os.close(saved)


class _Group(click.Group):
    """Turns user errors into one line on stderr and a non-zero exit, never a traceback."""

    def invoke(self, ctx):
        warnings.formatwarning = _warning_line
        if not os.environ.get("GEOHSR_DEBUG"):  # GDAL/libtiff chatter would break the one-line rule
            logging.getLogger("rasterio").setLevel(logging.CRITICAL)
            logging.getLogger("distributed").setLevel(logging.ERROR)
        signal.signal(signal.SIGTERM, _terminate)
        try:
            with _quiet_c_stderr(), warnings.catch_warnings():
                warnings.simplefilter("default")
                for mod in ("rioxarray", "affine", "dask", "distributed", "zarr", "rasterio"):
                    warnings.filterwarnings("ignore", module=mod)
                warnings.showwarning = _show_warning
                return super().invoke(ctx)
        except GeohsrError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(1)
        except KeyboardInterrupt:
            click.echo("Interrupted: nothing was written.", err=True)
            sys.exit(130)
        except BrokenPipeError:  # the reader stopped early (`geohsr info x.tif | head -2`): not an error
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())  # Python's own flush at exit must not fail again
            sys.exit(0)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException, SystemExit):
            raise
        except MemoryError:
            click.echo("Error: out of memory; use a smaller --block-size or --memory-limit", err=True)
            sys.exit(1)
        except Exception as exc:  # noqa: BLE001  (last line of defence: no traceback for users)
            if os.environ.get("GEOHSR_DEBUG"):
                traceback.print_exc()
            first = str(exc).splitlines()[0] if str(exc) else ""
            click.echo(f"Error: unexpected {type(exc).__name__}: {first} "
                       "(set GEOHSR_DEBUG=1 for the traceback and report it)", err=True)
            sys.exit(1)
        finally:  # the next command in this process reports its JSON progress from 0 again
            write = sys.modules.get("geohsr.io.write")  # (not imported by --help and listings)
            if write is not None:
                write.set_json_window()


@click.group(cls=_Group, context_settings=CONTEXT)
@click.version_option(package_name="geohsr")
def main():
    """geohsr: super-resolution of georeferenced hyperspectral rasters."""


def _subset_options(f):
    """``--bands``, ``--wavelength-range``, ``--window``, ``--bbox``, ``--wavelengths`` (run, evaluate)."""
    opts = [
        click.option("--bands", default=None, metavar="LIST",
                     help="only these bands, 1-based numbers and ranges: 1-50,60"),
        click.option("--wavelength-range", default=None, metavar="LO-HI",
                     help="only the bands whose centre lies in LO-HI nm, e.g. 400-1000"),
        click.option("--window", default=None, metavar="COL,ROW,WIDTH,HEIGHT",
                     help="only this pixel window of the scene (GDAL -srcwin order)"),
        click.option("--bbox", default=None, metavar="MINX,MINY,MAXX,MAXY",
                     help="only the pixels this box touches, in the scene's CRS"),
        click.option("--wavelengths", "wavelengths_file", type=click.Path(path_type=Path), default=None,
                     help="band centres (nm) for a scene without them: a text file, one line per band: "
                          "centre [fwhm]"),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def _subset(cube, bands, wavelength_range, window, bbox, wavelengths_file):
    from .io.subset import subset

    return subset(cube, bands=bands, wavelength_range=wavelength_range, window=window, bbox=bbox,
                  wavelengths=wavelengths_file)


def _default_output(src: Path, scale: int, fmt: str | None) -> Path:
    from .io.write import default_extension

    ext = default_extension(fmt) if fmt else ".tif"
    stem = src.stem if src.suffix.lower() != ".hdr" else src.with_suffix("").stem
    return src.with_name(f"{stem}_x{scale}{ext}")


@main.command()
@click.argument("input", type=click.Path(path_type=Path))
@click.option("--scale", "-s", type=int, default=4, help="integer up-scaling factor")
@click.option("--method", "-m", default="auto",
              help="super-resolution method (see `geohsr methods`); auto: with --guide the best "
                   "candidate measured on this scene at reduced resolution (bicubic, MTF-GLP, GSA, "
                   "guided models with weights for the scale, DualSR-GLP, DualSR), else DualSR where shipped "
                   "weights cover the scale, else bicubic")
@click.option("--output", "-o", type=click.Path(path_type=Path), default=None,
              help="output path [default: <input stem>_x<scale>.tif next to the input]")
@click.option("--guide", type=click.Path(path_type=Path), default=None,
              help="high-resolution RGB/pan guide raster (guided methods)")
@click.option("--weights", type=click.Path(path_type=Path), default=None,
              help="weights file (.safetensors) instead of the shipped ones; DualSR: 'xS.safetensors' "
                   "or 'xS.safetensors,xS/2.safetensors' (its fine stage; else the shipped one)")
@click.option("--no-coregister", is_flag=True,
              help="use the guide as it is (default: measure its offset from the scene and shift it "
                   "onto the scene when it is at least 0.1 LR px)")
@click.option("--mtf-gain", "mtf_gain", default="measure", show_default=True, metavar="measure|GAIN",
              help="the scene sensor's MTF as a Gaussian gain at the LR Nyquist, for mtf-glp, gsa, dualsr-glp "
                   "and auto: measure it against the guide, or give it (0.15-0.95)")
@click.option("--device", default="auto", help="auto, cpu or cuda[:N] (falls back to the CPU)")
@click.option("--precision", type=click.Choice(["fp32", "bf16", "fp16"]), default="fp32", show_default=True,
              help="network arithmetic: fp32, or bf16/fp16 mixed precision (GPU; costs PSNR, "
                   "see benchmarks/RESULTS.md)")
@click.option("--format", "fmt", type=click.Choice(["GTiff", "COG", "ENVI", "Zarr", "NetCDF"],
              case_sensitive=False), default=None, help="output format [default: from the extension]")
@click.option("--dtype", default=None, help="output data type [default: the input's]")
@click.option("--memory-limit", type=float, default=2048,
              help="memory budget in MB: sets the block size (streaming outputs)")
@click.option("--workers", type=int, default=None,
              help="blocks (batches) run at once [default: 1 for networks on the CPU, else 2]")
@click.option("--block-size", type=int, default=None,
              help="LR block side, a multiple of 16 [default: from --memory-limit]")
@click.option("--batch", default="auto", show_default=True,
              help="blocks per device batch: a number, or auto (1 on the CPU, up to 4 on a GPU "
                   "within --memory-limit)")
@click.option("--scheduler", default=None,
              help="dask.distributed scheduler address (tcp://host:8786) or local:N for a LocalCluster")
@click.option("--resume", is_flag=True, help="continue an interrupted run from its completed blocks")
@click.option("--keep-partial/--discard-partial", default=True,
              help="on interruption keep the hidden partial result for --resume")
@click.option("--overwrite", is_flag=True, help="replace an existing output")
@click.option("--progress", type=click.Choice(["bar", "json", "none"]), default="bar",
              help="progress on stderr: a bar, JSON lines {\"progress\": 0.42, \"phase\": ...} rising once "
                   "from 0 to 1, or nothing")
@click.option("--quiet", "-q", is_flag=True, help="no progress (same as --progress none)")
@click.option("--clip", default="auto", show_default=True, metavar="auto|none|LO[,HI]",
              help="clip output values: auto = at 0 from below when the data cannot be negative "
                   "(unsigned type, or GDAL scale/offset: DN of reflectance/radiance); none; 0; 0,10000")
@click.option("--adapt", "adapt_minutes", type=float, default=None, metavar="MINUTES",
              help="first fine-tune the method's network on this scene for at most MINUTES (Wald protocol, "
                   "a held-out strip decides, and stops it once it no longer gains; DualSR, CoarSR, DualSR-GLP, "
                   "MulSR/IFMSR with --guide, SNLSR, A-SNLSR), then apply it; see `geohsr adapt`")
@click.option("--adapt-psf", "adapt_psf", default="gaussian", show_default=True, metavar="MODEL",
              help="how the scene is reduced for adaptation: gaussian (gain 0.3 at Nyquist), gaussian:GAIN, "
                   "measure (the Gaussian measured against --guide), bicubic (MATLAB, anti-aliased) or a "
                   "PSF file (.npy, or .mat with 'data')")
@click.option("--ensemble", is_flag=True,
              help="average the network's output over the 8 flips and 90° rotations of each block "
                   "(self-ensemble: higher PSNR for 8× the network's time; learned methods)")
@click.option("--merge", "merge", default=None, metavar="METHOD",
              help="for methods with a fixed band grid (snlsr, a-snlsr): return every input band, those "
                   "in the model's range from it, the others from METHOD (bicubic, dualsr, …)")
@_subset_options
def run(input, scale, method, output, guide, weights, no_coregister, mtf_gain, device, precision, fmt, dtype,
        memory_limit, workers,
        block_size, batch, scheduler, resume, keep_partial, overwrite, progress, quiet, clip, adapt_minutes,
        adapt_psf, ensemble, merge, bands, wavelength_range, window, bbox, wavelengths_file):
    """Super-resolve INPUT by --scale and write the result (atomically)."""
    import numpy as np

    from . import api, engine, stream
    from .io import open_cube, save_cube
    from .io.write import check_destination

    if dtype is not None:
        try:
            np.dtype(dtype)
        except TypeError:
            raise click.BadParameter(f"unknown data type {dtype!r}", param_hint="--dtype") from None
    if memory_limit < 700:
        raise click.BadParameter("must be at least 700 (MB)", param_hint="--memory-limit")
    if workers is not None and workers < 1:
        raise click.BadParameter("must be >= 1", param_hint="--workers")
    opts = stream.StreamOptions(resume=resume, keep_partial=keep_partial, memory_limit_mb=memory_limit,
                                workers=workers, progress="none" if quiet else progress,
                                block=block_size, batch=batch)
    stream.check_options(opts)  # a bad --batch / --block-size fails before anything is read
    if adapt_minutes is not None:
        _check_psf(adapt_psf, guide, "--adapt-psf")  # … and a bad --adapt-psf
    mtf_gain = _check_mtf(mtf_gain)  # … and a bad --mtf-gain
    from .methods import get_method

    if method != "auto":
        get_method(method).check_scale(scale)
    output, out_fmt = check_destination(output or _default_output(input, scale, fmt), fmt, overwrite,
                                        sources=(input,))
    cube = open_cube(input, chunks={"band": -1, "y": 512, "x": 512})  # the one time INPUT is opened
    cube, part = _subset(cube, bands, wavelength_range, window, bbox, wavelengths_file)
    if part is not None:
        r0, c0, idx = part
        click.echo(f"subset: {cube.sizes['x']}×{cube.sizes['y']} px from column {c0}, row {r0}; "
                   f"{cube.sizes['band']} band{'s' if cube.sizes['band'] != 1 else ''}", err=True)
    if cube.rio.crs is None:
        warnings.warn(f"{input} has no CRS; the output will have none either")
    from .io.write import check_space

    b, h, w = cube.shape  # a mistyped -s 1000 is refused here, before any work
    check_space(output, (b, h * scale, w * scale), np.dtype(dtype or cube.dtype))
    if merge is not None:  # two products, one file: through the dask driver
        if adapt_minutes is not None or guide is not None:
            raise click.BadParameter("--merge takes neither --guide nor --adapt", param_hint="--merge")
        hr = api.superresolve(cube, method, scale, merge=merge, weights=weights, device=device, dtype=dtype,
                              precision=precision, clip=clip, ensemble=ensemble)
        click.echo(hr.attrs["geohsr_merge"], err=True)
        with _client(scheduler):
            path = save_cube(hr, output, format=out_fmt, overwrite=overwrite, progress=opts.progress)
        b, h2, w2 = hr.shape
        click.echo(f"wrote {path} ({w2}×{h2} px, {b} bands, {hr.dtype}, method {hr.attrs['geohsr_method']} "
                   f"×{scale})", err=True)
        click.echo(str(path))
        return
    notes = {}
    if method == "auto":  # the final "wrote … method X" line says which
        method, notes = api.auto_method(cube, scale, guide, device, mtf=mtf_gain)
        if notes:
            click.echo(notes["geohsr_auto"], err=True)
            if not get_method(method).guided:  # the guide did not help on this scene
                guide = None
        skipped = api.network_only_options(method, adapt=adapt_minutes is not None, ensemble=ensemble)
        for option, (tag, note, reason) in skipped.items():
            click.echo(f"--{option} skipped: {reason}", err=True)
            notes[tag] = note
        adapt_minutes = None if "adapt" in skipped else adapt_minutes
        ensemble = ensemble and "ensemble" not in skipped
    if adapt_minutes is not None:
        from .adapt import adapt
        from .io.write import set_json_window

        if opts.progress == "json":  # the adaptation's share of the progress line, then the run's
            set_json_window(0.0, ADAPT_PROGRESS_SHARE)
        res = adapt(cube, method, scale, minutes=adapt_minutes, weights=weights, device=device, guide=guide,
                    progress={"bar": True, "json": "json"}.get(opts.progress, False), command=" ".join(sys.argv),
                    psf=adapt_psf, raise_on_interrupt=True)  # Ctrl-C / Cancel in QGIS: nothing is written
        _echo_adapted(res)
        set_json_window(ADAPT_PROGRESS_SHARE, 1.0)
        weights = res.weights
        notes["geohsr_adapted"] = res.summary()
    plan = engine.prepare(cube, method, scale, guide=guide, weights=weights, device=device, dtype=dtype,
                          precision=precision, coregister=not no_coregister and "auto", clip=clip,
                          ensemble=ensemble, mtf=mtf_gain)
    plan.notes.update(notes)
    plan.source_subset = part
    if plan.guide_offset is not None:
        o = plan.guide_offset
        click.echo(f"guide offset: dy {o['dy']:+.2f}, dx {o['dx']:+.2f} LR px (±{o['spread']:.2f}, "
                   f"{o['windows']} windows), {'corrected' if o['corrected'] else 'below 0.1 px, not corrected'}",
                   err=True)
    if plan.guide_mtf is not None:
        click.echo(f"guide MTF: {engine.mtf_note(plan.guide_mtf)}", err=True)
    with _client(scheduler) as client:
        opts.client = client
        if out_fmt in stream.STREAM_FORMATS:
            try:
                path = stream.run_plan(plan, output, out_fmt, opts)
            except KeyboardInterrupt:
                if keep_partial and stream.partial_paths(output):
                    click.echo("Interrupted: the destination was not written; run the same command "
                               "with --resume to continue from the completed blocks.", err=True)
                else:
                    click.echo("Interrupted: nothing was written.", err=True)
                sys.exit(130)
        else:
            path = save_cube(api.compute(plan), output, format=out_fmt, overwrite=overwrite,
                             progress=opts.progress)
    b, h, w = plan.cube.shape
    click.echo(f"wrote {path} ({w * plan.scale}×{h * plan.scale} px, {b} bands, {plan.out_dtype}, "
               f"method {plan.spec.name} ×{plan.scale})", err=True)
    click.echo(str(path))


def _echo_adapted(res) -> None:
    """The adaptation's verdict on stderr; when it kept the starting weights, where the adapted ones
    are (the verdict of a small held-out part can be wrong)."""
    click.echo(res.summary(), err=True)
    if not res.improved and res.tried:
        click.echo(f"the adapted weights stay in {res.out}; to use them all the same: --weights {res.tried}",
                   err=True)


@contextlib.contextmanager
def _client(scheduler):
    """A dask.distributed Client for --scheduler (``local:N`` starts a LocalCluster)."""
    if not scheduler:
        yield None
        return
    from distributed import Client, LocalCluster

    if scheduler.startswith("local"):
        n = int(scheduler.split(":", 1)[1]) if ":" in scheduler else 2
        with LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster) as client:
            yield client
    else:
        try:
            client = Client(scheduler, timeout=5)
        except OSError as exc:
            raise GeohsrError(f"cannot reach the dask scheduler {scheduler} ({exc}); "
                              "check the address or use --scheduler local:2") from None
        with client:
            yield client


def _check_mtf(value: str):
    """``--mtf-gain``: ``"measure"``, or the gain checked against its range (a one-line error)."""
    if value.strip().lower() == "measure":
        return "measure"
    from .sensor import check_gain

    return check_gain(value)


def _check_psf(psf: str, guide, option: str) -> None:
    """A sensor model for adaptation, checked before anything is read: ``measure`` needs a guide."""
    if psf.strip().lower() == "measure":
        if guide is None:
            raise click.BadParameter("measure measures the scene's blur against its guide: give --guide, or "
                                     "name the model (gaussian:GAIN, bicubic or a PSF file)", param_hint=option)
        return
    from .sensor import SensorModel

    SensorModel(psf)


@main.command("adapt")
@click.argument("input", type=click.Path(path_type=Path))
@click.option("--scale", "-s", type=int, default=4, help="integer up-scaling factor")
@click.option("--method", "-m", default="dualsr", show_default=True, help="dualsr, coarsr, dualsr-glp, mulsr, ifmsr, snlsr or a-snlsr")
@click.option("--guide", type=click.Path(path_type=Path), default=None,
              help="mulsr, ifmsr: the scene's high-resolution guide (adapted on together)")
@click.option("--out", "out", type=click.Path(path_type=Path), required=True,
              help="run folder: best.safetensors + card.json (+ checkpoint/ for --resume)")
@click.option("--minutes", type=float, default=10.0, show_default=True, help="time budget")
@click.option("--batches", type=int, default=None, help="a batch budget instead of --minutes")
@click.option("--weights", type=click.Path(path_type=Path), default=None,
              help="start from these weights (DualSR: 'x4.safetensors,x2.safetensors') [default: shipped]")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--device", default="cpu", show_default=True)
@click.option("--resume", is_flag=True, help="continue an interrupted adaptation in --out")
@click.option("--overwrite", is_flag=True, help="start afresh in an --out that holds a run")
@click.option("--psf", default="gaussian", show_default=True, metavar="MODEL",
              help="how the scene is reduced for adaptation: gaussian (gain 0.3 at Nyquist), gaussian:GAIN, "
                   "measure (the Gaussian measured against --guide), bicubic (MATLAB, anti-aliased) or a "
                   "PSF file (.npy, or .mat with 'data')")
@click.option("--patience", type=click.IntRange(min=0), default=None, metavar="N",
              help="stop a network after N validations on the held-out part (every 10 batches) without a new "
                   "best (the budget is then not spent); 0: use the whole budget  [default: 5]")
@click.option("--quiet", "-q", is_flag=True, help="no progress bar")
def adapt_cmd(input, scale, method, guide, out, minutes, batches, weights, seed, device, resume, overwrite, psf,
              patience, quiet):
    """Fine-tune a method's network on INPUT itself and keep the weights with a model card.

    The scene reduced by --scale (--psf: by default a Gaussian MTF with gain 0.3 at Nyquist) is the
    input and the scene the target; a quarter of its longer side (the end with more detail) is held out, picks the checkpoint and decides: when
    adaptation does not beat the starting weights there, they are kept and the card says so. The
    budget is an upper bound: a network stops once --patience validations bring no new best. Use
    the result with `geohsr run OTHER.tif -s SCALE -m METHOD --weights "<printed --weights value>"`."""
    from .adapt import adapt
    from .io import open_cube

    _check_psf(psf, guide, "--psf")  # a bad --psf fails before the scene is read
    if out.exists() and any(out.iterdir()) and not (resume or overwrite):
        raise click.BadParameter(f"{out} already holds files; pass --resume to continue or --overwrite "
                                 "to start afresh", param_hint="--out")
    if overwrite and not resume and (out / "checkpoint").is_dir():
        import shutil

        shutil.rmtree(out / "checkpoint")
    res = adapt(open_cube(input), method, scale, minutes=None if batches else minutes, batches=batches,
                out=out, weights=weights, seed=seed, device=device, progress=not quiet, resume=resume,
                command=" ".join(sys.argv), guide=guide, psf=psf, patience=patience)
    _echo_adapted(res)
    click.echo(f"--weights {res.weights}" if res.weights else "--weights (the shipped ones: adaptation did not help)")


@main.command()
@click.argument("input", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def info(input, as_json):
    """Size, CRS, resolution, bands, wavelength range and nodata of INPUT."""
    import numpy as np

    from . import geo
    from .io import open_cube

    cube = open_cube(input, chunks={})
    t = geo.cube_transform(cube)
    nb, h, w = cube.shape
    wl = cube.coords["wavelength"].values
    good = cube.coords["good_band"].values
    crs = cube.rio.crs
    d = {
        "path": str(input), "bands": nb, "rows": h, "cols": w, "dtype": str(cube.dtype),
        "crs": crs.to_string() if crs else None,
        "resolution": [abs(t.a), abs(t.e)] if t.b == 0 and t.d == 0 else None,
        "transform": list(t)[:6], "bounds": list(geo.bounds(t, h, w)),
        "nodata": None if cube.rio.nodata is None else float(cube.rio.nodata),
        "wavelength_nm": None if np.all(np.isnan(wl)) else [float(np.nanmin(wl)), float(np.nanmax(wl))],
        "bad_bands": [int(i) for i in np.flatnonzero(good == 0) + 1],
        "product": cube.attrs.get("sensor_product"),
    }
    if as_json:
        click.echo(json.dumps(d, indent=2))
        return
    click.echo(f"{d['path']}")
    if d["product"]:
        click.echo(f"  product     {d['product']} (read as delivered)")
    click.echo(f"  size        {w} × {h} px, {nb} band{'s' if nb != 1 else ''}, {d['dtype']}")
    click.echo(f"  crs         {d['crs'] or 'none'}")
    res = d["resolution"]
    click.echo(f"  resolution  {res[0]:g} × {res[1]:g}" if res else "  resolution  rotated/sheared grid")
    click.echo(f"  bounds      {', '.join(f'{v:.10g}' for v in d['bounds'])} (left, bottom, right, top)")
    if d["wavelength_nm"]:
        click.echo(f"  wavelength  {d['wavelength_nm'][0]:.1f} – {d['wavelength_nm'][1]:.1f} nm")
    else:
        click.echo("  wavelength  unknown")
    click.echo(f"  bad bands   {len(d['bad_bands'])}" + (f" ({', '.join(map(str, d['bad_bands']))})"
                                                         if d["bad_bands"] else ""))
    click.echo(f"  nodata      {d['nodata'] if d['nodata'] is not None else 'none'}")


@main.command()
@click.argument("input", type=click.Path(path_type=Path))
@click.option("--method", "-m", "methods_", default=None,
              help="comma-separated methods; bicubic is always included [default: bicubic; with "
                   "--guide the candidates of auto]")
@click.option("--scale", "-s", type=int, default=4, help="integer scale factor")
@click.option("--degradation", type=click.Choice(["bicubic", "torch-bicubic", "gaussian"]),
              default="bicubic", help="how the LR input is made from the scene")
@click.option("--noise", type=float, default=0.0, help="Gaussian noise σ added to LR (on [0, 1])")
@click.option("--seed", type=int, default=0, help="seed of the noise")
@click.option("--device", default="auto", help="auto, cpu or cuda[:N]")
@click.option("--guide", type=click.Path(path_type=Path), default=None,
              help="a real HR guide: reduced-resolution (Wald, sensor MTF) and full-resolution (QNR) "
                   "scores, with the guide's co-registration offset")
@click.option("--no-coregister", is_flag=True, help="use the guide's georeference as it is")
@click.option("--mtf-gain", "mtf_gain", default="measure", show_default=True, metavar="measure|GAIN",
              help="with --guide: the scene sensor's MTF (Gaussian gain at the LR Nyquist) for the reduction "
                   "and the MTF-based methods: measure it against the guide, or give it (0.15-0.95)")
@click.option("--report", type=click.Path(path_type=Path), default=None,
              help="write the report (.md Markdown, .html or .csv)")
@_subset_options
def evaluate(input, methods_, scale, degradation, noise, seed, device, guide, no_coregister, mtf_gain, report,
             bands, wavelength_range, window, bbox, wavelengths_file):
    """Wald protocol on INPUT: degrade ×scale, super-resolve, compare with the original; with
    --guide also the no-reference QNR of the full-resolution products."""
    from .evaluate import evaluate as run_eval
    from .methods import get_method

    names = [m.strip() for m in (methods_ or "").split(",") if m.strip()] or (None if guide else ["bicubic"])
    for m in names or []:
        if m.lower() != "auto":
            get_method(m).check_scale(scale)
    mtf_gain = _check_mtf(mtf_gain)
    if guide is not None and (degradation != "bicubic" or noise):
        raise click.BadParameter("with --guide the degradation is geohsr's sensor model; drop "
                                 "--degradation/--noise", param_hint="--guide")
    if report is not None:
        if report.suffix.lower() not in (".md", ".csv", ".html", ".htm"):
            raise click.BadParameter("use a .md, .csv or .html file name", param_hint="--report")
        if not report.parent.is_dir() if str(report.parent) else False:
            raise click.BadParameter(f"directory {report.parent} does not exist", param_hint="--report")
    scene = input
    if any(v is not None for v in (bands, wavelength_range, window, bbox, wavelengths_file)):
        from .io import open_cube

        scene = _subset(open_cube(input), bands, wavelength_range, window, bbox, wavelengths_file)[0]
    rep = run_eval(scene, names, scale, degradation=degradation, noise=noise, seed=seed, device=device,
                   guide=guide, coregister=not no_coregister and "auto", mtf=mtf_gain)
    text = rep.to_markdown()
    click.echo(text)
    if report is not None:
        suffix = report.suffix.lower()
        content = (rep.to_csv() if suffix == ".csv" else rep.to_html(f"geohsr evaluation of {input.name}")
                   if suffix in (".html", ".htm") else f"# geohsr evaluation of {input}\n\n{text}")
        tmp = report.with_name(f".{report.name}.tmp")
        tmp.write_text(content)
        tmp.replace(report)
        click.echo(f"report written to {report}", err=True)


class _TrainCommand(click.Command):
    """``geohsr train``: the method choices, trainable scales and the methods' own options come
    from the registry, read when the command is used (``geohsr --help`` does not import torch)."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self._own_params = list(self.params)

    def get_params(self, ctx):  # the registry as it is now (a method may have been registered since)
        head, registered = _registry_params()
        self.params = head + self._own_params[:-1] + registered + self._own_params[-1:]  # --quiet last
        return super().get_params(ctx)


def _registry_params() -> list:
    from .methods import trainable

    specs = trainable()
    scales = sorted({s for sp in specs for s in (sp.train.scales or sp.scales or (2, 3, 4, 8))})
    configs = list(dict.fromkeys(c for sp in specs for c in sp.configs)) or ["compact"]
    head = [click.Argument(["method"], type=click.Choice([sp.name for sp in specs], case_sensitive=False)),
              click.Option(["--scale", "-s"], type=click.Choice([str(s) for s in scales]), default="4",
                           show_default=True, help="scale factor"),
              click.Option(["--config"], type=click.Choice(configs), default="compact", show_default=True,
                           help="model size: paper (published), compact (CPU), medium (DualSR/CoarSR: compact's width, "
                                "the paper's depth; grown from compact weights with --init) or tiny (tests)")]
    params = []
    seen: dict = {}
    for sp in specs:
        for opt in sp.train.options:
            seen.setdefault(opt.name, (opt, []))[1].append(sp.name)
    for name, (opt, users) in seen.items():
        typ = (None if opt.type is None else click.Choice(list(opt.type)) if isinstance(opt.type, tuple)
               else click.Path(exists=True, dir_okay=False, path_type=Path) if opt.type == "file" else opt.type)
        helptext = f"{', '.join(users)}: {opt.help}"
        if typ is None:
            params.append(click.Option([f"--{name}"], is_flag=True, help=helptext))
        else:
            params.append(click.Option([f"--{name}"], type=typ, default=opt.default, multiple=opt.multiple,
                                       show_default=opt.default is not None, help=helptext))
    return head, params


def _method_options(ctx, spec) -> dict:
    """The options of ``spec``'s own (its defaults where not given); refuses options of other methods."""
    from click.core import ParameterSource
    from .methods import trainable

    own = {o.param for o in spec.train.options}
    for other in trainable():
        for o in other.train.options:
            src = ctx.get_parameter_source(o.param)
            if o.param not in own and src not in (None, ParameterSource.DEFAULT):
                users = [s.name for s in trainable() if any(p.name == o.name for p in s.train.options)]
                raise click.UsageError(f"--{o.name} applies to {', '.join(users)}, not {spec.name}")
    return {o.param: ctx.params.get(o.param) for o in spec.train.options}


@main.command(cls=_TrainCommand)
@click.option("--data", type=click.Path(exists=True, path_type=Path), default=None,
              help="CAVE root (fixed scene split), a folder of rasters, or one raster "
                   "(methods trained from scenes: DualSR, CoarSR, MulSR, IFMSR)")
@click.option("--add-train", type=click.Path(exists=True, path_type=Path), multiple=True,
              help="also train on the training scenes of this data (as --data; repeatable); "
                   "validation stays --data's, e.g. --data <shared>/data --add-train <shared>/data/cave")
@click.option("--source", type=click.Path(exists=True, path_type=Path), multiple=True,
              help="SNLSR/A-SNLSR: scene(s) with HR data in --source-range (repeatable)")
@click.option("--target", type=click.Path(exists=True, path_type=Path), multiple=True,
              help="A-SNLSR: scene(s) to adapt to (only their LR --target-range bands are used; "
                   "the last third of each is held out for evaluation)")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="run folder")
@click.option("--resume", is_flag=True, help="continue from the run folder's checkpoint")
@click.option("--batches", type=int, default=2000, help="total training batches")
@click.option("--batch", type=int, default=None, help="batch size [default: the config's]")
@click.option("--lr", type=float, default=None, help="learning rate [default: the config's]")
@click.option("--halve-every", type=int, default=0, help="halve the learning rate every N batches")
@click.option("--val-every", type=int, default=50, help="validate every N batches")
@click.option("--ckpt-every", type=int, default=25, help="checkpoint every N batches")
@click.option("--max-minutes", type=float, default=None, help="stop (with a checkpoint) after this")
@click.option("--seed", type=int, default=1)
@click.option("--device", default="auto", help="auto, cpu or cuda[:N]")
@click.option("--threads", type=int, default=None, help="torch CPU threads")
@click.option("--amp", is_flag=True,
              help="bf16 mixed precision (slow on CPUs without bf16; on an H200 no faster than fp32 for CoarSR)")
@click.option("--init", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="start from these weights (same method; the same config, or a smaller one that grows "
                   "into it; e.g. a x4 model to fine-tune at x8 or on your own sensor)")
@click.option("--quiet", "-q", is_flag=True)
def train(method, scale, config, data, add_train, source, target, out, resume, batches, batch, lr, halve_every,
          val_every, ckpt_every, max_minutes, seed, device, threads, amp, init, quiet, **method_options):
    """Train METHOD; writes best.safetensors and a model card into --out."""
    from .methods import get_method, resolve_device
    from .train.run import train as run_training

    ctx = click.get_current_context()
    spec = get_method(method)
    if (out / "checkpoint" / "state.json").exists() and not resume:
        raise click.UsageError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
    options = _method_options(ctx, spec)
    ts, scale = spec.train, int(scale)
    if ts.scales is not None and scale not in ts.scales:
        raise click.UsageError(f"{spec.name} trains at scales {', '.join(map(str, ts.scales))}, not {scale}"
                               + (" (its two branches run at s/2 and s)" if spec.name == "mulsr" else ""))
    if init is not None and not ts.init:
        raise click.UsageError(f"--init is not available for {spec.name} (its band grid is fixed by the data)")
    if "data" in ts.inputs and data is None:
        raise click.UsageError(f"{spec.name} trains from --data (a CAVE root, a folder of rasters or a raster)")
    if add_train and "data" not in ts.inputs:
        raise click.UsageError(f"--add-train is for methods trained from --data, not {spec.name}")
    if "source" in ts.inputs and not source:
        raise click.UsageError(f"{spec.name} trains from --source scenes (HR data of --source-range)")
    if "target" in ts.inputs and not target:
        raise click.UsageError(f"{spec.name} adapts to --target scenes; give at least one")
    res = run_training(spec.name, scale, out, data=data, source=source, target=target, options=options,
                       config=config, resume=resume, batches=batches, batch=batch, lr=lr,
                       halve_every=halve_every, val_every=val_every, ckpt_every=ckpt_every,
                       max_minutes=max_minutes, seed=seed, device=str(resolve_device(device)),
                       threads=threads, progress=not quiet, command=_train_command(ctx, spec), amp=amp,
                       init=init, **({"add_train": add_train} if add_train else {}))
    click.echo(json.dumps(res))


def _train_command(ctx, spec) -> str:
    """The full, canonical command line of a train run (for the model card)."""
    from click.core import ParameterSource

    p = ctx.params
    parts = ["geohsr train", spec.name]
    if p.get("data") is not None:
        parts += ["--data", str(p["data"])]
    for opt in ("add_train", "source", "target"):
        for v in p.get(opt) or ():
            parts += [f"--{opt.replace('_', '-')}", str(v)]
    parts += ["--scale", str(p["scale"]), "--out", str(p["out"]), "--config", p["config"],
              "--batches", str(p["batches"])]
    for opt in ("batch", "lr", "halve_every", "val_every", "ckpt_every", "max_minutes", "seed",
                "threads", "init"):
        if p.get(opt) is not None:
            parts += [f"--{opt.replace('_', '-')}", str(p[opt])]
    if p.get("amp"):
        parts.append("--amp")
    for o in spec.train.options:
        v = p.get(o.param)
        changed = ctx.get_parameter_source(o.param) not in (None, ParameterSource.DEFAULT)
        if o.type is None:
            if v:
                parts.append(f"--{o.name}")
        elif v is not None and (o.in_command == "always" or changed):
            parts += [f"--{o.name}", f"{v:g}" if isinstance(v, float) else str(v)]
    return " ".join(parts)


@main.command("methods")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def methods_cmd(as_json):
    """List the super-resolution methods, their inputs, scales and weights."""
    from .methods import methods

    ms = methods()
    if as_json:
        click.echo(json.dumps(ms, indent=2))
        return
    rows = [(m["name"], m["inputs"], m["scales"] if isinstance(m["scales"], str)
             else ", ".join(map(str, m["scales"])), m["bands"]) for m in ms]
    wid = [max(len(r[i]) for r in rows) for i in range(4)]  # columns as wide as their longest entry
    for m, r in zip(ms, rows):
        click.echo(f"{r[0]:<{wid[0]}}  {r[1]:<{wid[1]}}  scales: {r[2]:<{wid[2]}}  bands: {r[3]:<{wid[3]}}  "
                   f"weights: {', '.join(m['weights']) or ('none shipped' if m['needs_weights'] else 'none needed')}")
        click.echo(f"{'':<{wid[0]}}  {m['summary']}")


if __name__ == "__main__":  # pragma: no cover
    main()
