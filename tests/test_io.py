import json

import numpy as np
import pytest
import rasterio
import xarray as xr

import geohsr
from geohsr.errors import InputError, OutputError


def _same_spectral(a, b):
    for c in ("wavelength", "fwhm"):
        np.testing.assert_array_equal(a[c].values, b[c].values)
    assert list(a.band_name.values) == list(b.band_name.values)
    np.testing.assert_array_equal(a.good_band.values, b.good_band.values)


def test_open_geotiff_reads_every_band_tag(make_raster):
    path, data = make_raster(bands=4, bbl=[1, 0, 1, 1], nodata=-9999.0)
    cube = geohsr.open_cube(path)
    assert cube.dims == ("band", "y", "x")
    assert cube.shape == data.shape
    np.testing.assert_allclose(cube.wavelength.values, np.linspace(450, 2400, 4).round(3))
    np.testing.assert_array_equal(cube.fwhm.values, [10.5] * 4)
    np.testing.assert_array_equal(cube.good_band.values, [1, 0, 1, 1])
    assert cube.rio.crs.to_epsg() == 32633
    assert cube.rio.nodata == -9999.0
    np.testing.assert_array_equal(cube.values, data)


def test_wavelength_units_are_normalised_to_nm(make_raster):
    path, _ = make_raster(bands=3, wavelengths=[0.45, 0.55, 0.65], units="Micrometers",
                         fwhm=[0.01, 0.01, 0.02])
    cube = geohsr.open_cube(path)
    np.testing.assert_allclose(cube.wavelength.values, [450, 550, 650])
    np.testing.assert_allclose(cube.fwhm.values, [10, 10, 20])


def test_wavelength_from_imagery_domain(make_raster):
    path, _ = make_raster(bands=3, wavelengths=None, fwhm=None, imagery_um=[0.5, 1.0, 2.0])
    np.testing.assert_allclose(geohsr.open_cube(path).wavelength.values, [500, 1000, 2000])


def test_wavelength_from_band_descriptions(make_raster):
    path, _ = make_raster(bands=2, wavelengths=None, fwhm=None,
                         descriptions=["band 1 (418.24 Nanometers)", "band 2 (0.9 um)"])
    cube = geohsr.open_cube(path)
    np.testing.assert_allclose(cube.wavelength.values, [418.24, 900.0])
    assert cube.band_name.values[0] == "band 1 (418.24 Nanometers)"


def test_missing_wavelengths_are_nan(make_raster):
    path, _ = make_raster(bands=2, wavelengths=None, fwhm=None)
    cube = geohsr.open_cube(path)
    assert np.isnan(cube.wavelength.values).all()
    assert list(cube.band_name.values) == ["band 1", "band 2"]


def test_envi_header_wavelengths_bbl_and_names(tmp_path):
    from conftest import smooth_field, write_raster

    data = smooth_field(3, 10, 12).astype("float32")
    p = write_raster(tmp_path / "cube.img", data, driver="ENVI", wavelengths=None, fwhm=None)
    hdr = tmp_path / "cube.hdr"
    text = hdr.read_text()
    text += ("wavelength units = Micrometers\nwavelength = {0.4, 0.5, 0.6}\n"
             "fwhm = {0.01, 0.01, 0.01}\nbbl = {1, 0, 1}\nband names = {a, b, c}\n")
    hdr.write_text(text)
    for src in (p, hdr):
        cube = geohsr.open_cube(src)
        np.testing.assert_allclose(cube.wavelength.values, [400, 500, 600])
        np.testing.assert_allclose(cube.fwhm.values, [10, 10, 10])
        np.testing.assert_array_equal(cube.good_band.values, [1, 0, 1])
        assert list(cube.band_name.values) == ["a", "b", "c"]
        assert cube.rio.crs.to_epsg() == 32633


def test_stac_item_eo_bands(make_raster, tmp_path):
    path, _ = make_raster(bands=2, wavelengths=None, fwhm=None)
    item = {"type": "Feature", "stac_version": "1.0.0", "id": "x", "properties": {},
            "assets": {"data": {"href": path.name, "roles": ["data"],
                                "eo:bands": [{"name": "b1", "center_wavelength": 0.45,
                                              "full_width_half_max": 0.02},
                                             {"name": "b2", "center_wavelength": 0.55}]}}}
    j = tmp_path / "item.json"
    j.write_text(json.dumps(item))
    cube = geohsr.open_cube(j)
    np.testing.assert_allclose(cube.wavelength.values, [450, 550])
    assert cube.fwhm.values[0] == pytest.approx(20) and np.isnan(cube.fwhm.values[1])
    assert list(cube.band_name.values) == ["b1", "b2"]


def test_dataarray_passthrough_and_dim_names():
    da = xr.DataArray(np.ones((3, 4, 5), "float32"), dims=("wavelength", "lat", "lon"),
                      coords={"wavelength": [500.0, 600.0, 700.0]})
    cube = geohsr.open_cube(da)
    assert cube.dims == ("band", "y", "x")
    np.testing.assert_array_equal(cube.wavelength.values, [500, 600, 700])


def test_lazy_open_with_chunks(make_raster):
    path, data = make_raster(h=40, w=40)
    cube = geohsr.open_cube(path, chunks={"band": -1, "y": 16, "x": 16})
    assert cube.chunks is not None
    np.testing.assert_array_equal(cube.values, data)


@pytest.mark.parametrize("fmt,name", [("GTiff", "o.tif"), ("COG", "o.tif"), ("ENVI", "o.img"),
                                      ("Zarr", "o.zarr"), ("NetCDF", "o.nc")])
def test_roundtrip_file_superresolve_file(make_raster, tmp_path, fmt, name):
    path, _ = make_raster(bands=4, h=20, w=28, bbl=[1, 1, 0, 1], nodata=-9999.0,
                         descriptions=["blue", "green", "red", "nir"])
    cube = geohsr.open_cube(path)
    hr = geohsr.superresolve(cube, scale=2)
    out = geohsr.save_cube(hr, tmp_path / name, format=fmt)
    back = geohsr.open_cube(out)
    assert back.shape == hr.shape and back.dtype == hr.dtype
    _same_spectral(back, cube)
    assert back.rio.crs == cube.rio.crs
    assert back.rio.nodata == -9999.0
    assert tuple(back.rio.transform()) == pytest.approx(tuple(hr.rio.transform()))
    assert back.rio.bounds() == pytest.approx(cube.rio.bounds())
    np.testing.assert_array_equal(back.values, hr.values)
    assert not [p for p in tmp_path.iterdir() if "geohsr-tmp" in p.name]
    if fmt in ("Zarr", "NetCDF"):  # nodata as the CF _FillValue other readers honour
        raw = xr.open_dataset(out, decode_cf=False, engine="zarr" if fmt == "Zarr" else None)
        var = next(v for v in raw.data_vars.values() if v.ndim == 3)
        assert float(var.attrs["_FillValue"]) == -9999.0


def test_integer_output_is_rounded_and_clipped(tmp_path):
    da = xr.DataArray(np.array([[[0.4, 1.6], [70000.0, -5.0]]], "float32"), dims=("band", "y", "x"))
    cube = geohsr.open_cube(da)
    p = geohsr.save_cube(cube, tmp_path / "i.tif", dtype="uint16")
    with rasterio.open(p) as ds:
        np.testing.assert_array_equal(ds.read(1), [[0, 2], [65535, 0]])


def test_existing_output_is_not_replaced_without_overwrite(make_raster, tmp_path):
    path, _ = make_raster()
    out = tmp_path / "exists.tif"
    out.write_bytes(b"keep me")
    with pytest.raises(OutputError, match="already exists"):
        geohsr.save_cube(geohsr.open_cube(path), out)
    assert out.read_bytes() == b"keep me"
    geohsr.save_cube(geohsr.open_cube(path), out, overwrite=True)
    assert geohsr.open_cube(out).shape[0] == 5


def test_failure_during_write_leaves_nothing(make_raster, tmp_path):
    import dask.array as dsa

    path, _ = make_raster(h=40, w=40)
    cube = geohsr.open_cube(path, chunks={"y": 16, "x": 16})

    def boom(b, block_info=None):
        if block_info[0]["chunk-location"][1] == 2:
            raise RuntimeError("simulated crash")
        return b

    cube = cube.copy(data=dsa.map_blocks(boom, cube.data, dtype=cube.dtype))
    with pytest.raises(RuntimeError, match="simulated crash"):
        geohsr.save_cube(cube, tmp_path / "partial.tif")
    assert list(tmp_path.glob("*partial*")) == []


def test_output_same_as_input_refused(make_raster):
    path, _ = make_raster()
    before = path.read_bytes()
    with pytest.raises(OutputError, match="overwrite the input"):
        geohsr.save_cube(geohsr.open_cube(path), path, overwrite=True)
    assert path.read_bytes() == before


@pytest.mark.parametrize("content,match", [(b"", "empty"), (b"not a raster at all", "not a readable raster")])
def test_bad_files(tmp_path, content, match):
    p = tmp_path / "bad.tif"
    p.write_bytes(content)
    with pytest.raises(InputError, match=match):
        geohsr.open_cube(p)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        geohsr.open_cube(tmp_path / "nope.tif")
