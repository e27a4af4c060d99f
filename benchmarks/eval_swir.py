"""SWIR1 → SWIR2 cross-spectral adaptation at ×4: bicubic vs SNLSR (source only) vs A-SNLSR.

Protocol (Wald, A-SNLSR's PSF degradation): for every scene, the last third along its longer
axis is held out (never seen in training, in any domain). Its SWIR2 bands are resampled onto the
model's 30-band grid, divided by the scene maximum, degraded by the fixed A-SNLSR PSF + stride 4,
and super-resolved. Metrics per held-out region, then averaged over regions:

* ``psnr_log`` — the authors' protocol: PSNR on the log-normalised data with the data range of
  the HR reference (max − min), one MSE per region;
* ``psnr`` — PSNR on the linear data (divided by the scene maximum, peak 1);
* ``sam`` — spectral angle in degrees on the linear data;
* ``ssim_log`` — SSIM (Gaussian 11/1.5) on the log-normalised data.

Every run folder ``<runs>/<method>_s<seed>`` (from ``scripts/train_swir_seeds.sh``) is
evaluated; the table gives mean ± std over seeds.

    python benchmarks/eval_swir.py [--runs runs/swir] [--runs "LABEL=runs/other"] [--out F]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from geohsr import degrade, metrics
from geohsr.methods.snlsr import build_swir
from geohsr.methods.snlsr.train import default_psf, domain_cubes
from geohsr.train.data import load_spectral_scenes
from geohsr.transforms import from_log, to_log

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
SCENES = ["indian_pines", "jasper_ridge/jasperRidge2_R198.mat",
          "enmap_potsdam/enmap_potsdam_mosaic_x160-224_y64-192.tif", "aviris_abu/sandiego.mat"]


def _metrics(sr_log: np.ndarray, hr: np.ndarray) -> dict:
    hl = to_log(hr)
    rng = float(hl.max() - hl.min())
    lin = from_log(sr_log)
    return {"psnr_log": metrics.psnr(sr_log, hl, peak=rng), "psnr": metrics.psnr(lin, hr),
            "sam": metrics.sam(lin, hr), "ssim_log": metrics.ssim(sr_log, hl, peak=rng)}


def held_out_regions(grid=None, scale: int = 4):
    """[(name, HR linear cube, LR log tensor (1, C, h, w))] of every scene's held-out SWIR2 part
    on ``grid`` (centres, fwhm; default: the training grid), and the grid's centres."""
    scenes = [s for p in SCENES for s in load_spectral_scenes(SHARED / p)]
    cubes, centres, _ = domain_cubes(scenes, 1700.0, 2500.0, grid=grid)
    psf = default_psf(SHARED / "psf" / "asnlsr_psf_32x32.mat")
    regions = []
    for d in cubes:
        hr = d.held_out
        h, w = hr.shape[1] // scale * scale, hr.shape[2] // scale * scale
        hr = hr[:, :h, :w]
        lr = degrade.psf_stride(hr, psf, scale).astype(np.float32)
        regions.append((d.name, hr, torch.from_numpy(to_log(lr))[None]))
    return regions, centres


def _run_dirs(runs: list[tuple[str | None, Path]]):
    for label, folder in runs:
        for run in sorted(Path(folder).glob("*_s*")):
            if (run / "card.json").is_file():
                yield label, run


def evaluate(runs, scale: int = 4) -> dict:
    """``runs``: a folder of ``<method>_s<seed>`` runs, or a list of (label or None, folder);
    a label names that folder's rows (default: the method of each run)."""
    if isinstance(runs, (str, Path)):
        runs = [(None, Path(runs))]
    cards = [json.loads((r / "card.json").read_text()) for _, r in _run_dirs(runs)]
    grid = (cards[0]["wavelength"], cards[0]["fwhm"]) if cards else None
    regions, centres = held_out_regions(grid, scale)
    rows: dict[str, dict] = {"bicubic": {}}
    for name, hr, x in regions:
        bic = F.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False)[0].clamp(0, 1)
        rows["bicubic"].setdefault("seed0", {})[name] = _metrics(bic.numpy(), hr)
    for label, run in _run_dirs(runs):
        card = json.loads((run / "card.json").read_text())
        np.testing.assert_allclose(card["wavelength"], centres, atol=1e-2)
        net = build_swir(card["method"], scale, str(run / "best.safetensors"), torch.device("cpu"))
        seed = run.name.rsplit("_s", 1)[1]
        for name, hr, x in regions:
            with torch.inference_mode():
                y = net(x)[0][0].clamp(0, 1).numpy()
            rows.setdefault(label or card["method"], {}).setdefault(f"seed{seed}", {})[name] = _metrics(y, hr)
    table = {}
    for method, seeds in rows.items():
        per_seed = {k: {m: float(np.mean([r[m] for r in regs.values()])) for m in next(iter(regs.values()))}
                    for k, regs in seeds.items()}
        keys = next(iter(per_seed.values())).keys()
        table[method] = {m: {"mean": float(np.mean([v[m] for v in per_seed.values()])),
                             "std": float(np.std([v[m] for v in per_seed.values()])),
                             "seeds": len(per_seed)} for m in keys}
    per_region = {method: {name: {m: float(np.mean([regs[name][m] for regs in seeds.values()]))
                                  for m in seeds[next(iter(seeds))][name]} for name, _, _ in regions}
                  for method, seeds in rows.items()}
    return {"protocol": __doc__.split("\n\n")[1], "regions": [r[0] for r in regions],
            "grid_nm": [float(c) for c in centres], "table": table, "per_region": per_region,
            "per_seed": rows}


def to_markdown(res: dict) -> str:
    lines = ["| method | seeds | PSNR log (authors') | PSNR linear | SAM (deg) | SSIM log |",
             "|---|---|---|---|---|---|"]
    for m, t in res["table"].items():
        f = lambda k: f"{t[k]['mean']:.2f} ± {t[k]['std']:.2f}"  # noqa: E731
        lines.append(f"| {m} | {t['psnr']['seeds']} | {f('psnr_log')} | {f('psnr')} | {f('sam')} | "
                     f"{t['ssim_log']['mean']:.4f} ± {t['ssim_log']['std']:.4f} |")
    regions = res["regions"]
    lines += ["", "PSNR log (dB) / SAM (°) per held-out region, mean over seeds:", "",
              "| method | " + " | ".join(regions) + " |", "|---|" + "---|" * len(regions)]
    for m, regs in res["per_region"].items():
        lines.append(f"| {m} | " + " | ".join(f"{regs[r]['psnr_log']:.2f} / {regs[r]['sam']:.2f}"
                                                for r in regions) + " |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", action="append", default=None,
                    help="[LABEL=]FOLDER of <method>_s<seed> runs (repeatable; default runs/swir)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "swir_x4.json")
    a = ap.parse_args()
    runs = [(r.split("=", 1)[0], Path(r.split("=", 1)[1])) if "=" in r else (None, Path(r))
            for r in (a.runs or [str(ROOT / "runs" / "swir")])]
    res = evaluate(runs)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(res, indent=1) + "\n")
    print(to_markdown(res))


if __name__ == "__main__":
    main()
