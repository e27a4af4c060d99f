import json

import numpy as np
import pytest
import torch

from geohsr import weights as W
from geohsr.errors import WeightsError
from geohsr.train.data import DualSRPatches, Scene, _augment5
from geohsr.methods.dualsr.train import CoarSRTask
from geohsr.train.trainer import Trainer, TrainSettings

from conftest import train_then_init


def _scenes():
    from conftest import smooth_field

    tr = [Scene(f"t{i}", (smooth_field(6, 48, 48, seed=i) * 0.8).astype(np.float32)) for i in range(2)]
    va = [Scene("v", (smooth_field(6, 32, 32, seed=9) * 0.8).astype(np.float32))]
    return tr, va


def _task(seed=1):
    tr, va = _scenes()
    return CoarSRTask(tr, va, 2, "tiny", lr_patch=8, val_crop=32, seed=seed)


def test_patches_are_deterministic_and_shaped():
    tr, _ = _scenes()
    p = DualSRPatches(tr, 2, 8)
    a = p.sample(np.random.default_rng([1, 5]), 3)
    b = p.sample(np.random.default_rng([1, 5]), 3)
    assert a[0].shape == (3, 6, 8, 8) and a[1].shape == (3, 6, 16, 16)
    np.testing.assert_array_equal(a[0], b[0])
    assert len({_augment5(np.arange(16.0).reshape(1, 4, 4), k).tobytes() for k in range(5)}) == 5


def test_tiny_training_improves_validation(tmp_path):
    task = _task()
    before = task.validate()["psnr"]
    s = TrainSettings(lr=2e-3, batch=4, batches=40, val_every=40, ckpt_every=100, seed=1)
    res = Trainer(task, tmp_path / "run", s).run(progress=False)
    after = task.validate()["psnr"]
    assert res["batches"] == 40 and after > before + 0.5
    hist = [json.loads(ln) for ln in (tmp_path / "run" / "history.jsonl").read_text().splitlines()]
    assert np.mean([h["loss"] for h in hist[-10:]]) < np.mean([h["loss"] for h in hist[:10]])


def test_resume_continues_exactly(tmp_path):
    s = TrainSettings(lr=1e-3, batch=2, batches=6, val_every=3, ckpt_every=3, seed=7)
    straight = _task()
    Trainer(straight, tmp_path / "a", s).run(progress=False)
    first = _task()
    Trainer(first, tmp_path / "b", TrainSettings(**{**s.__dict__, "batches": 3})).run(progress=False)
    resumed = _task(seed=99)  # different init: everything must come from the checkpoint
    tr = Trainer(resumed, tmp_path / "b", s)
    tr.run(resume=True, progress=False)
    assert tr.step == 6
    for (k, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=k)


def test_budget_stops_with_a_checkpoint(tmp_path):
    s = TrainSettings(lr=1e-3, batch=2, batches=1000, val_every=500, ckpt_every=500, max_minutes=0.0)
    res = Trainer(_task(), tmp_path / "r", s).run(progress=False)
    assert res["stopped_by_budget"] and (tmp_path / "r" / "checkpoint" / "state.json").exists()
    assert (tmp_path / "r" / "best.safetensors").exists()


def test_progress_with_minutes_and_batches_follows_whichever_ends_first(tmp_path, capsys):
    """`geohsr train --batches 4 --max-minutes 60`: the batches end the run long before the hour,
    so the progress (QGIS's bar, the terminal bar's ETA) follows them, not the minutes; with a
    time budget alone it follows the clock (scene adaptation's budget)."""
    seen = []
    tr = Trainer(_task(), tmp_path / "r", TrainSettings(lr=1e-3, batch=2, batches=4, val_every=100,
                                                        ckpt_every=100, max_minutes=60))
    tr.on_progress = seen.append
    tr.run(progress=True)
    assert seen[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0]) and seen[-1] == 1.0
    bar = capsys.readouterr().err.replace("\r", "\n").splitlines()
    assert "batch=4" in bar[-1] and "3600" not in bar[-1]  # the bar's total is the batches' time
    seen.clear()  # 1000 batches in 1.2 s: the minutes end the run, the progress follows the clock
    tr = Trainer(_task(), tmp_path / "t", TrainSettings(lr=1e-3, batch=2, batches=1000, val_every=1000,
                                                        ckpt_every=1000, max_minutes=0.02))
    tr.on_progress = seen.append
    res = tr.run(progress=False)
    assert res["stopped_by_budget"] and res["batches"] < 1000 and seen[-1] == 1.0
    assert seen[-2] > 0.3 and all(0 <= a <= b <= 1 for a, b in zip(seen, seen[1:]))


def test_validation_stops_a_run_that_stopped_gaining(tmp_path):
    """``patience``: after that many validations in a row without a new best the run stops (scene
    adaptation: a small scene's held-out part peaks within a few dozen batches, then declines);
    the count survives --resume exactly; 0 leaves the budget alone to end the run."""
    def scripted(scores):
        task = _task()
        it = iter(scores)
        task.validate = lambda: {"psnr": next(it)}
        return task

    scores = [10.0, 11.0, 10.5, 10.4, 10.3, 12.0]  # best at batch 2, then three without a gain
    s = TrainSettings(lr=1e-3, batch=2, batches=50, val_every=1, ckpt_every=1, patience=3)
    res = Trainer(scripted(scores), tmp_path / "r", s).run(progress=False)
    assert res["batches"] == 5 and res["best"] == 11.0 and res["best_batch"] == 2
    assert "no gain on validation in the last 3 validations (best at batch 2)" == res["stopped_early"]
    assert not res["stopped_by_budget"]
    # stopped by a batch budget at batch 4, resumed: the count goes on from the checkpoint
    Trainer(scripted(scores), tmp_path / "b", TrainSettings(**{**s.__dict__, "batches": 4})).run(progress=False)
    res = Trainer(scripted(scores[4:]), tmp_path / "b", s).run(resume=True, progress=False)
    assert res["batches"] == 5 and res["best_batch"] == 2 and res["stopped_early"]
    # patience 0: the budget alone ends the run
    res = Trainer(scripted(scores), tmp_path / "c", TrainSettings(**{**s.__dict__, "batches": 6,
                                                                     "patience": 0})).run(progress=False)
    assert res["batches"] == 6 and res["best_batch"] == 6 and not res["stopped_early"]


def test_weights_roundtrip_and_hash_refusal(tmp_path):
    m = torch.nn.Conv2d(2, 3, 3)
    p = tmp_path / "w.safetensors"
    sha = W.save(m.state_dict(), p, {"method": "x", "scale": 4})
    tensors, meta = W.load(p, sha)
    assert meta == {"method": "x", "scale": 4}
    torch.testing.assert_close(tensors["weight"], m.weight.detach())
    data = bytearray(p.read_bytes())
    data[-1] ^= 0xFF  # flip one bit of the last weight
    p.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="does not match"):
        W.load(p, sha)
    # a .sha256 beside the file is checked too
    (tmp_path / "w.safetensors.sha256").write_text(sha + "  w.safetensors\n")
    with pytest.raises(WeightsError, match="corrupt or was altered"):
        W.load(p)


def test_no_pickle_loading_anywhere():
    import pathlib

    src = pathlib.Path(__file__).resolve().parents[1] / "geohsr"
    for f in src.rglob("*.py"):
        text = f.read_text()
        assert "torch.load(" not in text and "pickle.load" not in text, f


def test_train_ship_and_use_shipped_weights(tmp_path, monkeypatch, make_raster):
    import geohsr
    from click.testing import CliRunner
    from geohsr.cli import main

    src, _ = make_raster(bands=5, h=64, w=64)
    r = CliRunner().invoke(main, ["train", "coarsr", "--data", str(src), "--scale", "2", "--out",
                                  str(tmp_path / "run"), "--config", "tiny", "--batches", "3",
                                  "--val-every", "3", "--batch", "2", "-q", "--device", "cpu"])
    assert r.exit_code == 0, r.output
    card = json.loads((tmp_path / "run" / "card.json").read_text())
    assert card["data"]["train_scenes"] and card["data"]["val_scenes"] and card["command"].startswith("geohsr train")
    models = tmp_path / "models"
    monkeypatch.setenv("GEOHSR_MODELS", str(models))
    entry = W.ship(tmp_path / "run", "coarsr_x2_tiny", {"protocol": "test", "table": {}})
    assert (models / "coarsr_x2_tiny.md").read_text().startswith("# coarsr_x2_tiny.safetensors")
    assert W.find("coarsr", 2)["sha256"] == entry["sha256"]
    from geohsr.methods import load_runner

    load_runner.cache_clear()
    cube = geohsr.open_cube(src)
    hr = geohsr.superresolve(cube, "coarsr", 2)  # picks the shipped weights
    assert hr.shape == (5, 128, 128)
    assert any("coarsr_x2_tiny" in w for w in geohsr.get_method("dualsr").shipped_weights())
    with pytest.raises(WeightsError, match="no shipped CoarSR weights for ×4"):
        geohsr.superresolve(cube, "coarsr", 4)
    # tampering with a shipped file is caught by the catalogue's sha256
    f = models / "coarsr_x2_tiny.safetensors"
    data = bytearray(f.read_bytes())
    data[-1] ^= 1
    f.write_bytes(bytes(data))
    load_runner.cache_clear()
    with pytest.raises(WeightsError, match="does not match"):
        geohsr.superresolve(cube, "coarsr", 2)
    load_runner.cache_clear()


def test_sigint_stops_at_a_batch_boundary_with_a_checkpoint(tmp_path):
    import os
    import signal

    task = _task()
    s = TrainSettings(lr=1e-3, batch=2, batches=10_000, val_every=10_000, ckpt_every=10_000)
    tr = Trainer(task, tmp_path / "r", s)
    orig = task.train_batch

    def batch_then_interrupt(batch, opt):
        loss = orig(batch, opt)
        if tr.step == 2:
            os.kill(os.getpid(), signal.SIGINT)
        return loss

    task.train_batch = batch_then_interrupt
    res = tr.run(progress=False)
    assert res["interrupted"] and res["batches"] == 3
    state = json.loads((tmp_path / "r" / "checkpoint" / "state.json").read_text())
    assert state["step"] == 3


def _with_threads(n, fn):
    threads = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        return fn()
    finally:
        torch.set_num_threads(threads)


def _one_thread(fn):
    return _with_threads(1, fn)


def _together_on_two_threads(trainers):
    """run_together with torch on 2 threads; the caller's count is back afterwards."""
    from geohsr.train.trainer import run_together

    def run():
        res = run_together(trainers, progress=False)
        assert torch.get_num_threads() == 2
        return res

    return _with_threads(2, run)


def test_trainers_side_by_side_train_as_they_would_alone(tmp_path):
    """run_together: each trainer in its own thread with its share of the cores trains exactly
    as it does alone on that many threads, each with its own progress line; torch's thread count
    comes back."""
    s = TrainSettings(lr=1e-3, batch=2, batches=4, val_every=2, ckpt_every=2, seed=3)
    alone = [_task(seed=k) for k in (1, 2)]
    _one_thread(lambda: [Trainer(t, tmp_path / f"alone{i}", s).run(progress=False) for i, t in enumerate(alone)])
    tasks = [_task(seed=k) for k in (1, 2)]
    trainers = [Trainer(t, tmp_path / f"together{i}", s) for i, t in enumerate(tasks)]
    res = _together_on_two_threads(trainers)
    assert [r["batches"] for r in res] == [4, 4] and [t.position for t in trainers] == [0, 1]
    for a, b in zip(alone, tasks):
        for (k, x), y in zip(a.model.state_dict().items(), b.model.state_dict().values()):
            assert torch.equal(x, y), k


def test_a_trainer_that_ends_gives_its_threads_to_the_one_still_running(tmp_path):
    """run_together on 2 threads: one thread each while both run; once the short run ends, the
    other trains on both from its next batch; afterwards the caller's count is back."""
    import threading
    import time

    tasks = [_task(seed=k) for k in (1, 2)]
    trainers = [Trainer(tasks[0], tmp_path / "long", TrainSettings(lr=1e-3, batch=2, batches=4, val_every=10, seed=3)),
                Trainer(tasks[1], tmp_path / "short", TrainSettings(lr=1e-3, batch=2, batches=1, val_every=10, seed=3))]
    long_second, seen = threading.Event(), []
    orig_long, orig_short = tasks[0].train_batch, tasks[1].train_batch

    def long_batch(batch, opt):
        seen.append(torch.get_num_threads())
        if len(seen) == 2:  # the short run goes on only now, then the long one waits for it to end
            long_second.set()
            t0 = time.time()
            while trainers[0].threads != 2 and time.time() - t0 < 60:
                time.sleep(0.01)
        return orig_long(batch, opt)

    def short_batch(batch, opt):
        assert long_second.wait(60)  # both are running, the long one into its second batch
        return orig_short(batch, opt)

    tasks[0].train_batch, tasks[1].train_batch = long_batch, short_batch
    res = _together_on_two_threads(trainers)
    assert [r["batches"] for r in res] == [4, 1]
    assert seen == [1, 1, 2, 2]
    assert [tr.threads for tr in trainers] == [None, None]


def test_sigint_stops_trainers_side_by_side_at_batch_boundaries(tmp_path):
    import os
    import signal

    from geohsr.train.trainer import run_together

    s = TrainSettings(lr=1e-3, batch=2, batches=10_000, val_every=10_000, ckpt_every=10_000, max_minutes=2)
    tasks = [_task(seed=k) for k in (1, 2)]
    trainers = [Trainer(t, tmp_path / f"r{i}", s) for i, t in enumerate(tasks)]
    orig = tasks[0].train_batch

    def batch_then_interrupt(batch, opt):
        loss = orig(batch, opt)
        if trainers[0].step == 2:
            os.kill(os.getpid(), signal.SIGINT)
        return loss

    tasks[0].train_batch = batch_then_interrupt
    res = _one_thread(lambda: run_together(trainers, progress=False))
    assert all(r["interrupted"] and not r["stopped_by_budget"] for r in res)
    assert res[0]["batches"] == 3
    for i, r in enumerate(res):  # each checkpointed where it stopped, so --resume is exact
        assert json.loads((tmp_path / f"r{i}" / "checkpoint" / "state.json").read_text())["step"] == r["batches"]


def test_an_error_in_one_trainer_side_by_side_stops_the_other(tmp_path):
    from geohsr.train.trainer import run_together

    s = TrainSettings(lr=1e-3, batch=2, batches=10_000, val_every=10_000, ckpt_every=10_000, max_minutes=2)
    tasks = [_task(seed=k) for k in (1, 2)]
    trainers = [Trainer(t, tmp_path / f"r{i}", s) for i, t in enumerate(tasks)]

    def broken(batch, opt):
        raise RuntimeError("out of memory (test)")

    tasks[1].train_batch = broken
    with pytest.raises(RuntimeError, match="out of memory"):
        _one_thread(lambda: run_together(trainers, progress=False))
    assert trainers[0].stop["signal"] is not None and trainers[0].step < 10_000


def test_amp_bf16_training_step_runs():
    tr, va = _scenes()
    task = CoarSRTask(tr, va, 2, "tiny", lr_patch=8, val_crop=32, amp=True)
    opt = torch.optim.Adam(task.model.parameters(), 1e-3)
    loss = task.train_batch(task.sample(np.random.default_rng(0), 2), opt)
    assert np.isfinite(loss)


def test_guided_patches_recipe():
    from geohsr.train.data import GuidedPatches, isotropic_kernel_mulsr, random_degradation

    tr, _ = _scenes()
    resp = np.full((3, 6), 1 / 6)
    p = GuidedPatches(tr, 4, resp, lr_patch=6)
    lr, rgb, hr = p.sample(np.random.default_rng([3, 1]), 4)
    assert lr.shape == (4, 6, 6, 6) and rgb.shape == (4, 3, 24, 24) and hr.shape == (4, 6, 24, 24)
    np.testing.assert_allclose(rgb[:, 0], hr.mean(1), atol=1e-6)
    lr2, _, _ = p.sample(np.random.default_rng([3, 1]), 4)
    np.testing.assert_array_equal(lr, lr2)  # seeded
    assert 0 <= lr.min() and lr.max() <= 1
    bug = isotropic_kernel_mulsr(7, 1.0, centred=False)
    assert np.unravel_index(bug.argmax(), bug.shape) == (0, 0)
    assert np.unravel_index(isotropic_kernel_mulsr(7, 1.0).argmax(), (7, 7)) == (3, 3)
    with pytest.raises(Exception, match="columns"):
        GuidedPatches(tr, 4, np.ones((3, 5)))
    assert random_degradation(hr[0], 4, np.random.default_rng(0)).shape == (6, 6, 6)


def test_asnlsr_tiles_and_log_normalisation():
    from geohsr.train.data import asnlsr_tiles
    from geohsr.transforms import to_log as log_normalise

    wl = np.linspace(900, 2500, 160)
    cube = np.random.default_rng(0).random((160, 130, 260)).astype(np.float32) + 0.1
    psf = np.zeros((32, 32))
    psf[15:17, 15:17] = 0.25
    tiles = asnlsr_tiles(cube, wl, (1000, 1700), 45, [(1310, 1550)], psf)
    assert len(tiles) == 2 and tiles[0]["hr"].shape == (30, 128, 128)
    assert tiles[0]["lr"].shape == (30, 32, 32) and tiles[0]["lr_div2"].shape == (30, 64, 64)
    n = log_normalise(np.array([1e-6, 1e-4, 2.0]))
    np.testing.assert_allclose(n, [0, 0, 1], atol=1e-6)


def test_no_shell_anywhere():
    """Paths reach subprocesses as argument lists: no shell=True, os.system or os.popen in the
    package or the QGIS plugin."""
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[1]
    files = list((root / "geohsr").rglob("*.py")) + list((root / "qgis_plugin" / "geohsr_qgis").rglob("*.py"))
    assert any(f.name == "runner.py" for f in files)
    for f in files:
        text = f.read_text()
        for bad in ("shell=True", "os.system(", "os.popen("):
            assert bad not in text, f"{f}: {bad}"


def test_no_network_access_at_run_time(tmp_path, monkeypatch, make_raster):
    """Runs with shipped weights (DualSR, A-SNLSR) work with every socket refused: nothing is
    downloaded or phoned home at run time."""
    import socket

    from click.testing import CliRunner
    from geohsr.cli import main

    def refuse(*a, **k):
        raise AssertionError(f"network access at run time: {a!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    vnir, _ = make_raster("vnir.tif", bands=6, h=16, w=16)
    swir, _ = make_raster("swir.tif", bands=40, h=16, w=16, wavelengths=list(np.linspace(1650.0, 2500.0, 40)))
    for src, method in ((vnir, "dualsr"), (swir, "a-snlsr")):
        out = tmp_path / f"{method}.tif"
        r = CliRunner().invoke(main, ["run", str(src), "-s", "4", "-m", method, "-o", str(out), "-q"])
        assert r.exit_code == 0, r.output
        assert out.is_file()


def test_init_from_another_scale_loads_all_but_the_upsampler(tmp_path, make_raster):
    """``geohsr train coarsr --scale 4 --init <x2 weights>``: every tensor but the sub-pixel
    upsampler comes from the x2 file (listed in the card); weights of another method refused."""
    from click.testing import CliRunner
    from geohsr.cli import main
    from safetensors.torch import load_file

    src, _ = make_raster(bands=5, h=64, w=64)
    start, card, common = train_then_init(tmp_path, "coarsr", src, (2, 4))
    fresh = card["initialised_from"]["not_loaded"]
    assert fresh and all("up" in k for k in fresh), fresh
    assert 0.5 < card["initialised_from"]["loaded_share_of_parameters"] < 1
    a, b = load_file(str(start)), load_file(str(tmp_path / "x4" / "best.safetensors"))
    same = [k for k in b if k in a and a[k].shape == b[k].shape]
    assert same and all(torch.equal(a[k], b[k]) for k in same)
    # a file of another method does not fit: one line, non-zero exit
    other = tmp_path / "other.safetensors"
    from safetensors.torch import save_file
    save_file({"foo.weight": torch.zeros(3, 3)}, str(other), metadata={"method": "mulsr", "scale": "4"})
    r = CliRunner().invoke(main, ["train", "coarsr", "--scale", "4", "--out", str(tmp_path / "bad"),
                                  "--batches", "1", "--init", str(other), *common])
    assert r.exit_code != 0 and "do not fit" in r.output and "Traceback" not in r.output


def test_fine_tuning_keeps_the_starting_weights_unless_a_validation_beats_them(tmp_path, make_raster):
    """``geohsr train coarsr --init <same-scale weights>``: the starting weights are validated
    first and count as the best so far, so a run that only makes them worse (a learning rate far
    too large) leaves them in best.safetensors, and its card and log say so. (Session 14 shipped a
    fine-tune whose best validation was below that of the weights it started from.)"""
    import json

    from click.testing import CliRunner
    from safetensors.torch import load_file

    from geohsr.cli import main

    src, _ = make_raster(bands=5, h=64, w=64)
    common = ["--data", str(src), "--config", "tiny", "--batch", "2", "-q", "--device", "cpu", "--scale", "2",
              "--val-every", "1"]
    r = CliRunner().invoke(main, ["train", "coarsr", "--out", str(tmp_path / "first"), "--batches", "1", *common])
    assert r.exit_code == 0, r.output
    start, out = tmp_path / "first" / "best.safetensors", tmp_path / "wrecked"
    r = CliRunner().invoke(main, ["train", "coarsr", "--out", str(out), "--batches", "2",
                                  "--lr", "0.5", "--init", str(start), *common])
    assert r.exit_code == 0, r.output
    card = json.loads((out / "card.json").read_text())
    init = card["initialised_from"]
    assert init["beaten"] is False and card["best_val_psnr_crop"] == pytest.approx(init["val_psnr_crop"])
    a, b = load_file(str(start)), load_file(str(out / "best.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert "no validation beat the starting weights" in r.stderr
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert [h["batch"] for h in history] == [0, 1, 2] and all(h["val"]["psnr"] < init["val_psnr_crop"]
                                                               for h in history[1:])


@pytest.mark.parametrize("config, scale, start_file, extra, widened", [
    ("medium", 2, "coarsr_x2_compact", [], None),
    ("paper", 4, "coarsr_x4_rs_compact", ["--patch", "8"], "133 tensors widened from 32 to 64 features"),
])
def test_init_grows_a_smaller_network_into_a_larger_config(tmp_path, make_raster, config, scale, start_file, extra,
                                                            widened):
    """``geohsr train coarsr --config medium|paper --init <compact weights>``: the residual blocks the
    compact file lacks start as the identity, and for ``paper`` compact's 32 features are placed among
    its 64 (feature blocks of the concatenations and the sub-pixel upsampler's channel order kept)
    with zero weights from the added channels into compact's — so the larger network computes exactly
    what the compact one does; that start is validated like any whole start (kept unless beaten),
    and the card says what was grown and widened."""
    import json

    from click.testing import CliRunner
    from geohsr import weights as W
    from geohsr.cli import main
    from geohsr.methods.dualsr.config import CONFIGS
    from geohsr.methods.dualsr.net import CoarSR

    src, _ = make_raster(bands=5, h=48, w=48)
    start = W.models_dir() / f"{start_file}.safetensors"
    out = tmp_path / config
    r = CliRunner().invoke(main, ["train", "coarsr", "--scale", str(scale), "--config", config, "--out", str(out),
                                  "--batches", "0", "--init", str(start), "--data", str(src), "--batch", "2",
                                  *extra, "-q", "--device", "cpu"])
    assert r.exit_code == 0, r.output
    card = json.loads((out / "card.json").read_text())
    init = card["initialised_from"]
    assert "not_loaded" not in init and init["grown"].startswith("12 residual blocks")
    assert (init.get("widened") or "").startswith(widened or "") and ("widened" in init) == bool(widened)
    assert card["best_val_psnr_crop"] == pytest.approx(init["val_psnr_crop"])
    big, small = CoarSR(scale, CONFIGS[config].arch), CoarSR(scale, CONFIGS["compact"].arch)
    W.load_into(big, W.load(out / "best.safetensors")[0], config)
    W.load_into(small, W.load(start)[0], "compact")
    lr = torch.rand(1, 4, 10, 10)
    bic = torch.nn.functional.interpolate(lr, scale_factor=scale, mode="bicubic")
    with torch.no_grad():
        torch.testing.assert_close(big.forward_cube(lr, bic), small.forward_cube(lr, bic), rtol=0, atol=1e-5)
    if widened:  # the added channels are live (not all zero), only cut off from compact's outputs
        v = big.fuse3.parametrizations.weight.original1
        assert v[:32, 32:].abs().max() == 0 and v[32:].abs().max() > 0


def test_add_train_joins_training_scenes_and_keeps_the_validation(tmp_path, make_raster):
    """``--add-train B``: B's training scenes join --data's (ahead of them; bands of different counts
    mix), validation stays --data's, and the card and its command say so; methods not trained from
    --data refuse it with one line."""
    import json

    from click.testing import CliRunner
    from geohsr.cli import main

    a, _ = make_raster("a.tif", bands=5, h=64, w=64)
    b, _ = make_raster("b.tif", bands=8, h=64, w=64, seed=3)
    out = tmp_path / "run"
    r = CliRunner().invoke(main, ["train", "coarsr", "--data", str(a), "--add-train", str(b), "--scale", "2",
                                  "--config", "tiny", "--batches", "2", "--val-every", "1", "--threads", "1",
                                  "--out", str(out), "-q"])
    assert r.exit_code == 0, r.output
    card = json.loads((out / "card.json").read_text())
    assert card["data"]["train_scenes"] == ["b[:75%]", "a[:75%]"]
    assert card["data"]["val_scenes"] == ["a[75%:]"]
    assert card["data"]["added_train"] == [{"path": str(b), "kind": "raster (row split)", "train_scenes": ["b[:75%]"]}]
    assert f"--data {a} --add-train {b}" in card["command"]
    # resuming the run with other scenes (the --add-train forgotten) is refused; the checkpoint stays
    state = (out / "checkpoint" / "state.json").read_bytes()
    r = CliRunner().invoke(main, ["train", "coarsr", "--data", str(a), "--scale", "2", "--config", "tiny",
                                  "--batches", "4", "--threads", "1", "--out", str(out), "--resume", "-q"])
    assert r.exit_code != 0
    assert "--resume with other training scenes (1: a[:75%]) than the run it resumes (2: b[:75%], a[:75%])" in r.output
    assert (out / "checkpoint" / "state.json").read_bytes() == state
    # several --add-train: their scenes in the order given, ahead of --data's
    c, _ = make_raster("c.tif", bands=6, h=64, w=64, seed=4)
    r = CliRunner().invoke(main, ["train", "coarsr", "--data", str(a), "--add-train", str(c), "--add-train", str(b),
                                  "--scale", "2", "--config", "tiny", "--batches", "1", "--threads", "1",
                                  "--out", str(tmp_path / "run2"), "-q"])
    assert r.exit_code == 0, r.output
    card = json.loads((tmp_path / "run2" / "card.json").read_text())
    assert card["data"]["train_scenes"] == ["c[:75%]", "b[:75%]", "a[:75%]"]
    assert [x["train_scenes"] for x in card["data"]["added_train"]] == [["c[:75%]"], ["b[:75%]"]]
    r = CliRunner().invoke(main, ["train", "snlsr", "--source", str(a), "--add-train", str(b),
                                  "--out", str(tmp_path / "s")])
    assert r.exit_code != 0 and "--add-train is for methods trained from --data" in r.output
    assert not (tmp_path / "s").exists()
