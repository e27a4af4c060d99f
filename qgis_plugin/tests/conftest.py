"""Tests of the geohsr QGIS plugin in real QGIS (pytest-qgis, Debian's QGIS 3.22).

The plugin runs the geohsr CLI of the project's main virtual environment (GEOHSR_CLI).
"""

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLUGIN_DIR = ROOT / "qgis_plugin"
sys.path.insert(0, str(PLUGIN_DIR))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("GEOHSR_CLI", str(ROOT / ".venv" / "bin" / "geohsr"))
SHARED = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def provider(qgis_app, qgis_processing):
    from qgis.core import QgsApplication

    from geohsr_qgis.provider import GeohsrProvider

    p = GeohsrProvider()  # keep a reference: QGIS does not own it from Python's point of view
    assert QgsApplication.processingRegistry().addProvider(p)
    yield p
    QgsApplication.processingRegistry().removeProvider(p)


def enmap_tile():
    p = SHARED / "enmap_potsdam" / "enmap_potsdam_tile_128_96.tif"
    if not p.exists():
        pytest.skip(f"real data not available: {p}")
    return p
