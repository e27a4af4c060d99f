"""Check, on a lent GPU, the CUDA path ``geohsr run`` and ``superresolve`` take for every learned
method: :func:`geohsr.device.infer` (pinned staging, one stream per thread, at most two batches on
the GPU, results copied back non-blocking, out-of-memory batches split in two).

It needs nothing the device machine lacks (no rasterio/rioxarray/pyproj/dask: for ``geohsr run``
itself there, carry the pack ``scripts/gpu_site.py`` makes): it drives the runner objects and
``infer`` the engine's block function calls, on smooth random blocks, and writes ``infer_check.json``:

* CUDA fp32 against the CPU on two of the blocks (PSNR of the CUDA output against the CPU's, peak 1; TF32 convolutions
  are PyTorch's CUDA default);
* ``threads`` threads calling ``infer`` at once give each the single-thread CUDA output (max |diff|);
* a batch run under a memory cap (``torch.cuda.set_per_process_memory_fraction``) that it does not
  fit: it must be split (``runner.batch`` calls counted) and give the uncapped output;
* bf16 autocast against fp32 (PSNR), and blocks per second with 1 and ``threads`` threads.

``python scripts/gpu_check_infer.py OUT [--device cuda] [--side 64] [--batch 8]`` (a CPU run with
``--device cpu`` checks the script itself; the capped-memory check needs CUDA).
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from geohsr.metrics import psnr  # noqa: E402  (peak 1)

CASES = (("dualsr", 4, 31), ("dualsr", 3, 224), ("coarsr", 4, 224), ("mulsr", 4, 31), ("ifmsr", 4, 31),
         ("snlsr", 4, None), ("a-snlsr", 4, None))


def smooth(shape, seed: int) -> torch.Tensor:
    """Random images with spatial structure (noise blurred by a 5-px box), in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=g)
    flat = x.reshape(-1, 1, *shape[-2:])
    flat = torch.nn.functional.avg_pool2d(flat, 5, 1, 2, count_include_pad=False)
    flat = (flat - flat.amin((-2, -1), keepdim=True)) / (flat.amax((-2, -1), keepdim=True)
                                                        - flat.amin((-2, -1), keepdim=True) + 1e-6)
    return flat.reshape(shape).contiguous()


def case_args(method: str, scale: int, bands: int | None, n: int, side: int):
    from geohsr.methods import get_method

    spec = get_method(method)
    if bands is None:
        bands = len(spec.band_grid(scale, None)["wavelength"])
    args = [smooth((n, bands, side, side), 1)]
    if spec.guided:
        args.append(smooth((n, 3, side * scale, side * scale), 2))
    return spec, args


def check(method, scale, bands, dev, side, n, threads, reps) -> dict:
    from geohsr.device import infer
    from geohsr.methods import load_runner

    spec, args = case_args(method, scale, bands, n, side)
    rec = {"method": method, "scale": scale, "bands": args[0].shape[1], "blocks": n, "side": side}
    cpu = infer(load_runner(method, scale, None, "cpu"), [a[:2] for a in args])  # the CPU is slow: 2 blocks
    runner = load_runner(method, scale, None, dev)
    ref = infer(runner, args)
    rec["psnr_vs_cpu_fp32"] = psnr(ref[:2], cpu)
    rec["max_abs_vs_cpu_fp32"] = float((ref[:2] - cpu).abs().max())
    with cf.ThreadPoolExecutor(threads) as pool:
        outs = list(pool.map(lambda _: infer(runner, args), range(2 * threads)))
    rec["threads"] = threads
    rec["max_abs_threads_vs_one"] = max(float((o - ref).abs().max()) for o in outs)
    rec["psnr_bf16_vs_fp32"] = psnr(infer(runner, args, "bf16"), ref)
    for k in (1, threads):
        if runner.device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        with cf.ThreadPoolExecutor(k) as pool:
            list(pool.map(lambda _: infer(runner, args), range(reps)))
        rec[f"blocks_per_s_{k}_threads"] = reps * n / (time.perf_counter() - t)
    print(json.dumps(rec), flush=True)
    return rec


def capped(dev: str, side: int) -> dict:
    """DualSR ×4 on 32 blocks of 224 bands under a memory cap that one block fits and 32 do not."""
    from geohsr.device import infer
    from geohsr.methods import load_runner

    runner = load_runner("dualsr", 4, None, dev)
    _, args = case_args("dualsr", 4, 224, 32, side)
    ref = infer(runner, args)
    calls = []
    batch = runner.batch
    runner.batch = lambda *a: calls.append(a[0].shape[0]) or batch(*a)
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    infer(runner, [a[:1] for a in args])
    one = torch.cuda.max_memory_allocated()
    total = torch.cuda.get_device_properties(0).total_memory
    cap = 4 * one
    calls.clear()
    torch.cuda.empty_cache()
    before = torch.cuda.memory_allocated()
    torch.cuda.set_per_process_memory_fraction(cap / total)
    try:
        out = infer(runner, args)
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
        runner.batch = batch
    rec = {"check": "out-of-memory split", "blocks": 32, "side": side, "peak_bytes_one_block": one,
           "cap_bytes": cap, "allocated_at_cap": before, "batch_calls": calls, "split": len(calls) > 1,
           "max_abs_vs_uncapped": float((out - ref).abs().max())}
    print(json.dumps(rec), flush=True)
    return rec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--side", type=int, default=64)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=8)
    ap.add_argument("--only", default="",
                    help="comma-separated methods (default: all; 'capped': the memory-cap check alone)")
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    env = {"torch": torch.__version__, "device": a.device,
           "gpu": torch.cuda.get_device_name(0) if a.device.startswith("cuda") else None,
           "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
           "matmul_precision": torch.get_float32_matmul_precision()}
    recs = []

    def save():  # after each case, so a check cut off by a time limit still leaves what it found
        (a.out / "infer_check.json").write_text(json.dumps({"env": env, "results": recs}, indent=1) + "\n")

    for method, scale, bands in CASES:
        if a.only and method not in a.only.split(","):
            continue
        try:
            recs.append(check(method, scale, bands, a.device, a.side, a.batch, a.threads, a.reps))
        except Exception as e:  # one method's failure is a finding, not the end of the check
            recs.append({"method": method, "scale": scale, "error": repr(e)})
            print("FAILED", method, scale, repr(e), flush=True)
        save()
    if a.device.startswith("cuda"):
        try:
            recs.append(capped(a.device, a.side))
        except Exception as e:
            recs.append({"check": "out-of-memory split", "error": repr(e)})
            print("FAILED capped", repr(e), flush=True)
    save()


if __name__ == "__main__":
    main()
