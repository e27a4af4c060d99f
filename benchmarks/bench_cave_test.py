"""The CAVE-trained weights on scenes that chose nothing: the test scenes of the remote-sensing split.

The CAVE weights chose their checkpoints on the three CAVE validation scenes (balloons, flowers,
superballs), so the numbers those scenes give are optimistic. CAVE holds only 12 scenes (9 train,
3 validation), so the weights are tested here on the **test scenes of the remote-sensing split**
(``geohsr.train.data.RS_SPLIT``: Indian Pines, AVIRIS San Diego, AVIRIS urban-3, an EnMAP mosaic),
which nothing trained on or chose a checkpoint on. geohsr uses the CAVE weights for scenes whose
bands all lie at or below 720 nm, so the headline cut is each scene's **visible bands (≤ 720 nm)**;
urban-3 has no wavelengths and is left out of that cut. Each scene is divided by its maximum.

* DualSR/CoarSR (``coarsr_x{2,4,8}_compact``), the CAVE cards' protocol: LR = MATLAB bicubic ×1/s
  (anti-aliased), the whole scene cropped to a multiple of s; also every band (``--cuts all``).
* MulSR/IFMSR (``{mulsr,ifmsr}_x{4,8}_compact``), the guided cards' protocol
  (``eval_guided_cave.scene_inputs``): anisotropic Gaussian blur λ = (2, 10), torch bicubic ×1/s,
  noise σ = 3/255 (seed 0); the guide is the reference seen through the CIE 1931 observer.

PSNR from one MSE over the cut (peak 1, output clipped to [0, 1]), SAM in degrees. One record
per (weights file, scene, cut) in ``results/cave_test.jsonl``;
``python scripts/ship_models.py test --eval benchmarks/results/cave_test.jsonl`` puts the means
into the CAVE cards as their test numbers.

    python benchmarks/bench_cave_test.py [--files coarsr_x4_compact,...] [--cuts visible,all]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

import geohsr
from geohsr import degrade, metrics
from geohsr import weights as W
from geohsr.train.data import RS_SPLIT, Scene, rs_scene

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import upsert_jsonl  # noqa: E402
from bench_adapt import as_cube  # noqa: E402
from eval_guided_cave import scene_inputs  # noqa: E402

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data"
OUT = HERE / "results" / "cave_test.jsonl"
VISIBLE_MAX_NM = 720.0
GUIDED_CROP = 160  # px a side (the scenes are 100–145 px; EnMAP 128 × 64)


def cave_files() -> list[dict]:
    return W.of_kind("CAVE")


def cut(sc: Scene, which: str) -> Scene | None:
    if which == "all":
        return sc
    if sc.wavelength is None:
        return None
    keep = np.asarray(sc.wavelength, float) <= VISIBLE_MAX_NM
    return Scene(sc.name, sc.cube[keep], np.asarray(sc.wavelength, float)[keep])


def score(sr: np.ndarray, hr: np.ndarray) -> dict:
    sr = np.clip(sr, 0, 1)
    return {"psnr": round(metrics.psnr(sr, hr), 3), "sam": round(metrics.sam(sr, hr), 3)}


def dualsr_rows(e: dict, sc: Scene) -> dict:
    s = int(e["scale"])
    need = geohsr.get_method("dualsr").scales_of_weights(s)
    files = {int(x["scale"]): str(W.models_dir() / x["file"]) for x in cave_files() if x["method"] == "coarsr"}
    h, w = sc.cube.shape[1] // s * s, sc.cube.shape[2] // s * s
    hr = sc.cube[:, :h, :w].astype(np.float32)
    lr = as_cube(degrade.bicubic_down(hr, s).astype(np.float32), sc.wavelength)
    rows = {"bicubic": score(geohsr.superresolve(lr, "bicubic", s).values, hr),
            "coarsr": score(geohsr.superresolve(lr, "coarsr", s, weights=files[s]).values, hr)}
    if all(k in files for k in need):
        rows["dualsr"] = score(geohsr.superresolve(lr, "dualsr", s, weights=",".join(files[k] for k in need)).values, hr)
    return rows


def guided_rows(e: dict, sc: Scene) -> dict:
    s, m = int(e["scale"]), e["method"]
    hr, cube, guide = scene_inputs(sc, s, GUIDED_CROP)
    return {"bicubic": score(geohsr.superresolve(cube, "bicubic", s).values, hr),
            m: score(geohsr.superresolve(cube, m, s, guide=guide, coregister=False,
                                         weights=str(W.models_dir() / e["file"])).values, hr)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", default=",".join(e["file"].removesuffix(".safetensors") for e in cave_files()))
    ap.add_argument("--scenes", default=",".join(RS_SPLIT["test"]))
    ap.add_argument("--cuts", default="visible,all")
    a = ap.parse_args()
    entries = {e["file"].removesuffix(".safetensors"): e for e in cave_files()}
    scenes = [rs_scene(DATA, n) for n in a.scenes.split(",")]
    for name in a.files.split(","):
        e = entries[name]
        for which in a.cuts.split(","):
            if which == "all" and e["method"] != "coarsr":
                continue  # an RGB guide informs the visible bands only; guided methods are tested there
            for sc0 in scenes:
                sc = cut(sc0, which)
                if sc is None:
                    continue
                t0 = time.perf_counter()
                rows = dualsr_rows(e, sc) if e["method"] == "coarsr" else guided_rows(e, sc)
                rec = {"benchmark": "cave_test", "weights": name, "method": e["method"], "scale": int(e["scale"]),
                       "input": sc.name, "cut": which, "bands": int(sc.cube.shape[0]), "rows": rows,
                       "seconds": round(time.perf_counter() - t0, 1),
                       "machine": {"platform": platform.platform(), "torch": torch.__version__,
                                   "date": time.strftime("%Y-%m-%d")}}
                upsert_jsonl(OUT, rec, keys=("benchmark", "weights", "input", "cut"))
                print(json.dumps(rec), flush=True)


if __name__ == "__main__":
    main()
