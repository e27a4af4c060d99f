"""One conformance test for every registered method (``geohsr.methods()``), and a toy method
registered through the public API and run end to end (API, CLI ``run``, ``train``).

Learned methods are trained for one batch of their ``tiny`` configuration through the registry
(:func:`geohsr.train.run.train`); those weights are what the other checks run.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import xarray as xr
from affine import Affine
from click.testing import CliRunner

import geohsr
from geohsr import geo
from geohsr import weights as W
from geohsr.cli import main
from geohsr.methods import load_runner

from conftest import smooth_field, write_raster

UTM = "EPSG:32633"
T = Affine(30.0, 0, 365000, 0, -30.0, 5807000)
VIS = np.linspace(410, 690, 8)  # scene-trained methods: visible bands (the guided ones take RGB from them)
SWIR = np.arange(1000.0, 2460.0, 20.0)  # SNLSR/A-SNLSR: source and target ranges, every 20 nm
NAMES = [m["name"] for m in geohsr.methods()]


def _scale(spec) -> int:
    ok = [s for s in (4, 2, 3, 8) if spec.scales is None or s in spec.scales]
    if spec.train is not None and spec.train.scales is not None:
        ok = [s for s in ok if s in spec.train.scales]
    return ok[0]


def _wavelengths(spec):
    return SWIR if spec.bands == "grid" else VIS


def _scene(tmp_path, spec, h=66, w=60, name="scene.tif"):
    wl = _wavelengths(spec)
    data = (smooth_field(len(wl), h, w, seed=3) * 3000 + 200).astype(np.int16)
    return write_raster(tmp_path / name, data, wavelengths=list(wl), nodata=-9999)


def _guide(spec, cube, scale):
    if not spec.guided:
        return None
    hr = np.asarray(cube.values, np.float32)
    hr = np.repeat(np.repeat(hr, scale, 1), scale, 2)
    rgb = np.stack([hr[-3:].mean(0), hr[3:5].mean(0), hr[:3].mean(0)])
    return geo.with_grid(xr.DataArray(rgb / rgb.max(), dims=("band", "y", "x")),
                         geo.hr_transform(geo.cube_transform(cube), scale), UTM)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """``weights(name) -> str | None``: one-batch ``tiny`` weights of a method (cached)."""
    from geohsr.train.run import train

    root = tmp_path_factory.mktemp("conformance")
    cache: dict = {}

    def weights(name):
        spec = geohsr.get_method(name)
        if not spec.needs_weights:
            return None
        if name in cache:
            return cache[name]
        s = _scale(spec)
        owner = geohsr.get_method(spec.weights_of or name)  # DualSR-GLP runs DualSR's weights
        files = []
        for ws in spec.scales_of_weights(s):
            key = (owner.name, ws)
            if key not in cache:
                out = root / f"{owner.name}_x{ws}"
                scene = _scene(root, owner, h=100, w=100, name=f"{owner.name}.tif")
                opts = {o.param: o.default for o in owner.train.options}
                torch.manual_seed(0)
                res = train(owner.name, ws, out, data=scene, source=[scene], target=[scene], options=opts,
                            config="tiny", batches=1, val_every=1, ckpt_every=1, device="cpu",
                            progress=False, command="test")
                assert res["batches"] == 1  # a tiny configuration trains one step
                assert (out / "best.safetensors").is_file() and (out / "card.json").is_file()
                card = json.loads((out / "card.json").read_text())
                assert card["config"] == "tiny" and card["sha256"] == W.sha256(out / "best.safetensors")
                cache[key] = str(out / "best.safetensors")
            files.append(cache[key])
        cache[name] = ",".join(files)
        return cache[name]

    return weights


@pytest.mark.parametrize("name", NAMES)
def test_method_conforms(name, tmp_path, trained):
    spec = geohsr.get_method(name)
    s, weights = _scale(spec), trained(name)
    cube = geohsr.open_cube(_scene(tmp_path, spec)).load()
    cube.values[:, 5, 7] = -9999  # one nodata pixel in every band
    guide = _guide(spec, cube, s)

    # shapes, georeference, dtype, nodata
    hr = geohsr.superresolve(cube, method=name, scale=s, weights=weights, guide=guide, device="cpu")
    nb = len(spec.band_grid(s, weights)["wavelength"]) if spec.bands == "grid" else cube.sizes["band"]
    assert hr.shape == (nb, cube.sizes["y"] * s, cube.sizes["x"] * s)
    assert hr.dtype == np.int16 and hr.rio.nodata == -9999
    assert hr.rio.crs == cube.rio.crs
    assert tuple(hr.rio.transform()) == tuple(geo.hr_transform(cube.rio.transform(), s))
    np.testing.assert_allclose(hr.rio.bounds(), cube.rio.bounds())
    assert (hr.values[:, 5 * s:(5 + 1) * s, 7 * s:(7 + 1) * s] == -9999).all()
    valid = hr.values != -9999
    assert valid.mean() > 0.9
    if spec.bands != "grid":
        np.testing.assert_array_equal(hr.coords["wavelength"].values, cube.coords["wavelength"].values)

    # tiled == whole within the method's declared bound
    f = cube.astype(np.float32).where(cube != -9999)
    f = f.rio.write_nodata(np.nan, encoded=False)
    kw = dict(method=name, scale=s, weights=weights, guide=guide, device="cpu", dtype="float32")
    whole = geohsr.superresolve(f.chunk({"band": -1, "y": -1, "x": -1}), **kw).values
    tiled = geohsr.superresolve(f.chunk({"band": -1, "y": 32, "x": 32}), **kw).values
    ok = np.isfinite(whole)
    assert (np.isfinite(tiled) == ok).all()
    err, rng = tiled[ok] - whole[ok], np.ptp(whole[ok])
    rms = float(np.sqrt(np.mean(err.astype(np.float64) ** 2)) / rng)
    print(f"{name}: tiled vs whole RMS {rms:.2e} of the range")
    assert rms <= spec.tile_tolerance, f"{name}: tiled differs from whole by {rms:.2e} (RMS) of the range"
    if spec.context == "local":  # crop-only tiling: exact up to float rounding
        assert np.abs(err).max() <= 1e-5 * rng

    # batch == block by block
    runner = load_runner(name, s, weights, "cpu")
    nin = nb if spec.bands == "grid" else cube.sizes["band"]
    x = torch.rand(2, nin, 12, 12) * 0.8 + 0.1
    args = [x] + ([torch.rand(2, 3, 12 * s, 12 * s)] if spec.guided else [])
    if spec.fit is not None:  # the scene-wide parameters, one copy per block
        from geohsr.engine import prepare

        plan = prepare(cube, name, s, guide=guide, device="cpu")
        args.append(torch.from_numpy(np.repeat(plan.fitted[None], 2, 0)))
        if spec.uses_mtf:  # … and the scene's MTF gain, measured against the guide
            args.append(torch.full((2,), plan.guide.mtf_gain))

    both = runner.batch(*args)
    for k in range(2):
        one = runner.batch(*[a[k:k + 1] for a in args])[0]
        assert torch.allclose(both[k], one, rtol=1e-5, atol=1e-5 * float(one.abs().max()))

    # weights round-trip: the file's tensors into a fresh network, saved again, give the same output
    if weights is not None:
        path = weights.split(",")[0]
        tensors, meta = W.load(path)
        net = spec.build_net(int(meta["scale"]), meta["config"])
        own = {k[4:]: v for k, v in tensors.items() if k.startswith("net.")} or tensors
        W.load_into(net, own, path)
        again = tmp_path / "again.safetensors"
        W.save(net.state_dict(), again, meta)
        swapped = ",".join([str(again)] + weights.split(",")[1:])
        y1 = load_runner(name, s, weights, "cpu").batch(*args)
        y2 = load_runner(name, s, swapped, "cpu").batch(*args)
        torch.testing.assert_close(y1, y2, rtol=0, atol=0)


# -- a toy method, registered from outside the package --------------------------------------
class _ToyNet(torch.nn.Module):
    """Bicubic plus a learned 3×3 correction, band by band."""

    def __init__(self, scale, arch):
        super().__init__()
        self.scale = scale
        self.conv = torch.nn.Conv2d(1, 1, 3, padding=1)
        torch.nn.init.zeros_(self.conv.weight)
        torch.nn.init.zeros_(self.conv.bias)

    def forward(self, x):  # (B, bands, h, w)
        from geohsr.resize import imresize

        up = imresize(x, scale=self.scale, a=-0.5, antialias=False)
        b, n, h, w = up.shape
        return up + self.conv(up.reshape(b * n, 1, h, w)).reshape(b, n, h, w)


class _ToyTask:
    name = "toy"
    val_key = "psnr"

    def __init__(self, train, val, scale, config, seed):
        from geohsr.degrade import bicubic_down

        torch.manual_seed(seed)
        self.scale, self.config = scale, config
        self.model = _ToyNet(scale, {})
        self.hr = [torch.from_numpy(s.cube[:, :32, :32].astype(np.float32)) for s in train]
        self.lr = [torch.from_numpy(bicubic_down(h.numpy(), scale).astype(np.float32)) for h in self.hr]
        self.val = [(torch.from_numpy(s.cube[:, :16, :16].astype(np.float32)),) for s in val]
        self.train_scenes, self.val_scenes = [s.name for s in train], [s.name for s in val]

    def sample(self, rng, batch):
        return self.lr[0][None], self.hr[0][None]

    def train_batch(self, batch, opt):
        lr, hr = batch
        opt.zero_grad()
        loss = (self.model(lr) - hr).abs().mean()
        loss.backward()
        opt.step()
        return float(loss)

    @torch.inference_mode()
    def validate(self):
        return {"psnr": float(-self.model.conv.weight.abs().sum())}

    def metadata(self):
        return {"method": "toy", "scale": self.scale, "config": {}, "normalisation": "none",
                "train_scenes": self.train_scenes, "val_scenes": self.val_scenes}


def _toy_task(train, val, scale, config, *, device, seed, amp, options):
    task = _ToyTask(train, val, scale, config, seed)
    return geohsr.TaskInfo(task, {"loss": "L1"}, "toy", ["toy"], {})


def _toy_builder(scale, weights, device):
    net = _ToyNet(scale, {})
    if weights is not None:
        tensors, _ = W.load(weights)
        W.load_into(net, tensors, weights)
    net.eval()

    def run(x):
        with torch.inference_mode():
            return net(x)

    return geohsr.Runner(run, device)


@pytest.fixture
def toy():
    spec = geohsr.MethodSpec(
        name="toy", summary="bicubic + a learned 3x3 correction (a test method)", builder=_toy_builder,
        scales=(2,), halo=6, build_net=lambda scale, arch: _ToyNet(scale, arch),
        configs={"tiny": geohsr.ModelConfig({}, lr=1e-2, batch=1, patch=16)},
        train=geohsr.TrainSpec(make_task=_toy_task))
    geohsr.register_method(spec)
    yield spec
    geohsr.unregister_method("toy")


def test_a_toy_method_registered_from_outside_runs_everywhere(tmp_path, toy):
    assert "toy" in [m["name"] for m in geohsr.methods()]
    with pytest.raises(geohsr.MethodError, match="already registered"):
        geohsr.register_method(geohsr.MethodSpec(name="toy", summary="", builder=_toy_builder))
    src = write_raster(tmp_path / "s.tif", (smooth_field(3, 48, 40, seed=1) * 1000).astype(np.float32),
                       wavelengths=[500.0, 600.0, 700.0])
    cli = CliRunner()
    # train through the CLI: the registry gave `geohsr train` its choice
    r = cli.invoke(main, ["train", "toy", "--data", str(src), "--scale", "2", "--config", "tiny",
                          "--out", str(tmp_path / "run"), "--batches", "3", "--val-every", "1", "-q"])
    assert r.exit_code == 0, r.output
    w = tmp_path / "run" / "best.safetensors"
    assert w.is_file() and json.loads((tmp_path / "run" / "card.json").read_text())["method"] == "toy"
    # the API
    cube = geohsr.open_cube(src)
    hr = geohsr.superresolve(cube, method="toy", scale=2, weights=str(w))
    assert hr.shape == (3, 96, 80) and hr.attrs["geohsr_method"] == "toy"
    # the CLI run (streamed) gives the same pixels
    out = tmp_path / "o.tif"
    r = cli.invoke(main, ["run", str(src), "-m", "toy", "-s", "2", "--weights", str(w), "-o", str(out), "-q"])
    assert r.exit_code == 0, r.output
    np.testing.assert_allclose(geohsr.open_cube(out).values, hr.values, rtol=1e-6)
    r = cli.invoke(main, ["methods", "--json"])
    assert "toy" in [m["name"] for m in json.loads(r.output)]
    r = cli.invoke(main, ["train", "toy", "--data", str(src), "--out", str(tmp_path / "r2"), "-s", "2",
                          "--config", "tiny", "--per-band-steps"])
    assert r.exit_code != 0 and "--per-band-steps applies to mulsr, ifmsr, not toy" in r.output


def test_train_choices_come_from_the_registry():
    from geohsr.methods import trainable

    r = CliRunner().invoke(main, ["train", "--help"])
    assert r.exit_code == 0

    names = [s.name for s in trainable()]
    assert names and "bicubic" not in names
    assert "{" + "|".join(names) + "}" in r.output


def test_catalogue_entries_belong_to_registered_methods():
    """Every shipped weights file is of a registered method, at a scale it runs, intact."""
    names = set(NAMES)
    for e in W.catalog():
        assert e["method"] in names, e["file"]
        for user in e.get("used_by", [e["method"]]):
            spec = geohsr.get_method(user)
            assert spec.scales is None or int(e["scale"]) in spec.scales, (e["file"], user)
        assert W.sha256(W.models_dir() / e["file"]) == e["sha256"], e["file"]
        if e.get("config") in geohsr.get_method(e["method"]).configs:
            continue
        pytest.fail(f"{e['file']}: config {e.get('config')!r} is not in {e['method']}'s size table")
