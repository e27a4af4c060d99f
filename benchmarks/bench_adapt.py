"""Scene adaptation on real remote-sensing scenes: DualSR before and after ``--adapt``.

Each scene (normalised by its maximum) is cut along its longer side: the first two thirds are
the *user's scene* that ``geohsr.adapt`` sees (it trains on three quarters of it and holds out
a quarter at one end to pick the checkpoint and decide keep-or-not); the last third is the **test
part**, which nothing chose. On the test part, Wald protocol: LR = the test part through geohsr's
sensor model (Gaussian MTF, gain 0.3 at the LR Nyquist, sampled at the LR pixel centres: the
degradation adaptation assumes) and, as a second protocol, MATLAB-bicubic ×1/s (anti-aliased:
the shipped cards' degradation). PSNR from one MSE over the cube, peak 1; the adaptation's own
held-out numbers are reported separately (they chose the checkpoint). Wall time on this machine.

    python benchmarks/bench_adapt.py [--scenes indian_pines,sandiego,abu-urban-3,enmap_a] [--minutes 10] [--scale 4]

``--psf bicubic`` (or any :class:`geohsr.sensor.SensorModel`): adapt with that sensor model
instead of the Gaussian MTF (protocol B is then the one adaptation assumed).

``--method snlsr|a-snlsr``: the same with a fixed-grid method, scored on its 30-band SWIR2 grid
(the test part resampled onto it, as inference resamples the input; bicubic likewise).

Default scenes: the test scenes of the remote-sensing split (nothing trained on them or chose a
checkpoint on them); the starting weights are those geohsr picks for each (the remote-sensing
weights: every test scene reaches beyond 720 nm).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import xarray as xr
from affine import Affine

import geohsr
from geohsr import degrade, geo, metrics
from geohsr.adapt import adapt
from geohsr.sensor import guide_low
from geohsr.train.data import RS_SPLIT

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import KEY_FIELDS, upsert_jsonl  # noqa: E402

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data"
OUT = HERE / "results" / "adapt.jsonl"


def load(name: str):
    """A scene of the remote-sensing split (``geohsr.train.data.RS_SPLIT``), values divided by
    its maximum, and its wavelengths."""
    from geohsr.train.data import rs_scene

    sc = rs_scene(DATA, name)
    return sc.cube, sc.wavelength


def as_cube(a: np.ndarray, wl=None) -> xr.DataArray:
    coords = {} if wl is None else {"wavelength": ("band", np.asarray(wl, float))}
    return geo.with_grid(xr.DataArray(np.ascontiguousarray(a, np.float32), dims=("band", "y", "x"), coords=coords),
                         Affine(30, 0, 0, 0, -30, 0), "EPSG:32633")


def _schedule(card: dict) -> str | None:
    """How the method's networks shared the budget (None: one network, or a row from before
    session 23, when DualSR's two always ran in turn)."""
    how = card.get("networks_trained", "")
    return "side by side" if how.startswith("side by side") else ("in turn" if how else None)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenes", default=",".join(RS_SPLIT["test"]))
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--scale", type=int, default=4)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--method", default="dualsr", help="dualsr, snlsr or a-snlsr (scored on its band grid)")
    ap.add_argument("--psf", default="gaussian", help="adaptation's sensor model (geohsr.sensor.SensorModel)")
    ap.add_argument("--lr", type=float, default=None, help="adaptation's learning rate (default: geohsr's)")
    ap.add_argument("--batches", type=int, default=None,
                    help="a batch budget instead of --minutes (the result then does not depend on the CPU's load)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--in-turn", action="store_true",
                    help="DualSR's networks adapt one after the other, the budget shared (geohsr before session 23; "
                         "for comparison) instead of side by side")
    ap.add_argument("--weights", default=None,
                    help="start from these weights instead of the shipped ones (DualSR: 'x4.safetensors,x2.safetensors')")
    ap.add_argument("--out", type=Path, default=OUT, help=f"results file (default {OUT.relative_to(HERE.parent)})")
    ap.add_argument("--patience", type=int, default=None,
                    help="validations without a gain before a network stops (default: geohsr's; 0: the whole budget)")
    args = ap.parse_args()
    if args.in_turn:
        import geohsr.adapt as A

        A._side_by_side = lambda networks, device: False
    s, method = args.scale, args.method
    if args.threads:
        torch.set_num_threads(args.threads)
    grid_of = None
    if geohsr.get_method(method).bands == "grid":  # the reference: the test part on the model's grid
        from geohsr.engine import resample_to_grid

        grid_of = lambda c: resample_to_grid(geohsr.open_cube(c), geohsr.get_method(method).band_grid(s, None)).values  # noqa: E731
    for name in args.scenes.split(","):
        cube, wl = load(name)
        cube = cube / max(float(cube.max()), 1e-12)
        L, H, W = cube.shape
        axis = 1 if H >= W else 2
        n = cube.shape[axis]
        cut = (2 * n // 3) // s * s
        user = cube[:, :cut] if axis == 1 else cube[:, :, :cut]
        test = cube[:, cut:] if axis == 1 else cube[:, :, cut:]
        test = test[:, :test.shape[1] // s * s, :test.shape[2] // s * s]
        t0 = time.time()
        with tempfile.TemporaryDirectory() as tmp:
            res = adapt(as_cube(user, wl), method, s, minutes=args.minutes, batches=args.batches, out=tmp,
                        seed=args.seed, progress=False, psf=args.psf, lr=args.lr, patience=args.patience,
                        weights=args.weights)
            adapted = res.tried  # the adapted network (DualSR: with the ×s/2 network it started with)
            curves = {}  # each network's held-out PSNR at its validations (batch, dB)
            for k, v in res.card.get("networks", {}).items():
                hist = Path(tmp) / Path(v["file"]).parent / "history.jsonl"
                curves[k] = [[r["batch"], round(r["val"]["psnr"], 3)] for r in map(json.loads, hist.read_text().splitlines())
                             if "val" in r] if hist.exists() else None
            t_adapt = time.time() - t0
            rows = {}
            for proto in ("gaussian_mtf", "bicubic_aa"):
                low = (guide_low(torch.from_numpy(test)[None], s)[0].numpy() if proto == "gaussian_mtf"
                       else degrade.bicubic_down(test, s).astype(np.float32))
                lr = as_cube(low, wl)
                ref = test if grid_of is None else grid_of(as_cube(test, wl))
                out = {}
                for label, m, w in (("bicubic", "bicubic", None), (f"{method}_shipped", method, None),
                                    (f"{method}_adapted", method, adapted)):
                    sr = geohsr.superresolve(lr, m, s, weights=w).values
                    if grid_of is not None and m == "bicubic":
                        sr = grid_of(as_cube(sr, wl))
                    out[label] = round(metrics.psnr(np.clip(sr, 0, 1), ref), 3)
                out[f"{method}_kept"] = out[f"{method}_adapted"] if res.improved else out[f"{method}_shipped"]
                rows[proto] = out
        rec = {"benchmark": "adapt", "method": method, "input": name, "scale": s,
               "bands": int(L), "shape": [int(H), int(W)], "user_part": list(user.shape[1:]),
               "test_part": list(test.shape[1:]), "minutes": None if args.batches else args.minutes, "seed": args.seed,
               "lr": res.card.get("lr"), "batch_budget": args.batches,
               "batches": res.card["batches"], "adapt_wall_s": round(t_adapt, 1),
               "schedule": _schedule(res.card),
               "network_batches": {k: v["batches"] for k, v in res.card.get("networks", {}).items()},
               "network_best_batch": {k: v.get("best_batch") for k, v in res.card.get("networks", {}).items()},
               "network_held_out_curve": curves, "patience": res.card.get("patience"),
               "held_out": res.card.get("adapted_on", {}).get("held_out"),
               "held_out_before_after": [round(res.before_db, 3), round(res.after_db, 3)],
               "kept": "adapted" if res.improved else "shipped", "test_psnr": rows,
               "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                           "torch": torch.__version__, "threads": torch.get_num_threads(),
                           "date": time.strftime("%Y-%m-%d")}}
        rec["psf"] = None if args.psf == "gaussian" else args.psf  # None: the default sensor model
        rec["start"] = args.weights  # None: the shipped weights
        upsert_jsonl(args.out, rec, keys=KEY_FIELDS + ("psf", "minutes", "lr", "batch_budget", "seed", "schedule",
                                                    "patience", "held_out", "start"))
        print(json.dumps(rec), flush=True)


if __name__ == "__main__":
    main()
