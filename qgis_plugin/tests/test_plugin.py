import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from qgis.core import (QgsApplication, QgsProcessingException, QgsProcessingFeedback,
                       QgsRasterLayer)

from conftest import PLUGIN_DIR, ROOT, enmap_tile


def _run(alg, params, feedback=None):
    import processing

    return processing.run(alg, params, feedback=feedback or QgsProcessingFeedback())


def test_metadata():
    text = (PLUGIN_DIR / "geohsr_qgis" / "metadata.txt").read_text()
    assert "hasProcessingProvider=yes" in text and "qgisMinimumVersion=3.22" in text
    assert (PLUGIN_DIR / "geohsr_qgis" / "icon.svg").exists()


def test_provider_registers_and_lists_algorithms(provider):
    reg = QgsApplication.processingRegistry()
    assert reg.providerById("geohsr") is not None
    ids = sorted(a.id() for a in reg.providerById("geohsr").algorithms())
    assert ids == ["geohsr:evaluate", "geohsr:superresolve"]
    alg = reg.algorithmById("geohsr:superresolve")
    enum = alg.parameterDefinition("METHOD")
    assert "bicubic" in enum.options() and "mtf-glp" in enum.options()
    assert enum.usesStaticStrings() and enum.defaultValue() == "auto"  # names, the CLI's default
    from geohsr_qgis.provider import SuperResolveAlgorithm

    offline = SuperResolveAlgorithm([])  # no geohsr environment found: the same names, same order
    offline.initAlgorithm()
    assert offline.parameterDefinition("METHOD").options()[:len(enum.options())] == enum.options()
    for p in alg.parameterDefinitions():
        assert p.help(), p.name()


def test_superresolve_real_enmap_tile(provider, tmp_path):
    src = enmap_tile()
    out = tmp_path / "x4.tif"
    res = _run("geohsr:superresolve", {"INPUT": str(src), "METHOD": "bicubic", "SCALE": 4, "CLIP": "0,5000",
                                       "OUTPUT": str(out)})
    assert Path(res["OUTPUT"]) == out
    from osgeo import gdal

    ds = gdal.Open(str(out))  # the CLIP parameter reached the CLI; EnMAP's scale is kept
    assert ds.GetMetadata()["geohsr_clip"] == "0,5000" and ds.GetRasterBand(1).GetScale() == pytest.approx(1e-4)
    assert ds.GetRasterBand(1).DataType == gdal.GDT_Float32  # "input": the tile's float32
    ds = None
    other = tmp_path / "x2.tif"  # data type, format and memory limit reach the CLI
    _run("geohsr:superresolve", {"INPUT": str(src), "METHOD": "bicubic", "SCALE": 2, "DTYPE": "int16",
                                 "FORMAT": "cog", "MEMORY_LIMIT": 1024, "OUTPUT": str(other)})
    ds = gdal.Open(str(other))
    assert ds.GetRasterBand(1).DataType == gdal.GDT_Int16
    assert ds.GetMetadata("IMAGE_STRUCTURE").get("LAYOUT") == "COG"
    ds = None
    lr, hr = QgsRasterLayer(str(src), "lr"), QgsRasterLayer(str(out), "hr")
    try:
        assert hr.isValid() and hr.bandCount() == 224
        assert hr.crs() == lr.crs() and hr.crs().authid() == "EPSG:32633"
        assert hr.extent() == lr.extent()
        assert hr.rasterUnitsPerPixelX() == pytest.approx(lr.rasterUnitsPerPixelX() / 4)
        assert hr.width() == 4 * lr.width() and hr.height() == 4 * lr.height()
    finally:
        del lr, hr  # delete raster layers before QGIS exits


def test_prisma_subdataset_layers_run_the_whole_product(provider, tmp_path):
    """A PRISMA L2D file shows in QGIS as HDF5 subdatasets: the VNIR subdataset as the input runs
    the whole cube (VNIR + SWIR), the pan subdataset as the guide is the product's pan."""
    he5 = tmp_path / "PRS_L2D_STD_20201107101404_20201107101408_0001.he5"
    make = ("import sys; sys.path.insert(0, 'tests'); from pathlib import Path; "
            f"from test_products import make_prisma; make_prisma(Path({str(he5)!r}), h=24, w=20)")
    subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "-c", make], cwd=ROOT, check=True)  # h5py lives there
    vnir = QgsRasterLayer(f'HDF5:"{he5}"://HDFEOS/SWATHS/PRS_L2D_HCO/Data_Fields/VNIR_Cube', "vnir")
    pan = QgsRasterLayer(f'HDF5:"{he5}"://HDFEOS/SWATHS/PRS_L2D_PCO/Data_Fields/Cube', "pan")
    out = tmp_path / "x6.tif"
    try:
        assert vnir.isValid() and pan.isValid()
        _run("geohsr:superresolve", {"INPUT": vnir, "GUIDE": pan, "METHOD": "gsa", "SCALE": 6, "OUTPUT": str(out)})
    finally:
        del vnir, pan
    from osgeo import gdal

    ds = gdal.Open(str(out))
    assert (ds.RasterCount, ds.RasterYSize, ds.RasterXSize) == (11, 144, 120)  # every band, the pan's grid
    assert ds.GetGeoTransform() == (365000.0, 5.0, 0.0, 5808000.0, 0.0, -5.0)
    assert float(ds.GetRasterBand(1).GetMetadataItem("wavelength")) == pytest.approx(500.0)
    ds = None


def test_evaluate_writes_a_report(provider, tmp_path):
    out = tmp_path / "report.html"
    _run("geohsr:evaluate", {"INPUT": str(enmap_tile()), "METHODS": "bicubic", "SCALE": 2,
                             "OUTPUT": str(out)})
    text = out.read_text()
    assert "psnr" in text and "Wald protocol" in text


def test_evaluate_with_a_guide_reports_qnr_and_the_offset(provider, tmp_path):
    from osgeo import gdal

    guide = tmp_path / "guide.tif"  # a 3-band 15 m guide made from the tile itself
    gdal.Translate(str(guide), str(enmap_tile()), bandList=[45, 28, 12], xRes=15, yRes=15,
                   resampleAlg="bilinear")
    out = tmp_path / "pair.md"
    _run("geohsr:evaluate", {"INPUT": str(enmap_tile()), "METHODS": "mtf-glp", "SCALE": 2,
                             "GUIDE": str(guide), "OUTPUT": str(out)})
    text = out.read_text()
    assert "| mtf-glp |" in text and "QNR" in text and "Guide offset" in text


def test_bad_input_gives_the_cli_message(provider, tmp_path):
    with pytest.raises(QgsProcessingException, match=r"supports scales 2, 3, 4, 5, 6, 8, not 7"):
        _run("geohsr:superresolve", {"INPUT": str(enmap_tile()), "METHOD": "dualsr", "SCALE": 7,
                                     "OUTPUT": str(tmp_path / "bad.tif")})
    assert not (tmp_path / "bad.tif").exists()
    with pytest.raises(QgsProcessingException, match=r"bicubic has no network"):  # ENSEMBLE reaches the CLI
        _run("geohsr:superresolve", {"INPUT": str(enmap_tile()), "METHOD": "bicubic", "SCALE": 2,
                                     "ENSEMBLE": True, "OUTPUT": str(tmp_path / "bad.tif")})
    assert not (tmp_path / "bad.tif").exists()
    from osgeo import gdal

    guide = tmp_path / "guide.tif"
    gdal.Translate(str(guide), str(enmap_tile()), bandList=[45, 28, 12], xRes=15, yRes=15, resampleAlg="bilinear")
    with pytest.raises(QgsProcessingException, match=r"must lie between 0.15 and 0.95"):  # MTF_GAIN reaches the CLI
        _run("geohsr:superresolve", {"INPUT": str(enmap_tile()), "METHOD": "mtf-glp", "SCALE": 2,
                                     "GUIDE": str(guide), "MTF_GAIN": "2", "OUTPUT": str(tmp_path / "bad.tif")})
    assert not (tmp_path / "bad.tif").exists()


class _CancelOnProgress(QgsProcessingFeedback):
    def __init__(self):
        super().__init__()
        self.seen = 0.0

    def setProgress(self, p):  # noqa: N802
        super().setProgress(p)
        self.seen = max(self.seen, p)
        if p > 0:
            self.cancel()


def _children_with(marker: str) -> list[int]:
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if marker in cmd and "pytest" not in cmd:
                pids.append(int(d.name))
    return pids


def test_cancel_leaves_no_output_and_no_child(provider, tmp_path):
    import numpy as np
    from osgeo import gdal, osr

    src = tmp_path / "big.tif"
    ds = gdal.GetDriverByName("GTiff").Create(str(src), 600, 600, 32, gdal.GDT_Float32)
    ds.SetGeoTransform((0, 30, 0, 0, 0, -30))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32633)
    ds.SetProjection(srs.ExportToWkt())
    data = np.random.default_rng(0).random((600, 600), dtype=np.float32)
    for b in range(32):
        ds.GetRasterBand(b + 1).WriteArray(data)
    ds = None
    out = tmp_path / "cancelled_x4.tif"
    fb = _CancelOnProgress()
    with pytest.raises(QgsProcessingException, match="cancelled"):
        _run("geohsr:superresolve", {"INPUT": str(src), "METHOD": "bicubic", "SCALE": 4, "OUTPUT": str(out)}, fb)
    assert fb.seen > 0
    time.sleep(0.5)
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if "geohsr-tmp" in p.name]
    assert _children_with(str(out)) == []


def test_cancel_while_adapting_stops_the_training(provider, tmp_path):
    """With "adapt for N minutes" the bar moves while the network adapts (the first half), and
    Cancel stops the adaptation there instead of waiting out its minutes."""
    src = ROOT / "geohsr" / "data" / "enmap_potsdam_demo.tif"
    out = tmp_path / "adapted_x4.tif"
    fb = _CancelOnProgress()
    t0 = time.time()
    with pytest.raises(QgsProcessingException, match="cancelled"):
        _run("geohsr:superresolve", {"INPUT": str(src), "METHOD": "dualsr", "SCALE": 4, "ADAPT": 5,
                                     "OUTPUT": str(out)}, fb)
    assert 0 < fb.seen <= 50 and time.time() - t0 < 150  # cancelled while adapting (5 minutes asked)
    time.sleep(0.5)
    assert not out.exists() and _children_with(str(out)) == []


def test_missing_environment_says_how_to_set_one_up(provider, tmp_path, monkeypatch):
    monkeypatch.setenv("GEOHSR_CLI", str(tmp_path / "nowhere" / "geohsr"))
    with pytest.raises(QgsProcessingException, match="GEOHSR_CLI=.*not executable.*Install geohsr"):
        _run("geohsr:superresolve", {"INPUT": str(enmap_tile()), "METHOD": "bicubic", "SCALE": 2,
                                     "OUTPUT": str(tmp_path / "o.tif")})


def test_child_environment_is_clean(monkeypatch):
    from geohsr_qgis import runner

    monkeypatch.setenv("PYTHONPATH", "/usr/share/qgis/python")
    monkeypatch.setenv("PROJ_LIB", "/usr/share/proj")
    env = runner.child_env()
    assert "PYTHONPATH" not in env and "PROJ_LIB" not in env


def test_qgis_process_from_the_shell(tmp_path):
    exe = shutil.which("qgis_process.bin")
    if exe is None:
        pytest.skip("qgis_process.bin not installed")
    runtime = tmp_path / "xdg"
    runtime.mkdir(mode=0o700)
    env = dict(os.environ, QGIS_PLUGINPATH=str(PLUGIN_DIR), XDG_RUNTIME_DIR=str(runtime),
               QGIS_CUSTOM_CONFIG_PATH=str(tmp_path / "profile"), QT_QPA_PLATFORM="offscreen",
               GEOHSR_CLI=str(ROOT / ".venv" / "bin" / "geohsr"))
    env.pop("PYTHONPATH", None)
    r = subprocess.run([exe, "plugins", "enable", "geohsr_qgis"], env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    out = tmp_path / "shell_x2.tif"
    r = subprocess.run([exe, "run", "geohsr:superresolve", "--", f"INPUT={enmap_tile()}",
                        "METHOD=bicubic", "SCALE=2", f"OUTPUT={out}"], env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert out.exists() and re.search(r"OUTPUT:\s*" + re.escape(str(out)), r.stdout)
