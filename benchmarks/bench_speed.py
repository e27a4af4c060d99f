"""Throughput benchmarks: per method, tiled vs whole image, distributed speed-up.

* ``methods``: LR megapixel·bands per second of bicubic, CoarSR and DualSR ×4 on a
  128 × 128 × 31 LR cube (a CAVE test image), shipped weights; plus the CoarSR **paper**
  configuration (random weights: speed only) with its FLOP count (torch's FlopCounterMode) and
  the GFLOP/s it reaches.
* ``fusion``: MTF-GLP and GSA ×4 against bicubic on 256² and 512² × 64 LR scenes with a 4-band
  guide (fit and co-registration included): the ratio of their wall times.
* ``tiling``: bicubic ×4 of a 1024 × 1024 × 32 cube in one block vs 256-pixel dask chunks
  (overhead of the halo and the graph).
* ``distributed``: a streamed ``run_file`` on a LocalCluster of 1 vs 2 single-threaded workers.
* ``device``: on ``GEOHSR_BENCH_DEVICE`` (default: CUDA when present, else the CPU): the
  measured matrix-multiply peak (fp32, and TF32/bf16 on a GPU), the paper-size CoarSR ×4 on
  batches of 1, 2 and 4 blocks of 128 × 128 × 31 (FLOPs by FlopCounterMode; GFLOP/s and the
  fraction of the measured fp32 GEMM peak), bicubic ×4 of 1024 × 1024 × 32 (LR Mpx·bands/s, and
  the bytes it moves against the measured device copy bandwidth), and streamed ``run_file``
  runs of DualSR (shipped weights) with 1 vs 2 workers and batch 1 vs auto, i.e. with and without
  transfers overlapping kernels.

Writes JSON lines into ``benchmarks/results/speed.jsonl``, one current record per configuration.

    python benchmarks/bench_speed.py [methods] [tiling] [distributed] [device] [fusion]
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import xarray as xr
from affine import Affine

import geohsr
from geohsr import geo

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import upsert_jsonl  # noqa: E402

HERE = Path(__file__).resolve().parent
OUT = HERE / "results" / "speed.jsonl"


def machine() -> dict:
    m = {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__,
         "threads": torch.get_num_threads(), "python": platform.python_version(),
         "date": time.strftime("%Y-%m-%d")}
    if torch.cuda.is_available():
        m["gpu"] = torch.cuda.get_device_name(0)
        m["cuda"] = torch.version.cuda
    return m


def record(rec: dict) -> None:
    rec["machine"] = machine()
    upsert_jsonl(OUT, rec)
    print(json.dumps(rec))


def cube(bands, h, w, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    data = np.stack([0.4 + 0.2 * np.sin(xx / (5 + b % 7) + b) * np.cos(yy / 9) for b in range(bands)])
    data += 0.01 * rng.standard_normal(data.shape)
    return geo.with_grid(xr.DataArray(data.astype("float32"), dims=("band", "y", "x")),
                         Affine(30, 0, 0, 0, -30, 0), "EPSG:32633")


def _sync(dev):
    if dev is not None and dev.type == "cuda":
        torch.cuda.synchronize(dev)


def timeit(fn, repeat=3, dev=None):
    """Best of ``repeat`` timed calls after a warm-up (model load, allocator); on a GPU the
    device is synchronised around each call."""
    fn()  # warm-up (model load, allocator)
    _sync(dev)
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        _sync(dev)
        ts.append(time.perf_counter() - t)
    return min(ts)


def bench_methods():
    c = cube(31, 128, 128)
    mpb = 31 * 128 * 128 / 1e6
    for m in ("bicubic", "coarsr", "dualsr"):
        try:
            t = timeit(lambda: geohsr.superresolve(c, m, 4), repeat=2 if m != "bicubic" else 5)
        except geohsr.GeohsrError as exc:
            print(f"skip {m}: {exc}", file=sys.stderr)
            continue
        record({"benchmark": "method_throughput", "method": m, "scale": 4, "lr_shape": [31, 128, 128],
                "weights": "shipped", "wall_s": round(t, 3), "lr_mpix_bands_per_s": round(mpb / t, 4)})
    # the paper-size CoarSR (speed only): FLOPs and GFLOP/s
    from torch.utils.flop_counter import FlopCounterMode

    from geohsr.methods.dualsr.net import CoarSR
    from geohsr.nn import fuse_weight_norm
    from geohsr.resize import imresize

    model = fuse_weight_norm(CoarSR(4).eval())
    x = torch.from_numpy(c.values)[None]
    bic = imresize(x, scale=4, a=-0.5, antialias=False)
    with torch.inference_mode(), FlopCounterMode(display=False) as fc:
        model.forward_cube(x[:, :2], bic[:, :2])
    flops = fc.get_total_flops() / 2 * 31  # two bands counted, cube has 31 (same work per band)

    def run():
        with torch.inference_mode():
            model.forward_cube(x, bic)

    t = timeit(run, repeat=1)
    record({"benchmark": "coarsr_paper_speed", "scale": 4, "lr_shape": [31, 128, 128],
            "wall_s": round(t, 2), "tflop": round(flops / 1e12, 3), "gflop_per_s": round(flops / t / 1e9, 1),
            "official_code_s_on_this_machine": 34.0, "speedup_vs_official": round(34.0 / t, 2),
            "lr_mpix_bands_per_s": round(mpb / t, 4)})


def bench_fusion():
    """Classical fusion vs bicubic: 256² and 512² × 64 LR ×4 with a 4-band guide on the HR grid,
    wall time of ``superresolve(...).values`` including the scene-wide fit and co-registration
    (best of 3 after a warm-up)."""
    for n in (256, 512):
        c = cube(64, n, n)
        g = geo.with_grid(cube(4, 4 * n, 4 * n, seed=1), Affine(7.5, 0, 0, 0, -7.5, 0), "EPSG:32633")
        t_bic = timeit(lambda: geohsr.superresolve(c, "bicubic", 4).values, repeat=3)
        for m in ("mtf-glp", "gsa"):
            t = timeit(lambda: geohsr.superresolve(c, m, 4, guide=g).values, repeat=3)
            record({"benchmark": "fusion_speed", "method": m, "scale": 4, "lr_shape": [64, n, n],
                    "guide_bands": 4, "wall_s": round(t, 2), "bicubic_wall_s": round(t_bic, 2),
                    "ratio_to_bicubic": round(t / t_bic, 2)})


def bench_tiling():
    c = cube(32, 1024, 1024)
    t_whole = timeit(lambda: geohsr.superresolve(c, "bicubic", 4, chunks={"y": 1024, "x": 1024}), 3)
    t_tiled = timeit(lambda: geohsr.superresolve(c.chunk({"y": 256, "x": 256}), "bicubic", 4).compute(), 3)
    record({"benchmark": "tiled_vs_whole", "method": "bicubic", "scale": 4, "lr_shape": [32, 1024, 1024],
            "whole_s": round(t_whole, 3), "tiled_256_s": round(t_tiled, 3),
            "overhead_pct": round(100 * (t_tiled / t_whole - 1), 1)})


def bench_distributed():
    from distributed import Client, LocalCluster

    from geohsr.stream import run_file

    import os

    work = Path(tempfile.mkdtemp(prefix="geohsr-dist-"))
    shape = [int(v) for v in os.environ.get("GEOHSR_BENCH_DIST_SHAPE", "16,512,512").split(",")]
    src = geohsr.save_cube(cube(*shape), work / "in.tif")
    method = os.environ.get("GEOHSR_BENCH_DIST_METHOD") or (
        "coarsr" if geohsr.get_method("coarsr").shipped_weights() else "bicubic")
    scale = 4
    times = {}
    for n in (1, 2):
        with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None) as cl, \
                Client(cl) as client:
            client.run(lambda: torch.set_num_threads(1))
            run_file(src, work / "warm.tif", method=method, scale=scale, block=64, client=client,
                     overwrite=True, progress="none")  # loads the model on every worker
            t = time.perf_counter()
            run_file(src, work / f"o{n}.tif", method=method, scale=scale, block=64, client=client,
                     overwrite=True, progress="none")
            times[n] = time.perf_counter() - t
    same = np.array_equal(geohsr.open_cube(work / "o1.tif").values, geohsr.open_cube(work / "o2.tif").values)
    record({"benchmark": "distributed_speedup", "method": method, "scale": scale, "lr_shape": shape,
            "one_worker_s": round(times[1], 2), "two_workers_s": round(times[2], 2),
            "speedup": round(times[1] / times[2], 2), "identical": bool(same)})


def gemm_peak(dev, dtype=torch.float32, n=None) -> float:
    """Measured dense matrix-multiply rate in GFLOP/s (the practical peak convolutions chase)."""
    n = n or (8192 if dev.type == "cuda" else 2048)
    a = torch.randn(n, n, device=dev, dtype=dtype)
    b = torch.randn(n, n, device=dev, dtype=dtype)
    t = timeit(lambda: a @ b, 5, dev)
    return 2 * n ** 3 / t / 1e9


def copy_bandwidth(dev) -> float:
    """Measured device copy bandwidth in GB/s (read + write)."""
    x = torch.empty(256 * 2**20 // 4, device=dev)
    y = torch.empty_like(x)
    t = timeit(lambda: y.copy_(x), 5, dev)
    return 2 * x.numel() * 4 / t / 1e9


def bench_device():
    from torch.utils.flop_counter import FlopCounterMode

    from geohsr.device import infer
    from geohsr.methods import Runner, load_runner
    from geohsr.methods.dualsr import coarse as _coarse
    from geohsr.methods.dualsr.net import CoarSR
    from geohsr.nn import fuse_weight_norm
    from geohsr.stream import run_file

    dev = torch.device(os.environ.get("GEOHSR_BENCH_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu"))
    base = {"device": str(dev), "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"}
    old_tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    peaks = {"fp32": gemm_peak(dev)}
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        peaks["tf32"] = gemm_peak(dev)
        torch.backends.cuda.matmul.allow_tf32 = False
        peaks["bf16"] = gemm_peak(dev, torch.bfloat16)
    bw = copy_bandwidth(dev)
    record({**base, "benchmark": "device_peak", "gemm_gflop_per_s": {k: round(v, 1) for k, v in peaks.items()},
            "copy_gb_per_s": round(bw, 1)})

    # paper-size CoarSR x4, batches of 128 x 128 x 31 blocks (random weights: speed only)
    torch.backends.cudnn.allow_tf32 = False  # fp32 convolutions, comparable with the fp32 GEMM peak
    model = fuse_weight_norm(CoarSR(4).eval()).to(dev).channels_last()
    runner = Runner(lambda x: _coarse(model, x, 4), dev)
    c = torch.from_numpy(cube(31, 128, 128).values)
    with torch.inference_mode(), FlopCounterMode(display=False) as fc:
        _coarse(model, c[None].to(dev), 4)
    flops_block = fc.get_total_flops()
    for n in (1, 2, 4):
        xb = c[None].expand(n, -1, -1, -1).contiguous()
        t = timeit(lambda: infer(runner, [xb]), 2, dev)
        rate = flops_block * n / t / 1e9
        record({**base, "benchmark": "coarsr_paper_device", "method": "coarsr (paper)", "scale": 4,
                "lr_shape": [31, 128, 128], "batch": n, "wall_s": round(t, 3),
                "lr_mpix_bands_per_s": round(n * 31 * 128 * 128 / 1e6 / t, 3),
                "gflop_per_s": round(rate, 1), "fraction_of_fp32_gemm": round(rate / peaks["fp32"], 3)})

    # bicubic x4: host -> device -> host through infer (what geohsr run does per batch)
    bic = load_runner("bicubic", 4, None, str(dev))
    big = torch.from_numpy(cube(32, 1024, 1024).values)[None]
    t = timeit(lambda: infer(bic, [big]), 3, dev)
    moved = big.numel() * 4 * (1 + 16)  # read LR, write HR (float32)
    record({**base, "benchmark": "bicubic_device", "method": "bicubic", "scale": 4,
            "lr_shape": [32, 1024, 1024], "wall_s": round(t, 3),
            "lr_mpix_bands_per_s": round(32 * 1024 * 1024 / 1e6 / t, 2),
            "gb_per_s_moved": round(moved / t / 1e9, 1), "fraction_of_copy_bandwidth": round(moved / t / 1e9 / bw, 3),
            "note": "includes host<->device transfers" if dev.type == "cuda" else ""})
    torch.backends.cuda.matmul.allow_tf32 = old_tf32

    # streamed file runs: workers x batch (on a GPU 2 workers overlap one's transfers with the other's kernels)
    if not geohsr.get_method("coarsr").shipped_weights():
        return
    work = Path(tempfile.mkdtemp(prefix="geohsr-dev-"))
    shape = [int(v) for v in os.environ.get("GEOHSR_BENCH_DEVICE_SHAPE",
                                            "31,512,512" if dev.type == "cuda" else "31,128,128").split(",")]
    src = geohsr.save_cube(cube(*shape), work / "in.tif")
    ref = None
    for workers, batch in ((1, 1), (2, 1), (2, "auto")):
        opts = dict(method="dualsr", scale=4, device=str(dev), block=128, workers=workers, batch=batch,
                    overwrite=True, progress="none", memory_limit_mb=16000)
        run_file(src, work / "warm.tif", **opts)
        t = time.perf_counter()
        out = run_file(src, work / "o.tif", **opts)
        t = time.perf_counter() - t
        vals = geohsr.open_cube(out).values
        ref = vals if ref is None else ref
        record({**base, "benchmark": "dualsr_stream_device", "method": "dualsr", "scale": 4, "lr_shape": shape,
                "block": 128, "workers": workers, "batch": batch, "wall_s": round(t, 2),
                "lr_mpix_bands_per_s": round(np.prod(shape) / 1e6 / t, 4),
                "max_abs_diff_vs_first": float(np.abs(vals - ref).max())})


if __name__ == "__main__":
    which = sys.argv[1:] or ["methods", "tiling", "distributed"]
    for w in which:
        {"methods": bench_methods, "tiling": bench_tiling, "distributed": bench_distributed,
         "device": bench_device, "fusion": bench_fusion}[w]()
