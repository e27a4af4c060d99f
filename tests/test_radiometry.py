"""Radiometry survives file → cube → superresolve → file: GDAL scale/offset/units, mask_and_scale,
the clip of impossible negatives, ENVI headers GDAL reads back cleanly."""

import numpy as np
import pytest
import rasterio
import rioxarray  # noqa: F401
from click.testing import CliRunner

import geohsr
from geohsr.cli import main
from geohsr.errors import InputError

from conftest import smooth_field, write_raster


def _enmap_like(path, nodata=-32768):
    data = (np.abs(smooth_field(6, 24, 20, seed=2)) * 1000).astype(np.int16)
    data[:, 3, 4] = nodata
    write_raster(path, data, nodata=nodata, wavelengths=[450.5, 550.25, 650.0, 850.0, 1650.0, 2200.0])
    with rasterio.open(path, "r+") as ds:
        ds.scales = (0.0001,) * 6
        ds.offsets = (0.0,) * 5 + (0.01,)
        ds.units = ("reflectance",) * 6
    return data


def test_scale_offset_and_units_survive_superresolution(tmp_path):
    src = tmp_path / "s.tif"
    data = _enmap_like(src)
    cube = geohsr.open_cube(src)
    assert cube.coords["scale_factor"].values[0] == pytest.approx(1e-4)
    assert cube.coords["add_offset"].values[5] == pytest.approx(0.01)
    for out in (tmp_path / "api.tif", tmp_path / "cli.tif"):
        if out.name == "api.tif":
            geohsr.save_cube(geohsr.superresolve(cube, "bicubic", 2), out)
        else:
            r = CliRunner().invoke(main, ["run", str(src), "-s", "2", "-m", "bicubic", "-o", str(out), "-q"])
            assert r.exit_code == 0, r.output
        with rasterio.open(out) as ds:
            assert ds.scales[0] == pytest.approx(1e-4) and ds.offsets[5] == pytest.approx(0.01)
            assert ds.units[0] == "reflectance"
        # decoded as rioxarray does: the same physical values as the input's
        dec = geohsr.open_cube(out, mask_and_scale=True)
        rx = rioxarray.open_rasterio(out, mask_and_scale=True)
        ok = data[0] != -32768
        assert float(np.nanmean(dec.values[0])) == pytest.approx(float(data[0][ok].mean() * 1e-4), rel=0.02)
        np.testing.assert_allclose(dec.values[5], rx.values[5], rtol=1e-6, equal_nan=True)
        assert np.isnan(dec.values[:, 6:8, 8:10]).all()  # the nodata pixel, ×2


def test_mask_and_scale_decodes_like_rioxarray(tmp_path):
    src = tmp_path / "s.tif"
    _enmap_like(src)
    dec = geohsr.open_cube(src, mask_and_scale=True)
    rx = rioxarray.open_rasterio(src, mask_and_scale=True)
    assert dec.dtype == np.float32 and "scale_factor" not in dec.coords
    np.testing.assert_allclose(dec.values, rx.values, rtol=1e-6, equal_nan=True)


def test_clip_default_removes_impossible_negatives_only_where_data_cannot_be_negative(tmp_path):
    src = tmp_path / "s.tif"
    data = np.zeros((3, 16, 16), np.int16)
    data[:, 6:10, 6:10] = 3000  # a bright square on zero: cubic overshoot goes negative
    write_raster(src, data)
    with rasterio.open(src, "r+") as ds:
        ds.scales = (0.0001,) * 3
    cube = geohsr.open_cube(src)
    auto = geohsr.superresolve(cube, "bicubic", 4, dtype="float32")
    none = geohsr.superresolve(cube, "bicubic", 4, dtype="float32", clip="none")
    assert (none.values < 0).any() and (auto.values >= 0).all()
    assert auto.attrs["geohsr_clip"] == "0,"
    plain = geohsr.superresolve(cube.drop_vars(["scale_factor", "add_offset"]).astype(np.float32), "bicubic", 4)
    assert (plain.values < 0).any() and "geohsr_clip" not in plain.attrs  # a float without scale: no clip
    both = geohsr.superresolve(cube, "bicubic", 4, dtype="float32", clip="0,2000")
    assert both.values.max() <= 2000 and both.values.min() >= 0
    with pytest.raises(InputError, match="--clip"):
        geohsr.superresolve(cube, "bicubic", 4, clip="low")
    r = CliRunner().invoke(main, ["run", str(src), "-s", "4", "-m", "bicubic", "--clip", "5,1",
                                  "-o", str(tmp_path / "o.tif"), "-q"])
    assert r.exit_code != 0 and "empty" in r.output and not (tmp_path / "o.tif").exists()


def test_envi_header_description_and_band_names_read_cleanly_by_gdal(tmp_path):
    src = tmp_path / "s.tif"
    _enmap_like(src)
    out = tmp_path / "o.img"
    r = CliRunner().invoke(main, ["run", str(src), "-s", "2", "-m", "bicubic", "-o", str(out), "-q"])
    assert r.exit_code == 0, r.output
    hdr = (tmp_path / "o.hdr").read_text()
    assert "geohsr-tmp" not in hdr and "o.img (bicubic ×2)" in hdr
    with rasterio.open(out) as ds:
        assert ds.descriptions[0] == "band 1 (450.5 Nanometers)"  # not "… (450.5 Nanometers) (450.5 Nanometers)"
    assert geohsr.open_cube(out).band_name.values[0] == "band 1 (450.5 Nanometers)"
    geohsr.save_cube(geohsr.open_cube(src), tmp_path / "api.img")
    with rasterio.open(tmp_path / "api.img") as ds:
        assert ds.descriptions[1] == "band 2 (550.25 Nanometers)"


def test_small_truths_refused_in_one_line(tmp_path):
    src = tmp_path / "s.tif"
    _enmap_like(src)
    out = tmp_path / "o.tif"
    r = CliRunner().invoke(main, ["run", str(src), "-s", "20000", "-m", "bicubic", "-o", str(out)])
    assert r.exit_code != 0 and "free" in r.output and "--scale" in r.output and not out.exists()
    assert len(r.output.strip().splitlines()) == 1
    mat = tmp_path / "scene.mat"
    mat.write_bytes(b"MATLAB 5.0 MAT-file")
    r = CliRunner().invoke(main, ["run", str(mat), "-s", "2"])
    assert r.exit_code != 0 and "scipy.io.loadmat" in r.output
    import torch

    if not torch.cuda.is_available():
        r = CliRunner().invoke(main, ["run", str(src), "-s", "2", "-m", "bicubic", "--device", "cuda:7", "-o", str(out)])
        assert r.exit_code != 0 and "not available" in r.output and "--device auto" in r.output
        assert not out.exists()


def test_auto_chunks_keep_the_bands_together_without_a_future_warning(tmp_path):
    import warnings

    src = tmp_path / "s.tif"
    _enmap_like(src)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        c = geohsr.open_cube(src, chunks="auto")
    assert c.chunks[0] == (6,)
