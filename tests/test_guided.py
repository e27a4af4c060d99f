"""RGB-guided methods (MulSR, IFMSR): guide windows, blending, training, the pipeline."""

import json

import dask.array as dsa
import numpy as np
import pytest
import torch
import xarray as xr
from affine import Affine

import geohsr
from geohsr import degrade, geo
from geohsr import weights as W
from geohsr.guide import GuideSource, align_guide
from geohsr.tiling import tiled_map

from conftest import train_then_init

UTM = "EPSG:32633"


def _pair(h=24, w=28, s=4, bands=6, seed=0):
    from conftest import smooth_field

    hr = smooth_field(bands, h * s, w * s, seed=seed).astype(np.float32)
    lr = degrade.bicubic_down(hr, s).astype(np.float32)
    rgb = np.stack([hr[:2].mean(0), hr[2:4].mean(0), hr[4:].mean(0)]).astype(np.float32)
    t = Affine(8.0, 0, 365000, 0, -8.0, 5807000)
    cube = geo.with_grid(xr.DataArray(lr, dims=("band", "y", "x"),
                                      coords={"wavelength": ("band", np.linspace(450, 650, bands))}), t, UTM)
    guide = geo.with_grid(xr.DataArray(rgb, dims=("band", "y", "x")), geo.hr_transform(t, s), UTM)
    return cube, guide, hr


def _tiny_weights(tmp_path, method, scale=4):
    spec = geohsr.get_method(method)

    torch.manual_seed(0)
    cfg = dict(spec.configs["tiny"].arch)
    model = spec.build_net(scale, cfg)
    path = tmp_path / f"{method}.safetensors"
    W.save(model.state_dict(), path, {"method": method, "scale": scale, "config": cfg})
    return str(path)


def test_cie_response_is_a_plausible_camera():
    wl = np.arange(400.0, 701.0, 10.0)
    p = degrade.cie_rgb_response(wl)
    assert p.shape == (3, 31) and (p >= 0).all()
    np.testing.assert_allclose(p.sum(1), 1.0)
    peaks = wl[p.argmax(1)]
    assert peaks[0] > 580 and 500 < peaks[1] < 580 and peaks[2] < 480  # R, G, B
    with pytest.raises(ValueError, match="visible"):
        degrade.cie_rgb_response(np.linspace(1000, 2000, 10))


def test_guided_test_degradation_is_seeded_and_shaped():
    hr = np.random.default_rng(0).random((3, 48, 48)).astype(np.float32)
    a = degrade.guided_test_degradation(hr, 4, np.random.default_rng(1))
    b = degrade.guided_test_degradation(hr, 4, np.random.default_rng(1))
    assert a.shape == (3, 12, 12) and 0 <= a.min() and a.max() <= 1
    np.testing.assert_array_equal(a, b)


def test_guide_windows_match_the_whole_alignment(tmp_path):
    cube, guide, _ = _pair()
    path = tmp_path / "g.tif"
    guide.rio.to_raster(path)
    whole = align_guide(guide, cube, 4).values
    for g in (guide, str(path)):
        src = GuideSource(g, cube, 4)
        assert (src.path is not None) == isinstance(g, str)
        win = src.window(10, 20, 30, 40)
        np.testing.assert_allclose(win, whole[:, 10:40, 20:60], atol=1e-6)


def test_blending_weights_sum_to_one_and_tiles_agree():
    """Blended tiling of a function that is the same in every tile reproduces it exactly."""
    x = np.random.default_rng(0).random((2, 40, 52)).astype(np.float32)
    data = dsa.from_array(x, chunks=(2, 10, 13))

    def up(block, *, sides, origin):
        y = np.repeat(np.repeat(block, 2, 1), 2, 2)
        t, b, l, r = (v * 2 for v in sides)
        return y[:, t:y.shape[1] - b, l:y.shape[2] - r]

    out = tiled_map(data, up, 2, 5, np.float32, blend=True).compute()
    np.testing.assert_allclose(out, np.repeat(np.repeat(x, 2, 1), 2, 2), rtol=1e-6)

    def origin_of(block, *, sides, origin):  # each tile writes its window origin: ramps visible
        return np.full((1, block.shape[1] * 2, block.shape[2] * 2), origin[0] + 1000 * origin[1],
                       np.float32)[:, sides[0] * 2:block.shape[1] * 2 - sides[1] * 2,
                                   sides[2] * 2:block.shape[2] * 2 - sides[3] * 2]

    o = tiled_map(dsa.from_array(x[:1], chunks=(1, 20, 52)), origin_of, 2, 4, np.float32,
                  blend=True).compute()[0]
    assert o[0, 0] == 0 and o[-1, 0] == 16  # 2nd tile starts at row 20 − halo 4
    assert 0 < o[40, 0] < 16  # the seam is a cross-fade


@pytest.mark.parametrize("method", ["mulsr", "ifmsr"])
def test_guided_pipeline_keeps_geometry_and_tiles_agree(tmp_path, method):
    cube, guide, _ = _pair()
    w = _tiny_weights(tmp_path, method)
    hr = geohsr.superresolve(cube, method, 4, guide=guide, weights=w)
    assert hr.shape == (6, 96, 112) and hr.rio.crs == cube.rio.crs
    assert tuple(hr.rio.transform()) == pytest.approx(tuple(geo.hr_transform(cube.rio.transform(), 4)))
    np.testing.assert_allclose(hr.wavelength.values, cube.wavelength.values)
    assert np.isfinite(hr.values).all()
    tiled = geohsr.superresolve(cube.chunk({"y": 12, "x": 14}), method, 4, guide=guide, weights=w)
    d = tiled.compute().values - hr.values
    rng = float(hr.values.max() - hr.values.min())
    assert 10 * np.log10(rng ** 2 / max(float((d ** 2).mean()), 1e-30)) > 30


@pytest.mark.parametrize("method,s", [("ifmsr", 5), ("ifmsr", 6), ("mulsr", 6)])
def test_guided_networks_run_at_sensor_ratios(tmp_path, method, s):
    """IFMSR has no scale-bound layer (nearest ×s upsampling, MCPA patches of 3s): ×5 and ×6 run.
    MulSR's branches work at s/2 and s, joined by ×2 steps: any even scale, so ×6 (PRISMA's
    30 m with its 5 m pan) runs too. Both keep the geometry."""
    cube, guide, _ = _pair(h=12, w=14, s=s)
    w = _tiny_weights(tmp_path, method, scale=s)
    hr = geohsr.superresolve(cube, method, s, guide=guide, weights=w)
    assert hr.shape == (6, 12 * s, 14 * s) and np.isfinite(hr.values).all()
    assert tuple(hr.rio.transform()) == pytest.approx(tuple(geo.hr_transform(cube.rio.transform(), s)))


def test_guided_methods_need_a_guide_and_refuse_a_partial_one(tmp_path):
    cube, guide, _ = _pair()
    w = _tiny_weights(tmp_path, "mulsr")
    with pytest.raises(geohsr.MethodError, match="needs an HR guide"):
        geohsr.superresolve(cube, "mulsr", 4, weights=w)
    with pytest.raises(geohsr.InputError, match="covers only"):
        geohsr.superresolve(cube, "mulsr", 4, guide=guide.isel(x=slice(0, 50)), weights=w)
    with pytest.raises(geohsr.MethodError, match="scale must be even .*use ifmsr"):
        geohsr.superresolve(cube, "mulsr", 3, guide=guide, weights=w)
    with pytest.raises(geohsr.WeightsError, match="for ×4, not ×2"):
        geohsr.superresolve(cube, "mulsr", 2, guide=guide, weights=w)


def test_cli_run_with_a_guide_streams(tmp_path):
    from click.testing import CliRunner

    from geohsr.cli import main

    cube, guide, _ = _pair()
    src, g = tmp_path / "lr.tif", tmp_path / "rgb.tif"
    cube.rio.to_raster(src)
    guide.rio.to_raster(g)
    w = _tiny_weights(tmp_path, "ifmsr")
    out = tmp_path / "hr.tif"
    r = CliRunner().invoke(main, ["run", str(src), "--scale", "4", "--method", "ifmsr", "--guide", str(g),
                                  "--weights", w, "-o", str(out), "-q"])
    assert r.exit_code == 0, r.output
    ref = geohsr.superresolve(geohsr.open_cube(src), "ifmsr", 4, guide=str(g), weights=w)
    got = geohsr.open_cube(out).values
    np.testing.assert_allclose(got, ref.values, atol=1e-5)


def test_guided_training_cli_writes_a_card(tmp_path, make_raster):
    from click.testing import CliRunner

    from geohsr.cli import main

    d = tmp_path / "scenes"
    d.mkdir()
    for i in range(2):
        make_raster(name=f"scenes/s{i}.tif", bands=8, h=64, w=64, seed=i,
                    wavelengths=list(np.linspace(410, 690, 8)))
    r = CliRunner().invoke(main, ["train", "mulsr", "--data", str(d), "--scale", "4", "--out",
                                  str(tmp_path / "run"), "--config", "tiny", "--batches", "2",
                                  "--val-every", "2", "--batch", "2", "-q", "--device", "cpu",
                                  "--guide-perturb", "0.5"])
    assert r.exit_code == 0, r.output
    card = json.loads((tmp_path / "run" / "card.json").read_text())
    assert card["method"] == "mulsr" and card["architecture"]["n_sge"] == 1
    assert "random band" in card["recipe"]["steps"]
    assert "50% of the samples with a real-guide perturbation" in card["recipe"]["rgb"]
    meta = W.read_metadata(tmp_path / "run" / "best.safetensors")
    assert meta["rgb_response"] == "cie1931-srgb"


def test_guide_and_scene_without_crs(tmp_path):
    """No CRS on either side (e.g. the Landsat-7 MS + pan pairs): the guide must be exactly
    the HR grid, and then it is used as is."""
    cube, guide, _ = _pair()
    cube = geo.with_grid(cube.copy(), Affine(4.0, 0, 0, 0, -4.0, 0), None)
    pan = guide.isel(band=[0])
    pan = geo.with_grid(pan.copy(), geo.hr_transform(Affine(4.0, 0, 0, 0, -4.0, 0), 4), None)
    al = align_guide(pan, cube, 4)
    lo, hi = min(0.0, float(pan.values.min())), float(np.percentile(pan.values, 99.9))
    ref = (pan.values[0] - lo) / (hi - lo)  # the guide's own pixels, only normalised
    np.testing.assert_allclose(al.values[0], np.clip(ref, 0, 1), rtol=1e-3, atol=1e-3)
    w = _tiny_weights(tmp_path, "ifmsr")
    hr = geohsr.superresolve(cube, "ifmsr", 4, guide=pan, weights=w)
    assert hr.shape == (6, 96, 112) and hr.rio.crs is None and np.isfinite(hr.values).all()
    with pytest.raises(geohsr.InputError, match="exactly"):
        geohsr.superresolve(cube, "ifmsr", 4, guide=pan.isel(x=slice(0, 50)), weights=w)


def test_training_can_start_from_other_weights(tmp_path, make_raster):
    """``geohsr train --init``: a ×4 model starts a ×8 run (the guided networks' weights do not
    depend on the scale); the card names the start; weights of another method are refused."""
    from click.testing import CliRunner

    from geohsr.cli import main

    d = tmp_path / "scenes"
    d.mkdir()
    for i in range(2):
        make_raster(name=f"scenes/s{i}.tif", bands=8, h=64, w=64, seed=i,
                    wavelengths=list(np.linspace(410, 690, 8)))
    start, card, common = train_then_init(tmp_path, "mulsr", d, (4, 8))
    assert card["initialised_from"]["sha256"] == W.sha256(start) and card["scale"] == 8
    assert "--init" in card["command"]
    t0, _ = W.load(start)
    t1, _ = W.load(tmp_path / "x8" / "best.safetensors")  # no step taken: the start itself
    assert t0.keys() == t1.keys() and all(torch.equal(t0[k], t1[k]) for k in t0)
    r = CliRunner().invoke(main, ["train", "ifmsr", "--scale", "4", "--out", str(tmp_path / "bad"),
                                  "--batches", "1", "--init", str(start), *common])
    assert r.exit_code != 0 and "do not fit" in r.output and "Traceback" not in r.output


def test_perturbed_guides_differ_like_another_sensor():
    """Robust training: a perturbed guide is the patch seen by another response, shifted by up to
    half an LR pixel, with another brightness and noise; three channels, finite."""
    from geohsr import degrade
    from geohsr.train.data import perturbed_guide

    rng = np.random.default_rng(0)
    wl = np.linspace(400, 700, 31)
    hr = np.random.default_rng(1).random((31, 48, 48)).astype(np.float32)
    nominal = degrade.project(hr, degrade.cie_rgb_response(wl))
    outs = [perturbed_guide(hr, wl, degrade.cie_rgb_response(wl), 4, rng) for _ in range(12)]
    assert all(o.shape == (3, 48, 48) and np.isfinite(o).all() for o in outs)
    pan_like = [o for o in outs if np.allclose(o[0] - o[1], 0, atol=0.2) and np.allclose(o[1] - o[2], 0, atol=0.2)]
    assert pan_like  # some are a broad band repeated in all channels (what a pan guide gives)
    assert all(not np.allclose(o, nominal / np.percentile(nominal, 99.9), atol=1e-3) for o in outs)


def test_an_rgb_guide_is_used_only_for_the_bands_it_informs():
    """VNIR scene + RGB guide with band wavelengths: bands within 150 nm of a guide band take the
    guided network, the others CoarSR ×4 (the unguided network), and a warning says which."""
    from conftest import smooth_field

    s, wl = 4, np.linspace(420, 1000, 12)
    hr = smooth_field(12, 96, 112, seed=3).astype(np.float32)
    lr = degrade.bicubic_down(hr, s).astype(np.float32)
    t = Affine(30.0, 0, 365000, 0, -30.0, 5807000)
    cube = geo.with_grid(xr.DataArray(lr, dims=("band", "y", "x"), coords={"wavelength": ("band", wl)}), t, UTM)
    rgb = np.stack([hr[4], hr[2], hr[0]]) / hr.max()
    guide = geo.with_grid(xr.DataArray(rgb, dims=("band", "y", "x"),
                                       coords={"wavelength": ("band", [610.0, 550.0, 465.0])}),
                          geo.hr_transform(t, s), UTM)
    with pytest.warns(UserWarning, match=r"ifmsr: the guide informs 7 of 12 bands, 1–7 \(420–736 nm\), by the "
                                         r"guide's and the scene's band wavelengths.*the other 5 come from CoarSR ×4"):
        out = geohsr.superresolve(cube, "ifmsr", s, guide=guide, coregister=False).values
    unguided = geohsr.superresolve(cube, "coarsr", s).values
    np.testing.assert_allclose(out[7:], unguided[7:], rtol=0, atol=1e-4 * float(np.ptp(unguided)))
    assert np.abs(out[:7] - unguided[:7]).max() > 1e-3 * float(np.ptp(unguided))  # the guided bands differ
