"""DualSR's two adaptation networks side by side or in turn: training batches per second.

Scene adaptation of DualSR ×4 fine-tunes CoarSR ×4 and CoarSR ×2. This runs the same ``--batches``
batches of both networks (real AdaptTasks on a real scene, the shipped remote-sensing weights,
seeded, so both ways train on identical batches) two ways, alternating ``--repeats`` times so that
the machine's drift hits both alike:

* *in turn*: one network after the other with all of torch's threads (geohsr before session 23);
* *side by side*: :func:`geohsr.train.trainer.run_together`, each network in its own thread with
  half of torch's threads (what ``geohsr.adapt`` does now on a CPU with at least two threads).

Reports batches per second over both networks (wall clock, the validations excluded: none run
within the budget) and each network's median seconds per batch.

    python benchmarks/bench_side_by_side.py [--scene sandiego] [--batches 10] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from geohsr import weights as W
from geohsr.adapt import split
from geohsr.methods.dualsr.train import AdaptTask
from geohsr.train.data import rs_scene
from geohsr.train.trainer import Trainer, TrainSettings, run_together

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import upsert_jsonl  # noqa: E402

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data"
OUT = HERE / "results" / "side_by_side.jsonl"


def _trainers(cube, ok, nb: int, root: Path) -> list[Trainer]:
    train_sl, held_sl = split(ok, 4)
    out = []
    for s in (4, 2):
        e = W.find("coarsr", s, kind="remote sensing")
        task = AdaptTask(cube[(slice(None),) + train_sl], ok[train_sl], cube[(slice(None),) + held_sl], s,
                         str(W.models_dir() / e["file"]), seed=1)
        settings = TrainSettings(lr=5e-5, batch=task.batch, batches=nb, val_every=10 ** 6, ckpt_every=10 ** 6,
                                 seed=1)
        out.append(Trainer(task, root / f"x{s}", settings))
    return out


def _timed(trainers: list[Trainer], together: bool) -> dict:
    times = {}
    for tr in trainers:  # per-batch times, from the trainer's history
        tr.history.clear()
    t0 = time.perf_counter()
    if together:
        run_together(trainers, progress=False)
    else:
        for tr in trainers:
            tr.run(progress=False)
    wall = time.perf_counter() - t0
    for tr in trainers:
        stamps = [0.0] + [h["time_s"] for h in tr.history]
        times[f"x{tr.task.scale}"] = round(float(statistics.median(np.diff(stamps)[1:])), 2)
    return {"wall_s": round(wall, 1), "batches_per_s": round(sum(len(tr.history) for tr in trainers) / wall, 3),
            "s_per_batch": times}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scene", default="sandiego")
    ap.add_argument("--batches", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    sc = rs_scene(DATA, args.scene)
    cube = (sc.cube / max(float(sc.cube.max()), 1e-12)).astype(np.float32)
    ok = np.ones(cube.shape[1:], bool)
    threads = torch.get_num_threads()
    rows = {"in turn": [], "side by side": []}
    for _ in range(args.repeats):
        for how in rows:
            with tempfile.TemporaryDirectory() as tmp:
                rows[how].append(_timed(_trainers(cube, ok, args.batches, Path(tmp)), how == "side by side"))
                print(how, rows[how][-1], flush=True)
    med = {how: statistics.median(r["batches_per_s"] for r in runs) for how, runs in rows.items()}
    rec = {"benchmark": "side_by_side", "input": args.scene, "batches": args.batches, "repeats": args.repeats,
           "runs": rows, "median_batches_per_s": med,
           "speed_up": round(med["side by side"] / med["in turn"], 2),
           "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__,
                       "threads": threads, "date": time.strftime("%Y-%m-%d")}}
    upsert_jsonl(OUT, rec, keys=("benchmark", "input", "batches"))
    print(rec, flush=True)


if __name__ == "__main__":
    main()
