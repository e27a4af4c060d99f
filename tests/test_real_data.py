"""Checks on the real EnMAP data in ../shared/data (skipped in a clone without it)."""

import numpy as np
import pytest

import geohsr
from conftest import shared_or_skip
from geohsr import weights as _W

# every shipped remote-sensing scale, read from the catalogue (a new file is tested without editing this)
RS_SCALES = sorted({int(e["scale"]) for e in _W.of_kind("remote sensing")})


def test_bundled_demo_scene_metadata():
    cube = geohsr.open_cube(geohsr.demo_scene_path())
    assert cube.shape == (224, 64, 128)
    assert cube.rio.crs.to_epsg() == 32633 and cube.rio.nodata == -32768
    assert cube.wavelength.values[0] == pytest.approx(418.24)
    assert np.flatnonzero(cube.good_band.values == 0).tolist() == list(range(129, 135))


def test_enmap_tile_superresolve_roundtrip(tmp_path):
    p = shared_or_skip("enmap_potsdam", "enmap_potsdam_tile_128_96.tif")
    cube = geohsr.open_cube(p, chunks={"y": 16, "x": 16})
    assert cube.shape == (224, 32, 32)
    hr = geohsr.superresolve(cube, scale=4)
    out = geohsr.save_cube(hr, tmp_path / "x4.tif")
    back = geohsr.open_cube(out)
    for c in ("wavelength", "fwhm", "good_band"):
        np.testing.assert_array_equal(back[c].values, cube[c].values)
    assert list(back.band_name.values) == list(cube.band_name.values)
    assert back.rio.bounds() == pytest.approx(cube.rio.bounds())
    assert back.rio.resolution() == pytest.approx((7.5, -7.5))
    v = back.values
    bad = cube.good_band.values == 0
    assert (v[bad] == -32768).all()            # water-vapour bands pass through as nodata
    assert (v[~bad] != -32768).mean() > 0.99   # the good bands are filled
    # block means of the x4 product reproduce the input closely (bicubic is near-interpolating)
    lr = cube.values[~bad].astype(np.float64)
    avg = v[~bad].reshape(-1, 32, 4, 32, 4).mean(axis=(2, 4))
    assert np.abs(avg - lr).mean() / np.abs(lr).mean() < 0.05


def test_readers_for_the_other_real_datasets():
    from geohsr.train.data import read_unmixing_mat

    j = read_unmixing_mat(shared_or_skip("jasper_ridge", "jasperRidge2_R198.mat"))
    assert j.cube.shape == (198, 100, 100) and 0 < j.cube.max() < 1
    # column-major storage: pixel (r, c) is column r + 100·c of Y
    from scipy.io import loadmat

    y = loadmat(str(shared_or_skip("jasper_ridge", "jasperRidge2_R198.mat")))["Y"] / 10000.0
    np.testing.assert_allclose(j.cube[:, 3, 7], y[:, 3 + 100 * 7], rtol=1e-6)
    s = read_unmixing_mat(shared_or_skip("samson", "samson_1.mat"))
    assert s.cube.shape == (156, 95, 95)
    f = geohsr.open_cube(shared_or_skip("fenix", "image.hdr"))
    assert f.shape == (450, 38, 23) and f.dtype == np.uint16
    assert f.wavelength.values[0] == pytest.approx(378.19) and f.rio.nodata == 0
    assert f.attrs["reflectance_scale_factor"] == 65535 and "Band_1" not in f.attrs


def test_spectral_domains_on_enmap():
    cube = geohsr.open_cube(geohsr.demo_scene_path())
    swir1 = geohsr.spectral_range(cube, 1000, 1700)
    swir2 = geohsr.spectral_range(cube, 1700, 2500)
    assert swir1.wavelength.min() >= 1000 and swir2.wavelength.max() <= 2500
    assert swir1.sizes["band"] + swir2.sizes["band"] + (cube.wavelength < 1000).sum() == 224
    with pytest.raises(geohsr.InputError, match="no band between"):
        geohsr.spectral_range(cube, 3000, 4000)


def test_shipped_weights_reproduce_their_card_on_one_scene():
    """The card's held-out PSNR on one CAVE validation scene is reproduced within 0.05 dB."""
    import xarray as xr
    from affine import Affine

    from geohsr import geo
    from geohsr import weights as W
    from geohsr.train.data import read_cave_scene

    entries = [e for e in W.of_kind("CAVE", "coarsr") if e.get("held_out_metrics", {}).get("per_scene")]
    if not entries:
        pytest.skip("no shipped weights with per-scene held-out metrics")
    e = max(entries, key=lambda e: e["scale"])  # the largest scale: the smallest LR, the quickest run
    scene, ref = next(iter(e["held_out_metrics"]["per_scene"].items()))
    sc = read_cave_scene(shared_or_skip("cave", scene))
    # a visible-only scene: geohsr picks the CAVE weights by itself
    da = geo.with_grid(xr.DataArray(sc.cube, dims=("band", "y", "x"), coords={"wavelength": ("band", sc.wavelength)}),
                       Affine(1, 0, 0, 0, -1, 0), None)
    rep = geohsr.evaluate(da, ["coarsr"], e["scale"], value_scale=1.0)
    assert rep.table.loc["coarsr", "psnr"] == pytest.approx(ref["coarsr"]["psnr"], abs=0.05)
    assert rep.table.loc["coarsr", "psnr"] > rep.table.loc["bicubic", "psnr"]


def test_shipped_guided_weights_reproduce_their_card():
    """MulSR/IFMSR: the card's PSNR on one CAVE validation crop (papers' test degradation,
    CIE RGB guide, through superresolve) is reproduced within 0.05 dB."""
    import xarray as xr
    from affine import Affine

    from geohsr import degrade, geo, metrics
    from geohsr import weights as W
    from geohsr.train.data import read_cave_scene

    entries = [e for e in W.catalog() if e["method"] in ("mulsr", "ifmsr")
               and e.get("held_out_metrics", {}).get("reproduce")]
    if not entries:
        pytest.skip("no shipped guided weights with a reproducible card number")
    for e in entries:
        r = e["held_out_metrics"]["reproduce"]
        sc = read_cave_scene(shared_or_skip("cave", r["scene"]))
        n, s = r["crop"], e["scale"]
        hr = sc.cube[:, :n, :n]
        lr = degrade.guided_test_degradation(hr, s, np.random.default_rng(0))
        rgb = degrade.project(hr, degrade.cie_rgb_response(sc.wavelength)).astype(np.float32)
        t = Affine(4.0 * s, 0, 500000, 0, -4.0 * s, 5800000)
        cube = geo.with_grid(xr.DataArray(lr, dims=("band", "y", "x")), t, "EPSG:32633")
        guide = geo.with_grid(xr.DataArray(rgb, dims=("band", "y", "x")), geo.hr_transform(t, s), "EPSG:32633")
        # the papers' protocol (an off-centre blur kernel shifts the LR by ~0.4 px on purpose) has
        # no co-registration, and the card numbers were measured that way
        out = geohsr.superresolve(cube, e["method"], s, guide=guide, coregister=False)
        assert metrics.psnr(np.clip(out.values, 0, 1), hr) == pytest.approx(r["psnr"], abs=0.05)


def test_shipped_swir_weights_reproduce_their_card():
    """SNLSR/A-SNLSR: the card's log-domain PSNR on one held-out region is reproduced."""
    import torch

    from geohsr import degrade, metrics
    from geohsr import weights as W
    from geohsr.methods.snlsr import build_swir
    from geohsr.methods.snlsr.train import default_psf, domain_cubes
    from geohsr.train.data import load_spectral_scenes
    from geohsr.transforms import to_log

    entries = [e for e in W.catalog() if e["method"] in ("snlsr", "a-snlsr")
               and e.get("held_out_metrics", {}).get("reproduce")]
    if not entries:
        pytest.skip("no shipped SWIR weights with a reproducible card number")
    scenes = load_spectral_scenes(shared_or_skip("indian_pines"))
    for e in entries:
        r = e["held_out_metrics"]["reproduce"]
        cubes, _, _ = domain_cubes(scenes, *e["range"], grid=(e["wavelength"], e["fwhm"]))
        hr = cubes[0].held_out
        h, w = hr.shape[1] // 4 * 4, hr.shape[2] // 4 * 4
        hr = hr[:, :h, :w]
        x = torch.from_numpy(to_log(degrade.psf_stride(hr, default_psf(shared_or_skip("psf", "asnlsr_psf_32x32.mat")), 4).astype(np.float32)))[None]
        with torch.inference_mode():
            y = build_swir(e["method"], 4, None, torch.device("cpu"))(x)[0][0].clamp(0, 1).numpy()
        hl = to_log(hr)
        assert metrics.psnr(y, hl, peak=float(hl.max() - hl.min())) == pytest.approx(r["psnr_log"], abs=0.05)


@pytest.mark.parametrize("scale", RS_SCALES)
def test_remote_sensing_weights_reproduce_their_card_and_are_picked_by_wavelength(scale):
    """The remote-sensing DualSR weights of each shipped scale: their card's test-scene PSNR on one
    test scene within 0.05 dB, picked by geohsr itself for a scene beyond the visible (at ×4, the
    CAVE ones for a visible one)."""
    from geohsr import degrade, metrics
    from geohsr import weights as W
    from geohsr.train.data import rs_scene

    e = W.find("coarsr", scale, kind="remote sensing")
    if e is None:
        pytest.skip(f"no shipped remote-sensing weights at ×{scale}")
    scene = "sandiego"
    sc = rs_scene(shared_or_skip(), scene)
    n = 100 // scale * scale  # the benchmark's crop: the whole 100-px scene cut to a multiple of s
    hr = sc.cube[:, :n, :n].astype(np.float32)
    lr = degrade.bicubic_down(hr, scale).astype(np.float32)
    import xarray as xr
    from affine import Affine

    from geohsr import geo

    cube = geo.with_grid(xr.DataArray(lr, dims=("band", "y", "x"), coords={"wavelength": ("band", sc.wavelength)}),
                         Affine(30, 0, 0, 0, -30, 0), "EPSG:32633")
    out = geohsr.superresolve(cube, "dualsr", scale, dtype="float32", clip="none")
    assert e["file"] in out.attrs["geohsr_weights"]
    from geohsr.methods import default_method

    assert default_method(scale) == "dualsr"  # `geohsr run -s N` (auto) takes them without a guide
    got = metrics.psnr(np.clip(out.values, 0, 1), hr)
    assert got == pytest.approx(e["held_out_metrics"]["per_scene"][scene]["dualsr_rs"], abs=0.05)
    if scale == 4:
        vis = cube.isel(band=np.flatnonzero(sc.wavelength < 700))
        assert "coarsr_x4_compact.safetensors" in geohsr.superresolve(vis, "coarsr", 4).attrs["geohsr_weights"]


def test_cave_weights_carry_test_numbers_from_scenes_that_chose_nothing():
    """The CAVE cards lead with test numbers on the remote-sensing test scenes (visible bands): one
    reproduced within 0.05 dB through geohsr's own pick for a visible-only scene; the card says
    which scenes chose the checkpoint."""
    import xarray as xr
    from affine import Affine

    from geohsr import degrade, geo, metrics
    from geohsr import weights as W
    from geohsr.train.data import rs_scene

    e = next(x for x in W.catalog() if x["file"] == "coarsr_x4_compact.safetensors")
    t = e["test_metrics"]["cuts"]["visible"]
    assert set(t["per_scene"]) <= {"indian_pines", "sandiego", "abu-urban-3", "enmap_a"}
    card = (W.models_dir() / "coarsr_x4_compact.md").read_text()
    assert card.index("## Test metrics (scenes that chose nothing)") < card.index("also chose the checkpoint")
    sc = rs_scene(shared_or_skip(), "sandiego")
    keep = np.asarray(sc.wavelength) <= 720.0
    hr = sc.cube[keep][:, :100, :100].astype(np.float32)
    cube = geo.with_grid(xr.DataArray(degrade.bicubic_down(hr, 4).astype(np.float32), dims=("band", "y", "x"),
                                      coords={"wavelength": ("band", np.asarray(sc.wavelength)[keep])}),
                         Affine(30, 0, 0, 0, -30, 0), "EPSG:32633")
    out = geohsr.superresolve(cube, "dualsr", 4, clip="none")
    assert "coarsr_x4_compact.safetensors" in out.attrs["geohsr_weights"]  # visible only: the CAVE weights
    got = metrics.psnr(np.clip(out.values, 0, 1), hr)
    assert got == pytest.approx(t["per_scene"]["sandiego"]["dualsr"], abs=0.05)


def test_a_real_enmap_scene_as_an_l2a_product_folder(tmp_path):
    """The bundled demo scene (real EnMAP L2A pixels) written the way DLR delivers L2A — an int16
    SPECTRAL_IMAGE.TIF without band tags beside a METADATA.XML holding the scene's band table — opens
    with the same band table, scale and grid, and geohsr treats it as the scene it is: `auto` takes
    the same method and weights, and bicubic gives the same pixels."""
    import rasterio

    demo = geohsr.open_cube(geohsr.demo_scene_path())
    srf = np.stack([demo.wavelength.values, demo.fwhm.values], axis=1)  # the image's band order
    name = "ENMAP01-____L2A-DT0000001867_20220724T104526Z_008_V010302_20230628T165614Z"
    folder = tmp_path / name
    folder.mkdir()
    with rasterio.open(geohsr.demo_scene_path()) as src:
        prof = dict(driver="GTiff", count=src.count, height=src.height, width=src.width, dtype="int16",
                    crs=src.crs, transform=src.transform, nodata=-32768)
        with rasterio.open(folder / f"{name}-SPECTRAL_IMAGE.TIF", "w", **prof) as dst:
            dst.write(src.read().astype(np.int16))
    bands = "".join(f'<bandID number="{i + 1}"><wavelengthCenterOfBand>{w}</wavelengthCenterOfBand>'
                    f"<FWHMOfBand>{f}</FWHMOfBand><GainOfBand>0.0001</GainOfBand><OffsetOfBand>0</OffsetOfBand>"
                    "</bandID>" for i, (w, f) in enumerate(srf))
    (folder / f"{name}-METADATA.XML").write_text(
        f"<level_X><specific><bandCharacterisation>{bands}</bandCharacterisation></specific></level_X>")
    prod = geohsr.open_cube(folder)
    np.testing.assert_allclose(prod.wavelength.values, demo.wavelength.values, atol=1e-3)
    np.testing.assert_allclose(prod.fwhm.values, demo.fwhm.values, atol=1e-4)
    np.testing.assert_allclose(prod.scale_factor.values, 1e-4)  # reflectance × 10000, from the XML's gains
    assert prod.rio.transform() == demo.rio.transform() and prod.rio.crs == demo.rio.crs
    from geohsr.api import auto_method
    from geohsr.engine import prepare

    assert auto_method(prod, 4)[0] == auto_method(demo, 4)[0] == "dualsr"
    assert prepare(prod, "dualsr", 4).weights == prepare(demo, "dualsr", 4).weights  # the remote-sensing ones
    a = geohsr.superresolve(prod, "bicubic", 2, clip="none").values  # (auto clips the product at 0: its
    b = geohsr.superresolve(demo, "bicubic", 2, clip="none").values  # gains say reflectance)
    good = demo.good_band.values != 0  # the product has no bad-band list: its water-vapour bands are nodata
    np.testing.assert_array_equal(a[good], np.round(b[good]).astype(np.int16))
