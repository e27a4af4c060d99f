"""SNLSR / A-SNLSR: layers, losses, gradient reversal, the band grid, training and the pipeline."""

import json

import numpy as np
import pytest
import torch
import xarray as xr
from affine import Affine

import geohsr
from geohsr import degrade, geo
from geohsr import weights as W
from geohsr.methods.snlsr.config import ASNLSR_CONFIGS
from geohsr.methods.snlsr.net import (SNLSR, DomainDiscriminator, SNLSRConfig, grad_reverse,
                               snlsr_loss)
from geohsr.errors import InputError
from geohsr.train.data import Scene


def test_gradient_reversal_flips_the_sign_with_factor_alpha():
    x = torch.randn(3, 4, requires_grad=True)
    grad_reverse(x, 0.25).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), -0.25)
    y = torch.randn(2, 16, 8, 8, requires_grad=True)
    d = DomainDiscriminator(16)
    out = d(y)
    assert out.shape == (2, 2)
    # the discriminator's own parameters get the ordinary gradient, the input the reversed one
    y2 = y.detach().clone().requires_grad_(True)
    d.eval()
    d(y2, alpha=0.0).sum().backward()
    assert float(y2.grad.abs().max()) == 0.0


def test_snlsr_shapes_parameters_and_abundances():
    cfg = SNLSRConfig(bands=30, **ASNLSR_CONFIGS["paper"].arch)
    net = SNLSR(4, cfg)
    assert abs(sum(p.numel() for p in net.parameters()) - 1.17e6) < 0.01e6  # methods.md §6.2
    assert abs(sum(p.numel() for p in DomainDiscriminator(16).parameters()) - 7.1e3) < 0.1e3
    tiny = SNLSR(2, SNLSRConfig(bands=7, **ASNLSR_CONFIGS["tiny"].arch))
    sr, rec, a = tiny(torch.rand(2, 7, 9, 11))
    assert sr.shape == (2, 7, 18, 22) and rec.shape == (2, 7, 9, 11) and a.shape == (2, 4, 9, 11)
    np.testing.assert_allclose(a.sum(1).detach().numpy(), 1.0, atol=1e-5)
    assert (a >= 0).all() and tiny.endmembers.bias is None
    for s in (4, 8):
        assert SNLSR(s, SNLSRConfig(bands=3, **ASNLSR_CONFIGS["tiny"].arch))(torch.rand(1, 3, 8, 8))[0].shape[-1] == 8 * s
    l4 = snlsr_loss(sr, torch.rand_like(sr), rec, torch.rand(2, 7, 9, 11))
    l1 = snlsr_loss(sr, torch.rand_like(sr), rec, torch.rand(2, 7, 9, 11), l1_only=True)
    assert l4.item() > l1.item() > 0


def _scenes(n=2, h=72, w=72):
    from conftest import smooth_field

    wl = np.arange(950.0, 2480.0, 10.0)
    return [Scene(f"s{i}", (smooth_field(wl.size, h, w, seed=i) * 0.5).astype(np.float32), wl)
            for i in range(n)]


def _task(method="a-snlsr", **kw):
    from geohsr.methods.snlsr.train import SWIRTask

    sc = _scenes()
    return SWIRTask(method, sc, sc, 4, config="tiny", hr_crop=32, **kw)


def test_sr_loss_uses_source_samples_only():
    task = _task()
    batch = task.sample(np.random.default_rng(0), 4)
    lr, hr, dom, ns = batch
    assert lr.shape[0] == 4 and hr.shape[0] == ns == 2 and dom.tolist() == [0, 0, 1, 1]
    lr.requires_grad_(True)
    terms = task.losses((lr, hr, dom, ns))
    g, = torch.autograd.grad(terms["sr_l1"] + terms["sam"] * 0, lr, retain_graph=True, allow_unused=True)
    assert float(g[2:].abs().max()) == 0.0 and float(g[:2].abs().max()) > 0
    g2, = torch.autograd.grad(terms["unmix_l1"] + terms["domain_ce"], lr)
    assert float(g2[2:].abs().max()) > 0  # target samples train unmixing + domain terms
    snl = _task("snlsr")
    assert snl.sample(np.random.default_rng(0), 4)[0].shape[0] == 4 and "domain_ce" not in snl.losses(
        snl.sample(np.random.default_rng(0), 4))


def test_sam_loss_on_reflectance_ignores_a_brightness_change():
    """--sam-domain linear: a per-pixel constant added in the log domain (a brightness scale of
    the reflectance) costs no SAM; the papers' log-domain SAM charges it. Weight applies."""
    for domain, weight in (("linear", 1.0), ("log", 0.5)):
        task = _task("snlsr", sam_domain=domain, sam_weight=weight)
        lr, hr, dom, ns = task.sample(np.random.default_rng(0), 2)
        shift = torch.rand(1, 1, *hr.shape[2:]) * 0.2
        lr_shift = torch.rand(1, 1, *lr.shape[2:]) * 0.2
        task.model.net.forward = lambda x, hr=hr, shift=shift, s2=lr_shift: (hr + shift, x + s2, None)
        sam = float(task.losses((lr, hr, dom, ns))["sam"])
        if domain == "linear":
            assert sam < 2e-3
        else:
            assert sam > 0.01
            task.sam_weight = 1.0
            assert float(task.losses((lr, hr, dom, ns))["sam"]) == pytest.approx(2 * sam, rel=1e-5)
    with pytest.raises(InputError, match="use log"):
        _task("snlsr", sam_domain="cosine")


def test_spectral_grid_and_resampling():
    c, fwhm = degrade.spectral_grid(1000, 1700)
    assert c.size == 30 and not ((c >= 1310) & (c <= 1550)).any()
    c2, _ = degrade.spectral_grid(1700, 2500)
    assert c2.size == 30 and not ((c2 >= 1800) & (c2 <= 1980)).any()
    assert degrade.spectral_grid(1700.46, 2458.71)[0].size == 30  # a range where n jumps past 30
    wl = np.arange(900.0, 2600.0, 10.0)
    m = degrade.resample_matrix(wl, c2, fwhm)
    np.testing.assert_allclose(m.sum(1), 1.0)
    flat = np.full((wl.size, 2, 2), 0.3)
    np.testing.assert_allclose(np.tensordot(m, flat, axes=(1, 0)), 0.3)
    with pytest.raises(ValueError, match="no input band"):
        degrade.resample_matrix(np.arange(400.0, 1000.0, 10.0), c2, fwhm)


def test_fenix_cube_resamples_onto_the_swir2_grid():
    from conftest import shared_or_skip

    path = shared_or_skip("fenix", "image.hdr")
    cube = geohsr.open_cube(path)
    grid = {"wavelength": degrade.spectral_grid(1700, 2450)[0].tolist(),
            "fwhm": degrade.spectral_grid(1700, 2450)[1]}
    from geohsr.engine import resample_to_grid

    out = resample_to_grid(cube, grid)
    assert out.shape == (30,) + cube.shape[1:]
    np.testing.assert_allclose(out.wavelength.values, grid["wavelength"])
    wl = cube.wavelength.values
    x = cube.values.astype(np.float64)
    for k in (0, 12, 29):  # every output band is a convex combination of nearby input bands
        near = np.abs(wl - grid["wavelength"][k]) <= 1.5 * grid["fwhm"]
        lo, hi = x[near].min(0), x[near].max(0)
        v = out.values[k]
        nod = (x[near] == cube.rio.nodata).any(0)  # FENIX marks empty pixels with nodata 0
        assert np.isnan(v[nod]).all() and np.isfinite(v[~nod]).all()
        assert (v[~nod] >= lo[~nod] - 1e-3).all() and (v[~nod] <= hi[~nod] + 1e-3).all()


def _weights(tmp_path, method="a-snlsr"):
    task = _task(method)
    path = tmp_path / f"{method}.safetensors"
    W.save(task.model.state_dict(), path, task.metadata())
    return str(path), task


def _cube(bands_nm, h=20, w=24, nodata=None):
    from conftest import smooth_field

    data = (smooth_field(len(bands_nm), h, w, seed=3) * 5000).astype(np.int16)
    t = Affine(30, 0, 365000, 0, -30, 5807000)
    da = xr.DataArray(data, dims=("band", "y", "x"),
                      coords={"band": np.arange(1, len(bands_nm) + 1), "wavelength": ("band", bands_nm),
                              "good_band": ("band", np.ones(len(bands_nm), np.int8))})
    da = geo.with_grid(da, t, "EPSG:32633")
    return da.rio.write_nodata(nodata, encoded=False) if nodata is not None else da


def test_asnlsr_pipeline_returns_the_model_bands(tmp_path):
    w, task = _weights(tmp_path)
    cube = _cube(np.arange(400.0, 2500.0, 12.0), nodata=-32768)
    cube.values[:, 3, 4] = -32768
    hr = geohsr.superresolve(cube, "a-snlsr", 4, weights=w)
    assert hr.shape == (30, 80, 96) and hr.dtype == np.int16 and hr.rio.crs == cube.rio.crs
    np.testing.assert_allclose(hr.wavelength.values, task.centres, atol=1e-3)
    assert (hr.values[:, 12:16, 16:20] == -32768).all() and (hr.values[:, 40] != -32768).all()
    tiled = geohsr.superresolve(cube.chunk({"y": 10, "x": 12}), "a-snlsr", 4, weights=w).compute()
    d = tiled.values.astype(np.float64) - hr.values
    assert np.sqrt((d[:, 40:] ** 2).mean()) < 0.02 * float(hr.values.max())
    with pytest.raises(geohsr.InputError, match="does not cover"):
        geohsr.superresolve(_cube(np.arange(400.0, 1000.0, 10.0)), "a-snlsr", 4, weights=w)
    nowl = _cube(np.arange(400.0, 2500.0, 12.0)).assign_coords(wavelength=("band", np.full(175, np.nan)))
    with pytest.raises(geohsr.InputError, match="wavelengths"):
        geohsr.superresolve(nowl, "a-snlsr", 4, weights=w)


def test_swir_training_cli(tmp_path, make_raster):
    from click.testing import CliRunner

    from geohsr.cli import main

    wl = list(np.arange(950.0, 2480.0, 15.0))
    a, _ = make_raster(name="a.tif", bands=len(wl), h=60, w=60, wavelengths=wl, fwhm=[12.0] * len(wl))
    b, _ = make_raster(name="b.tif", bands=len(wl), h=60, w=60, seed=1, wavelengths=wl,
                       fwhm=[12.0] * len(wl))
    out = tmp_path / "run"
    r = CliRunner().invoke(main, ["train", "a-snlsr", "--source", str(a), "--target", str(b), "--scale", "4",
                                  "--out", str(out), "--config", "tiny", "--batches", "2", "--batch", "2",
                                  "--val-every", "2", "--alpha-rampup", "5", "--crop", "32", "-q", "--device", "cpu"])
    assert r.exit_code == 0, r.output
    card = json.loads((out / "card.json").read_text())
    assert card["method"] == "a-snlsr" and len(card["wavelength"]) == 30
    assert "--target" in card["command"] and "target_psnr" in card["held_out"]
    r = CliRunner().invoke(main, ["train", "a-snlsr", "--source", str(a), "--scale", "4", "--out",
                                  str(tmp_path / "r2")])
    assert r.exit_code != 0 and "--target" in r.output


def test_endmembers_start_from_training_pixels():
    """The default start: every endmember is an LR training pixel spectrum (A-SNLSR: half from
    the source range, half from the target range), so the decoder reconstructs at the data's
    magnitude from the first step (a random start collapsed the abundances)."""
    task = _task()
    e = task.model.net.endmembers.weight[:, :, 0, 0].detach()  # (C, m)
    m = task.cfg.materials
    rng = np.random.default_rng(5)
    lr, _, dom, _ = task.sample(rng, 8)
    src = lr[dom == 0].permute(1, 0, 2, 3).reshape(lr.shape[1], -1)
    lo, hi = float(src.min()), float(src.max())
    assert float(e.min()) >= lo - 0.2 and float(e.max()) <= hi + 0.2  # data values, not N(0, ·)
    assert torch.linalg.matrix_rank(e) == min(e.shape)  # distinct spectra
    again = _task()
    assert torch.equal(again.model.net.endmembers.weight, task.model.net.endmembers.weight)  # seeded
    rand = _task(endmember_init="random")
    assert not torch.equal(rand.model.net.endmembers.weight, task.model.net.endmembers.weight)
    # reconstruction error at the start: pixel endmembers are far closer than random ones
    batch = task.sample(np.random.default_rng(0), 4)
    with torch.no_grad():
        assert task.losses(batch)["unmix_l1"] < 0.5 * rand.losses(batch)["unmix_l1"]
    assert m == e.shape[1]
    with pytest.raises(geohsr.InputError, match="endmember init"):
        _task(endmember_init="kmeans")


def test_abu_scene_reader_places_bands_by_the_published_lists(tmp_path):
    from scipy.io import savemat

    from geohsr.errors import InputError
    from geohsr.train.data import load_spectral_scenes

    rng = np.random.default_rng(0)
    savemat(tmp_path / "hydice.mat", {"data": rng.integers(-5, 900, (6, 7, 162)).astype(np.int16),
                                      "map": np.zeros((6, 7))})
    (s,) = load_spectral_scenes(tmp_path / "hydice.mat")
    assert s.cube.shape == (162, 6, 7) and s.cube.min() >= 0 and s.cube.max() == pytest.approx(1.0)
    grid = np.linspace(400, 2500, 210)
    # HYDICE Urban keeps bands 5-75, 77-86, 88-100, 112-135, 154-197 (1-based)
    np.testing.assert_allclose(s.wavelength[[0, 70, 71, 161]], grid[[4, 74, 76, 196]])
    savemat(tmp_path / "hydice_crop.mat", {"data": np.zeros((4, 4, 162), np.int16)})
    with pytest.raises(InputError, match="no published list of its removed bands"):
        load_spectral_scenes(tmp_path / "hydice_crop.mat")
    savemat(tmp_path / "hydice.mat", {"data": np.ones((4, 4, 170), np.int16)})
    with pytest.raises(InputError, match="170 bands, but its published band list keeps 162"):
        load_spectral_scenes(tmp_path / "hydice.mat")


def test_abu_san_diego_on_the_aviris_grid():
    from conftest import shared_or_skip

    from geohsr.methods.snlsr.train import domain_cubes
    from geohsr.train.data import load_spectral_scenes

    (s,) = load_spectral_scenes(shared_or_skip("aviris_abu", "sandiego.mat"))
    assert s.cube.shape == (189, 100, 100)
    assert 440 < s.wavelength[0] < 443 and 2455 < s.wavelength[-1] < 2470
    # the removed bands are the water-vapour windows around 1380 and 1870 nm
    assert not ((s.wavelength > 1345) & (s.wavelength < 1420)).any()
    assert not ((s.wavelength > 1805) & (s.wavelength < 1935)).any()
    for lo, hi in ((1000.0, 1700.0), (1700.0, 2500.0)):
        (d,), centres, _ = domain_cubes([s], lo, hi)
        assert d.train.shape == (30, 67, 100) and np.isfinite(d.train).all()
