"""Scene adaptation (geohsr.adapt, `geohsr adapt`, `geohsr run --adapt`, superresolve(adapt=...))."""

import json
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
import xarray as xr
from affine import Affine
from click.testing import CliRunner

import geohsr
from geohsr import adapt as A
from geohsr import geo
from geohsr.cli import main
from geohsr.errors import InputError, MethodError
from geohsr.train.data import DualSRPatches, Scene

from conftest import geohsr_cmd, smooth_field, write_raster


def _scene(bands=40, h=72, w=96, seed=0):
    rng = np.random.default_rng(seed)
    base = smooth_field(bands, h, w, seed=seed).astype(np.float32)
    yy, xx = np.mgrid[0:h, 0:w]
    tex = (0.1 * np.sin(xx * 0.9 + yy * 0.4) + 0.05 * rng.standard_normal((h, w))).astype(np.float32)
    data = np.clip(base * (1 + tex), 0, None)
    cube = xr.DataArray(data, dims=("band", "y", "x"),
                        coords={"wavelength": ("band", np.linspace(420, 2400, bands))})
    return geo.with_grid(cube, Affine(30, 0, 365000, 0, -30, 5807000), "EPSG:32633")


def test_adaptation_writes_weights_and_a_card_with_held_out_numbers(tmp_path):
    cube = _scene()
    res = A.adapt(cube, "dualsr", 2, batches=3, out=tmp_path / "run", progress=False, seed=3)
    card = json.loads((tmp_path / "run" / "card.json").read_text())
    assert (tmp_path / "run" / "best.safetensors").is_file()
    assert card["sha256"] == geohsr.weights.sha256(tmp_path / "run" / "best.safetensors")
    assert card["batches"] == 3 and card["band_window"] == A.BAND_WINDOW  # 40 bands: windows of 16
    h = card["held_out_psnr_db"]
    assert h["before"] == pytest.approx(res.before_db, abs=1e-3) and h["after"] == pytest.approx(res.after_db, abs=1e-3)
    assert res.improved == (res.after_db > res.before_db)
    assert card["initialised_from"]["x2"]["sha256"]  # started from the shipped ×2 CoarSR
    assert card["adapted_on"]["held_out"].endswith("(25% of the longer side, the end with more detail)")
    if res.improved:
        assert res.weights.split(",")[0] == str(tmp_path / "run" / "best.safetensors")
    else:
        assert res.weights is None and "starting weights" in card["kept"]
    assert "held-out PSNR" in res.summary()


def test_dualsr_adapts_both_its_networks_and_the_xs_file_brings_its_companion(tmp_path):
    """DualSR ×4 runs CoarSR ×4 and ×2 (its fine stage): both adapt, the budget shared; the ×4
    file names the ×2 one, so `--weights <out>/best.safetensors` alone runs the adapted pair, and
    the product's provenance lists both files."""
    from geohsr import weights as W

    cube = _scene()
    run = tmp_path / "run"
    res = A.adapt(cube, "dualsr", 4, batches=2, out=run, progress=False, seed=1)
    x4, x2 = run / "best.safetensors", run / "x2" / "best.safetensors"
    assert set(res.card["networks"]) == {"x4", "x2"} and res.card["batches"] == 4
    assert res.card["networks"]["x2"]["file"] == "x2/best.safetensors"
    assert res.tried == f"{x4},{x2}" and res.card["sha256"] == W.sha256(x4)
    start2 = W.load(W.models_dir() / res.card["initialised_from"]["x2"]["file"])[0]
    assert any(not np.array_equal(start2[k].numpy(), v.numpy()) for k, v in W.load(x2)[0].items())  # it trained
    assert W.with_companions([str(x4)]) == {4: str(x4), 2: str(x2)}
    assert res.card["networks_trained"].startswith("side by side" if torch.get_num_threads() >= 2 else "one after")
    alone = geohsr.superresolve(cube, "dualsr", 4, weights=str(x4))
    both = geohsr.superresolve(cube, "dualsr", 4, weights=res.tried)
    np.testing.assert_array_equal(alone.values, both.values)
    assert alone.attrs["geohsr_weights"].count("sha256:") == 2 and W.sha256(x2) in alone.attrs["geohsr_weights"]


def test_networks_adapt_side_by_side_on_a_cpu_with_a_thread_for_each():
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert A._side_by_side(2, "cpu") and not A._side_by_side(1, "cpu") and not A._side_by_side(2, "cuda")
        torch.set_num_threads(1)  # fewer threads than networks: one after the other, the budget shared
        assert not A._side_by_side(2, "cpu")
    finally:
        torch.set_num_threads(threads)


def test_each_network_stops_when_the_held_out_part_stops_gaining(tmp_path, monkeypatch):
    """The budget is an upper bound: a network whose held-out PSNR has not risen for ``patience``
    validations stops (a small scene's held-out part peaks within a few dozen batches, then
    declines: benchmarks/RESULTS.md); the card and the summary say so; ``patience=0`` spends the
    budget."""
    from geohsr.methods.dualsr.train import AdaptTask

    def declining(self):  # every validation worse than the one before: the first checkpoint is the best
        self.calls = getattr(self, "calls", 0) + 1
        return {"psnr": 40.0 - self.calls}

    monkeypatch.setattr(AdaptTask, "validate", declining)
    monkeypatch.setattr(AdaptTask, "val_every", 2)
    init = AdaptTask.__init__

    def small(self, *a, **k):  # what is tested is when training stops, not what it learns: small batches
        init(self, *a, **k)
        self.batch, self.lr_patch = 2, min(self.lr_patch, 8)

    monkeypatch.setattr(AdaptTask, "__init__", small)
    res = A.adapt(_scene(bands=16), "dualsr", 4, batches=50, out=tmp_path / "run", progress=False, patience=2)
    for net in ("x4", "x2"):
        rec = res.card["networks"][net]
        assert rec["batches"] == 6 and rec["best_batch"] == 2, rec  # validations at 2 (best), 4, 6
        assert "no gain on validation in the last 2 validations" in rec["stopped_early"]
    assert res.card["batches"] == 12 and res.card["patience"] == 2
    assert "stopped before the budget: no more gain on the held-out part" in res.summary()
    # one after the other (one thread), on a time budget: what the first leaves goes to the second
    from geohsr.train.trainer import Trainer

    budgets, run = [], Trainer.run
    monkeypatch.setattr(Trainer, "run", lambda self, **k: budgets.append(self.s.max_minutes) or run(self, **k))
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        res = A.adapt(_scene(bands=16), "dualsr", 4, minutes=2.0, out=tmp_path / "turn", progress=False,
                      patience=2)
    finally:
        torch.set_num_threads(threads)
    assert res.card["networks_trained"].startswith("one after the other")
    assert budgets[0] == pytest.approx(1.0) and 1.5 < budgets[1] <= 2.0  # the x4 network stopped at batch 6
    assert [v["batches"] for v in res.card["networks"].values()] == [6, 6]
    res = A.adapt(_scene(bands=16), "coarsr", 2, batches=8, out=tmp_path / "all", progress=False, patience=0)
    assert res.card["batches"] == 8 and res.card["stopped_early"] is None
    assert "stopped before" not in res.summary()
    r = CliRunner().invoke(main, ["adapt", str(tmp_path / "none.tif"), "--out", str(tmp_path / "o"),
                                  "--patience", "-1"])
    assert r.exit_code == 2 and "--patience" in r.output and not (tmp_path / "o").exists()
    assert f"[default: {A.PATIENCE}]" in CliRunner().invoke(main, ["adapt", "--help"]).output  # says the default


def test_adaptation_that_does_not_help_keeps_the_starting_weights(tmp_path):
    # a learning rate far too large wrecks the network: the held-out part must say so
    res = A.adapt(_scene(), "coarsr", 2, batches=2, out=tmp_path / "run", progress=False, lr=0.5)
    assert not res.improved and res.after_db < res.before_db
    assert res.weights is None  # the shipped weights
    card = json.loads((tmp_path / "run" / "card.json").read_text())
    assert "starting weights" in card["kept"]


def test_adaptation_refuses_what_it_cannot_do(tmp_path):
    with pytest.raises(InputError, match="too small to adapt"):
        A.adapt(_scene(h=10, w=16), "dualsr", 2, batches=1, out=tmp_path / "a", progress=False)
    with pytest.raises(MethodError, match="scene adaptation covers"):
        A.adapt(_scene(), "bicubic", 2, batches=1, out=tmp_path / "b", progress=False)
    with pytest.raises(InputError, match="positive number of minutes"):
        A.adapt(_scene(), "dualsr", 2, minutes=0, out=tmp_path / "c", progress=False)


def test_held_out_strip_is_never_trained_on():
    ok = np.ones((72, 96), bool)
    train, held = A.split(ok, 2)
    assert held[1] == slice(72, None) and train[1] == slice(0, 72)  # the longer side (columns)
    assert held[0] == slice(None)
    # a 100-px scene at ×4 keeps 6 LR rows for the verdict: said, since they can mislead
    with pytest.warns(UserWarning, match="only 6 LR px deep"):
        A.split(np.ones((100, 100), bool), 4)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        A.split(np.ones((256, 256), bool), 4)  # 16 LR rows: no warning


def test_the_held_out_strip_is_the_end_with_detail_to_restore():
    """A strip of flat ground (water, a car park) scores every model alike and cannot judge the
    adaptation (ABU beach-2: its last strip is bicubic at 62 dB, and the strip kept the start while
    the adapted pair was +2.9 dB on a test part): with the scene, the end of the longer side with
    more detail is held out, the other end trained on."""
    from geohsr.sensor import SensorModel

    ok = np.ones((48, 96), bool)
    rng = np.random.default_rng(0)
    data = np.full((3, 48, 96), 0.5, np.float32)
    data[:, :, :24] += 0.2 * rng.standard_normal((3, 48, 24)).astype(np.float32)  # texture at the first end
    train, held = A.split(ok, 2, data=data, sensor=SensorModel())
    assert held == (slice(None), slice(0, 24)) and train == (slice(None), slice(24, None))
    assert A.held_out_text(held, ok.shape).startswith("columns 0–23 of 96")
    train, held = A.split(ok, 2, data=data[:, :, ::-1].copy(), sensor=SensorModel())  # texture at the last end
    assert held == (slice(None), slice(72, None)) and train == (slice(None), slice(0, 72))
    assert A.held_out_text(held, ok.shape).startswith("columns 72–95 of 96")
    # rows when the scene is taller than wide; flat everywhere: the last end, as without the scene
    train, held = A.split(ok.T, 2, data=np.full((3, 96, 48), 0.5, np.float32), sensor=SensorModel())
    assert held == (slice(72, None), slice(None)) and A.held_out_text(held, (96, 48)).startswith("rows 72–95")


def test_run_adapt_and_the_api_record_the_adaptation(tmp_path):
    cube = _scene()
    src = tmp_path / "s.tif"
    write_raster(src, cube.values, wavelengths=cube.wavelength.values)
    out = tmp_path / "o.tif"
    r = CliRunner().invoke(main, ["run", str(src), "-s", "2", "-m", "dualsr", "--adapt", "0.02", "-o", str(out), "-q"])
    assert r.exit_code == 0, r.output
    assert "held-out PSNR" in r.output
    with rasterio.open(out) as ds:
        tags = ds.tags()
        assert "held-out PSNR" in tags.get("geohsr_adapted", "")
        assert tags["geohsr_version"] == geohsr.__version__ and "sha256:" in tags["geohsr_weights"]
        assert ("best.safetensors" in tags["geohsr_weights"]) == ("adapted weights kept" in tags["geohsr_adapted"])
        assert ds.transform == geo.hr_transform(Affine(30, 0, 365000, 0, -30, 5807000), 2)
    hr = geohsr.superresolve(cube, "dualsr", 2, adapt=dict(batches=1, seed=2))
    assert "held-out PSNR" in hr.attrs["geohsr_adapted"] and hr.shape == (40, 144, 192)


def test_run_adapt_json_progress_counts_up_once_through_adaptation_and_run(tmp_path):
    """The QGIS plugin reads `--progress json`: the adaptation (both DualSR networks) fills the
    first half, the super-resolution the rest, never going back."""
    src = tmp_path / "s.tif"
    write_raster(src, _scene(bands=8).values)
    r = subprocess.run(geohsr_cmd("run", src, "-s", "4", "-m", "dualsr", "--adapt", "0.05", "--progress", "json",
                               "-o", tmp_path / "o.tif"), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    msgs = [json.loads(ln) for ln in r.stderr.splitlines() if ln.startswith("{")]
    values = [m["progress"] for m in msgs]
    assert values == sorted(values) and values[-1] == 1.0
    adapting = [m["progress"] for m in msgs if m["phase"] == "adapt"]
    assert adapting[0] == 0.0 and adapting[-1] == 0.5
    assert msgs[len(adapting) - 1]["phase"] == "adapt" and len(msgs) > len(adapting)  # then the run's phases


def test_run_adapt_stops_on_sigterm_and_writes_nothing(tmp_path):
    """Cancel in QGIS sends SIGTERM: the adaptation stops at a batch boundary and the run ends
    there (exit 130, no output), instead of going on to super-resolve."""
    src = tmp_path / "s.tif"
    write_raster(src, _scene(bands=8).values)
    out = tmp_path / "o.tif"
    proc = subprocess.Popen(geohsr_cmd("run", src, "-s", "4", "-m", "dualsr", "--adapt", "5", "--progress", "json",
                                    "-o", out), stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:  # once training is under way
        if line.startswith("{") and json.loads(line)["progress"] > 0:
            assert json.loads(line)["phase"] == "adapt"
            proc.send_signal(signal.SIGTERM)
            break
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 130, err
    assert {json.loads(ln)["phase"] for ln in err.splitlines() if ln.startswith("{")} <= {"adapt"}  # no run
    assert "Interrupted" in err and not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["s.tif"]


def test_adapt_command_keeps_weights_and_refuses_a_used_folder(tmp_path):
    src = tmp_path / "s.tif"
    write_raster(src, _scene().values)
    run = tmp_path / "run"
    r = CliRunner().invoke(main, ["adapt", str(src), "-s", "2", "--out", str(run), "--batches", "1", "-q"])
    assert r.exit_code == 0, r.output
    assert "--weights" in r.output and (run / "card.json").is_file()
    r = CliRunner().invoke(main, ["adapt", str(src), "-s", "2", "--out", str(run), "--batches", "1", "-q"])
    assert r.exit_code != 0 and "--resume" in r.output


def test_adapt_command_that_keeps_the_start_says_where_the_adapted_weights_are(tmp_path, monkeypatch):
    # a held-out part of a few pixels can decide wrongly: the user may take the adapted weights anyway
    real = A.adapt
    monkeypatch.setattr(A, "adapt", lambda *a, **k: real(*a, **{**k, "lr": 0.5}))  # wrecks the network
    src = tmp_path / "s.tif"
    write_raster(src, _scene(bands=8).values)
    run = tmp_path / "run"
    r = CliRunner().invoke(main, ["adapt", str(src), "-s", "2", "-m", "coarsr", "--out", str(run), "--batches", "2",
                                 "-q"])
    assert r.exit_code == 0, r.output
    assert "starting weights kept" in r.output and "--weights (the shipped ones" in r.output
    line = next(ln for ln in r.output.splitlines() if ln.startswith("the adapted weights stay in"))
    tried = line.split("--weights ", 1)[1]
    assert Path(tried).is_file() and Path(tried).parent == run
    hr = geohsr.superresolve(geohsr.open_cube(src), "coarsr", 2, weights=tried)
    assert hr.sizes["x"] == 2 * 96
    # `run --adapt` says it too (its folder is a temporary one that stays)
    r = CliRunner().invoke(main, ["run", str(src), "-s", "2", "-m", "coarsr", "--adapt", "0.01", "-q",
                                 "-o", str(tmp_path / "o.tif")])
    assert r.exit_code == 0, r.output
    assert "starting weights kept" in r.output and "the adapted weights stay in" in r.output


def test_training_on_many_bands_samples_a_band_window():
    sc = Scene("s", np.random.default_rng(0).random((120, 64, 64), dtype=np.float32))
    p = DualSRPatches([sc], 2, lr_patch=8, rescales=(1.0,))
    lr, hr = p.sample(np.random.default_rng(1), 3, band_window=32)
    assert lr.shape == (3, 32, 8, 8) and hr.shape == (3, 32, 16, 16)
    lr, hr = p.sample(np.random.default_rng(1), 3)
    assert lr.shape[1] == 120


def test_band_windows_reach_every_band_of_every_scene():
    """Scenes of different band counts (the remote-sensing split: SAMSON 156 bands, AVIRIS up to
    191): each sample's window lies within its own scene, so the last bands of the larger scenes
    train too (a window drawn over the smallest count never reached them)."""
    rng = np.random.default_rng(0)
    small = Scene("small", np.zeros((40, 32, 32), np.float32))
    big = Scene("big", np.broadcast_to(np.arange(1, 101, dtype=np.float32)[:, None, None], (100, 32, 32)).copy())
    p = DualSRPatches([small, big], 2, lr_patch=8, rescales=(1.0,))
    seen = set()
    for _ in range(250):
        _, hr = p.sample(rng, 4, band_window=32)
        assert hr.shape == (4, 32, 16, 16)
        for h in hr:
            if h[0, 0, 0] > 0:  # a window of the 100-band scene: contiguous bands
                first = int(round(h[0, 0, 0]))
                assert np.array_equal(h[:, 0, 0], np.arange(first, first + 32, dtype=np.float32))
                seen.update(range(first, first + 32))
    assert seen == set(range(1, 101))
    # a scene narrower than the window (31-band CAVE): the window narrows, still reaching every band
    cave = Scene("cave", np.zeros((31, 32, 32), np.float32))
    p = DualSRPatches([cave, big], 2, lr_patch=8, rescales=(1.0,))
    assert p.window(32) == p.window() == 31  # what the card's recipe states
    seen = set()
    for _ in range(250):
        _, hr = p.sample(rng, 4, band_window=32)
        assert hr.shape == (4, 31, 16, 16)
        seen.update(int(round(v)) for h in hr for v in h[:, 0, 0] if v > 0)
    assert seen == set(range(1, 101))


@pytest.mark.parametrize("s", [3, 5, 6])
def test_coarsr_and_dualsr_take_any_integer_scale(tmp_path, s):
    import torch

    from geohsr import weights as W
    from geohsr.methods.dualsr.config import CONFIGS
    from geohsr.methods.dualsr.net import CoarSR

    arch = CONFIGS["tiny"].arch
    files = {}
    for ws in {s, s // 2} - {1}:
        torch.manual_seed(ws)
        net = CoarSR(ws, arch)
        files[ws] = tmp_path / f"x{ws}.safetensors"
        W.save(net.state_dict(), files[ws], {"method": "coarsr", "scale": ws, "config": arch.to_dict()})
    cube = _scene(bands=5, h=12, w=10)
    out = geohsr.superresolve(cube, "coarsr", s, weights=str(files[s]))
    assert out.shape == (5, 12 * s, 10 * s)
    assert out.rio.transform() == geo.hr_transform(cube.rio.transform(), s)
    if s % 2 == 0:  # DualSR: the ×s and ×s/2 networks
        wstr = ",".join(str(files[k]) for k in (s, s // 2))
        assert geohsr.superresolve(cube, "dualsr", s, weights=wstr).shape == (5, 12 * s, 10 * s)
    else:  # odd: the ×s network and one back-projection onto the LR input
        from geohsr.metrics import sam_degrees_torch
        from geohsr.resize import imresize

        d = geohsr.superresolve(cube, "dualsr", s, weights=str(files[s]), dtype="float32", clip="none")
        u = torch.from_numpy(geohsr.superresolve(cube, "coarsr", s, weights=str(files[s]), dtype="float32",
                                                 clip="none").values)
        x = torch.from_numpy(np.asarray(cube.values, np.float32))
        ud = imresize(u, size=tuple(x.shape[-2:]), a=-0.5, antialias=True)
        lam = min(float(sam_degrees_torch(ud[None], x[None]).double().mean()), 1.0)
        want = u + lam * imresize(x - ud, size=tuple(u.shape[-2:]), a=-0.5, antialias=False)
        np.testing.assert_allclose(d.values, want.numpy(), rtol=0, atol=1e-4 * float(u.abs().max()))
        assert not np.allclose(d.values, u.numpy())


def test_a_stop_is_honoured_between_band_steps_and_rolls_the_batch_back(tmp_path):
    import time

    import torch

    from geohsr import weights as W

    cube = _scene(bands=40, h=96, w=128)
    t = time.time()
    res = A.adapt(cube, "coarsr", 2, minutes=0.005, out=tmp_path / "run", progress=False)
    took = time.time() - t
    # one batch is 16 band steps of 8 patches (several seconds here): the 0.3 s budget stops inside it
    assert res.card["batches"] == 0
    start = W.load(W.models_dir() / res.card["initialised_from"]["x2"]["file"])[0]
    ckpt = W.load(tmp_path / "run" / "checkpoint" / "model.safetensors")[0]
    assert all(torch.equal(start[k], ckpt[k]) for k in start)  # rolled back to the batch boundary
    assert took < 60


def test_training_scenes_smaller_than_a_patch_say_what_to_do():
    sc = Scene("s", np.zeros((5, 40, 40), np.float32))
    with pytest.raises(InputError, match=r"more than 96 px a side.*--config tiny"):
        DualSRPatches([sc], 4, lr_patch=24)


@pytest.mark.parametrize("method,s,origin", [("ifmsr", 4, None), ("ifmsr", 3, 4), ("mulsr", 6, 8)])
def test_guided_methods_adapt_with_the_scenes_real_guide(tmp_path, method, s, origin):
    """IFMSR and MulSR adapt on the scene and its guide, both reduced by the scale: a card with
    the guide and the held-out numbers, weights that load; without a guide it says what is
    missing. At a scale with no shipped weights (IFMSR ×3: EnMAP + Sentinel-2; MulSR ×6: PRISMA)
    the shipped weights of the nearest scale start it — no layer of either depends on the scale —
    and the card says which; what it returns runs at ×s whether or not adapting gained."""
    import torch

    from geohsr.sensor import guide_low

    rows = 64 if s > 4 else 48  # adapting at ×6 needs 60 LR rows (36 to train on, 24 held out)
    cols = 24 if s > 4 else 40
    hr = smooth_field(8, rows * s, cols * s, seed=4).astype(np.float32)
    lr = guide_low(torch.from_numpy(hr)[None], s)[0].numpy()
    t = Affine(30.0, 0, 365000, 0, -30.0, 5807000)
    cube = geo.with_grid(xr.DataArray(lr, dims=("band", "y", "x"),
                                      coords={"wavelength": ("band", np.linspace(420, 690, 8))}), t, "EPSG:32633")
    rgb = np.stack([hr[7], hr[4], hr[1]]) / hr.max()
    guide = geo.with_grid(xr.DataArray(rgb, dims=("band", "y", "x"),
                                       coords={"wavelength": ("band", [640.0, 550.0, 460.0])}),
                          geo.hr_transform(t, s), "EPSG:32633")
    res = A.adapt(cube, method, s, guide=guide, batches=2, out=tmp_path / "run", progress=False)
    card = json.loads((tmp_path / "run" / "card.json").read_text())
    assert card["method"] == method and card["batches"] == 2 and card["adapted_on"]["guide"] == "in-memory guide"
    assert card["held_out_psnr_db"]["before"] == pytest.approx(res.before_db, abs=1e-3)
    assert (res.weights == str(tmp_path / "run" / "best.safetensors")) == res.improved
    if origin is None:
        assert "started_from" not in card
    else:  # nothing shipped at ×s: without adaptation there is nothing to run
        assert card["started_from"]["scale"] == origin and f"×{origin} weights" in res.summary()
        assert res.weights is not None  # the adapted weights, or the starting ones re-tagged for ×s
        with pytest.raises(geohsr.WeightsError, match=f"no shipped {method} weights for ×{s}"):
            geohsr.superresolve(cube, method, s, guide=guide, coregister=False)
        # a start that fails its checks (here: a scene too small) leaves nothing in --out
        with pytest.raises(InputError, match="too small to adapt"):
            A.adapt(cube.isel(y=slice(0, 8), x=slice(0, 8)), method, s, guide=guide, batches=1,
                    out=tmp_path / "failed", progress=False)
        assert not (tmp_path / "failed").exists()
    out = geohsr.superresolve(cube, method, s, guide=guide, weights=res.weights, coregister=False)
    assert out.shape == (8, rows * s, cols * s)
    with pytest.raises(MethodError, match="needs the scene's guide"):
        A.adapt(cube, method, s, batches=1, progress=False)


def test_adapt_is_skipped_when_auto_picks_a_training_free_method(monkeypatch):
    """--adapt with auto: when auto's choice has no network (bicubic, MTF-GLP, GSA) the product
    says so instead of failing."""
    from geohsr import api

    cube = _scene(bands=6, h=48, w=48)
    monkeypatch.setattr(api, "auto_method", lambda *a, **k: ("bicubic", {}))
    out = geohsr.superresolve(cube, "auto", 2, adapt=dict(batches=1))
    assert out.attrs["geohsr_adapted"] == "not adapted: auto chose bicubic, which has no network to adapt"
    assert A.adaptable("dualsr") and A.adaptable("ifmsr") and A.adaptable("dualsr-glp")
    assert A.adaptable("snlsr") and A.adaptable("a-snlsr") and not A.adaptable("mtf-glp")


@pytest.mark.parametrize("method", ["snlsr", "a-snlsr"])
def test_fixed_grid_methods_adapt_on_the_scenes_bands_resampled_onto_their_grid(tmp_path, method):
    """SNLSR / A-SNLSR adapt on the scene's bands resampled onto the model's grid: the adapted
    weights keep the grid (the product has the model's 30 bands), the card has the held-out
    numbers; superresolve(adapt=...) records the outcome."""
    bands = 60
    data = np.clip(smooth_field(bands, 48, 64, seed=5), 0.01, None).astype(np.float32)
    cube = geo.with_grid(xr.DataArray(data, dims=("band", "y", "x"),
                                      coords={"wavelength": ("band", np.linspace(1000, 2480, bands))}),
                         Affine(30, 0, 365000, 0, -30, 5807000), "EPSG:32633")
    res = A.adapt(cube, method, 4, batches=2, out=tmp_path / "run", progress=False)
    card = json.loads((tmp_path / "run" / "card.json").read_text())
    assert card["method"] == method and card["batches"] == 2
    assert card["held_out_psnr_db"] == {"before": round(res.before_db, 3), "after": round(res.after_db, 3)}
    assert "30-band grid" in card["adapted_on"]["bands"]
    shipped = geohsr.superresolve(cube, method, 4)
    tried = geohsr.superresolve(cube, method, 4, weights=res.tried)
    assert tried.shape == shipped.shape == (30, 48 * 4, 64 * 4)
    np.testing.assert_allclose(tried.coords["wavelength"].values, shipped.coords["wavelength"].values)
    assert (res.weights == res.tried) == res.improved
    out = geohsr.superresolve(cube, method, 4, adapt=dict(batches=1, seed=2))
    assert out.attrs["geohsr_adapted"].startswith(f"adaptation ({method} ×4")


def test_the_sensor_model_of_adaptation_is_a_choice(tmp_path):
    """--psf: the Gaussian MTF (gain at Nyquist), MATLAB bicubic, or a measured PSF file; a bad
    value is refused with what to give, before anything is read."""
    import torch

    from geohsr import degrade
    from geohsr.sensor import SensorModel, guide_low

    x = smooth_field(3, 32, 40, seed=1).astype(np.float32)
    np.testing.assert_allclose(SensorModel().reduce(x, 4), guide_low(torch.from_numpy(x)[None], 4)[0].numpy(),
                               atol=1e-6)
    np.testing.assert_allclose(SensorModel("bicubic").reduce(x[None], 4)[0], degrade.bicubic_down(x, 4), atol=1e-6)
    soft, sharp = SensorModel("gaussian:0.1").reduce(x, 4), SensorModel("gaussian:0.6").reduce(x, 4)
    assert soft.shape == sharp.shape == (3, 8, 10) and np.std(soft) < np.std(sharp)
    k = np.zeros((4, 4))
    k[0, 0] = 2.0  # a delta PSF (normalised on load): plain subsampling
    np.save(tmp_path / "psf.npy", k)
    m = SensorModel(tmp_path / "psf.npy")
    np.testing.assert_allclose(m.reduce(x, 4), x[:, ::4, ::4], atol=1e-6)
    assert "psf.npy (4×4 HR px)" in m.describe(4)
    for bad, what in (("gaussian:2", "between 0 and 1"), ("gauss", "not gaussian"), (tmp_path / "none.npy", "PSF file")):
        with pytest.raises(InputError, match=what):
            SensorModel(bad)
    res = A.adapt(_scene(bands=8, h=48, w=64), "coarsr", 2, batches=1, out=tmp_path / "run", progress=False,
                  psf="bicubic")
    assert res.card["degradation"].startswith("MATLAB bicubic ×1/2")
    r = CliRunner().invoke(main, ["adapt", str(tmp_path / "x.tif"), "-s", "2", "--out", str(tmp_path / "o"),
                                  "--psf", "gaussian:7"])
    assert r.exit_code != 0 and "between 0 and 1" in r.output


def test_adaptation_can_take_the_blur_measured_against_the_guide(tmp_path):
    """``psf="measure"``: the scene's MTF gain is measured against its guide and adaptation reduces
    scene and guide with the scene sensor's own gain (a scene made with gain 0.6 from a guide with no
    blur of its own: the card says about 0.6 relative, and the own gain that adds the guide's
    generic MTF); without a guide, one line saying what to give."""
    import torch

    from geohsr.sensor import guide_low

    s = 4
    hr = smooth_field(8, 48 * s, 40 * s, seed=4).astype(np.float64)
    yy, xx = np.mgrid[0:48 * s, 0:40 * s]
    hr = (hr * (1 + 0.15 * np.sin(xx * 1.1) * np.cos(yy * 0.9) + 0.3 * smooth_field(1, 48 * s, 40 * s, seed=11,
                                                                                      offset=0.0)[0])).astype(np.float32)
    lr = guide_low(torch.from_numpy(hr)[None], s, 0.6)[0].numpy()
    t = Affine(30.0, 0, 365000, 0, -30.0, 5807000)
    cube = geo.with_grid(xr.DataArray(lr, dims=("band", "y", "x"),
                                      coords={"wavelength": ("band", np.linspace(420, 690, 8))}), t, "EPSG:32633")
    guide = geo.with_grid(xr.DataArray(np.stack([hr[7], hr[4], hr[1]]) / hr.max(), dims=("band", "y", "x"),
                                       coords={"wavelength": ("band", [640.0, 550.0, 460.0])}),
                          geo.hr_transform(t, s), "EPSG:32633")
    A.adapt(cube, "ifmsr", s, guide=guide, batches=1, out=tmp_path / "run", progress=False, psf="measure")
    card = json.loads((tmp_path / "run" / "card.json").read_text())
    deg = card["degradation"]
    assert "(measured against the guide: " in deg, deg
    rel = float(deg.split("measured against the guide: ")[1].split()[0])
    assert abs(rel - 0.6) <= 0.03, deg
    assert float(deg.split("gain ")[1].split()[0]) == pytest.approx(geohsr.sensor.own_gain(rel, s), abs=1e-3)
    with pytest.raises(InputError, match="give --guide"):
        A.adapt(cube, "dualsr", s, batches=1, progress=False, psf="measure")
    src = geohsr.save_cube(cube, tmp_path / "lr.tif")
    r = CliRunner().invoke(main, ["run", str(src), "-s", "4", "--adapt", "1", "--adapt-psf", "measure",
                                  "-o", str(tmp_path / "o.tif")])
    assert r.exit_code != 0 and "give --guide" in r.output and not (tmp_path / "o.tif").exists()
