"""How different do SWIR1 and SWIR2 look to a model? A diagnostic for the A-SNLSR result.

For each trained model, the encoder's LR abundance maps are computed on PSF-degraded SWIR1
(source) and SWIR2 (target) crops of the training parts of every scene. A fresh linear domain
classifier (logistic regression on per-pixel abundance vectors, fitted on half the pixels) is
scored on the other half: ~50 % means the abundances carry no domain information (nothing for
the discriminator to remove), ~100 % a clear domain gap. Also reports the spectral-shape gap
in the data itself: the mean spectral angle between the two ranges' band-normalised spectra.

    python benchmarks/swir_domain_gap.py [--runs runs/swir runs/swir_diag]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from geohsr import degrade
from geohsr.methods.snlsr import build_swir
from geohsr.methods.snlsr.train import default_psf, domain_cubes
from geohsr.train.data import load_spectral_scenes
from geohsr.transforms import to_log

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
SCENES = ["indian_pines", "jasper_ridge/jasperRidge2_R198.mat",
          "enmap_potsdam/enmap_potsdam_mosaic_x160-224_y64-192.tif", "aviris_abu/sandiego.mat"]


def lr_tiles(cubes, psf):
    out = []
    for d in cubes:
        hr = d.train
        h, w = hr.shape[1] // 4 * 4, hr.shape[2] // 4 * 4
        out.append(torch.from_numpy(to_log(degrade.psf_stride(hr[:, :h, :w], psf, 4).astype(np.float32)))[None])
    return out


def classifier_accuracy(a_src: np.ndarray, a_tgt: np.ndarray, seed: int = 0) -> float:
    x = np.concatenate([a_src, a_tgt]).astype(np.float32)
    y = np.r_[np.zeros(len(a_src)), np.ones(len(a_tgt))].astype(np.float32)
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(x))
    tr, te = idx[: len(x) // 2], idx[len(x) // 2:]
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    mu, sd = xt[tr].mean(0), xt[tr].std(0) + 1e-6
    xt = (xt - mu) / sd
    lin = torch.nn.Linear(x.shape[1], 1)
    opt = torch.optim.Adam(lin.parameters(), 0.05)
    for _ in range(300):
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(lin(xt[tr])[:, 0], yt[tr])
        loss.backward()
        opt.step()
    with torch.no_grad():
        return float(((lin(xt[te])[:, 0] > 0).float() == yt[te]).float().mean())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", nargs="+", type=Path, default=[ROOT / "runs" / "swir", ROOT / "runs" / "swir_diag"],
                    help="folders of <method>_s<seed> run folders")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "swir_domain_gap.json")
    a = ap.parse_args()
    scenes = [s for p in SCENES for s in load_spectral_scenes(SHARED / p)]
    src, _, _ = domain_cubes(scenes, 1000.0, 1700.0)
    tgt, _, _ = domain_cubes(scenes, 1700.0, 2500.0)
    psf = default_psf(SHARED / "psf" / "asnlsr_psf_32x32.mat")
    s_lr, t_lr = lr_tiles(src, psf), lr_tiles(tgt, psf)
    res = {"data": {}}

    def shape(c):  # band-normalised mean spectrum shape per pixel
        v = c.reshape(c.shape[0], -1)
        n = np.linalg.norm(v, axis=0, keepdims=True)
        return np.where(n > 0, v / np.where(n > 0, n, 1), np.nan)  # all-zero pixels (nodata): NaN

    for ds, dt in zip(src, tgt):  # how alike are the two ranges' spectral shapes, band by band
        res["data"][ds.name] = {"mean_log_level_source": float(to_log(ds.train).mean()),
                                "mean_log_level_target": float(to_log(dt.train).mean()),
                                "pixel_cosine_of_shapes": float(np.nanmean((shape(ds.train) * shape(dt.train)).sum(0)))}
    for root in a.runs:
        for run in sorted(p for p in root.glob("*") if (p / "card.json").is_file()):
            card = json.loads((run / "card.json").read_text())
            net = build_swir(card["method"], 4, str(run / "best.safetensors"), torch.device("cpu"))
            with torch.inference_mode():
                a_s = np.concatenate([net.encoder(x)[0].reshape(net.config.materials, -1).T.numpy() for x in s_lr])
                a_t = np.concatenate([net.encoder(x)[0].reshape(net.config.materials, -1).T.numpy() for x in t_lr])
                rec_l1 = float(np.mean([(net.endmembers(net.encoder(x)) - x).abs().mean() for x in t_lr]))
                lr_std = float(np.mean([x.std((2, 3)).mean() for x in t_lr]))
            key = f"{root.name}/{run.name}"
            res[key] = {"method": card["method"],
                             "domain_classifier_accuracy": classifier_accuracy(a_s, a_t),
                             "mean_max_abundance": float(a_s.max(1).mean()),
                             "abundance_pixel_std": float(a_s.std(0).max()),
                             "active_materials": int((a_s.mean(0) > 0.01).sum()),
                             "target_reconstruction_l1": rec_l1, "target_lr_pixel_std": lr_std,
                             "alpha": card["recipe"].get("domain_loss")}
            print(key, res[key], flush=True)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()
