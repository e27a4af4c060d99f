"""Running a batch of blocks through a method's model on its device.

On the CPU this is a plain call. On CUDA every thread that runs blocks gets its own stream: the
batch is staged in page-locked (pinned) host memory, copied to the device with
``non_blocking=True`` on that stream, the model's kernels are queued behind the copy, the result
is copied back into pinned memory the same way, and only then does the thread wait for its
stream. ``geohsr run`` keeps ``workers`` (default 2 on a GPU) such threads busy, so one thread's
transfers and CPU work (reading, nodata fill, casting, writing) overlap the other's kernels.

At most ``GPU_SLOTS`` (2) batches are on one GPU at a time, whatever the number of threads
(e.g. dask's threaded scheduler running one task per CPU core): the others prepare their blocks
on the CPU meanwhile, and the GPU's memory holds two batches, not one per core.

A batch that does not fit on the device (``torch.OutOfMemoryError``) is split in two and retried
down to single blocks, outside the exception handler (while the error is being handled, its
traceback keeps the failed attempt's device tensors alive, and every retry would run out too); a
single block that does not fit is a one-line error asking for smaller blocks.
"""

from __future__ import annotations

import contextlib
import threading

import torch

from .errors import InputError

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
GPU_SLOTS = 2
_LOCAL = threading.local()
_SLOTS: dict = {}
_SLOTS_LOCK = threading.Lock()


def gpu_slots(device: torch.device) -> threading.BoundedSemaphore:
    """The semaphore admitting ``GPU_SLOTS`` batches at a time onto ``device``."""
    with _SLOTS_LOCK:
        return _SLOTS.setdefault(str(device), threading.BoundedSemaphore(GPU_SLOTS))


def autocast(device: str | torch.device, precision: str):
    """Mixed-precision inference (``torch.autocast``) for ``bf16``/``fp16``; nothing for fp32."""
    if PRECISIONS.get(precision) is None:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=PRECISIONS[precision])


def thread_stream(device: torch.device):
    """This thread's own CUDA stream on ``device`` (created on first use)."""
    streams = getattr(_LOCAL, "streams", None)
    if streams is None:
        streams = _LOCAL.streams = {}
    key = torch.device(device).index
    if key is None:
        key = torch.cuda.current_device()
    if key not in streams:
        streams[key] = torch.cuda.Stream(device=key)
    return streams[key]


def _run(runner, args: list[torch.Tensor], precision: str) -> torch.Tensor:
    dev = runner.device
    if dev.type != "cuda":
        with autocast(dev, precision):
            y = runner.batch(*[a.to(dev) for a in args])
        return y.to("cpu", torch.float32)
    pinned = [a.pin_memory() for a in args]  # host-side staging, before taking a slot
    stream = thread_stream(dev)
    with gpu_slots(dev):
        with torch.cuda.stream(stream):
            dargs = [a.to(dev, non_blocking=True) for a in pinned]
            with autocast(dev, precision):
                y = runner.batch(*dargs)
            y = y.float()
            out = torch.empty(y.shape, dtype=torch.float32, pin_memory=True)
            out.copy_(y, non_blocking=True)
            del dargs, y
        stream.synchronize()
    return out


def infer(runner, args: list[torch.Tensor], precision: str = "fp32") -> torch.Tensor:
    """The runner's float32 CPU output for a batch (``args``: CPU tensors with a leading block
    axis: the LR blocks, and for guided methods their guide windows)."""
    try:
        return _run(runner, args, precision)
    except torch.OutOfMemoryError:
        pass  # retried below, outside the handler: its traceback holds the failed batch's tensors
    n = args[0].shape[0]
    if runner.device.type == "cuda":
        torch.cuda.empty_cache()
    if n == 1:
        h, w = args[0].shape[-2:]
        raise InputError(f"{runner.device} ran out of memory on one block of {h}×{w} LR pixels; "
                         "pass a smaller --block-size (or --memory-limit), or --device cpu")
    half = n // 2
    return torch.cat([infer(runner, [a[:half] for a in args], precision),
                      infer(runner, [a[half:] for a in args], precision)])


__all__ = ["autocast", "infer", "gpu_slots", "thread_stream", "PRECISIONS", "GPU_SLOTS"]
