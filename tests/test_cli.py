import json
import os
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

import geohsr
from geohsr.cli import main


def _run(*args):
    r = CliRunner().invoke(main, [str(a) for a in args])
    return r.exit_code, r.stdout, r.stderr


def test_run_writes_default_output_next_to_input(make_raster):
    path, _ = make_raster(name="scene.tif")
    code, out, err = _run("run", path, "--scale", "2", "-q")
    assert code == 0, err
    dst = path.with_name("scene_x2.tif")
    assert out.strip() == str(dst)
    cube = geohsr.open_cube(dst)
    assert cube.shape == (5, 48, 72)
    assert "wrote" in err


@pytest.mark.parametrize("fmt,ext", [("ENVI", ".img"), ("Zarr", ".zarr"), ("COG", ".tif")])
def test_run_formats(make_raster, fmt, ext):
    path, _ = make_raster()
    code, out, err = _run("run", path, "-s", "2", "--format", fmt, "-q")
    assert code == 0, err
    assert out.strip().endswith(f"scene_x2{ext}")
    assert geohsr.open_cube(out.strip()).shape == (5, 48, 72)


def test_run_dtype_option(make_raster, tmp_path):
    path, _ = make_raster()
    code, _, err = _run("run", path, "-s", "2", "--dtype", "int16", "-o", tmp_path / "i.tif", "-q")
    assert code == 0, err
    assert geohsr.open_cube(tmp_path / "i.tif").dtype == np.int16


def test_info_and_json(make_raster):
    path, _ = make_raster(bands=3, nodata=-1.0, bbl=[1, 0, 1])
    code, out, _ = _run("info", path)
    assert code == 0
    assert "EPSG:32633" in out and "450.0 – 2400.0 nm" in out and "bad bands   1 (2)" in out
    code, out, _ = _run("info", make_raster(name="one.tif", bands=1)[0])
    assert "1 band," in out
    code, out, _ = _run("info", path, "--json")
    d = json.loads(out)
    assert d["bands"] == 3 and d["resolution"] == [30.0, 30.0] and d["nodata"] == -1.0


def test_info_into_a_closed_pipe_is_quiet(make_raster):
    """`geohsr info x.tif | head -2`: the reader leaving early is no error (no message, exit 0)."""
    path, _ = make_raster()
    read_end, write_end = os.pipe()
    os.close(read_end)  # every write now fails with EPIPE, like a pipe into an exited `head`
    try:
        r = subprocess.run([sys.executable, "-m", "geohsr", "info", str(path)], stdout=write_end,
                           stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write_end)
    assert r.returncode == 0 and r.stderr == "", r.stderr


def test_methods_lists_bicubic_first():
    code, out, _ = _run("methods")
    assert code == 0 and out.startswith("bicubic")
    heads = [ln for ln in out.splitlines() if "scales:" in ln]
    for col in ("scales:", "bands:", "weights:"):  # aligned columns
        assert len({ln.index(col) for ln in heads}) == 1, col
    code, out, _ = _run("methods", "--json")
    assert json.loads(out)[0]["name"] == "bicubic"


def test_listing_and_help_do_not_load_torch(make_raster):
    """`import geohsr`, `geohsr --help`, `methods` (the QGIS provider's method list at QGIS start-up),
    `info` and the commands' help load neither torch nor a network: torch comes with the first run."""
    path, _ = make_raster()
    code = (
        "import sys, geohsr\n"
        "from geohsr.cli import main\n"
        f"for args in (['--help'], ['methods', '--json'], ['info', {str(path)!r}], ['run', '--help'],"
        " ['train', '--help'], ['adapt', '--help']):\n"
        "    try:\n"
        "        main(args)\n"
        "    except SystemExit as e:\n"
        "        assert not e.code, (args, e.code)\n"
        "assert [m['name'] for m in geohsr.methods()][0] == 'bicubic'\n"
        "loaded = sorted(m for m in sys.modules if m == 'torch' or m.startswith(('torch.', 'geohsr.methods.dualsr.net')))\n"
        "assert not loaded, loaded[:5]\n"
        "geohsr.superresolve  # the lazy names resolve; running a method loads torch\n"
        "import numpy as np, xarray as xr\n"
        "geohsr.superresolve(xr.DataArray(np.ones((2, 8, 8), 'f4'), dims=('band', 'y', 'x')), 'bicubic', 2)\n"
        "assert 'torch' in sys.modules and callable(geohsr.evaluate) and callable(geohsr.methods)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]


@pytest.mark.parametrize("args,message", [
    (["run", "{missing}"], "no such file"),
    (["run", "{text}"], "not a readable raster"),
    (["run", "{good}", "--method", "nope"], "unknown method"),
    (["run", "{good}", "--scale", "1"], "scale must be an integer >= 2"),
    (["run", "{good}", "--scale", "0"], "scale must be an integer >= 2"),
    (["run", "{good}", "-o", "{nodir}/x.tif"], "output directory does not exist"),
    (["run", "{good}", "-o", "{good}", "--overwrite"], "overwrite the input"),
    (["run", "{good}", "-o", "{exists}"], "already exists"),
    (["run", "{good}", "-o", "{tmp}/x.xyz"], "cannot tell the format"),
    (["info", "{missing}"], "no such file"),
    (["run", "{good}", "--bands", "0-2"], "--bands: the scene has bands 1-5"),
    (["run", "{good}", "--bands", "a"], "--bands takes band numbers"),
    (["run", "{good}", "--wavelength-range", "3000-4000"], "holds no band of this scene"),
    (["run", "{good}", "--window", "30,0,10,10"], "is not inside the scene (36×24 px)"),
    (["run", "{good}", "--bbox", "0,0,10,10"], "does not overlap the scene"),
    (["run", "{good}", "--window", "0,0,8,8", "--bbox", "365000,5806000,366000,5807000"], "not both"),
    (["run", "{good}", "--wavelengths", "{wl3}"], "lists 3 bands, the scene has 5"),
    (["evaluate", "{good}", "--bands", "9"], "--bands: the scene has bands 1-5"),
])
def test_user_errors_are_one_line_and_write_nothing(make_raster, tmp_path, args, message):
    good, _ = make_raster()
    text = tmp_path / "text.tif"
    text.write_text("hello, I am not a GeoTIFF\n")
    exists = tmp_path / "exists.tif"
    exists.write_bytes(b"old")
    wl3 = tmp_path / "wl3.txt"
    wl3.write_text("450\n550\n650\n")
    subs = dict(missing=tmp_path / "missing.tif", text=text, good=good, nodir=tmp_path / "nodir",
                exists=exists, tmp=tmp_path, wl3=wl3)
    before = sorted(p.name for p in tmp_path.iterdir())
    code, out, err = _run(*[a.format(**subs) for a in args])
    assert code != 0
    lines = [ln for ln in err.strip().splitlines() if ln]
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], err
    assert "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert exists.read_bytes() == b"old"


def test_unwritable_directory(make_raster, tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root can write into read-only directories")
    good, _ = make_raster()
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    code, _, err = _run("run", good, "-o", ro / "x.tif")
    assert code != 0 and "not writable" in err


def test_python_dash_m_and_env_vars(make_raster):
    path, _ = make_raster()
    env = dict(os.environ, GEOHSR_RUN_SCALE="3")
    r = subprocess.run([sys.executable, "-m", "geohsr", "run", str(path), "-q"], env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().endswith("scene_x3.tif")
    assert geohsr.open_cube(r.stdout.strip()).shape[1] == 72


def test_progress_on_stderr_keeps_stdout_clean(make_raster):
    path, _ = make_raster()
    r = subprocess.run([sys.executable, "-m", "geohsr", "run", str(path), "-s", "2"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0
    assert r.stdout.strip().splitlines() == [str(path.with_name("scene_x2.tif"))]


def test_auto_method_picks_dualsr_only_where_weights_cover_the_scale(tmp_path, monkeypatch):
    from geohsr import weights as W
    from geohsr.methods import default_method

    monkeypatch.setenv("GEOHSR_MODELS", str(tmp_path))
    assert default_method(4) == "bicubic"  # nothing shipped here
    cat = {"weights": [{"method": "coarsr", "scale": 2, "file": "a.safetensors", "sha256": "0"},
                       {"method": "coarsr", "scale": 4, "file": "b.safetensors", "sha256": "0"}]}
    (tmp_path / "catalog.json").write_text(json.dumps(cat))
    assert default_method(2) == "dualsr" and default_method(4) == "dualsr"
    assert default_method(8) == "bicubic" and default_method(3) == "bicubic"
    assert W.find("coarsr", 4)["file"] == "b.safetensors"
    # where auto falls back to bicubic it says why (the CLI prints it; the product's tags keep it)
    from geohsr.api import auto_method

    assert auto_method(None, 4) == ("dualsr", {})
    name, notes = auto_method(None, 3)
    assert name == "bicubic" and "no DualSR weights for ×3, `geohsr train dualsr --scale 3`" in notes["geohsr_auto"]
    assert "shipped DualSR scales: ×2, ×4" in notes["geohsr_auto"]
    assert "DualSR does not run at ×7" in auto_method(None, 7)[1]["geohsr_auto"]


@pytest.mark.parametrize("fmt", ["GTiff", "Zarr"])  # the streamed and the dask path
def test_run_precision_option(make_raster, tmp_path, fmt):
    src, _ = make_raster(bands=6, h=16, w=16)
    outs = {}
    for p in ("fp32", "bf16"):
        out = tmp_path / f"{p}.{'tif' if fmt == 'GTiff' else 'zarr'}"
        r = CliRunner().invoke(main, ["run", str(src), "-s", "4", "-m", "dualsr", "--precision", p,
                                      "-o", str(out), "--format", fmt, "-q"])
        assert r.exit_code == 0, r.output
        outs[p] = geohsr.open_cube(out).values.astype(np.float64)
    peak = np.abs(outs["fp32"]).max()
    assert 30 < geohsr.metrics.psnr(outs["bf16"] / peak, outs["fp32"] / peak) < 200
    r = CliRunner().invoke(main, ["run", str(src), "-s", "4", "--precision", "int8", "-o", str(tmp_path / "x.tif")])
    assert r.exit_code == 2 and "int8" in r.output and not (tmp_path / "x.tif").exists()


@pytest.mark.parametrize("fmt", ["tif", "nc"])
def test_run_on_part_of_a_scene_equals_the_api_on_that_part(make_raster, tmp_path, fmt):
    """--bands/--wavelength-range/--window/--bbox: the streamed GeoTIFF path reads only that part
    of the file; the other formats go through the API; both equal superresolve on cube.isel(...)."""
    src, _ = make_raster(bands=6, h=40, w=48)
    cube = geohsr.open_cube(src)
    want = geohsr.superresolve(cube.isel(band=[1, 2, 4], y=slice(8, 28), x=slice(5, 37)), "bicubic", 2)
    out = tmp_path / f"part.{fmt}"
    code, _, err = _run("run", src, "-s", "2", "-m", "bicubic", "--bands", "2-3,5", "--window", "5,8,32,20",
                        "-o", out, "-q")
    assert code == 0, err
    assert "subset: 32×20 px from column 5, row 8; 3 bands" in err
    got = geohsr.open_cube(out)
    np.testing.assert_allclose(got.values, want.values, rtol=0, atol=1e-5)
    assert got.rio.transform() == want.rio.transform() and got.rio.crs == cube.rio.crs
    np.testing.assert_allclose(got.wavelength.values, cube.wavelength.values[[1, 2, 4]])
    # a bounding box in the CRS: the pixels it touches; a wavelength range: the bands inside it
    t = cube.rio.transform()
    x0, y0 = t.c + 5.5 * t.a, t.f + 8.5 * t.e
    x1, y1 = t.c + 36.2 * t.a, t.f + 27.9 * t.e
    lo, hi = cube.wavelength.values[1] - 1, cube.wavelength.values[3] + 1
    out2 = tmp_path / f"box.{fmt}"
    code, _, err = _run("run", src, "-s", "2", "-m", "bicubic", "--bbox", f"{x0},{y1},{x1},{y0}",
                        "--wavelength-range", f"{lo}-{hi}", "-o", out2, "-q")
    assert code == 0, err
    want2 = geohsr.superresolve(cube.isel(band=[1, 2, 3], y=slice(8, 28), x=slice(5, 37)), "bicubic", 2)
    np.testing.assert_allclose(geohsr.open_cube(out2).values, want2.values, rtol=0, atol=1e-5)


def test_wavelengths_file_gives_a_scene_its_band_centres(make_raster, tmp_path):
    src, _ = make_raster(bands=4, wavelengths=None, fwhm=None)
    wl = tmp_path / "wl.csv"
    wl.write_text("# centre, fwhm (um)\n0.45, 0.01\n0.55, 0.01\n0.65, 0.01\n0.85, 0.02\n")
    out = tmp_path / "o.tif"
    code, _, err = _run("run", src, "-s", "2", "-m", "bicubic", "--wavelengths", wl,
                        "--wavelength-range", "500-700", "-o", out, "-q")
    assert code == 0, err
    got = geohsr.open_cube(out)
    np.testing.assert_allclose(got.wavelength.values, [550.0, 650.0])
    np.testing.assert_allclose(got.fwhm.values, [10.0, 10.0])
    code, out_text, err = _run("evaluate", src, "-s", "2", "--bands", "1-3")
    assert code == 0, err
    assert "| bicubic |" in out_text


def test_merge_gives_a_fixed_grid_method_the_whole_cube_back(make_raster, tmp_path):
    """--merge: SNLSR's 30-band SWIR2 grid inside its range, bicubic for the other input bands;
    the log line says which bands came from which."""
    wl = list(np.arange(1000.0, 2460.0, 20.0))
    src, _ = make_raster(bands=len(wl), h=24, w=28, wavelengths=wl, scale=3000.0, dtype="int16", nodata=-9999)
    out = tmp_path / "m.tif"
    code, _, err = _run("run", src, "-s", "4", "-m", "snlsr", "--merge", "bicubic", "-o", out, "-q")
    assert code == 0, err
    assert "snlsr covers 1710–2439 nm: bands" in err and "from bicubic" in err
    got = geohsr.open_cube(out)
    bic = geohsr.superresolve(geohsr.open_cube(src), "bicubic", 4)
    assert got.shape == bic.shape and got.dtype == np.int16 and got.rio.nodata == -9999
    assert got.rio.transform() == bic.rio.transform()
    w = got.wavelength.values
    np.testing.assert_array_equal(got.values[w < 1700], bic.values[w < 1700])
    assert np.abs(got.values[w > 1720].astype(float) - bic.values[w > 1720]).mean() > 1.0
    assert got.attrs["geohsr_method"] == "snlsr+bicubic" and "snlsr" in got.attrs["geohsr_weights"]
    code, _, err = _run("run", src, "-s", "4", "-m", "dualsr", "--merge", "bicubic", "-o", tmp_path / "x.tif")
    assert code != 0 and "fixed band grid" in err
