"""The bad-input suite: every case asserts the exact behaviour — a one-line error, a non-zero
exit, no traceback and nothing written or modified — or the documented graceful behaviour."""

import os
import resource
import signal
import subprocess
import sys

import numpy as np
import pytest
import rasterio
import torch
from affine import Affine
from click.testing import CliRunner

import geohsr
from geohsr import weights as W
from geohsr.cli import main
from geohsr.methods.dualsr.config import CONFIGS
from geohsr.methods.dualsr.net import CoarSR
from conftest import smooth_field, write_raster


def _cli(*args):
    r = CliRunner().invoke(main, [str(a) for a in args])
    return r.exit_code, r.stdout, r.stderr


def _snapshot(d):
    return {p.name: p.read_bytes() if p.is_file() else None for p in sorted(d.iterdir())}


@pytest.fixture
def env(tmp_path):
    good = write_raster(tmp_path / "good.tif", (smooth_field(3, 20, 24) * 1000).astype("float32"),
                        wavelengths=[500.0, 600.0, 700.0])
    d = {"good": good, "tmp": tmp_path}
    (tmp_path / "text.tif").write_text("just text\n")
    (tmp_path / "empty.tif").write_bytes(b"")
    (tmp_path / "corrupt.tif").write_bytes(b"II*\x00" + os.urandom(200))
    (tmp_path / "adir.tif").mkdir()
    (tmp_path / "ENMAP01-____L2A-DT0000001867_20220724T104526Z_008_V010302_20230628T165614Z.ZIP").write_bytes(b"PK\x05\x06" + bytes(18))
    (tmp_path / "notes.xml").write_text("<notes/>")
    from test_products import make_enmap, make_prisma

    d["l1b"] = make_enmap(tmp_path / "enmap_l1b", level="L1B")[0]
    d["l2c"] = make_prisma(tmp_path / "PRS_L2C_STD_20201107101404_20201107101408_0001.he5", level="L2C")[0]
    (tmp_path / "exists.tif").write_bytes(b"precious")
    cplx = tmp_path / "complex.tif"
    with rasterio.open(cplx, "w", driver="GTiff", count=1, height=4, width=4, dtype="complex64",
                       crs="EPSG:32633", transform=Affine(1, 0, 0, 0, -1, 0)) as ds:
        ds.write(np.ones((1, 4, 4), np.complex64))
    d["complex"] = cplx
    hdr_only = tmp_path / "lonely.hdr"
    hdr_only.write_text("ENVI\nsamples = 2\nlines = 2\nbands = 1\ndata type = 4\n")
    d["lonely"] = hdr_only
    torch.manual_seed(0)
    wpath = tmp_path / "w2.safetensors"
    sha = W.save(CoarSR(2, CONFIGS["tiny"].arch).state_dict(), wpath,
                 {"method": "coarsr", "scale": 2, "config": CONFIGS["tiny"].arch.to_dict()})
    tampered = tmp_path / "tampered.safetensors"
    data = bytearray(wpath.read_bytes())
    data[-3] ^= 0x55
    tampered.write_bytes(bytes(data))
    (tmp_path / "tampered.safetensors.sha256").write_text(sha + "\n")
    (tmp_path / "garbage.safetensors").write_bytes(os.urandom(64))
    (tmp_path / "model.pth").write_bytes(b"\x80\x04pickle")
    d.update(w2=wpath, tampered=tampered)
    # guided / fixed-band-grid methods
    from geohsr.methods.snlsr.config import ASNLSR_CONFIGS
    from geohsr.methods.snlsr.net import SNLSR, SNLSRConfig

    mulsr = geohsr.get_method("mulsr")

    wm = tmp_path / "mulsr.safetensors"
    W.save(mulsr.build_net(4, mulsr.configs["tiny"].arch).state_dict(), wm,
           {"method": "mulsr", "scale": 4, "config": mulsr.configs["tiny"].arch})
    cfg = SNLSRConfig(bands=30, **ASNLSR_CONFIGS["tiny"].arch)
    wa = tmp_path / "asnlsr.safetensors"
    W.save({f"net.{k}": v for k, v in SNLSR(4, cfg).state_dict().items()}, wa,
           {"method": "a-snlsr", "scale": 4, "config": cfg.to_dict(),
            "wavelength": list(np.linspace(1710, 2440, 30)), "fwhm": 20.0})
    gt = Affine(7.5, 0, 365000, 0, -7.5, 5807000)
    rgb = (smooth_field(3, 80, 96) * 200).astype("uint8")
    d.update(wm=wm, wa=wa,
             guide=write_raster(tmp_path / "guide.tif", rgb, transform=gt),
             half_guide=write_raster(tmp_path / "half.tif", rgb[:, :40], transform=gt),
             nocrs_guide=write_raster(tmp_path / "nocrs.tif", rgb, transform=gt, crs=None),
             two_guide=write_raster(tmp_path / "two.tif", rgb[:2], transform=gt),
             nowl=write_raster(tmp_path / "nowl.tif", np.ones((3, 8, 8), "float32")))
    return d


ERROR_CASES = [
    ("missing file", ["run", "{tmp}/missing.tif"], "no such file"),
    ("text file named .tif", ["run", "{tmp}/text.tif"], "not a readable raster"),
    ("empty file", ["run", "{tmp}/empty.tif"], "the file is empty"),
    ("corrupt TIFF", ["run", "{tmp}/corrupt.tif"], "not a readable raster"),
    ("directory as input", ["run", "{tmp}/adir.tif"], "is a directory"),
    ("a product still zipped", ["run", "{tmp}/ENMAP01-____L2A-DT0000001867_20220724T104526Z_008_V010302_20230628T165614Z.ZIP"], "an archive; unpack it"),
    ("an XML that is no EnMAP metadata", ["run", "{tmp}/notes.xml"], "an XML file is not a raster"),
    ("EnMAP L1B (sensor geometry)", ["run", "{l1b}", "-o", "{tmp}/l1b.tif"], "order the L1C (orthorectified radiance) or L2A"),
    ("PRISMA L2C (sensor geometry)", ["run", "{l2c}", "-o", "{tmp}/l2c.tif"], "use the L2D product"),
    ("ENVI header without data", ["run", "{lonely}"], "without its data file"),
    ("complex data", ["run", "{complex}", "-o", "{tmp}/c.tif"], "complex data"),
    ("scale 0", ["run", "{good}", "--scale", "0"], "scale must be an integer >= 2"),
    ("scale 1", ["run", "{good}", "--scale", "1"], "scale must be an integer >= 2"),
    ("scale 1, method auto", ["run", "{good}", "-m", "auto", "--scale", "1"], "scale must be an integer >= 2"),
    ("scale -2", ["run", "{good}", "--scale", "-2"], "scale must be an integer >= 2"),
    ("scale 3.5", ["run", "{good}", "--scale", "3.5"], "'3.5' is not a valid integer"),
    ("scale unsupported by the method", ["run", "{good}", "-m", "dualsr", "-s", "7"], "supports scales 2, 3, 4, 5, 6, 8"),
    ("unknown method", ["run", "{good}", "-m", "magic"], "unknown method 'magic'"),
    ("guide for a method without guide", ["run", "{good}", "--guide", "{good}", "-o", "{tmp}/g.tif"], "takes no guide"),
    ("output exists", ["run", "{good}", "-o", "{tmp}/exists.tif"], "already exists"),
    ("output directory missing", ["run", "{good}", "-o", "{tmp}/no/such/dir/o.tif"], "output directory does not exist"),
    ("output is the input", ["run", "{good}", "-o", "{good}", "--overwrite"], "overwrite the input"),
    ("unknown output extension", ["run", "{good}", "-o", "{tmp}/o.xyz"], "cannot tell the format"),
    ("output is a directory", ["run", "{good}", "-o", "{tmp}/adir.tif", "--overwrite"], "is a directory"),
    ("unknown --format", ["run", "{good}", "--format", "JPEG"], "'JPEG' is not one of"),
    ("unknown --dtype", ["run", "{good}", "--dtype", "float13"], "unknown data type"),
    ("nodata does not fit --dtype", ["run", "{nodata_file}", "--dtype", "uint8", "-o", "{tmp}/u8.tif"], "does not fit output dtype uint8"),
    ("block size not a multiple of 16", ["run", "{good}", "--block-size", "20", "-o", "{tmp}/b.tif"], "multiple of 16"),
    ("memory limit too small", ["run", "{good}", "--memory-limit", "10"], "at least 700"),
    ("unknown device", ["run", "{good}", "--device", "tpu", "-o", "{tmp}/d.tif"], "unknown device 'tpu'"),
    ("weights missing", ["run", "{good}", "-m", "coarsr", "-s", "2", "--weights", "{tmp}/nope.safetensors", "-o", "{tmp}/w.tif"], "weights file not found"),
    ("pickle weights", ["run", "{good}", "-m", "coarsr", "-s", "2", "--weights", "{tmp}/model.pth", "-o", "{tmp}/w.tif"], "only .safetensors"),
    ("weights missing, default method", ["run", "{good}", "-m", "dualsr", "-s", "2", "--weights", "{tmp}/nope.safetensors", "-o", "{tmp}/w.tif"], "weights file not found"),
    ("adaptation budget not positive", ["adapt", "{good}", "-s", "2", "--minutes", "-2", "--out", "{tmp}/ad"], "positive number of minutes"),
    ("corrupt weights", ["run", "{good}", "-m", "coarsr", "-s", "2", "--weights", "{tmp}/garbage.safetensors", "-o", "{tmp}/w.tif"], "not a valid safetensors"),
    ("tampered weights", ["run", "{good}", "-m", "coarsr", "-s", "2", "--weights", "{tampered}", "-o", "{tmp}/w.tif"], "does not match the expected"),
    ("weights of another scale", ["run", "{good}", "-m", "coarsr", "-s", "4", "--weights", "{w2}", "-o", "{tmp}/w.tif"], "weights are for ×2, not ×4"),
    # DualSR ×4 with only its fine stage's ×2 file: not the shipped ×4 network run without a word
    ("DualSR weights without the main scale", ["run", "{good}", "-m", "dualsr", "-s", "4", "--weights", "{w2}", "-o", "{tmp}/w.tif"], "DualSR ×4 takes ×4 weights"),
    ("DualSR weights the run does not use", ["run", "{good}", "-m", "dualsr", "-s", "3", "--weights", "{w2}", "-o", "{tmp}/w.tif"], "got ×2 (w2.safetensors)"),
    ("adapting DualSR from its fine stage's file alone", ["adapt", "{good}", "-m", "dualsr", "-s", "4", "--weights", "{w2}", "--out", "{tmp}/ad"], "DualSR ×4 takes ×4 weights"),
    ("unreachable scheduler", ["run", "{good}", "--scheduler", "tcp://127.0.0.1:9", "-o", "{tmp}/s.tif"], "cannot reach the dask scheduler"),
    ("info on a missing file", ["info", "{tmp}/missing.tif"], "no such file"),
    ("evaluate with a bad report name", ["evaluate", "{good}", "--report", "{tmp}/r.pdf"], "use a .md, .csv or .html"),
    ("train with no data", ["train", "dualsr", "--data", "{tmp}/adir.tif", "--out", "{tmp}/run"], "no rasters"),
    ("guided method without a guide", ["run", "{good}", "-m", "mulsr", "--weights", "{wm}", "-o", "{tmp}/m.tif"], "needs an HR guide"),
    ("guide covering half the scene", ["run", "{good}", "-m", "mulsr", "--weights", "{wm}", "--guide", "{half_guide}", "-o", "{tmp}/m.tif"], "covers only 50.0 %"),
    ("guide without CRS", ["run", "{good}", "-m", "mulsr", "--weights", "{wm}", "--guide", "{nocrs_guide}", "-o", "{tmp}/m.tif"], "guide has no CRS"),
    ("guide with 2 bands", ["run", "{good}", "-m", "mulsr", "--weights", "{wm}", "--guide", "{two_guide}", "-o", "{tmp}/m.tif"], "has 2 bands"),
    ("guide file missing", ["run", "{good}", "-m", "mulsr", "--weights", "{wm}", "--guide", "{tmp}/nope.tif", "-o", "{tmp}/m.tif"], "no such file"),
    ("weights of another method", ["run", "{good}", "-m", "ifmsr", "--weights", "{wm}", "--guide", "{guide}", "-o", "{tmp}/m.tif"], "mulsr weights, not ifmsr"),
    ("scene outside the model's wavelength range", ["run", "{good}", "-m", "a-snlsr", "--weights", "{wa}", "-o", "{tmp}/a.tif"], "does not cover"),
    ("fixed-grid model on a cube without wavelengths", ["run", "{nowl}", "-m", "a-snlsr", "--weights", "{wa}", "-o", "{tmp}/a.tif"], "needs band wavelengths"),
    ("a-snlsr training without a target", ["train", "a-snlsr", "--source", "{good}", "--out", "{tmp}/run"], "--target"),
]


@pytest.mark.parametrize("name,args,message", ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_user_error(env, name, args, message):
    nodata_file = write_raster(env["tmp"] / "nd.tif", np.ones((1, 8, 8), "float32"), nodata=-9999.0)
    env = dict(env, nodata_file=nodata_file)
    before = _snapshot(env["tmp"])
    code, out, err = _cli(*[a.format(**env) for a in args])
    assert code != 0, (name, out, err)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines and message in lines[-1], (name, err)
    # one line, nothing before it (e.g. no "auto: bicubic (…)" choice announced for a scale that is
    # refused); click's own usage errors come with its usage and help lines
    assert len(lines) == 1 or lines[0].startswith("Usage:"), (name, err)
    assert "Traceback" not in err
    assert _snapshot(env["tmp"]) == before, name


def test_at_least_thirty_cases():
    assert len(ERROR_CASES) + 8 >= 30


# --- documented graceful behaviour ----------------------------------------------------------

def test_no_crs_works_with_a_warning(tmp_path):
    p = write_raster(tmp_path / "nocrs.tif", np.ones((2, 8, 8), "float32"), crs=None)
    code, out, err = _cli("run", p, "-s", "2", "-q")
    assert code == 0 and "has no CRS" in err
    assert geohsr.open_cube(out.strip()).rio.crs is None


def test_no_wavelengths_works_for_band_agnostic_methods(tmp_path):
    p = write_raster(tmp_path / "nowl.tif", np.ones((2, 8, 8), "float32"))
    code, out, _ = _cli("run", p, "-s", "2", "-q")
    assert code == 0 and np.isnan(geohsr.open_cube(out.strip()).wavelength.values).all()


@pytest.mark.parametrize("bands", [1, 2])
def test_one_and_two_band_inputs(tmp_path, bands):
    p = write_raster(tmp_path / "few.tif", smooth_field(bands, 12, 12).astype("float32"))
    code, out, _ = _cli("run", p, "-s", "2", "-q")
    assert code == 0 and geohsr.open_cube(out.strip()).shape == (bands, 24, 24)


def test_one_pixel_raster(tmp_path):
    p = write_raster(tmp_path / "px.tif", np.full((3, 1, 1), 7.0, "float32"))
    code, out, _ = _cli("run", p, "-s", "4", "-q")
    got = geohsr.open_cube(out.strip())
    assert code == 0 and got.shape == (3, 4, 4) and np.allclose(got.values, 7.0)


def test_zero_size_cube_is_refused():
    import xarray as xr

    with pytest.raises(geohsr.InputError, match="the cube is empty"):
        geohsr.superresolve(xr.DataArray(np.zeros((3, 0, 5), "float32"), dims=("band", "y", "x")))


def test_bare_arrays_and_other_objects_are_refused_with_what_to_pass():
    with pytest.raises(geohsr.InputError, match=r"a bare array .* xr.DataArray\(cube, dims=\('band', 'y', 'x'\)\)"):
        geohsr.superresolve(np.zeros((3, 8, 8), "float32"), "bicubic", 2)
    with pytest.raises(geohsr.InputError, match="bare array"):
        geohsr.open_cube(torch.zeros(3, 8, 8))
    with pytest.raises(geohsr.InputError, match="expected a raster path or an xarray DataArray .*, got int"):
        geohsr.superresolve(42, "bicubic", 2)


def test_all_nodata_scene_gives_an_all_nodata_product(tmp_path):
    p = write_raster(tmp_path / "nd.tif", np.full((2, 8, 8), -1.0, "float32"), nodata=-1.0)
    code, out, _ = _cli("run", p, "-s", "2", "-q")
    assert code == 0 and (geohsr.open_cube(out.strip()).values == -1.0).all()


def test_nan_and_inf_are_treated_as_invalid(tmp_path):
    a = np.ones((1, 8, 8), "float32")
    a[0, 1, 1], a[0, 5, 5] = np.nan, np.inf
    p = write_raster(tmp_path / "naninf.tif", a)
    code, out, _ = _cli("run", p, "-s", "2", "-q")
    v = geohsr.open_cube(out.strip()).values[0]
    assert code == 0 and np.isnan(v[2:4, 2:4]).all() and np.isnan(v[10:12, 10:12]).all()
    assert np.allclose(v[np.isfinite(v)], 1.0)


def test_huge_values_and_integer_overflow_never_wrap(tmp_path):
    a = np.zeros((1, 8, 8), "int16")
    a[0, :, 4:] = 32767  # a step at the type's limit: cubic overshoot must clip, not wrap
    a[0, :, :4] = -32767
    p = write_raster(tmp_path / "i16.tif", a, nodata=-32768)
    code, out, _ = _cli("run", p, "-s", "4", "-q")
    v = geohsr.open_cube(out.strip()).values
    assert code == 0 and v.max() == 32767 and v.min() == -32767 and (v != -32768).all()
    f = write_raster(tmp_path / "big.tif", np.full((1, 4, 4), 3e38, "float32"))
    code, out, _ = _cli("run", f, "-s", "2", "-q")
    assert code == 0 and np.isfinite(geohsr.open_cube(out.strip()).values).all()


def test_truncated_file_fails_cleanly(tmp_path):
    src = write_raster(tmp_path / "whole.tif", smooth_field(8, 64, 64).astype("float32"))
    cog = geohsr.save_cube(geohsr.open_cube(src), tmp_path / "cog.tif", format="COG")
    data = cog.read_bytes()
    (tmp_path / "trunc.tif").write_bytes(data[: len(data) // 2])
    cog.unlink()
    before = _snapshot(tmp_path)
    code, _, err = _cli("run", tmp_path / "trunc.tif", "-s", "2", "-o", tmp_path / "t_x2.tif")
    assert code != 0 and err.strip().splitlines()[-1].startswith("Error: ")
    assert "Traceback" not in err and _snapshot(tmp_path) == before


def test_disk_full_leaves_nothing(tmp_path):
    src = write_raster(tmp_path / "in.tif", smooth_field(16, 64, 64).astype("float32"))

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (400_000, 400_000))

    r = subprocess.run([sys.executable, "-m", "geohsr", "run", str(src), "-s", "4", "-q",
                        "-o", str(tmp_path / "full.tif")], preexec_fn=limit, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "check free disk space" in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tif"]
