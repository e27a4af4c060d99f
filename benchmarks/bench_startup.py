"""How long a user waits before geohsr answers: commands that do not run a method.

Each command runs as a fresh process (Python start and imports included), ``--repeat`` times after
one warm-up run (so the files are in the page cache: a cold start after a reboot is slower for
every row); the median wall time is recorded. ``methods --json`` is what the QGIS provider runs
when QGIS starts (``qgis_plugin/geohsr_qgis/runner.py``), so QGIS waits that long for geohsr.

    python benchmarks/bench_startup.py [--label after] [--src DIR]

``--src DIR`` times another checkout of geohsr (``PYTHONPATH=DIR``, e.g. a ``git worktree`` of an
earlier commit) with this environment, to compare before and after a change.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import upsert_jsonl  # noqa: E402

HERE = Path(__file__).resolve().parent
OUT = HERE / "results" / "startup.jsonl"
DEMO = HERE.parent / "geohsr" / "data" / "enmap_potsdam_demo.tif"

COMMANDS = {
    "import geohsr": ["-c", "import geohsr"],
    "geohsr --help": ["-m", "geohsr", "--help"],
    "geohsr methods --json": ["-m", "geohsr", "methods", "--json"],
    "geohsr info <demo>": ["-m", "geohsr", "info", str(DEMO)],
    "geohsr run --help": ["-m", "geohsr", "run", "--help"],
    "geohsr train --help": ["-m", "geohsr", "train", "--help"],
    "import torch (for scale)": ["-c", "import torch"],
}


def wall(args: list[str], env: dict) -> float:
    t = time.perf_counter()
    # from a neutral folder: `python -m`/`-c` put the working folder first on sys.path
    subprocess.run([sys.executable, *args], env=env, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, cwd=tempfile.gettempdir())
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--label", default="current")
    ap.add_argument("--src", type=Path, default=None, help="time the geohsr package in this folder")
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    env = dict(os.environ)
    if a.src is not None:
        env["PYTHONPATH"] = str(a.src.resolve())
    probe = subprocess.run([sys.executable, "-c", "import geohsr; print(geohsr.__file__)"], env=env,
                           capture_output=True, text=True, cwd=tempfile.gettempdir()).stdout.strip()
    print(f"timing {probe}")
    rev = subprocess.run(["git", "-C", str(a.src or HERE.parent), "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True).stdout.strip()
    for name, args in COMMANDS.items():
        wall(args, env)  # warm-up
        times = [wall(args, env) for _ in range(a.repeat)]
        rec = {"benchmark": "startup", "method": name, "input": a.label, "commit": rev,
               "median_s": round(statistics.median(times), 2), "min_s": round(min(times), 2),
               "repeat": a.repeat, "machine": platform.platform(), "cpus": os.cpu_count(),
               "python": platform.python_version()}
        upsert_jsonl(OUT, rec)
        print(f"{a.label:>8}  {name:<26} median {rec['median_s']:.2f} s  (min {rec['min_s']:.2f})")


if __name__ == "__main__":
    main()
