import numpy as np
import pytest
import torch
import xarray as xr
from affine import Affine

import geohsr
from geohsr import geo, metrics
from geohsr import weights as W
from geohsr.errors import WeightsError
from geohsr.methods.dualsr import HALO, fine_stage
from geohsr.methods.dualsr.config import CONFIGS as _SIZES
from geohsr.methods.dualsr.config import receptive_field
from geohsr.methods.dualsr.net import CoarSR, CoarSRConfig, neighbour_indices
from geohsr.nn import fuse_weight_norm
from geohsr.resize import imresize

CONFIGS = {k: v.arch for k, v in _SIZES.items()}  # the network sizes


def _tiny_weights(tmp_path, scale, seed=0, config="tiny"):
    torch.manual_seed(seed)
    m = CoarSR(scale, CONFIGS[config])
    for p in m.parameters():  # make the random model do something non-trivial
        p.data.mul_(1.5)
    path = tmp_path / f"coarsr_x{scale}.safetensors"
    W.save(m.state_dict(), path, {"method": "coarsr", "scale": scale, "config": CONFIGS[config].to_dict()})
    return path


def _cube(bands=7, h=30, w=26, seed=0, nodata=None):
    from conftest import smooth_field

    da = xr.DataArray(smooth_field(bands, h, w, seed).astype("float32") * 1000, dims=("band", "y", "x"))
    da = geo.with_grid(da, Affine(30, 0, 0, 0, -30, 0), "EPSG:32633")
    return da.rio.write_nodata(nodata, encoded=False) if nodata is not None else da


def test_parameter_counts_match_the_spec():
    # methods.md §2.1: 2.240/2.425/2.388/2.536 M with the spurious BN (about 6 k more)
    for s, ref in ((2, 2.240e6), (3, 2.425e6), (4, 2.388e6), (8, 2.536e6)):
        n = sum(p.numel() for p in CoarSR(s).parameters())
        assert 0 < ref - n < 7e3
        nbn = sum(p.numel() for p in CoarSR(s, CoarSRConfig(bn=True)).parameters())
        assert abs(nbn - ref) < 1.5e3


@pytest.mark.parametrize("scale", [2, 3, 4, 5, 6, 8])
@pytest.mark.parametrize("h,w", [(5, 7), (8, 8)])
def test_shapes_every_scale_and_odd_sizes(scale, h, w):
    m = CoarSR(scale, CONFIGS["tiny"]).eval()
    lr = torch.rand(2, 6, h, w)
    bic = imresize(lr, scale=scale)
    with torch.inference_mode():
        out = m.forward_cube(lr, bic)
    assert out.shape == (2, 6, h * scale, w * scale)


def test_neighbour_rule_and_bug_flag():
    assert neighbour_indices(0, 10) == ((1, 2), (3, 4))
    assert neighbour_indices(1, 10) == ((0, 2), (3, 4))
    assert neighbour_indices(5, 10) == ((4, 6), (3, 7))
    assert neighbour_indices(8, 10) == ((7, 9), (5, 6))
    assert neighbour_indices(9, 10) == ((8, 7), (6, 5))
    assert neighbour_indices(5, 10, bug=True) == ((1, 2), (3, 4))
    # fewer than 5 bands: clamp into range; one band uses itself everywhere
    assert neighbour_indices(0, 1) == ((0, 0), (0, 0))
    assert neighbour_indices(2, 3) == ((1, 0), (0, 0))
    for n in range(1, 7):
        for i in range(n):
            for grp in neighbour_indices(i, n):
                assert all(0 <= k < n for k in grp)


@pytest.mark.parametrize("bands", [1, 2, 3, 4, 5, 9])
def test_any_band_count(bands):
    m = CoarSR(2, CONFIGS["tiny"]).eval()
    lr = torch.rand(1, bands, 6, 6)
    with torch.inference_mode():
        assert m.forward_cube(lr, imresize(lr, scale=2)).shape == (1, bands, 12, 12)


def test_recurrent_state_carries_information_forward_only():
    torch.manual_seed(0)
    m = CoarSR(2, CONFIGS["tiny"]).eval()
    lr = torch.rand(1, 8, 6, 6)
    bic = imresize(lr, scale=2)
    with torch.inference_mode():
        a = m.forward_cube(lr, bic)
        lr2 = lr.clone()
        lr2[:, 7] += 0.5  # change the last band only (outside the neighbour groups of band 0..4)
        b = m.forward_cube(lr2, imresize(lr2, scale=2))
    assert torch.allclose(a[:, :4], b[:, :4])  # earlier bands never see later ones (beyond groups)
    # the state makes band 0 influence the last band even though it is not a neighbour
    lr3 = lr.clone()
    lr3[:, 0] += 0.5
    with torch.inference_mode():
        c = m.forward_cube(lr3, imresize(lr3, scale=2))
    assert not torch.allclose(a[:, 7], c[:, 7])


def test_fine_stage_formula_by_hand():
    rng = np.random.default_rng(0)
    u = torch.from_numpy(rng.random((3, 16, 16)).astype(np.float64))
    v = torch.from_numpy(rng.random((3, 8, 8)).astype(np.float64))
    sr, lam = fine_stage(u, v)
    ud = imresize(u.numpy(), scale=0.5)
    sam = metrics.sam(ud, v.numpy())
    assert lam == pytest.approx(min(sam, 1.0))
    ref = u.numpy() + imresize(lam * (v.numpy() - ud), scale=2.0)
    np.testing.assert_allclose(sr.numpy(), ref, atol=1e-10)
    # a tiny angle gives λ < 1
    v2 = torch.from_numpy(ud) * 1.01 + 1e-3
    _, lam2 = fine_stage(u, v2)
    assert 0 < lam2 < 1


def test_dualsr_equals_fine_stage_of_coarsr_outputs(tmp_path):
    w4, w2 = _tiny_weights(tmp_path, 4, 0), _tiny_weights(tmp_path, 2, 1)
    cube = _cube()
    dual = geohsr.superresolve(cube, "dualsr", 4, weights=f"{w4},{w2}", dtype="float64").values
    norm = float(np.abs(cube.values).max())
    x = torch.from_numpy(cube.values / norm).float()
    from geohsr.methods.dualsr import coarse as _coarse, build_coarsr

    u = _coarse(build_coarsr(4, w4, torch.device("cpu")), x, 4)
    v = _coarse(build_coarsr(2, w2, torch.device("cpu")), x, 2)
    sr, _ = fine_stage(u.double(), v.double())
    np.testing.assert_allclose(dual, sr.numpy() * norm, rtol=2e-5, atol=2e-5 * norm)


@pytest.mark.parametrize("method,scale", [("coarsr", 2), ("coarsr", 3), ("dualsr", 4), ("dualsr", 6)])
def test_tiled_equals_whole(tmp_path, method, scale):
    ws = [_tiny_weights(tmp_path, scale)]
    if method == "dualsr":
        ws.append(_tiny_weights(tmp_path, scale // 2, 3))
    weights = ",".join(map(str, ws))
    cube = _cube(h=70, w=64, nodata=-1.0)
    v = cube.values.copy()
    v[:, 10:14, 5:9] = -1.0
    cube = cube.copy(data=v)
    whole = geohsr.superresolve(cube, method, scale, weights=weights).values
    tiled = geohsr.superresolve(cube.chunk({"y": 20, "x": 17}), method, scale, weights=weights).values
    np.testing.assert_array_equal(whole == -1.0, tiled == -1.0)
    ok = whole != -1.0
    rng_ = np.ptp(cube.values[cube.values != -1.0])
    assert np.abs(whole[ok] - tiled[ok]).max() <= 1e-5 * rng_
    assert (whole[:, 10 * scale:14 * scale, 5 * scale:9 * scale] == -1.0).all()


@pytest.mark.parametrize("config", ["tiny", "compact", "paper"])
def test_receptive_field_bounds_an_impulse(config):
    """A change at one LR pixel reaches HR pixels at most ``receptive_field`` LR px away (random
    weights, whole cube through the band recurrence); for the 1-block configs the bound is tight."""
    torch.manual_seed(0)
    cfg = CONFIGS[config]
    rf = receptive_field(cfg)
    for s in (2, 4, 8) if config != "paper" else (4,):
        m = fuse_weight_norm(CoarSR(s, cfg).eval()).double()
        n = 2 * rf + 9
        x = torch.rand(1, 4, n, n, dtype=torch.float64)
        x2 = x.clone()
        x2[0, 1, n // 2, n // 2] += 1.0
        with torch.inference_mode():
            a = m.forward_cube(x, imresize(x, scale=s, a=-0.5, antialias=False))
            b = m.forward_cube(x2, imresize(x2, scale=s, a=-0.5, antialias=False))
        ys, xs = np.nonzero(((a - b).abs().amax(dim=(0, 1)) > 1e-12).numpy())
        c = (n // 2 + 0.5) * s
        reach = max(np.abs(ys + 0.5 - c).max(), np.abs(xs + 0.5 - c).max()) / s  # LR px
        # LR pixels beyond the halo never touch an HR pixel inside the block
        assert np.floor(reach + 0.5 - 0.5 / s) <= rf, (config, s, reach)
        if config != "paper":
            assert reach > rf - 1, (config, s, reach)


def test_halo_follows_the_weights(tmp_path):
    spec = geohsr.get_method("dualsr")
    tiny = ",".join(str(_tiny_weights(tmp_path, s, s)) for s in (4, 2))
    assert spec.halo_of(4, tiny) == 10 + 2 + 2  # rf 10, U's resizes 8/4, nodata margin 2
    assert spec.halo_of(4, None) <= HALO == spec.halo
    assert geohsr.get_method("coarsr").halo_of(2, str(tmp_path / "coarsr_x2.safetensors")) == 12


def test_wrong_or_missing_weights(tmp_path):
    cube = _cube()
    w3 = _tiny_weights(tmp_path, 3)
    with pytest.raises(WeightsError, match="for ×3, not ×2"):
        geohsr.superresolve(cube, "coarsr", 2, weights=w3)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 100)
    with pytest.raises(WeightsError, match="not a valid safetensors"):
        geohsr.superresolve(cube, "coarsr", 2, weights=bad)
    pth = tmp_path / "x.pth"
    pth.write_bytes(b"PK pickle")
    with pytest.raises(WeightsError, match="only .safetensors"):
        geohsr.superresolve(cube.chunk({"y": 10}), "coarsr", 2, weights=pth)  # raised eagerly
    with pytest.raises(WeightsError, match="not found"):
        geohsr.superresolve(cube, "coarsr", 2, weights=tmp_path / "missing.safetensors")


def test_intergroup_2d_formulation_equals_3d():
    from geohsr.methods.dualsr.net import InterGroup

    torch.manual_seed(0)
    m = InterGroup(8).eval()
    v = [torch.rand(2, 8, 5, 6) for _ in range(3)]
    with torch.inference_mode():
        for a, b in zip(m(v), m.reference(v)):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_bad_bands_do_not_feed_the_recurrence(tmp_path):
    w4, w2 = _tiny_weights(tmp_path, 4, 0), _tiny_weights(tmp_path, 2, 1)
    cube = _cube(bands=7, nodata=-1.0)
    v = cube.values.copy()
    v[3] = -1.0  # an all-nodata band (EnMAP water vapour), flagged bad
    cube = cube.copy(data=v).assign_coords(good_band=("band", np.array([1, 1, 1, 0, 1, 1, 1], np.int8)))
    w = f"{w4},{w2}"
    full = geohsr.superresolve(cube, "dualsr", 4, weights=w).values
    without = geohsr.superresolve(cube.isel(band=[0, 1, 2, 4, 5, 6]), "dualsr", 4, weights=w).values
    assert (full[3] == -1.0).all()
    tol = 1e-5 * float(np.ptp(without))  # float rounding (thread counts change summation order)
    np.testing.assert_allclose(full[[0, 1, 2, 4, 5, 6]], without, rtol=1e-5, atol=tol)
    tiled = geohsr.superresolve(cube.chunk({"y": 12, "x": 13}), "dualsr", 4, weights=w).values
    np.testing.assert_allclose(tiled, full, rtol=1e-5, atol=tol)


def test_mixed_precision_inference(tmp_path):
    """precision="bf16"/"fp16" runs the network under autocast: close to fp32 but not equal
    (the arithmetic really changed), same grid and dtype; an unknown precision is refused."""
    from geohsr.errors import InputError

    w4, w2 = _tiny_weights(tmp_path, 4, 0), _tiny_weights(tmp_path, 2, 1)
    cube = _cube()
    ref = geohsr.superresolve(cube, "dualsr", 4, weights=f"{w4},{w2}")
    for p in ("bf16", "fp16"):
        out = geohsr.superresolve(cube, "dualsr", 4, weights=f"{w4},{w2}", precision=p)
        assert out.dtype == ref.dtype and out.rio.transform() == ref.rio.transform()
        peak = float(np.abs(ref.values).max())
        err = metrics.psnr(out.values / peak, ref.values / peak)
        assert 25 < err < 200, (p, err)
    with pytest.raises(InputError, match="use fp32, bf16 or fp16"):
        geohsr.superresolve(cube, "dualsr", 4, weights=f"{w4},{w2}", precision="int8")


def test_self_ensemble_averages_the_eight_flips_and_rotations(tmp_path):
    """ensemble=True: the output is the mean of the network's outputs on the 8 flipped/rotated
    copies of the input, each turned back (checked against doing it by hand on a non-square
    scene); the grid and dtype are kept, the product says so; the API, the streamed CLI and
    the tiled path agree; a method without a network refuses it."""
    from click.testing import CliRunner

    from geohsr.cli import main
    from geohsr.engine import _dihedral
    from geohsr.errors import MethodError

    w3 = _tiny_weights(tmp_path, 3)
    cube = _cube(h=22, w=17)
    ens = geohsr.superresolve(cube, "coarsr", 3, weights=w3, ensemble=True)
    assert ens.rio.transform() == geohsr.superresolve(cube, "bicubic", 3).rio.transform()
    assert ens.dtype == cube.dtype and "8 flips" in ens.attrs["geohsr_ensemble"]
    outs = []
    for k in range(8):
        t = _dihedral(torch.from_numpy(cube.values), k).numpy()
        c = geo.with_grid(xr.DataArray(np.ascontiguousarray(t), dims=("band", "y", "x")),
                          Affine(30, 0, 0, 0, -30, 0), "EPSG:32633")
        y = geohsr.superresolve(c, "coarsr", 3, weights=w3).values
        outs.append(_dihedral(torch.from_numpy(np.ascontiguousarray(y)), k, inverse=True).numpy())
    peak = float(np.abs(cube.values).max())
    np.testing.assert_allclose(ens.values, np.mean(outs, 0), atol=1e-5 * peak)
    assert np.abs(ens.values - outs[0]).max() > 1e-3 * peak  # it really changed the result
    tiled = geohsr.superresolve(cube.chunk({"y": 11, "x": 9}), "coarsr", 3, weights=w3, ensemble=True)
    np.testing.assert_allclose(tiled.values, ens.values, atol=1e-5 * peak)
    from conftest import write_raster

    src = write_raster(tmp_path / "scene.tif", cube.values)
    out = tmp_path / "ens.tif"
    r = CliRunner().invoke(main, ["run", str(src), "-s", "3", "-m", "coarsr", "--weights", str(w3),
                                  "--ensemble", "-o", str(out), "-q"])
    assert r.exit_code == 0, r.output
    written = geohsr.open_cube(out)
    assert "8 flips" in written.attrs["geohsr_ensemble"]
    np.testing.assert_allclose(written.values, ens.values, atol=1e-5 * peak)
    with pytest.raises(MethodError, match="bicubic has no network"):
        geohsr.superresolve(cube, "bicubic", 3, ensemble=True)
    r = CliRunner().invoke(main, ["run", str(src), "-s", "3", "-m", "bicubic", "--ensemble",
                                  "-o", str(tmp_path / "no.tif")])
    assert r.exit_code != 0 and "no network" in r.output and not (tmp_path / "no.tif").exists()
