"""File-to-file super-resolution with bounded memory, resume and any executor.

``geohsr run`` streams LR windows (with the method's halo) from disk, super-resolves them in a
pool of workers (threads here, or a ``dask.distributed`` cluster via ``client.get_executor()``)
and writes each finished block into a hidden partial file beside the destination:

* memory: the block size follows ``memory_limit`` (LR side a multiple of 16), and at most
  ``workers + 1`` tasks of ``batch`` blocks each are in flight, so peak memory does not grow
  with the scene;
* devices: a task's blocks of equal shape go through the model as one batch
  (:func:`geohsr.device.infer`: on a GPU, pinned host memory and non-blocking copies on the
  worker thread's own stream, so one worker's transfers and CPU work overlap another's
  kernels); batches are fixed groups of consecutive blocks, so a resumed run batches alike;
* resume: every few seconds the partial file is closed (flushed) and a journal records the
  blocks it holds; ``resume=True`` continues from them after Ctrl-C, SIGKILL or power loss and
  yields the same pixels, profile and tags as an uninterrupted run;
* atomicity: the destination appears only when complete (rename of the partial file).

Methods with a scene-wide statistic (DualSR's λ) run the network once: its planes (the HR bands
and the auxiliary planes the statistic and ``finish`` need) go into a hidden float32 scratch file
while each block's statistic goes into the journal; a second, network-free pass reads the scratch
back, finishes every block with the scene's statistic and casts it. A one-block scene needs no
scratch. Each pass is resumable.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import json
import math
import os
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import dask.array as dsa
import numpy as np

from .engine import Plan, absmax, apply_band_map, block_stat, cast_planes, finish, norm_scale, prepare, sr_blocks
from .errors import InputError, OutputError
from .io import spectral as spec_io
from .io.read import read_by_gdal
from .io.write import (JsonPercent, check_destination, envi_paths, finish_envi_header, raise_os,
                       raster_profile, write_metadata)
from .methods import get_method

JOURNAL_VERSION = 2
STREAM_FORMATS = ("GTiff", "COG", "ENVI")
BASE_MEMORY_MB = 600  # interpreter + torch + GDAL cache
BYTES_F32 = 4


@dataclass
class Block:
    idx: int
    y0: int
    x0: int
    h: int
    w: int


def block_side(plan: Plan, memory_limit_mb: float, workers: int) -> int:
    """LR block side (multiple of 16) whose host working set fits ``memory_limit_mb`` with
    ``workers`` blocks in flight; when the whole scene fits, one block (no halo overhead, and a
    scene-wide statistic needs no extra pass) — or, with several workers, the longer side split
    among them so that none idles. On a GPU the network's activations live in device memory,
    not in this budget."""
    s, nb, planes, halo = plan.scale, plan.bands, plan.planes, plan.halo
    h, w = plan.cube.sizes["y"], plan.cube.sizes["x"]
    per_px = BYTES_F32 * (3 * nb + 2 * planes * s * s)
    if plan.spec.needs_weights and not plan.device.startswith("cuda"):
        per_px += BYTES_F32 * 64 * (14 + 3 * s * s)  # one band step of the network (width 64)
    budget = max(memory_limit_mb - BASE_MEMORY_MB, 64) * 2**20
    if h * w * per_px <= budget:
        whole = max(16, -(-max(h, w) // 16) * 16)
        # several CPU workers: split the longer side among them (as dask's chunks do), unless the
        # parts would be narrower than two halos (then the halo would cost more than the overlap gains)
        part = -(-max(h, w) // max(workers, 1) // 16) * 16
        split = workers > 1 and not plan.device.startswith("cuda") and max(2 * halo, 16) <= part < whole
        return part if split else whole
    side = int(math.sqrt(budget / max(workers, 1) / per_px)) - 2 * halo
    return max(16, min(1024, side // 16 * 16))


def tile_size(side: int, scale: int) -> int:
    """GeoTIFF tile edge: the largest multiple of 16 dividing the HR block edge, at most 512,
    so blocks never share a tile (no tile is rewritten after a flush)."""
    hr = side * scale
    for t in range(min(512, hr), 15, -16):
        if hr % t == 0:
            return t
    return 16


MIN_BATCHED_SIDE = 128  # LR px: smaller blocks would cost more in halo than batching gains


def parse_batch(batch) -> int | None:
    """Blocks per batch from ``--batch``: a positive number, or None for ``auto``."""
    if batch in (None, "auto"):
        return None
    try:
        n = int(batch)
    except (TypeError, ValueError):
        n = 0
    if n < 1:
        raise InputError(f"--batch must be a positive number of blocks or 'auto', got {batch!r}")
    return n


def choose_batch(plan: Plan, memory_limit_mb: float, workers: int, batch) -> tuple[int, int]:
    """(blocks per device batch, LR block side). ``batch="auto"``: 1 on the CPU (no gain there);
    on a GPU the largest of 4, 2, 1 whose blocks, with ``workers`` batches in flight, still fit
    the host memory limit at ≥ 128 LR px a side (raise ``--memory-limit`` on a GPU machine)."""
    n = parse_batch(batch)
    if n is not None:
        return n, block_side(plan, memory_limit_mb, workers * n)
    if plan.device.startswith("cuda"):
        for n in (4, 2):
            side = block_side(plan, memory_limit_mb, workers * n)
            if side >= MIN_BATCHED_SIDE or side >= max(plan.cube.sizes["y"], plan.cube.sizes["x"]):
                return n, side
    return 1, block_side(plan, memory_limit_mb, workers)


def plan_blocks(h: int, w: int, side: int) -> list[Block]:
    out = []
    for y0 in range(0, h, side):
        for x0 in range(0, w, side):
            out.append(Block(len(out), y0, x0, min(side, h - y0), min(side, w - x0)))
    return out


def read_window(src, b: Block, halo: int, height: int, width: int, band_map=None):
    """The LR window of block ``b`` with up to ``halo`` pixels around it, and the halo it got
    on each side ``(top, bottom, left, right)``; ``band_map``: a model's fixed band grid.
    ``src``: a file, or ``(file, row0, col0, bands)`` when the scene is a window and a band
    subset (1-based indexes, None: all) of it (:attr:`geohsr.engine.Plan.source_subset`), or
    the scene itself as a lazy DataArray when xarray reads it (NetCDF, Zarr, HDF5 products)."""
    import rasterio
    from rasterio.windows import Window

    top, left = min(halo, b.y0), min(halo, b.x0)
    bottom, right = min(halo, height - b.y0 - b.h), min(halo, width - b.x0 - b.w)
    if not isinstance(src, (str, tuple)):  # read through xarray/dask, on this thread
        import dask

        with dask.config.set(scheduler="synchronous"):
            data = np.asarray(src.isel(y=slice(b.y0 - top, b.y0 + b.h + bottom),
                                       x=slice(b.x0 - left, b.x0 + b.w + right)).values)
        return (data if band_map is None else apply_band_map(data, band_map)), (top, bottom, left, right)
    src, row0, col0, bands = (src, 0, 0, None) if isinstance(src, str) else src
    win = Window(col0 + b.x0 - left, row0 + b.y0 - top, b.w + left + right, b.h + top + bottom)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with rasterio.open(src) as ds:
                data = ds.read(indexes=bands, window=win)
    except rasterio.errors.RasterioIOError as exc:
        msg = str(exc).splitlines()[0] if str(exc) else "read error"
        raise InputError(f"{src}: cannot read rows {b.y0}–{b.y0 + b.h}, cols {b.x0}–{b.x0 + b.w} "
                         f"({msg}); the file is truncated or corrupt") from None
    if band_map is not None:
        data = apply_band_map(data, band_map)
    return data, (top, bottom, left, right)


def block_task(src: str, group: list[Block], height: int, width: int, halo: int, kw: dict,
               norm: float, mode: str, stat, out: dict, band_map=None):
    """Runs on a worker: read the windows of ``group`` with their halo, super-resolve them (one
    device batch per block shape), crop; then per block either ``(statistic, planes)`` for the
    scratch file (``mode="planes"``), or the finished, cast HR block (``mode="final"``, with the
    scene's statistic ``stat``; ``"self"``: with the block's own, for a one-block scene)."""
    items = []
    for b in group:
        data, sides = read_window(src, b, halo, height, width, band_map)
        items.append((data, sides, (b.y0 - sides[0], b.x0 - sides[2])))
    nb = items[0][0].shape[0]
    planes = sr_blocks(items, norm, **kw)
    items.clear()
    spec, good = get_method(kw["method"]), kw.get("use_bands")
    res = []
    while planes:
        p = planes.pop(0)
        if mode == "planes":
            res.append((block_stat(spec, p, nb, good), p))
            continue
        s = block_stat(spec, p, nb, good) if mode == "self" else stat
        res.append(cast_planes(finish(spec, p, nb, s), out["dtype"], out["nodata"], give_up=True,
                               clip=out.get("clip")))
        del p
    return res


def finish_task(scratch: str, group: list[Block], scale: int, bands: int, method: str, stat, out: dict):
    """Runs on a worker: the scratch planes of ``group`` finished with the scene's statistic and cast."""
    import rasterio
    from rasterio.windows import Window

    spec, res = get_method(method), []
    with rasterio.open(scratch) as ds:
        for b in group:
            p = ds.read(window=Window(b.x0 * scale, b.y0 * scale, b.w * scale, b.h * scale))
            res.append(cast_planes(finish(spec, p, bands, stat), out["dtype"], out["nodata"], give_up=True,
                                   clip=out.get("clip")))
    return res


def absmax_task(src: str, b: Block, nodata, band_map=None) -> float:
    return absmax(read_window(src, b, 0, b.y0 + b.h, b.x0 + b.w, band_map)[0], nodata)


class _Progress:
    """Blocks done: a tqdm bar, JSON percent lines, or nothing."""

    def __init__(self, mode, total: int, desc: str, span=(0.0, 1.0), phase: str = ""):
        self.bar = self.json = None
        if mode in ("bar", True):
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=desc, unit="block", file=sys.stderr, leave=False,
                            dynamic_ncols=True)
        elif mode == "json":
            self.json = JsonPercent(total, span, phase or desc)

    def update(self, k: int = 1):
        if self.bar is not None:
            self.bar.update(k)
        elif self.json is not None:
            self.json.update(k)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def _run_pool(executor, tasks, workers: int, on_result, progress: _Progress):
    """Submit ``tasks`` ((key, callable, args, blocks counted)) keeping at most ``workers + 1``
    in flight."""
    pending: dict = {}
    it = iter(tasks)
    exhausted = False
    while True:
        while not exhausted and len(pending) < workers + 1:
            try:
                key, fn, args, n = next(it)
            except StopIteration:
                exhausted = True
                break
            pending[executor.submit(fn, *args)] = key, n
        if not pending:
            return
        done, _ = cf.wait(list(pending), return_when=cf.FIRST_COMPLETED)
        for f in done:
            key, n = pending.pop(f)
            on_result(key, f.result())
            progress.update(n)


@dataclass
class StreamOptions:
    """How a streamed run goes (none of these change the output's pixels)."""

    resume: bool = False
    keep_partial: bool = True
    memory_limit_mb: float = 2048
    workers: int | None = None
    client: object = None
    progress: str = "bar"
    flush_seconds: float | None = None
    block: int | None = None
    batch: object = "auto"


class _Sink:
    """A raster written block by block: every ``flush_seconds`` it is closed (flushed to disk)
    and ``on_flush(indices)`` records the blocks it holds, then it is reopened."""

    def __init__(self, path: Path, scale: int, flush_seconds: float, on_flush):
        import rasterio

        self.path, self.scale, self.flush_seconds, self.on_flush = path, scale, flush_seconds, on_flush
        self.ds = rasterio.open(path, "r+")
        self.last, self.newly = time.time(), []

    def write(self, b: Block, arr) -> None:
        from rasterio.windows import Window

        s = self.scale
        self.ds.write(arr, window=Window(b.x0 * s, b.y0 * s, b.w * s, b.h * s))
        self.newly.append(b.idx)
        if time.time() - self.last > self.flush_seconds:
            self.flush(reopen=True)

    def flush(self, reopen: bool = False) -> None:
        import rasterio

        self.ds.close()
        if self.newly:
            self.on_flush(self.newly)
            self.newly = []
        if reopen:
            self.ds = rasterio.open(self.path, "r+")
            self.last = time.time()


@dataclass
class _Job:
    """A streamed run: the plan, its blocks and batches, the hidden files beside the destination
    and the journal state that makes it resumable."""

    plan: Plan
    dst: Path
    fmt: str
    opts: StreamOptions
    src: object = ""  # the file, or (file, row0, col0, bands) for a subset (read_window)
    path: str = ""
    workers: int = 1
    side: int = 0
    blocks: list = None
    groups: list = None
    state: dict = None
    spans: dict = None  # phase -> (lo, hi) share of the run's progress (phase_spans)

    def __post_init__(self):
        plan, opts = self.plan, self.opts
        self.path = str(plan.cube.attrs.get("source", ""))
        self.workers = opts.workers or _default_workers(plan, opts.client)
        nbatch, self.side = choose_batch(plan, opts.memory_limit_mb, self.workers, opts.batch)
        if opts.block is not None:
            self.side = check_block(opts.block)
        if read_by_gdal(plan.cube):  # windows re-read from the file by GDAL
            self.src = self.path if plan.source_subset is None else (self.path, *plan.source_subset)
        else:  # xarray reads the windows (NetCDF, Zarr, HDF5 products)
            self.src = _block_chunked(plan, self.side)
        self.blocks = plan_blocks(plan.cube.sizes["y"], plan.cube.sizes["x"], self.side)
        self.groups = [self.blocks[i:i + nbatch] for i in range(0, len(self.blocks), nbatch)]
        self.nbatch = nbatch
        self.flush_seconds = (opts.flush_seconds if opts.flush_seconds is not None
                              else float(os.environ.get("GEOHSR_FLUSH_SECONDS", "5")))
        data = envi_paths(self.dst)[0] if self.fmt == "ENVI" else self.dst
        self.data_dst = data
        hidden = lambda tag: data.with_name(f".{data.name}.geohsr-{tag}")  # noqa: E731
        self.partial = hidden("partial" + (".img" if self.fmt == "ENVI" else ".tif"))
        self.partial_hdr = self.partial.with_suffix(".hdr") if self.fmt == "ENVI" else None
        self.scratch = hidden("scratch.tif")  # the planes of a method with a scene-wide statistic
        self.journal = hidden("journal.json")
        # a scene-wide statistic over several blocks: the network runs once, into the scratch file
        self.two_pass = plan.spec.finish is not None and len(self.blocks) > 1

    @property
    def files(self) -> tuple:
        return tuple(p for p in (self.partial, self.partial_hdr, self.scratch, self.journal) if p is not None)

    def signature(self) -> dict:
        st, plan, w = Path(self.path).stat(), self.plan, self.plan.weights
        return {"version": JOURNAL_VERSION, "src": str(Path(self.path).resolve()), "size": st.st_size,
                "subset": None if plan.source_subset is None else list(plan.source_subset),
                "mtime_ns": st.st_mtime_ns, "method": plan.spec.name, "scale": plan.scale,
                "weights": None if w is None else [str(Path(p).resolve()) for p in w.split(",")],
                "dtype": plan.out_dtype.name, "format": self.fmt, "side": self.side, "halo": plan.halo,
                "guide": None if plan.guide is None else str(getattr(plan.guide, "path", None)),
                "precision": plan.precision, "batch": self.nbatch, "ensemble": plan.ensemble,
                "mtf_gain": None if plan.guide_mtf is None else round(float(plan.guide.mtf_gain), 6)}

    def load_state(self) -> bool:
        """The journal's state when resuming a matching run (True), else a fresh one (False)."""
        sig = self.signature()
        if self.journal.exists():
            try:
                old = json.loads(self.journal.read_text())
            except ValueError:
                old = None
            if self.opts.resume and old and old.get("signature") == sig and self.partial.exists():
                self.state = old
                return True
            warnings.warn("the partial result does not match this run (input, method or options "
                          "changed); starting over" if self.opts.resume else
                          f"a partial result of an interrupted run exists ({self.partial.name}); "
                          "starting over (pass --resume to continue it instead)")
        self.discard()
        self.state = {"signature": sig, "norm": None, "stats": {}, "done": []}
        return False

    def save_state(self) -> None:
        _write_journal(self.journal, self.state)

    def create_files(self, proto, info) -> None:
        """The partial file (the output's profile and tags, no pixels yet), the scratch file."""
        import rasterio

        plan, s = self.plan, self.plan.scale
        profile = raster_profile(proto, "ENVI" if self.fmt == "ENVI" else "GTiff", plan.out_dtype,
                                 plan.out_nodata, None)
        if self.fmt != "ENVI" and profile.get("tiled"):
            t = tile_size(self.side, s)
            profile.update(blockxsize=t, blockysize=t)
        with rasterio.open(self.partial, "w", **profile) as ds:
            write_metadata(ds, proto, info, self.fmt)
        if self.two_pass:
            t = tile_size(self.side, s)
            with rasterio.open(self.scratch, "w", driver="GTiff", dtype="float32", count=plan.planes,
                               width=profile["width"], height=profile["height"], tiled=True,
                               blockxsize=t, blockysize=t, interleave="pixel", bigtiff="YES"):
                pass
        self.save_state()

    def publish(self, info) -> Path:
        """Move the finished partial file to the destination (ENVI header, COG copy)."""
        if self.fmt == "ENVI":
            finish_envi_header(self.partial_hdr, info, self.plan.out_nodata,
                               f"{self.dst.name} ({self.plan.spec.name} ×{self.plan.scale}), written by geohsr")
            os.replace(self.partial, self.data_dst)
            os.replace(self.partial_hdr, envi_paths(self.dst)[1])
        elif self.fmt == "COG":
            import rasterio.shutil

            cog = self.data_dst.with_name(f".{self.data_dst.name}.geohsr-tmp-cog.tif")
            try:
                rasterio.shutil.copy(self.partial, cog, driver="COG", BIGTIFF="IF_SAFER",
                                     COMPRESS="DEFLATE", BLOCKSIZE=256)
                os.replace(cog, self.data_dst)
            finally:
                cog.unlink(missing_ok=True)
            self.partial.unlink()
        else:
            os.replace(self.partial, self.data_dst)
        self.scratch.unlink(missing_ok=True)
        self.journal.unlink(missing_ok=True)
        return self.data_dst

    def discard(self) -> None:
        _discard(*self.files)


def _block_chunked(plan: Plan, side: int):
    """The scene of ``plan`` for :func:`read_window` when xarray reads it: the source opened
    again in chunks of one block (a window then reads at most the four chunks it touches, not
    whole chunks of the opening's default size) with ``plan.source_subset`` applied; the plan's
    own cube when it has no file behind it."""
    from .io import open_cube

    if not plan.cube.attrs.get("source"):
        return plan.cube
    part = open_cube(plan.cube.attrs["source"], chunks={"band": -1, "y": side, "x": side})
    if plan.source_subset is not None:
        row0, col0, bands = plan.source_subset
        part = part.isel(y=slice(row0, row0 + plan.cube.sizes["y"]), x=slice(col0, col0 + plan.cube.sizes["x"]))
        part = part if bands is None else part.isel(band=[b - 1 for b in bands])
    return part if part.shape == plan.cube.shape else plan.cube  # a cube cut after opening: its own values


def _default_workers(plan: Plan, client) -> int:
    """Two blocks at a time (one on a single core), each with its share of the cores: on the CPU
    two blocks with half the threads each run a network ~1.2× faster than one block with all of
    them (the band recurrence's small steps do not use every core; ``benchmarks/bench_cli_api.py``);
    on a GPU one block's transfers and CPU work overlap the other's kernels. A cluster: its workers."""
    if client is not None:
        return len(client.scheduler_info()["workers"])
    if plan.device.startswith("cuda"):
        return 2
    return min(2, os.cpu_count() or 1)


def check_block(block) -> int:
    side = int(block)
    if side < 16 or side % 16:
        raise InputError(f"block size must be a multiple of 16 LR pixels, got {block}")
    return side


def check_options(opts: StreamOptions) -> None:
    """The streamed options a user sets, checked before anything is read."""
    parse_batch(opts.batch)
    if opts.block is not None:
        check_block(opts.block)
    if opts.workers is not None and opts.workers < 1:
        raise InputError(f"--workers must be >= 1, got {opts.workers}")


def _scan(job: _Job, executor, pr_mode) -> None:
    """The normalisation scale (largest valid |value|), once, kept in the journal."""
    plan, h, w = job.plan, job.plan.cube.sizes["y"], job.plan.cube.sizes["x"]
    if not plan.spec.normalise or job.state["norm"] is not None:
        return
    big = plan_blocks(h, w, 1024)
    vals = []
    with contextlib.closing(_Progress(pr_mode, len(big), "scan", job.spans["scan"], "scan")) as pr:
        _run_pool(executor, ((b.idx, absmax_task, (job.src, b, plan.nodata, plan.band_map), 1) for b in big),
                  job.workers, lambda k, v: vals.append(v), pr)
    job.state["norm"] = norm_scale(vals)


def _network_pass(job: _Job, executor, pr_mode, into: Path, mode: str) -> None:
    """Every block not yet in ``into`` through the network: its planes (and statistic) into the
    scratch file (``mode="planes"``), or the finished blocks into the partial file."""
    plan, h, w = job.plan, job.plan.cube.sizes["y"], job.plan.cube.sizes["x"]
    key = "stats" if mode == "planes" else "done"
    done = set(map(int, job.state[key]))
    todo = [g for g in job.groups if any(b.idx not in done for b in g)]
    if mode == "final" and plan.spec.finish is not None:  # one block: its own statistic
        mode = "self"
    pending = {}

    def record(idx):
        if mode == "planes":
            job.state["stats"].update({str(i): pending.pop(i) for i in idx})
        else:
            job.state["done"].extend(idx)
        job.save_state()

    sink = _Sink(into, plan.scale, job.flush_seconds, record)

    def write_group(group, results):
        for b, r in zip(group, results):
            if b.idx in done:  # a resumed group: its finished blocks are on disk
                continue
            if mode == "planes":
                pending[b.idx], r = list(r[0]), r[1]
            sink.write(b, r)

    out = {"dtype": plan.out_dtype, "nodata": plan.out_nodata, "clip": plan.clip}
    norm = job.state["norm"] if plan.spec.normalise else 1.0
    desc = "geohsr" if mode != "planes" else "geohsr (network)"
    try:
        with contextlib.closing(_Progress(pr_mode, len(job.blocks), desc, job.spans["network"], "network")) as pr:
            pr.update(len(job.blocks) - sum(len(g) for g in todo))
            _run_pool(executor, ((g, block_task, (job.src, g, h, w, plan.halo, plan.block_kwargs(), norm, mode,
                                                  None, out, plan.band_map), len(g)) for g in todo),
                      job.workers, write_group, pr)
    finally:
        sink.flush()


def _finish_pass(job: _Job, executor, pr_mode) -> None:
    """Scratch planes → finished with the scene's statistic, cast, into the partial file."""
    plan = job.plan
    done = set(job.state["done"])
    todo = [g for g in job.groups if any(b.idx not in done for b in g)]
    stat = _summed(job.state["stats"])
    out = {"dtype": plan.out_dtype, "nodata": plan.out_nodata, "clip": plan.clip}
    sink = _Sink(job.partial, plan.scale, job.flush_seconds,
                 lambda idx: (job.state["done"].extend(idx), job.save_state()))

    def write_group(group, results):
        for b, r in zip(group, results):
            if b.idx not in done:
                sink.write(b, r)

    try:
        with contextlib.closing(_Progress(pr_mode, len(job.blocks), "geohsr (finish)", job.spans["finish"],
                                          "finish")) as pr:
            pr.update(len(job.blocks) - sum(len(g) for g in todo))
            _run_pool(executor, ((g, finish_task, (str(job.scratch), g, plan.scale, plan.bands, plan.spec.name,
                                                   stat, out), len(g)) for g in todo),
                      job.workers, write_group, pr)
    finally:
        sink.flush()


def _summed(stats: dict) -> tuple[float, float]:
    """The scene's statistic from the blocks' (in block order, so resumed runs sum alike)."""
    acc = [0.0, 0.0]
    for k in sorted(stats, key=int):
        acc[0] += stats[k][0]
        acc[1] += stats[k][1]
    return acc[0], acc[1]


def run_file(src, dst, *, method="bicubic", scale=4, fmt=None, weights=None, guide=None, device="auto",
             dtype=None, overwrite=False, precision="fp32", coregister="auto", ensemble=False, mtf="measure",
             **options) -> Path:
    """Super-resolve the raster file ``src`` into ``dst`` (GTiff, COG or ENVI), streaming.

    ``options`` (:class:`StreamOptions`): ``workers`` blocks run concurrently (threads here, or
    the cluster's workers with ``client``; default 1 for networks on the CPU, else 2); ``batch``
    blocks per device batch (``auto``: 1 on the CPU, up to 4 on a GPU, :func:`choose_batch`);
    ``memory_limit_mb``, ``block``, ``resume``, ``keep_partial``, ``progress``, ``flush_seconds``.
    ``mtf``: as in :func:`geohsr.superresolve`."""
    opts = StreamOptions(**options)
    check_options(opts)
    dst, fmt = check_destination(dst, fmt, overwrite, sources=(src,))
    from .io import open_cube

    cube = open_cube(src, chunks={"band": -1, "y": 512, "x": 512})  # lazy, as `geohsr run` opens it
    plan = prepare(cube, method, scale, guide=guide, weights=weights, device=device, dtype=dtype,
                   precision=precision, coregister=coregister, ensemble=ensemble, mtf=mtf)
    return run_plan(plan, dst, fmt, opts)


PHASE_WEIGHTS = {"scan": 1.0, "network": 16.0, "finish": 2.0}  # rough shares of a run's time


def phase_spans(scan: bool, finish: bool) -> dict:
    """The share ``(lo, hi)`` of the whole run each phase's progress covers (absent phases: none)."""
    names = [n for n, on in (("scan", scan), ("network", True), ("finish", finish)) if on]
    total, lo, out = sum(PHASE_WEIGHTS[n] for n in names), 0.0, {}
    for n in ("scan", "network", "finish"):
        w = PHASE_WEIGHTS[n] / total if n in names else 0.0
        out[n] = (lo, lo + w)
        lo += w
    return out


def run_plan(plan: Plan, dst: Path, fmt: str, opts: StreamOptions | None = None) -> Path:
    """Stream a prepared plan (its cube read from a GDAL file) into the checked destination ``dst``."""
    import rasterio

    opts = opts or StreamOptions()
    if fmt not in STREAM_FORMATS:
        raise OutputError(f"streaming writes GeoTIFF, COG or ENVI, not {fmt}")
    job = _Job(plan, Path(dst), fmt, opts)
    threads = None
    if opts.client is None:  # every worker thread its share of the cores (restored afterwards)
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // job.workers))
    resumed = job.load_state()
    job.spans = phase_spans(plan.spec.normalise and job.state["norm"] is None, job.two_pass)
    nb, h, w = plan.cube.shape
    proto = plan.wrap(dsa.zeros((nb, h * plan.scale, w * plan.scale), dtype=plan.out_dtype,
                                chunks=(nb, 4096, 4096)))  # the output's geometry and tags, no pixels
    info = spec_io.from_coords(plan.cube)
    executor = opts.client.get_executor() if opts.client is not None else cf.ThreadPoolExecutor(job.workers)
    try:
        with rasterio.Env(GDAL_PAM_ENABLED="NO", GDAL_CACHEMAX=64), warnings.catch_warnings():
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            if not resumed:
                job.create_files(proto, info)
            _scan(job, executor, opts.progress)
            if job.two_pass:  # the network once: planes + statistic into the scratch file
                _network_pass(job, executor, opts.progress, job.scratch, "planes")
                _finish_pass(job, executor, opts.progress)
            else:
                _network_pass(job, executor, opts.progress, job.partial, "final")
        return job.publish(info)
    except KeyboardInterrupt:
        if not opts.keep_partial:
            job.discard()
        raise
    except OSError as exc:
        job.discard()
        raise_os(exc, dst)
    except BaseException:
        job.discard()
        raise
    finally:
        if opts.client is None:
            executor.shutdown(wait=False, cancel_futures=True)
            torch.set_num_threads(threads)


def _discard(*paths):
    for p in paths:
        if p is not None:
            with contextlib.suppress(OSError):
                p.unlink()


def _write_journal(path: Path, state: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        json.dump(state, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def partial_paths(dst) -> list[Path]:
    """Hidden files an interrupted streaming run keeps beside ``dst`` (for ``--resume``)."""
    dst = Path(dst)
    return sorted(dst.parent.glob(f".{dst.name}.geohsr-*"))


__all__ = ["run_file", "run_plan", "StreamOptions", "partial_paths", "block_side", "choose_batch", "tile_size"]
