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

Methods with a scene-wide statistic (DualSR's λ) take one extra pass for it, unless the scene
is a single block.
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

import numpy as np

from .api import Plan, _sr_block, _sr_blocks, prepare
from .dtypes import cast_finite
from .errors import InputError, OutputError
from .io import spectral as spec_io
from .io.write import JsonPercent, _finish_envi_header, _profile, _raise_os, _write_metadata, check_destination, envi_paths
from .tiling import valid_mask

JOURNAL_VERSION = 1
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
    ``workers`` blocks in flight; the whole scene in one block when it fits (no halo overhead,
    and a scene-wide statistic needs no extra pass). On a GPU the network's activations live
    in device memory, not in this budget."""
    s, nb, planes, halo = plan.scale, plan.bands, plan.planes, plan.halo
    h, w = plan.cube.sizes["y"], plan.cube.sizes["x"]
    per_px = BYTES_F32 * (3 * nb + 2 * planes * s * s)
    if plan.spec.needs_weights and not plan.device.startswith("cuda"):
        per_px += BYTES_F32 * 64 * (14 + 3 * s * s)  # one band step of the network (width 64)
    budget = max(memory_limit_mb - BASE_MEMORY_MB, 64) * 2**20
    if h * w * per_px <= budget:
        return max(16, -(-max(h, w) // 16) * 16)
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


def _read_window(src: str, b: Block, halo: int, height: int, width: int, band_map=None):
    import rasterio
    from rasterio.windows import Window

    top, left = min(halo, b.y0), min(halo, b.x0)
    bottom, right = min(halo, height - b.y0 - b.h), min(halo, width - b.x0 - b.w)
    win = Window(b.x0 - left, b.y0 - top, b.w + left + right, b.h + top + bottom)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with rasterio.open(src) as ds:
                data = ds.read(window=win)
    except rasterio.errors.RasterioIOError as exc:
        msg = str(exc).splitlines()[0] if str(exc) else "read error"
        raise InputError(f"{src}: cannot read rows {b.y0}–{b.y0 + b.h}, cols {b.x0}–{b.x0 + b.w} "
                         f"({msg}); the file is truncated or corrupt") from None
    if band_map is not None:  # a model's fixed band grid (SNLSR / A-SNLSR)
        from .api import apply_band_map

        data = apply_band_map(data, band_map)
    return data, (top, bottom, left, right)


def block_task(src: str, group: list[Block], height: int, width: int, halo: int, kw: dict,
               norm: float, mode: str, stat, finish_info: dict, band_map=None):
    """Runs on a worker: read the windows of ``group`` with their halo, super-resolve them (one
    device batch per block shape), crop; then per block either its statistic
    (``mode="stat"``), or the finished, cast HR block (``mode="final"``)."""
    from .methods import get_method

    items = []
    for b in group:
        data, sides = _read_window(src, b, halo, height, width, band_map)
        items.append((data, sides, (b.y0 - sides[0], b.x0 - sides[2])))
    nb = items[0][0].shape[0]
    planes = _sr_blocks(items, norm, **kw)
    items.clear()
    spec = get_method(kw["method"])
    out = []
    while planes:
        p = planes.pop(0)
        if mode == "stat":
            out.append(spec.block_stat(p, nb, kw.get("use_bands")))
            continue
        if spec.finish is not None:
            p = spec.finish(p, nb, *stat)
        out.append(cast_finite(p[:nb], finish_info["dtype"], finish_info["nodata"]))
        del p
    return out


def _absmax_task(src: str, b: Block, nodata, band_map=None) -> float:
    data, _ = _read_window(src, b, 0, b.y0 + b.h, b.x0 + b.w, band_map)
    v = valid_mask(data, nodata)
    return float(np.abs(np.where(v, data, 0).astype(np.float64)).max()) if data.size else 0.0


class _Progress:
    """Blocks done: a tqdm bar, JSON percent lines, or nothing."""

    def __init__(self, mode, total: int, desc: str):
        self.bar = self.json = None
        if mode in ("bar", True):
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=desc, unit="block", file=sys.stderr, leave=False,
                            dynamic_ncols=True)
        elif mode == "json":
            self.json = JsonPercent(total)

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


def _signature(src: Path, plan: Plan, fmt: str, side: int, batch: int) -> dict:
    st = src.stat()
    w = plan.weights
    return {"version": JOURNAL_VERSION, "src": str(src.resolve()), "size": st.st_size,
            "mtime_ns": st.st_mtime_ns, "method": plan.spec.name, "scale": plan.scale,
            "weights": None if w is None else [str(Path(p).resolve()) for p in w.split(",")],
            "dtype": plan.out_dtype.name, "format": fmt, "side": side, "halo": plan.halo,
            "guide": None if plan.guide is None else str(getattr(plan.guide, "path", None)),
            "precision": plan.precision, "batch": batch}


def run_file(src, dst, *, method="bicubic", scale=4, fmt=None, weights=None, guide=None, device="auto",
             dtype=None, overwrite=False, resume=False, keep_partial=True, memory_limit_mb=2048,
             workers=None, client=None, progress="bar", flush_seconds=None, block=None,
             precision="fp32", batch="auto") -> Path:
    """Super-resolve the raster file ``src`` into ``dst`` (GTiff, COG or ENVI), streaming.

    ``workers``: blocks run concurrently (threads here, or the cluster's workers with
    ``client``); default 1 for networks on the CPU (each uses every core), else 2. ``batch``:
    blocks per device batch (``auto``: 1 on the CPU, up to 4 on a GPU, see
    :func:`choose_batch`)."""
    import rasterio

    src = Path(src)
    dst, fmt = check_destination(dst, fmt, overwrite, sources=(src,))
    if fmt not in ("GTiff", "COG", "ENVI"):
        raise OutputError(f"streaming writes GeoTIFF, COG or ENVI, not {fmt}")
    plan = prepare(src, method, scale, guide=guide, weights=weights, device=device, dtype=dtype,
                   precision=precision)
    cube, spec, s = plan.cube, plan.spec, plan.scale
    bmap = cube.attrs.get("geohsr_band_map")
    src_path = cube.attrs.get("source", str(src))
    nb, h, w = cube.shape
    on_gpu = plan.device.startswith("cuda")
    if workers is None:  # networks on the CPU: one block at a time using every core (less memory);
        # on a GPU two, so that one's transfers and CPU work overlap the other's kernels
        workers = (len(client.scheduler_info()["workers"]) if client is not None
                   else 2 if on_gpu else 1 if plan.spec.needs_weights else min(2, os.cpu_count() or 1))
    if client is None:
        import torch

        torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))
    nbatch, side = choose_batch(plan, memory_limit_mb, workers, batch)
    if block is not None:
        side = int(block)
    if side < 16 or side % 16:
        raise InputError(f"block size must be a multiple of 16 LR pixels, got {side}")
    if flush_seconds is None:
        flush_seconds = float(os.environ.get("GEOHSR_FLUSH_SECONDS", "5"))
    blocks = plan_blocks(h, w, side)
    groups = [blocks[i:i + nbatch] for i in range(0, len(blocks), nbatch)]
    # the output's geometry and metadata, without its pixels (a broadcast view)
    import dask.array as dsa

    proto = plan.wrap(dsa.zeros((nb, h * s, w * s), dtype=plan.out_dtype, chunks=(nb, 4096, 4096)))
    info = spec_io.from_coords(cube)

    data_dst, hdr_dst = envi_paths(dst) if fmt == "ENVI" else (dst, None)
    partial = data_dst.with_name(f".{data_dst.name}.geohsr-partial{'.img' if fmt == 'ENVI' else '.tif'}")
    partial_hdr = partial.with_suffix(".hdr") if fmt == "ENVI" else None
    journal = data_dst.with_name(f".{data_dst.name}.geohsr-journal.json")
    sig = _signature(src, plan, fmt, side, nbatch)
    state = None
    if journal.exists():
        try:
            old = json.loads(journal.read_text())
        except ValueError:
            old = None
        if resume and old and old.get("signature") == sig and partial.exists():
            state = old
        elif resume:
            warnings.warn("the partial result does not match this run (input, method or options "
                          "changed); starting over")
        else:
            warnings.warn(f"a partial result of an interrupted run exists ({partial.name}); "
                          "starting over (pass --resume to continue it instead)")
    if state is None:
        for p in (partial, partial_hdr, journal):
            if p is not None and p.exists():
                p.unlink()
    executor = client.get_executor() if client is not None else cf.ThreadPoolExecutor(workers)
    created = state is None
    try:
        if state is None:
            state = {"signature": sig, "norm": None, "stat": None, "done": []}
        # normalisation scale and scene-wide statistic: computed once, kept in the journal
        if spec.normalise and state["norm"] is None:
            big = plan_blocks(h, w, 1024)
            vals = []
            with contextlib.closing(_Progress(progress, len(big), "scan")) as pr:
                _run_pool(executor, ((b.idx, _absmax_task, (src_path, b, plan.nodata, bmap), 1) for b in big),
                          workers, lambda k, v: vals.append(v), pr)
            state["norm"] = max(max(vals), 1e-12)
        norm = state["norm"] if spec.normalise else 1.0
        kw = plan.block_kwargs()
        fin = {"dtype": plan.out_dtype, "nodata": plan.out_nodata}
        if spec.finish is not None and state["stat"] is None:
            if len(blocks) == 1:
                state["stat"] = "single"
            else:
                acc = [0.0, 0.0]

                def add(_, vals):
                    for v in vals:
                        acc[0] += v[0]
                        acc[1] += v[1]

                with contextlib.closing(_Progress(progress, len(blocks), "statistic")) as pr:
                    _run_pool(executor, ((g[0].idx, block_task, (src_path, g, h, w, plan.halo, kw, norm,
                                                                 "stat", None, fin, bmap), len(g))
                                         for g in groups), workers, add, pr)
                state["stat"] = acc
        # the partial file
        profile = _profile(proto, "ENVI" if fmt == "ENVI" else "GTiff", plan.out_dtype,
                           plan.out_nodata, None)
        if fmt != "ENVI" and profile.get("tiled"):
            t = tile_size(side, s)
            profile.update(blockxsize=t, blockysize=t)
        with rasterio.Env(GDAL_PAM_ENABLED="NO", GDAL_CACHEMAX=64), warnings.catch_warnings():
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            if created:
                with rasterio.open(partial, "w", **profile) as ds:
                    _write_metadata(ds, proto, info, fmt)
                _write_journal(journal, state)
            done = set(state["done"])
            todo = [g for g in groups if any(b.idx not in done for b in g)]
            ds = rasterio.open(partial, "r+")
            last_flush = time.time()
            newly: list[int] = []

            def write(b: Block, arr):
                from rasterio.windows import Window

                ds.write(arr, window=Window(b.x0 * s, b.y0 * s, b.w * s, b.h * s))
                newly.append(b.idx)

            def write_group(group: list[Block], arrs):
                nonlocal ds, last_flush
                for b, arr in zip(group, arrs):
                    if b.idx not in done:  # a resumed group: its finished blocks are on disk
                        write(b, arr)
                if time.time() - last_flush > flush_seconds:
                    ds.close()  # flush everything written so far, then record it
                    state["done"].extend(newly)
                    newly.clear()
                    _write_journal(journal, state)
                    ds = rasterio.open(partial, "r+")
                    last_flush = time.time()

            stat = None if spec.finish is None else state["stat"]
            try:
                with contextlib.closing(_Progress(progress, len(blocks), "geohsr")) as pr:
                    pr.update(len(blocks) - sum(len(g) for g in todo))
                    if stat == "single":
                        b = blocks[0]
                        data, sides = _read_window(src_path, b, plan.halo, h, w, bmap)
                        planes = _sr_block(data, norm, sides=sides,
                                           origin=(b.y0 - sides[0], b.x0 - sides[2]), **kw)
                        arr = spec.finish(planes, nb, *spec.block_stat(planes, nb, kw.get("use_bands")))
                        write(b, cast_finite(arr, plan.out_dtype, plan.out_nodata))
                        pr.update()
                    else:
                        _run_pool(executor, ((g, block_task, (src_path, g, h, w, plan.halo, kw, norm,
                                                              "final", stat, fin, bmap), len(g)) for g in todo),
                                  workers, write_group, pr)
            finally:
                ds.close()
                state["done"].extend(newly)
                newly.clear()
                _write_journal(journal, state)
        if fmt == "ENVI":
            _finish_envi_header(partial_hdr, info, plan.out_nodata)
            os.replace(partial, data_dst)
            os.replace(partial_hdr, hdr_dst)
        elif fmt == "COG":
            import rasterio.shutil

            cog = data_dst.with_name(f".{data_dst.name}.geohsr-tmp-cog.tif")
            try:
                rasterio.shutil.copy(partial, cog, driver="COG", BIGTIFF="IF_SAFER",
                                     COMPRESS="DEFLATE", BLOCKSIZE=256)
                os.replace(cog, data_dst)
            finally:
                if cog.exists():
                    cog.unlink()
            partial.unlink()
        else:
            os.replace(partial, data_dst)
        journal.unlink(missing_ok=True)
        return data_dst
    except KeyboardInterrupt:
        if not keep_partial:
            _discard(partial, partial_hdr, journal)
        raise
    except OSError as exc:
        _discard(partial, partial_hdr, journal)
        _raise_os(exc, dst)
    except BaseException:
        _discard(partial, partial_hdr, journal)
        raise
    finally:
        if client is None:
            executor.shutdown(wait=False, cancel_futures=True)


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


__all__ = ["run_file", "partial_paths", "block_side", "choose_batch", "tile_size", "InputError"]
