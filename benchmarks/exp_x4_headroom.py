"""Experiment: how far can CoarSR ×4 get on the remote-sensing test scenes if it trains on them?

Not a model to ship and not a test number: an *upper bound* for what weights of a given size
could score on the test scenes of the remote-sensing split (``RS_SPLIT["test"]``) under the
protocol of ``bench_rs_weights.py`` (MATLAB bicubic ×1/4, peak 1). The network fine-tunes from
the given start on the test scenes themselves (the very pairs it is then scored on; validation =
the same scenes, whole, which chooses the checkpoint). If even this does not reach bicubic +
1.5 dB, no weights of that size trained elsewhere will; the gap between configurations tells
whether more capacity (the ``paper`` configuration on a GPU) is worth the training.

    python benchmarks/exp_x4_headroom.py --config compact --init models/coarsr_x4_rs_compact.safetensors \
        --out runs/headroom_compact --minutes 45 --threads 1
    python benchmarks/bench_rs_weights.py --scales 4 --rs 4=runs/headroom_compact/best.safetensors,2=... \
        --out benchmarks/results/x4_headroom.jsonl
"""

from __future__ import annotations

import argparse
from pathlib import Path

from geohsr.train import run
from geohsr.train.data import rs_scenes

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="compact")
    ap.add_argument("--init", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--minutes", type=float, default=45)
    ap.add_argument("--batches", type=int, default=100000)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--halve-every", type=int, default=400)
    ap.add_argument("--val-every", type=int, default=40)
    ap.add_argument("--patch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--resume", action="store_true")
    a = ap.parse_args()
    test = rs_scenes(DATA, "test")
    # the oracle: the test scenes train and choose (never do this for weights that report a number)
    res = run.train_method("dualsr", DATA, 4, a.out, config=a.config, init=a.init, lr=a.lr,
                           halve_every=a.halve_every, val_every=a.val_every, batches=a.batches,
                           max_minutes=a.minutes, threads=a.threads, resume=a.resume,
                           options={"patch": a.patch}, command="benchmarks/exp_x4_headroom.py",
                           split_scenes=lambda data: (test, test, "remote-sensing test scenes (headroom experiment)"))
    print(res)


if __name__ == "__main__":
    main()
