"""What mixed-precision inference (``--precision bf16|fp16``) costs in PSNR.

Protocol: the 3 held-out CAVE scenes, top-left crops of ``--crop`` pixels, degraded
as each method's quality protocol does (DualSR: MATLAB bicubic ×1/4; MulSR/IFMSR: the papers'
anisotropic blur + torch bicubic + σ = 3/255 with the CIE RGB guide), super-resolved ×4 with the
shipped weights through ``geohsr.superresolve`` at fp32, bf16 and fp16 (``torch.autocast``).
Reported per method, averaged over the scenes: PSNR against the HR truth, PSNR between the
reduced-precision and the fp32 output (peak 1), and seconds. On a CPU without native bf16 the
timings say nothing about a GPU; the PSNR numbers are what the arithmetic costs.

    python benchmarks/bench_precision.py [--crop 256] [--methods dualsr,mulsr,ifmsr] [--out F]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch
import xarray as xr
from affine import Affine

import geohsr
from geohsr.methods import resolve_device
from geohsr import geo, metrics
from geohsr.resize import imresize

ROOT = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("eval_guided_cave", ROOT / "eval_guided_cave.py")
ev = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ev)


def inputs(sc, method: str, crop: int):
    if geohsr.get_method(method).guided:
        hr, cube, guide = ev.scene_inputs(sc, 4, crop)
        return hr, cube, {"guide": guide}
    hr = sc.cube[:, :crop, :crop].astype(np.float32)
    lr = imresize(torch.from_numpy(hr), scale=0.25).numpy()
    cube = geo.with_grid(xr.DataArray(lr, dims=("band", "y", "x")), Affine(4.0, 0, 500000, 0, -4.0, 5800000),
                         "EPSG:32633")
    return hr, cube, {}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--methods", default="dualsr,mulsr,ifmsr")
    ap.add_argument("--precisions", default="fp32,bf16,fp16",
                    help="fp32 always runs first (the reference); fp16 on a CPU is emulated and very slow")
    ap.add_argument("--device", default="auto", help="cpu, cuda, cuda:1, ... (auto: cuda when available)")
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "precision_cpu.json")
    a = ap.parse_args()
    precisions = ["fp32"] + [p for p in a.precisions.split(",") if p != "fp32"]
    device = str(resolve_device(a.device))
    rows: dict = {}
    warm: set = set()
    for sc in ev.cave_scenes(ev.SHARED / "cave", "val"):
        for m in a.methods.split(","):
            hr, cube, kw = inputs(sc, m, a.crop)
            ref = None
            if m not in warm:  # load the weights once before timing anything
                geohsr.superresolve(cube, m, 4, device=device, **kw).values
                warm.add(m)
            for p in precisions:
                t0 = time.perf_counter()
                out = np.clip(geohsr.superresolve(cube, m, 4, precision=p, device=device, **kw).values, 0, 1)
                sec = time.perf_counter() - t0
                r = {"psnr": metrics.psnr(out, hr), "seconds": sec}
                if ref is None:
                    ref = out
                else:
                    r["psnr_vs_fp32"] = metrics.psnr(out, ref)
                rows.setdefault(m, {}).setdefault(p, []).append(r)
                print(sc.name, m, p, {k: round(v, 3) for k, v in r.items()}, flush=True)
    table = {m: {p: {k: float(np.mean([r[k] for r in rs])) for k in rs[0]} for p, rs in ps.items()}
             for m, ps in rows.items()}
    res = {"protocol": __doc__.split("\n\n")[1].replace("\n", " "), "crop": a.crop,
           "machine": {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
                       "torch": torch.__version__, "device": device,
                       "gpu": torch.cuda.get_device_name() if device.startswith("cuda") else None},
           "table": table}
    print(json.dumps(table, indent=1))
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()
