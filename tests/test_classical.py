"""Training-free classical fusion (MTF-GLP hypersharpening, GSA): any scale, any guide bands."""

import numpy as np
import pytest
import torch
import xarray as xr
from affine import Affine
from click.testing import CliRunner

import geohsr
from geohsr import geo, metrics
from geohsr.cli import main
from geohsr.sensor import guide_low

from conftest import smooth_field

UTM = "EPSG:32633"


def _pair(s, guide_bands=3, h=30, w=34, bands=12, seed=0, gain=0.3):
    """An HR scene with fine texture, its LR through geohsr's sensor model (Gaussian MTF with
    ``gain`` at Nyquist, sampled at the LR pixel centres), and a guide made of linear combinations
    of the HR bands (a sensor with ``guide_bands`` broad bands)."""
    rng = np.random.default_rng(seed)
    base = smooth_field(bands, h * s, w * s, seed=seed).astype(np.float64)
    tex = smooth_field(1, h * s, w * s, seed=seed + 7, offset=0.0)[0]
    yy, xx = np.mgrid[0:h * s, 0:w * s]
    fine = 0.15 * np.sin(xx * 1.1) * np.cos(yy * 0.9) + 0.3 * tex
    hr = (base * (1 + fine)).astype(np.float32)
    lr = guide_low(torch.from_numpy(hr)[None], s, gain)[0].numpy()
    mix = rng.uniform(0, 1, (guide_bands, bands))
    mix /= mix.sum(1, keepdims=True)
    g = np.tensordot(mix, hr, axes=(1, 0)).astype(np.float32)
    t = Affine(30.0, 0, 365000, 0, -30.0, 5807000)
    cube = geo.with_grid(xr.DataArray(lr, dims=("band", "y", "x"),
                                      coords={"wavelength": ("band", np.linspace(450, 900, bands))}), t, UTM)
    guide = geo.with_grid(xr.DataArray(g, dims=("band", "y", "x")), geo.hr_transform(t, s), UTM)
    return cube, guide, hr


@pytest.mark.parametrize("method", ["mtf-glp", "gsa"])
@pytest.mark.parametrize("s,gb", [(2, 1), (3, 3), (4, 4), (6, 8)])
def test_classical_fusion_beats_bicubic_at_any_scale_and_guide(method, s, gb):
    cube, guide, hr = _pair(s, gb)
    out = geohsr.superresolve(cube, method=method, scale=s, guide=guide)
    bic = geohsr.superresolve(cube, method="bicubic", scale=s)
    assert out.shape == hr.shape and out.dtype == np.float32
    assert out.rio.transform() == bic.rio.transform() and out.rio.crs == cube.rio.crs
    peak = float(hr.max())
    p, pb = metrics.psnr(out.values / peak, hr / peak), metrics.psnr(bic.values / peak, hr / peak)
    gain = {"mtf-glp": 0.5, "gsa": 0.1}[method]  # measured: MTF-GLP +0.6 to +3.2 dB, GSA +0.2 to +0.6
    assert p > pb + gain, f"{method} ×{s}, {gb}-band guide: {p:.2f} dB vs bicubic {pb:.2f} dB"


def test_fit_is_scene_wide_so_tiles_match_and_streaming_matches_the_api(tmp_path):
    cube, guide, _ = _pair(3, 4, h=60, w=52)
    src = geohsr.save_cube(cube, tmp_path / "lr.tif")
    gpath = geohsr.save_cube(guide, tmp_path / "g.tif")
    api = geohsr.superresolve(geohsr.open_cube(src), method="mtf-glp", scale=3, guide=str(gpath))
    tiled = geohsr.superresolve(geohsr.open_cube(src, chunks={"band": -1, "y": 16, "x": 16}),
                                method="mtf-glp", scale=3, guide=str(gpath)).compute()
    np.testing.assert_allclose(tiled.values, api.values, rtol=0, atol=1e-5 * float(np.ptp(api.values)))
    out = tmp_path / "o.tif"
    r = CliRunner().invoke(main, ["run", str(src), "-m", "mtf-glp", "-s", "3", "--guide", str(gpath),
                                  "--block-size", "16", "-o", str(out), "-q"])
    assert r.exit_code == 0, r.output
    np.testing.assert_allclose(geohsr.open_cube(out).values, api.values, rtol=0,
                               atol=1e-5 * float(np.ptp(api.values)))


def test_classical_fusion_keeps_nodata(tmp_path):
    cube, guide, _ = _pair(2, 3)
    lr = cube.values.copy()
    lr[:, 4, 5] = -1.0
    c = cube.copy(data=lr).rio.write_nodata(-1.0, encoded=False)
    out = geohsr.superresolve(c, method="gsa", scale=2, guide=guide)
    assert out.rio.nodata == -1.0 and (out.values[:, 8:10, 10:12] == -1.0).all()
    assert (out.values[:, :8] != -1.0).all()


def test_classical_methods_need_a_guide():
    cube, _, _ = _pair(2, 3)
    with pytest.raises(geohsr.MethodError, match="guide"):
        geohsr.superresolve(cube, method="mtf-glp", scale=2)


def test_auto_with_a_guide_picks_the_best_candidate_on_the_scene_and_records_it(tmp_path):
    from geohsr.select import candidates

    cube, guide, hr = _pair(3, 4, h=48, w=64, seed=2)
    assert {"bicubic", "mtf-glp", "gsa"} <= set(candidates(3))
    out = geohsr.superresolve(cube, method="auto", scale=3, guide=guide)
    note = out.attrs["geohsr_auto"]
    chosen = out.attrs["geohsr_method"]
    assert note.startswith(f"auto ×3: {chosen} ") and "bicubic" in note
    scores = dict(p.rsplit(" ", 1) for p in note.split("dB: ")[1].rstrip(")").split(", "))
    assert float(scores[chosen]) == max(map(float, scores.values()))
    assert float(scores[chosen]) >= float(scores["bicubic"])
    # the CLI says which, and writes it into the tags
    src, gpath = geohsr.save_cube(cube, tmp_path / "lr.tif"), geohsr.save_cube(guide, tmp_path / "g.tif")
    o = tmp_path / "o.tif"
    r = CliRunner().invoke(main, ["run", str(src), "-s", "3", "-m", "auto", "--guide", str(gpath), "-o", str(o), "-q"])
    assert r.exit_code == 0, r.output
    assert "auto ×3:" in r.output
    import rasterio

    with rasterio.open(o) as ds:
        assert ds.tags()["geohsr_auto"].startswith("auto ×3: ")


def test_dualsr_glp_is_dualsr_plus_the_guide_detail_mtf_glp_would_add():
    """DualSR-GLP = DualSR's output + (MTF-GLP − bicubic), in data units (the scene is in the
    thousands, so the engine's normalisation of the fitted coefficients is exercised)."""
    from geohsr.select import candidates

    cube, guide, hr = _pair(2, 4, h=40, w=44, seed=4)
    cube = cube * 3000.0
    kw = dict(scale=2, dtype="float32", clip="none")
    out = geohsr.superresolve(cube, method="dualsr-glp", guide=guide, **kw)
    parts = [geohsr.superresolve(cube, method=m, guide=g, **kw).values
             for m, g in (("dualsr", None), ("mtf-glp", guide), ("bicubic", None))]
    np.testing.assert_allclose(out.values, parts[0] + parts[1] - parts[2], rtol=0, atol=1e-4 * float(np.ptp(parts[0])))
    assert out.attrs["geohsr_method"] == "dualsr-glp" and "coarsr_x2" in out.attrs["geohsr_weights"]
    peak = float(hr.max()) * 3000.0
    p = metrics.psnr(out.values / peak, hr * 3000.0 / peak)
    assert p > metrics.psnr(parts[0] / peak, hr * 3000.0 / peak) + 0.5  # the guide detail helps DualSR
    assert "dualsr-glp" in candidates(2) and "dualsr-glp" not in candidates(7)  # DualSR does not run at ×7


def _measured(attrs) -> float:
    """The gain measured relative to the guide, from the product's tag; and the tag's used gain is
    the scene sensor's own: that plus the guide's own MTF (generic 0.3 at its Nyquist)."""
    from geohsr.sensor import own_gain

    note = attrs["geohsr_guide_mtf"]
    assert "measured against the guide: " in note, note
    rel = float(note.split("measured against the guide: ")[1].split()[0])
    assert float(note.split()[1]) == pytest.approx(own_gain(rel, int(attrs["geohsr_scale"])), abs=0.006)
    return rel


@pytest.mark.parametrize("s,gain", [(2, 0.2), (2, 0.6), (3, 0.5), (4, 0.7)])
def test_the_scenes_blur_is_measured_against_the_guide_and_used(s, gain):
    """The LR scene made with a Gaussian MTF of ``gain``: the measured gain is within 0.03 of it, and
    when the scene is sharper than the generic 0.3 assumes, MTF-GLP with the measured gain beats
    MTF-GLP told 0.3 (measured: +0.5 to +1.9 dB; with a blurrier scene, gain 0.2, ±0.1 dB)."""
    cube, guide, hr = _pair(s, 3, h=48, w=52, seed=3, gain=gain)
    out = geohsr.superresolve(cube, method="mtf-glp", scale=s, guide=guide)
    assert abs(_measured(out.attrs) - gain) <= 0.03, out.attrs["geohsr_guide_mtf"]
    fixed = geohsr.superresolve(cube, method="mtf-glp", scale=s, guide=guide, mtf=0.3)
    assert fixed.attrs["geohsr_guide_mtf"] == "gain 0.30 at the LR Nyquist (given)"
    peak = float(hr.max())
    p, pf = metrics.psnr(out.values / peak, hr / peak), metrics.psnr(fixed.values / peak, hr / peak)
    if gain > 0.3:
        assert p > pf + 0.3, f"×{s}, LR gain {gain}: measured {p:.2f} dB, told 0.3 {pf:.2f} dB"
    # GSA and DualSR-GLP take the same measurement; the guide's own blur lowers the relative one
    assert abs(_measured(geohsr.superresolve(cube, method="gsa", scale=s, guide=guide).attrs) - gain) <= 0.03
    blurred = guide.copy(data=geohsr.sensor.blur(torch.from_numpy(guide.values)[None], 0.6 * s)[0].numpy())
    g2 = _measured(geohsr.superresolve(cube, method="mtf-glp", scale=s, guide=blurred).attrs)
    assert g2 > gain + 0.05


def test_a_guide_that_explains_nothing_keeps_the_generic_gain_with_a_warning():
    cube, guide, _ = _pair(2, 3, h=40, w=40)
    noise = guide.copy(data=np.random.default_rng(0).uniform(0, 1, guide.shape).astype(np.float32))
    with pytest.warns(UserWarning, match="could not be measured"):
        out = geohsr.superresolve(cube, method="mtf-glp", scale=2, guide=noise, coregister=False)
    assert out.attrs["geohsr_guide_mtf"].startswith("gain 0.30 at the LR Nyquist (assumed: not measurable")


def test_the_mtf_gain_on_the_command_line(tmp_path):
    cube, guide, _ = _pair(3, 3, h=36, w=40, gain=0.6)
    src, gpath = geohsr.save_cube(cube, tmp_path / "lr.tif"), geohsr.save_cube(guide, tmp_path / "g.tif")
    o = tmp_path / "o.tif"
    r = CliRunner().invoke(main, ["run", str(src), "-s", "3", "-m", "mtf-glp", "--guide", str(gpath), "-o", str(o), "-q"])
    assert r.exit_code == 0, r.output
    assert "guide MTF: gain 0." in r.output and "measured against the guide: 0.6" in r.output, r.output
    import rasterio

    with rasterio.open(o) as ds:
        assert abs(_measured(ds.tags()) - 0.6) <= 0.03
    r = CliRunner().invoke(main, ["run", str(src), "-s", "3", "-m", "gsa", "--guide", str(gpath), "-o", str(o),
                                  "-q", "--overwrite", "--mtf-gain", "0.45"])
    assert r.exit_code == 0 and "guide MTF: gain 0.45 at the LR Nyquist (given)" in r.output, r.output
    for bad in ("1.5", "0.05", "sharp"):
        o2 = tmp_path / f"bad_{bad}.tif"
        r = CliRunner().invoke(main, ["run", str(src), "-s", "3", "-m", "mtf-glp", "--guide", str(gpath),
                                      "-o", str(o2), "--mtf-gain", bad])
        assert r.exit_code != 0 and not o2.exists()
        assert "must lie between 0.15 and 0.95" in r.output and len(r.output.strip().splitlines()) == 1, r.output
    with pytest.raises(geohsr.InputError, match="between 0.15 and 0.95"):
        geohsr.superresolve(cube, method="mtf-glp", scale=3, guide=guide, mtf=0.99)


def test_a_resumed_run_with_another_mtf_gain_starts_over(tmp_path):
    """The streamed run's journal signature holds the MTF gain: a --resume after changing
    --mtf-gain does not mix blocks fused with two low-passes."""
    from geohsr.engine import prepare
    from geohsr.stream import StreamOptions, _Job, run_file

    cube, guide, _ = _pair(2, 3, h=40, w=44, gain=0.5)
    src, gpath = geohsr.save_cube(cube, tmp_path / "lr.tif"), geohsr.save_cube(guide, tmp_path / "g.tif")

    def sig(mtf):
        plan = prepare(str(src), "mtf-glp", 2, guide=str(gpath), mtf=mtf)
        return _Job(plan, tmp_path / "o.tif", "GTiff", StreamOptions(progress="none")).signature()

    assert sig(0.3)["mtf_gain"] == 0.3 and sig(0.3) == sig(0.3) and sig(0.3) != sig(0.45)
    assert sig("measure") == sig("measure") and abs(sig("measure")["mtf_gain"] - 0.3) > 0.02
    out = run_file(src, tmp_path / "o.tif", method="mtf-glp", scale=2, guide=str(gpath), mtf=0.45, progress="none")
    assert geohsr.open_cube(out).attrs["geohsr_guide_mtf"] == "gain 0.45 at the LR Nyquist (given)"
