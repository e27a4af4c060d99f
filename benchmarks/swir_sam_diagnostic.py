"""Why SNLSR / A-SNLSR raise PSNR but not SAM over bicubic on the SWIR2 held-out regions.

SAM is blind to a per-pixel scale factor, and in the A-SNLSR log normalisation a per-pixel scale
is a constant added to every band. So split every residual over bicubic (log domain, per pixel)
into its band mean (``flat``: a brightness change, invisible to SAM) and the rest (``shape``:
the only part that can move SAM). Reported per held-out region (eval_swir.py's protocol):

* ``true_flat_share``: share of the energy of the true residual HR − bicubic that is flat;
* ``bicubic_plus_true_flat``: PSNR log / SAM of bicubic corrected by the true flat residual only
  (what a perfect brightness-only super-resolver reaches);
* ``bicubic_plus_true_shape_in_span``: bicubic + the true shape residual projected onto the
  span of the model's 16 endmembers (least squares per pixel): the SAM this output structure
  could reach if the abundance network were perfect;
* ``hr_pca10_sam``: SAM between the HR cube and its projection on its own 10 principal
  components — a rough noise floor for SAM (what no predictor of the signal can go below);
* per model: its PSNR log / SAM, the flat share of its own residual, the PSNR log / SAM of
  bicubic + its flat part alone, and ``unmixing_sam_on_lr``: the SAM between the LR input and
  its reconstruction from the model's own abundances (endmembers × abundances) — how much
  spectral shape the abundances that feed the SR branch can describe at all.

    python benchmarks/swir_sam_diagnostic.py --runs runs/swir_v3/a-snlsr_s1 runs/swir_v3/snlsr_s1 \
        [--out benchmarks/results/swir_sam_diagnostic.json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from geohsr import metrics
from geohsr.methods.snlsr import build_swir

ROOT = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("eval_swir", ROOT / "eval_swir.py")
ev = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ev)


def split(r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    flat = np.broadcast_to(r.mean(0, keepdims=True), r.shape)
    return flat, r - flat


def share(part: np.ndarray, whole: np.ndarray) -> float:
    return float((part ** 2).sum() / max((whole ** 2).sum(), 1e-12))


def span_projection(r: np.ndarray, e: np.ndarray) -> np.ndarray:
    """Least-squares projection of every pixel's spectrum of ``r`` (C, H, W) onto span(e) (C, m)."""
    c = r.shape[0]
    coef, *_ = np.linalg.lstsq(e, r.reshape(c, -1), rcond=None)
    return (e @ coef).reshape(r.shape)


def score(x_log: np.ndarray, hr: np.ndarray) -> dict:
    m = ev._metrics(np.clip(x_log, 0, 1).astype(np.float32), hr)
    return {"psnr_log": m["psnr_log"], "sam": m["sam"]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", nargs="+", type=Path, required=True, help="run folders (card.json + best.safetensors)")
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    cards = [json.loads((r / "card.json").read_text()) for r in a.runs]
    regions, _ = ev.held_out_regions((cards[0]["wavelength"], cards[0]["fwhm"]))
    nets = [(f"{r.parent.name}/{r.name}", build_swir(c["method"], 4, str(r / "best.safetensors"), torch.device("cpu")))
            for c, r in zip(cards, a.runs)]
    res = {"protocol": __doc__.split("\n\n")[1].replace("\n", " "), "regions": {}}
    for name, hr, x in regions:
        hl = ev.to_log(hr)
        bic = F.interpolate(x, scale_factor=4, mode="bicubic", align_corners=False)[0].clamp(0, 1).numpy()
        r = hl - bic
        flat, shape = split(r)
        e = nets[0][1].endmembers.weight.detach()[:, :, 0, 0].numpy()
        x2 = hr.reshape(hr.shape[0], -1)
        mu = x2.mean(1, keepdims=True)
        u = np.linalg.svd(x2 - mu, full_matrices=False)[0][:, :10]
        pca10 = (u @ (u.T @ (x2 - mu)) + mu).reshape(hr.shape)
        row = {"bicubic": score(bic, hr), "true_flat_share": share(flat, r),
               "hr_pca10_sam": float(np.mean(metrics.sam_map(pca10, hr))),
               "bicubic_plus_true_flat": score(bic + flat, hr),
               "bicubic_plus_true_shape_in_span": score(bic + flat + span_projection(shape, e), hr),
               "models": {}}
        for label, net in nets:
            with torch.inference_mode():
                out, rec, _ = net(x)
                y = out[0].clamp(0, 1).numpy()
            unmix_sam = float(np.mean(metrics.sam_map(ev.from_log(rec[0].numpy()), ev.from_log(x[0].numpy()))))
            mf, _ = split(y - bic)
            row["models"][label] = {**score(y, hr), "flat_share_of_own_residual": share(mf, y - bic),
                                    "bicubic_plus_own_flat": score(bic + mf, hr), "unmixing_sam_on_lr": unmix_sam}
        res["regions"][name] = row
        print(name, json.dumps(row, indent=1), flush=True)
    keys = ["bicubic", "bicubic_plus_true_flat", "bicubic_plus_true_shape_in_span"]
    res["mean"] = {k: {m: float(np.mean([v[k][m] for v in res["regions"].values()])) for m in ("psnr_log", "sam")}
                   for k in keys}
    for k in ("true_flat_share", "hr_pca10_sam"):
        res["mean"][k] = float(np.mean([v[k] for v in res["regions"].values()]))
    for label, _ in nets:
        ms = [v["models"][label] for v in res["regions"].values()]
        res["mean"][label] = {"psnr_log": float(np.mean([m["psnr_log"] for m in ms])),
                              "sam": float(np.mean([m["sam"] for m in ms])),
                              "flat_share_of_own_residual": float(np.mean([m["flat_share_of_own_residual"] for m in ms])),
                              "unmixing_sam_on_lr": float(np.mean([m["unmixing_sam_on_lr"] for m in ms])),
                              "bicubic_plus_own_flat": {k: float(np.mean([m["bicubic_plus_own_flat"][k] for m in ms]))
                                                        for k in ("psnr_log", "sam")}}
    print(json.dumps(res["mean"], indent=1))
    if a.out:
        a.out.write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()
