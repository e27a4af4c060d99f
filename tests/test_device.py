"""Device batches: every runner gives the same planes for a batch as block by block, batched file
runs equal unbatched ones and resume alike, an out-of-memory batch is split, and the batch size
is chosen and validated as documented."""

import json
import os
import signal
import subprocess
import weakref

import numpy as np
import pytest
import torch

import geohsr
from geohsr.engine import prepare
from geohsr.engine import sr_block as _sr_block
from geohsr.engine import sr_blocks as _sr_blocks
from geohsr.device import infer
from geohsr.errors import InputError
from geohsr.methods import Runner, load_runner
from geohsr.stream import choose_batch, partial_paths, run_file

from conftest import geohsr_cmd


def _runner_cases(tmp_path):
    from test_dualsr import _tiny_weights as coarsr_weights
    from test_guided import _tiny_weights as guided_weights
    from test_swir import _weights as swir_weights

    w4, w2 = coarsr_weights(tmp_path, 4, 0), coarsr_weights(tmp_path, 2, 1)
    return [("bicubic", None, 5, False), ("coarsr", str(w4), 5, False),
            ("dualsr", f"{w4},{w2}", 5, False), ("mulsr", guided_weights(tmp_path, "mulsr"), 4, True),
            ("ifmsr", guided_weights(tmp_path, "ifmsr"), 4, True),
            ("a-snlsr", swir_weights(tmp_path)[0], 30, False)]


def test_every_runner_batches_like_block_by_block(tmp_path):
    torch.manual_seed(0)
    for method, weights, bands, guided in _runner_cases(tmp_path):
        runner = load_runner(method, 4, weights, "cpu")
        assert isinstance(runner, Runner)
        x = torch.rand(3, bands, 20, 24) * 0.8 + 0.1
        g = torch.rand(3, 3, 80, 96) if guided else None
        batch = runner.batch(x, g) if guided else runner.batch(x)
        for k in range(3):
            one = runner(x[k], g[k]) if guided else runner(x[k])
            assert one.shape == batch.shape[1:], method
            err = (batch[k] - one).abs().max().item()
            assert err <= 1e-5 * max(1.0, one.abs().max().item()), (method, err)
        # and the blocks differ from each other (a batch does not mix them up)
        assert (batch[0] - batch[1]).abs().max() > 1e-3, method


def test_sr_blocks_batches_equal_shapes_and_matches_single_blocks(tmp_path, monkeypatch):
    from test_dualsr import _tiny_weights as coarsr_weights

    import geohsr.engine as api

    w4, w2 = coarsr_weights(tmp_path, 4, 0), coarsr_weights(tmp_path, 2, 1)
    kw = dict(method="dualsr", scale=4, weights=f"{w4},{w2}", device="cpu", nodata=-1.0,
              mask_dilation=0)
    rng = np.random.default_rng(1)
    blocks = [rng.uniform(1, 5, (5, 24, 24)).astype(np.float32) for _ in range(3)]
    blocks.append(rng.uniform(1, 5, (5, 20, 24)).astype(np.float32))  # an edge block
    blocks[1][:, 3, 4] = -1.0  # nodata
    items = [(b, (2, 2, 1, 3), (0, 0)) for b in blocks]
    sizes = []
    real = api.infer
    monkeypatch.setattr(api, "infer", lambda r, a, p: sizes.append(a[0].shape[0]) or real(r, a, p))
    got = _sr_blocks(items, 5.0, **kw)
    assert sorted(sizes) == [1, 3]  # one batch of the three equal blocks, one of the edge block
    for (b, sides, origin), y in zip(items, got):
        ref = _sr_block(b, 5.0, sides=sides, origin=origin, **kw)
        assert y.shape == ref.shape == (11, (b.shape[1] - 4) * 4, (b.shape[2] - 4) * 4)
        np.testing.assert_array_equal(np.isnan(y), np.isnan(ref))
        np.testing.assert_allclose(y, ref, atol=1e-4, rtol=1e-5, equal_nan=True)  # float rounding
    assert np.isnan(got[1][:5, (3 - 2) * 4, (4 - 1) * 4]).all()


class _OOMRunner:
    """A runner whose device holds at most ``fits`` blocks at once."""

    def __init__(self, fits):
        self.fits, self.device, self.calls = fits, torch.device("cpu"), []
        self.failed: list[weakref.ref] = []  # what each failed attempt held on the "device"
        self.held_at_retry = []

    def batch(self, x):
        self.calls.append(x.shape[0])
        self.held_at_retry.append(sum(r() is not None for r in self.failed))
        if x.shape[0] > self.fits:
            activations = x * 3  # a failed attempt's tensors, referenced by its traceback's frame
            self.failed.append(weakref.ref(activations))
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return x * 2


def test_out_of_memory_splits_the_batch():
    x = torch.arange(7 * 2 * 3 * 3, dtype=torch.float32).reshape(7, 2, 3, 3)
    r = _OOMRunner(fits=2)
    y = infer(r, [x])
    assert torch.equal(y, x * 2)
    assert r.calls[0] == 7 and max(c for c in r.calls if c <= 2) == 2
    # the halves run after the failed attempt's memory is released, not while its error is handled
    assert r.held_at_retry == [0] * len(r.calls)
    with pytest.raises(InputError, match=r"ran out of memory on one block of 3×3 LR pixels; pass a smaller --block-size"):
        infer(_OOMRunner(fits=0), [x])


def test_choose_batch(make_raster):
    path, _ = make_raster(bands=8, h=600, w=600)
    plan = prepare(geohsr.open_cube(path), "bicubic", 4, device="cpu")
    n, side = choose_batch(plan, 2048, 1, "auto")
    assert n == 1 and side % 16 == 0
    n3, side3 = choose_batch(plan, 2048, 1, "3")
    assert n3 == 3 and side3 <= side
    for bad in ("0", "-2", "many", 0):
        with pytest.raises(InputError, match="--batch must be a positive number of blocks or 'auto'"):
            choose_batch(plan, 2048, 1, bad)
    # on a GPU: up to 4 blocks per batch while blocks keep >= 128 LR px a side within the limit
    plan.device = "cuda:0"
    assert choose_batch(plan, 2048, 2, "auto")[0] == 4
    assert choose_batch(plan, 700, 8, "auto") == (1, choose_batch(plan, 700, 8, 1)[1])  # blocks too small


def test_cpu_workers_share_a_scene_that_fits_in_one_block(make_raster, monkeypatch):
    """On the CPU two workers with half the cores each (two blocks at a time run a network ~1.2×
    faster than one with all cores): a scene that fits the memory limit is split between them,
    unless the parts would be narrower than two halos; on a GPU it stays one block."""
    from geohsr import stream

    path, _ = make_raster(bands=4, h=64, w=128)
    plan = prepare(geohsr.open_cube(path), "bicubic", 4, device="cpu")
    monkeypatch.setattr(stream.os, "cpu_count", lambda: 2)
    assert stream._default_workers(plan, None) == 2
    assert stream.block_side(plan, 2048, 1) == 128  # one worker: the whole scene
    assert stream.block_side(plan, 2048, 2) == 64  # two: the longer side halved
    assert len(stream.plan_blocks(64, 128, 64)) == 2
    plan.halo = 40  # parts narrower than two halos: one block
    assert stream.block_side(plan, 2048, 2) == 128
    plan.halo, plan.device = 0, "cuda:0"
    assert stream.block_side(plan, 2048, 2) == 128
    monkeypatch.setattr(stream.os, "cpu_count", lambda: 1)
    plan.device = "cpu"
    assert stream._default_workers(plan, None) == 1


def test_batched_file_run_equals_unbatched(tmp_path):
    from test_dualsr import _cube, _tiny_weights

    w4, w2 = _tiny_weights(tmp_path, 4, 0), _tiny_weights(tmp_path, 2, 1)
    cube = _cube(h=52, w=44)
    src = geohsr.save_cube(cube, tmp_path / "in.tif")
    opts = dict(method="dualsr", scale=4, weights=f"{w4},{w2}", block=16, progress="none")
    one = geohsr.open_cube(run_file(src, tmp_path / "b1.tif", batch=1, **opts)).values
    three = geohsr.open_cube(run_file(src, tmp_path / "b3.tif", batch=3, workers=2, **opts)).values
    assert np.abs(three - one).max() <= 1e-5 * np.ptp(cube.values)


def test_batched_run_resumes_to_an_identical_file(tmp_path):
    from test_stream import _big_input, _profile_and_tags

    src = _big_input(tmp_path)
    base = ["run", src, "-s", "4", "-m", "bicubic", "--block-size", "16", "--batch", "3", "--workers", "1"]
    ref = tmp_path / "ref.tif"
    subprocess.run(geohsr_cmd(*base, "-q", "-o", ref), check=True, timeout=300)
    out = tmp_path / "out.tif"
    env = dict(os.environ, GEOHSR_FLUSH_SECONDS="0.05")
    proc = subprocess.Popen(geohsr_cmd(*base, "--progress", "json", "-o", out), env=env,
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    for line in proc.stderr:
        if line.startswith("{") and json.loads(line)["progress"] >= 0.4:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    assert not out.exists() and partial_paths(out)
    done = json.loads(next(p for p in partial_paths(out) if p.name.endswith("journal.json")).read_text())["done"]
    assert 0 < len(done) < 90  # 9 × 10 blocks of 16 LR px, in groups of 3
    r = subprocess.run(geohsr_cmd(*base, "-q", "-o", out, "--resume"), env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    np.testing.assert_array_equal(geohsr.open_cube(out).values, geohsr.open_cube(ref).values)
    assert _profile_and_tags(out) == _profile_and_tags(ref)
    assert partial_paths(out) == []


def test_cli_rejects_a_bad_batch(make_raster, tmp_path):
    path, _ = make_raster(bands=3, h=20, w=20)
    r = subprocess.run(geohsr_cmd("run", path, "-s", "2", "--batch", "0", "-o", tmp_path / "o.tif"),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and not (tmp_path / "o.tif").exists()
    assert "--batch" in r.stderr and "positive number of blocks" in r.stderr
    assert "Traceback" not in r.stderr


def test_each_dask_worker_takes_its_own_gpu(monkeypatch):
    """Several visible GPUs: worker k of a LocalCluster runs on GPU k mod count; a process that
    is not a worker, an explicit index, or the CPU are left alone."""
    import types

    import distributed

    from geohsr.methods import worker_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    assert worker_device("auto") == torch.device("cuda")  # not in a worker
    monkeypatch.setattr(distributed, "get_worker", lambda: types.SimpleNamespace(name=5))
    assert worker_device("auto") == torch.device("cuda", 1)
    assert worker_device("cuda") == torch.device("cuda", 1)
    assert worker_device("cuda:3") == torch.device("cuda", 3)
    assert worker_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(distributed, "get_worker", lambda: types.SimpleNamespace(name="tcp://w-2"))
    assert worker_device("auto").index in range(4)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert worker_device("auto") == torch.device("cuda")


def test_blocks_resolve_the_requested_device_in_their_process(make_raster):
    """The plan sends what was asked (``auto``) to the blocks, so a GPU worker behind a CPU-only
    client still uses its GPU; locally the plan's own decision is the same device."""
    path, _ = make_raster(bands=3, h=20, w=20)
    plan = prepare(geohsr.open_cube(path), "bicubic", 2)
    assert plan.block_kwargs()["device"] == "auto" and plan.device == "cpu"
    assert load_runner("bicubic", 2, None, "auto") is load_runner("bicubic", 2, None, "cpu")
