"""Execute the notebooks in place so they are committed with their outputs and figures (they read
well on a code host before anyone runs them). Figures are kept small (70 dpi inline PNG); outputs
that name this machine's paths are not rewritten. The test suite runs every notebook again on a copy.

    python scripts/execute_notebooks.py [notebooks/07_adapt_to_your_scene.ipynb ...]
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbclient
import nbformat

NB_DIR = Path(__file__).resolve().parents[1] / "notebooks"
SETUP = "%config InlineBackend.rc = {'figure.dpi': 60, 'savefig.dpi': 60}"


def execute(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    for c in nb.cells:
        if c.cell_type == "code":
            c.outputs, c.execution_count = [], None
    setup = nbformat.v4.new_code_cell(SETUP)
    nb.cells.insert(0, setup)  # small figures, then removed again
    nbclient.NotebookClient(nb, timeout=1200, kernel_name="python3",
                            resources={"metadata": {"path": str(NB_DIR)}}).execute()
    nb.cells.pop(0)
    for k, c in enumerate(c for c in nb.cells if c.cell_type == "code"):
        c.execution_count = k + 1
        for o in c.outputs:
            if "execution_count" in o:
                o["execution_count"] = k + 1
    nbformat.write(nb, path)
    print(f"{path.name}: {path.stat().st_size / 1e3:.0f} kB")


if __name__ == "__main__":
    for p in (sys.argv[1:] or sorted(NB_DIR.glob("*.ipynb"))):
        execute(Path(p))
