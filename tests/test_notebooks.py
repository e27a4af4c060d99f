"""Every notebook is committed executed (outputs and small figures, so it reads well before it
runs: ``scripts/execute_notebooks.py``) and runs top to bottom again here, on a copy.

A notebook whose point is a long computation runs here with a smaller budget (``QUICK``: exact
source substitutions, each of which must still match, so the notebook cannot drift away from what
is tested); every other line runs as committed."""

from pathlib import Path

import pytest

NB_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NB_DIR.glob("*.ipynb"))
QUICK = {  # notebook: [(committed source, what runs here)]
    # every 4th of the demo scene's 224 bands (whole notebook: 80 s on 2 cores, ~28 s so; the
    # wheel check runs the whole demo scene through the same model)
    "01_quickstart.ipynb": [("demo_scene_path())\n", "demo_scene_path()).isel(band=slice(None, None, 4))\n")],
    # 30 + 30 adaptation batches (whole notebook: 247 s on 2 cores, ~30 s so); 4 + 4 run the same
    # code and every 4th of the 218 good bands (adaptation and the three ×4 runs scale with the bands)
    "07_adapt_to_your_scene.ipynb": [("batches=30,", "batches=4,"),
                                     ("np.flatnonzero(scene.good_band.values))", "np.flatnonzero(scene.good_band.values)[::4])")],
    # the three ×4 models on a 96-px crop instead of 192 (whole notebook: 98 s on 2 cores, ~27 s so)
    "03_rgb_guided.ipynb": [("S, N = 4, 192", "S, N = 4, 96")],
    # the Landsat-7 pair's top-left quarter: `evaluate` and `auto` score every method (whole
    # notebook: 106 s on 2 cores, ~26 s so)
    "06_real_pair.ipynb": [('["cropped_im"].astype', '["cropped_im"][:200, :200].astype'),
                           ('["cropped_gray"].astype', '["cropped_gray"][:400, :400].astype')],
}


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(path, as_version=4)
    shared = Path(__file__).resolve().parents[2] / "shared" / "data"
    if nb.metadata.get("geohsr", {}).get("needs_shared_data") and not shared.is_dir():
        pytest.skip(f"{path.name} analyses the real scenes in {shared}, which this clone does not have")
    code = [c for c in nb.cells if c.cell_type == "code"]
    committed = sum(1 for c in code for o in c.outputs if "image/png" in o.get("data", {}))
    assert all(c.execution_count for c in code), f"{path.name}: commit it executed (scripts/execute_notebooks.py)"
    assert path.stat().st_size < 1_500_000, f"{path.name}: {path.stat().st_size} bytes; keep figures small"
    for c in code:  # run afresh
        c.outputs, c.execution_count = [], None
    for old, new in QUICK.get(path.name, []):
        hits = [c for c in code if old in c.source]
        assert len(hits) == 1, f"{path.name}: QUICK expects {old!r} in exactly one cell, found {len(hits)}"
        hits[0].source = hits[0].source.replace(old, new)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(NB_DIR)}})
    client.execute()
    images = sum(1 for c in nb.cells if c.cell_type == "code" for o in c.outputs
                 if "image/png" in o.get("data", {}))
    if path.name != "05_scale_out.ipynb":
        assert images >= 2 and committed >= 2, f"{path.name} produced {images} figures ({committed} committed)"
