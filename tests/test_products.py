"""Sensor products read as delivered: EnMAP L1C/L2A folders and PRISMA L2D HDF-EOS5 files.

The fixtures follow the products' documented layouts (geohsr/io/products.py): an EnMAP folder is
an int16 GeoTIFF with no band table plus a METADATA.XML; a PRISMA L2D file stores each detector
(rows, bands, columns) as uint16 with its bands in decreasing wavelength, unused slots at 0 nm,
the scaling, band tables and grid as file attributes, and a 5 m pan swath.
"""

from __future__ import annotations

import subprocess

import h5py
import numpy as np
import pytest
import rasterio
from affine import Affine

import geohsr
from geohsr.errors import InputError
from conftest import geohsr_cmd, smooth_field, write_raster

ENMAP = "ENMAP01-____L2A-DT0000001867_20220724T104526Z_008_V010302_20230628T165614Z"
UL = (365015.0, 5807985.0)  # the upper-left pixel's centre


def make_enmap(folder, h=12, w=10, n=8, level="L2A", gain=1e-4, seed=0):
    """An EnMAP product folder: SPECTRAL_IMAGE.TIF (int16, reflectance × 10000, nodata -32768,
    no band tags) + METADATA.XML (bands listed out of order, as nothing guarantees the order)."""
    folder.mkdir(parents=True, exist_ok=True)
    name = ENMAP.replace("L2A", level)
    refl = smooth_field(n, h, w, seed=seed)
    dn = np.round(refl / gain).astype(np.int16)
    dn[:, 0, 0] = -32768
    write_raster(folder / f"{name}-SPECTRAL_IMAGE.TIF", dn, nodata=-32768,
                 transform=Affine(30.0, 0.0, 365000.0, 0.0, -30.0, 5808000.0))
    wl = np.linspace(420.0, 2440.0, n)
    rows = [f'<bandID number="{i + 1}"><wavelengthCenterOfBand>{wl[i]:.3f}</wavelengthCenterOfBand>'
            f'<FWHMOfBand>{6.5 + i:.2f}</FWHMOfBand><GainOfBand>{gain}</GainOfBand><OffsetOfBand>0</OffsetOfBand>'
            f'</bandID>' for i in reversed(range(n))]
    (folder / f"{name}-METADATA.XML").write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<level_X><specific><bandCharacterisation>'
        + "".join(rows) + "</bandCharacterisation></specific></level_X>\n")
    return folder, refl, wl


def make_prisma(path, h=12, w=10, level="L2D", corners="centres", pan=True, seed=0):
    """A PRISMA product file; returns (path, reflectance (bands, h, w) and wavelengths in geohsr's
    band order — VNIR then SWIR, each increasing — and the pan reflectance)."""
    vnir_cw = np.array([980.0, 900.0, 800.0, 700.0, 600.0, 500.0, 0.0])  # decreasing, one unused slot
    swir_cw = np.array([0.0, 2400.0, 2000.0, 1600.0, 1200.0, 950.0])  # 950 nm overlaps the VNIR
    scale = {"Vnir": (0.0, 0.8), "Swir": (0.01, 0.61), "Pan": (0.0, 0.9)}
    # geohsr's band order: VNIR then SWIR, each in increasing wavelength
    wl_sorted = np.concatenate([np.sort(vnir_cw[vnir_cw > 0]), np.sort(swir_cw[swir_cw > 0])])
    refl = np.clip(smooth_field(len(wl_sorted), h, w, seed=seed) * 0.5, 0.02, 0.58)
    refl[:, 3, 4] = np.nan  # a fill pixel (DN 0 in every band)

    def dn_of(v, lo, hi):
        out = np.round((v - lo) / (hi - lo) * 65535.0)
        return np.where(np.isfinite(out), np.clip(out, 1, 65535), 0).astype(np.uint16)

    with h5py.File(path, "w") as f:
        for det, cw in (("Vnir", vnir_cw), ("Swir", swir_cw)):
            cube = np.zeros((h, len(cw), w), np.uint16)  # rows, bands, columns
            for k, c in enumerate(cw):
                if c > 0:
                    cube[:, k, :] = dn_of(refl[np.flatnonzero(wl_sorted == c)[-1 if det == "Swir" else 0]],
                                          *scale[det])
            grp = f.require_group(f"HDFEOS/SWATHS/PRS_{level}_HCO/Data Fields")
            grp.create_dataset(f"{det.upper()}_Cube", data=cube)
            f.attrs[f"List_Cw_{det}"] = cw.astype(np.float32)
            f.attrs[f"List_Fwhm_{det}"] = np.where(cw > 0, 10.0, 0.0).astype(np.float32)
            f.attrs[f"List_Cw_{det}_Flags"] = (cw > 0).astype(np.int8)
            f.attrs[f"L2Scale{det}Min"], f.attrs[f"L2Scale{det}Max"] = scale[det]
        pan_refl = None
        if pan:
            pan_refl = np.kron(refl.mean(0), np.ones((6, 6))).astype(np.float64)
            pan_refl = np.nan_to_num(pan_refl, nan=0.3)
            f.require_group(f"HDFEOS/SWATHS/PRS_{level}_PCO/Data Fields").create_dataset(
                "Cube", data=dn_of(pan_refl, *scale["Pan"]))
            f.attrs["L2ScalePanMin"], f.attrs["L2ScalePanMax"] = scale["Pan"]
        f.attrs["Epsg_Code"] = 32633
        ul = UL if corners == "centres" else (UL[0] - 15.0, UL[1] + 15.0)
        f.attrs["Product_ULcorner_easting"], f.attrs["Product_ULcorner_northing"] = ul
        span = (w - 1, h - 1) if corners == "centres" else (w, h)
        f.attrs["Product_LRcorner_easting"] = ul[0] + 30.0 * span[0]
        f.attrs["Product_LRcorner_northing"] = ul[1] - 30.0 * span[1] + (7.0 if corners == "wrong" else 0.0)
    return path, refl, wl_sorted, pan_refl


# --- EnMAP ------------------------------------------------------------------------------------


@pytest.mark.parametrize("entry", ["folder", "xml", "image"])
def test_enmap_product_gets_its_band_table_from_the_metadata(tmp_path, entry):
    folder, refl, wl = make_enmap(tmp_path / "prod")
    name = ENMAP
    path = {"folder": folder, "xml": folder / f"{name}-METADATA.XML",
            "image": folder / f"{name}-SPECTRAL_IMAGE.TIF"}[entry]
    cube = geohsr.open_cube(path)
    assert cube.dtype == np.int16 and cube.rio.nodata == -32768
    np.testing.assert_allclose(cube.wavelength.values, wl, atol=1e-3)
    np.testing.assert_allclose(cube.fwhm.values, 6.5 + np.arange(len(wl)), atol=1e-6)
    np.testing.assert_allclose(cube.scale_factor.values, 1e-4)
    assert cube.attrs["sensor_product"] == "EnMAP L2A"
    assert cube.rio.transform() == Affine(30.0, 0.0, 365000.0, 0.0, -30.0, 5808000.0)
    phys = geohsr.open_cube(path, mask_and_scale=True).values
    assert np.isnan(phys[:, 0, 0]).all()
    np.testing.assert_allclose(phys[:, 1:, 1:], refl[:, 1:, 1:], atol=6e-5)


def test_enmap_product_runs_end_to_end_and_keeps_its_band_table(tmp_path):
    folder, _, wl = make_enmap(tmp_path / "prod")
    out = tmp_path / "x2.tif"
    r = subprocess.run(geohsr_cmd("run", str(folder), "-s", "2", "-m", "bicubic", "-o", str(out)),
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    hr = geohsr.open_cube(out)
    assert hr.shape == (len(wl), 24, 20) and hr.dtype == np.int16
    np.testing.assert_allclose(hr.wavelength.values, wl, atol=1e-3)
    with rasterio.open(out) as ds:
        assert ds.transform == Affine(15.0, 0.0, 365000.0, 0.0, -15.0, 5808000.0)
        assert ds.scales[0] == pytest.approx(1e-4) and ds.nodata == -32768
        assert "sensor_product" not in ds.tags()  # the output is geohsr's product, not EnMAP's
    r = subprocess.run(geohsr_cmd("info", str(folder)), capture_output=True, text=True)
    assert r.returncode == 0 and "product     EnMAP L2A (read as delivered)" in r.stdout, r.stderr
    assert "wavelength  420.0 – 2440.0 nm" in r.stdout


def test_enmap_l1b_and_mismatched_metadata_are_refused(tmp_path):
    folder, *_ = make_enmap(tmp_path / "l1b", level="L1B")
    with pytest.raises(InputError, match="L1B product is in sensor geometry.*L1C.*L2A"):
        geohsr.open_cube(folder)
    folder, *_ = make_enmap(tmp_path / "bad", n=8)
    other, *_ = make_enmap(tmp_path / "other", n=6)
    (folder / f"{ENMAP}-METADATA.XML").write_text((other / f"{ENMAP}-METADATA.XML").read_text())
    with pytest.raises(InputError, match="describes 6 bands but .* has 8"):
        geohsr.open_cube(folder)
    (folder / f"{ENMAP}-SPECTRAL_IMAGE.TIF").unlink()
    with pytest.raises(InputError, match="no .*SPECTRAL_IMAGE.TIF beside the metadata"):
        geohsr.open_cube(folder / f"{ENMAP}-METADATA.XML")


# --- PRISMA -----------------------------------------------------------------------------------


@pytest.mark.parametrize("corners", ["centres", "edges"])
def test_prisma_l2d_cube(tmp_path, corners):
    path, refl, wl, _ = make_prisma(tmp_path / "PRS_L2D_STD_20201107101404_20201107101408_0001.he5",
                                    corners=corners)
    cube = geohsr.open_cube(path)
    assert cube.dims == ("band", "y", "x") and cube.shape == (len(wl), 12, 10) and cube.dtype == np.uint16
    np.testing.assert_array_equal(cube.wavelength.values, wl)  # VNIR then SWIR, each increasing; no 0-nm slot
    assert list(wl) == [500.0, 600.0, 700.0, 800.0, 900.0, 980.0, 950.0, 1200.0, 1600.0, 2000.0, 2400.0]
    assert cube.rio.crs.to_epsg() == 32633 and cube.rio.nodata == 0
    assert cube.rio.transform() == Affine(30.0, 0.0, UL[0] - 15.0, 0.0, -30.0, UL[1] + 15.0)
    assert cube.attrs["sensor_product"] == "PRISMA L2D"
    phys = geohsr.open_cube(path, mask_and_scale=True).values
    ok = np.isfinite(refl)
    assert np.isnan(phys[:, ~ok[0]]).all()
    np.testing.assert_allclose(phys[:, ok[0]], refl[:, ok[0]], atol=1e-5)
    lazy = geohsr.open_cube(path, chunks={"band": -1, "y": 5, "x": 5})
    assert lazy.chunks == ((len(wl),), (5, 5, 2), (5, 5))  # every band in one chunk, as the engine wants
    np.testing.assert_array_equal(lazy.values, cube.values)


def test_prisma_corner_attributes_that_fit_no_grid_are_refused(tmp_path):
    path, *_ = make_prisma(tmp_path / "PRS_L2D_STD_x.he5", corners="wrong")
    with pytest.raises(InputError, match="do not fit a 30 m grid of 10 × 12 pixels"):
        geohsr.open_cube(path)


def test_prisma_sensor_geometry_levels_are_refused(tmp_path):
    path, *_ = make_prisma(tmp_path / "PRS_L2C_STD_x.he5", level="L2C")
    with pytest.raises(InputError, match="PRISMA L2C product is in sensor geometry.*L2D"):
        geohsr.open_cube(path)


def test_prisma_pan_is_the_guide_of_its_own_cube(tmp_path):
    """`geohsr run P.he5 -s 6 -m gsa --guide P.he5`: the cube at 30 m, its own pan at 5 m as the
    guide; the output lands on the pan's grid with the cube's band table."""
    path, refl, wl, pan = make_prisma(tmp_path / "PRS_L2D_STD_x.he5")
    p = geohsr.open_cube(path, asset="pan")
    assert p.shape == (1, 72, 60) and p.rio.transform() == Affine(5.0, 0.0, UL[0] - 15.0, 0.0, -5.0, UL[1] + 15.0)
    out = tmp_path / "x6.tif"
    r = subprocess.run(geohsr_cmd("run", str(path), "-s", "6", "-m", "gsa", "--guide", str(path),
                                  "--no-coregister", "-o", str(out)), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    with rasterio.open(out) as ds:
        assert (ds.count, ds.height, ds.width) == (len(wl), 72, 60)
        assert ds.transform == p.rio.transform() and ds.crs.to_epsg() == 32633
    hr = geohsr.open_cube(out)
    np.testing.assert_array_equal(hr.wavelength.values, wl)
    with pytest.raises(InputError, match="parts 'cube' and 'pan'"):
        geohsr.open_cube(path, asset="swir")


def test_qgis_layer_sources_of_a_prisma_product_name_the_product():
    """In QGIS a PRISMA file is a set of HDF5 subdatasets; the plugin hands geohsr the file itself
    (the QGIS tests run it end to end in real QGIS)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "geohsr_qgis_runner", Path(__file__).resolve().parents[1] / "qgis_plugin" / "geohsr_qgis" / "runner.py")
    runner = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(runner)
    f = "/data/PRS_L2D_STD_20201107101404_20201107101408_0001.he5"
    assert runner.product_file(f'HDF5:"{f}"://HDFEOS/SWATHS/PRS_L2D_HCO/Data_Fields/VNIR_Cube') == f
    assert runner.product_file(f"HDF5:{f}://HDFEOS/SWATHS/PRS_L2D_PCO/Data_Fields/Cube") == f
    assert runner.product_file('HDF5:"/data/other.h5"://cube') is None  # not a PRISMA product
    assert runner.product_file("/data/scene.tif") is None


@pytest.mark.parametrize("part", [[], ["--window", "3,5,20,24", "--bands", "2-9"]], ids=["whole", "subset"])
def test_prisma_streams_block_by_block_like_a_geotiff(tmp_path, part):
    """`geohsr run` reads a PRISMA file's windows through xarray (with their halos, the source
    opened again in chunks of one block, a subset applied): the same output, bit for bit, as from
    the same cube saved as a GeoTIFF."""
    path, *_ = make_prisma(tmp_path / "PRS_L2D_STD_x.he5", h=40, w=36)
    tif = geohsr.save_cube(geohsr.open_cube(path), tmp_path / "same.tif")
    outs = []
    for src in (path, tif):
        outs.append(tmp_path / f"{src.stem}_x2.tif")
        r = subprocess.run(geohsr_cmd("run", str(src), "-s", "2", "-m", "dualsr", "--block-size", "16", *part,
                                      "-o", str(outs[-1])), capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    a, b = geohsr.open_cube(outs[0]), geohsr.open_cube(outs[1])
    np.testing.assert_array_equal(a.values, b.values)
    assert a.rio.transform() == b.rio.transform()
    np.testing.assert_array_equal(a.wavelength.values, b.wavelength.values)
