"""Entry points behind ``geohsr train``."""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import torch

from .. import weights as W
from ..errors import InputError, WeightsError
from .data import cave_scenes, find_dataset
from .dualsr import RECIPES, CoarSRTask
from .trainer import Trainer, TrainSettings


def _split_scenes(data: Path):
    data = Path(data)
    if data.is_dir() and any(p.is_dir() and list(p.glob("*_ms_01.png")) for p in data.iterdir()):
        return cave_scenes(data, "train"), cave_scenes(data, "val"), "CAVE"
    scenes = find_dataset(data)
    if len(scenes) >= 2:
        val = scenes[::5] if len(scenes) >= 5 else scenes[-1:]
        train = [s for s in scenes if s not in val]
        return train, val, "rasters"
    sc = scenes[0]  # one scene: top 75 % of the rows train, the rest validates
    cut = int(sc.cube.shape[1] * 0.75)
    from .data import Scene

    return ([Scene(sc.name + "[:75%]", sc.cube[:, :cut], sc.wavelength)],
            [Scene(sc.name + "[75%:]", sc.cube[:, cut:], sc.wavelength)], "raster (row split)")


def _make_task(method, train, val, scale, config, device, seed, amp, options):
    if method in ("coarsr", "dualsr"):
        rec = RECIPES[config]
        task = CoarSRTask(train, val, scale, config, device=device, seed=seed, amp=amp)
        recipe = {"loss": "L1", "steps": "one Adam step per band", "lr_patch": task.patches.lr_patch,
                  "augment": "rescale {1, .75, .5} x crop x {id, rot180, rot90, rot270, vflip}",
                  "degradation": "MATLAB bicubic x1/s (anti-aliased)"}
        return task, rec, recipe, "coarsr", ["coarsr", "dualsr"], task.metadata()["config"]
    if method in ("mulsr", "ifmsr"):
        from .guided import RECIPES as GREC
        from .guided import GuidedTask

        task = GuidedTask(method, train, val, scale, config, device=device, seed=seed, amp=amp,
                          per_band_steps=bool(options.get("per_band_steps")),
                          swap_bug=bool(options.get("swap_bug")))
        recipe = {"loss": "L1",
                  "steps": ("one Adam step per band" if task.per_band_steps
                            else "one random band per sample, one Adam step per batch"),
                  "lr_patch": task.patches.lr_patch,
                  "augment": "hflip, vflip, roll H/2, rot90, rot-90 (p = 0.5 each)",
                  "rgb": "CIE 1931 2deg -> linear sRGB response (geohsr.degrade.cie_rgb_response), "
                         "scene 99.9th-percentile scaling x log-uniform gain [0.7, 1.4]",
                  "degradation": "random kernel (iso/aniso, k in {7,9,13,15,21}) x {bicubic, bilinear, "
                                 "direction} downsampler, p=0.8 noise sigma in {1..4}/255",
                  "validation_degradation": "aniso Gaussian k=13 (2, 10, pi/2), torch bicubic, "
                                            "noise 3/255, seed 2023, centre crops"}
        return task, GREC[config], recipe, method, [method], task.config
    raise InputError(f"geohsr cannot train {method!r} yet")


def train_method(method, data, scale: int, out, *, config="compact", resume=False, batches=2000,
                 batch=None, lr=None, halve_every=0, val_every=50, ckpt_every=25, max_minutes=None,
                 seed=1, device="cpu", threads=None, progress=True, command="", amp=False,
                 options: dict | None = None, init=None) -> dict:
    """Train ``method`` on ``data`` into the run folder ``out`` (best.safetensors + card.json).

    ``init``: a safetensors file of the same architecture (any scale where the network's weights
    do not depend on it) to start from instead of a random initialisation (fine-tuning)."""
    out = Path(out)
    train, val, kind = _split_scenes(data)
    if not train or not val:
        raise InputError(f"{data}: need at least one training and one validation scene")
    task, rec, recipe, wmethod, used_by, arch = _make_task(method, train, val, scale, config, device,
                                                           seed, amp, options or {})
    settings = TrainSettings(lr=lr or rec["lr"], batch=batch or rec["batch"], batches=batches,
                             halve_every=halve_every, val_every=val_every, ckpt_every=ckpt_every,
                             seed=seed, max_minutes=max_minutes, device=device, threads=threads)
    init_info = _initialise(task.model, init) if init else None
    t0 = time.time()
    result = Trainer(task, out, settings).run(resume=resume, progress=progress)
    best = out / "best.safetensors"
    recipe.update({"lr": settings.lr, "batch": settings.batch, "halve_every_batches": halve_every,
                   "batches": result["batches"], "seed": seed, "amp_bf16": amp})
    card = {
        "method": wmethod, "used_by": used_by, "scale": scale, "config": config,
        "architecture": arch,
        "parameters": sum(p.numel() for p in task.model.parameters()),
        "data": {"kind": kind, "path": str(data), "train_scenes": task.train_scenes,
                 "val_scenes": task.val_scenes},
        "normalisation": task.metadata()["normalisation"],
        "recipe": recipe,
        "best_val_psnr_crop": result["best"],
        "initialised_from": init_info,
        "command": command,
        "trained_on": {"device": device, "torch": torch.__version__, "machine": platform.platform(),
                       "minutes_this_session": round((time.time() - t0) / 60, 1)},
        "sha256": W.sha256(best),
        "licence": "weights: GPL-3.0-or-later (code); CAVE data: research use, cite Yasuma et al. 2008",
    }
    (out / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    return {"out": str(out), **result, "sha256": card["sha256"]}


def _initialise(model: torch.nn.Module, init) -> dict:
    """Load ``init`` (safetensors) into ``model``. Weights of another scale fit except for the
    scale-dependent layers (CoarSR's sub-pixel upsampler): those keep their fresh initialisation
    and are listed in the card; a file of which less than half the model's parameters fit (another
    method or config) is refused with a one-line error."""
    init = Path(init)
    tensors, meta = W.load(init)
    own = model.state_dict()
    fit = {k: v for k, v in tensors.items() if k in own and tuple(own[k].shape) == tuple(v.shape)}
    total = sum(v.numel() for v in own.values())
    share = sum(own[k].numel() for k in fit) / max(total, 1)
    if share < 0.5:
        raise WeightsError(f"{init}: weights do not fit the model (only {share:.0%} of its parameters "
                           f"match these {meta.get('method')} ×{meta.get('scale')} weights); use weights "
                           "of the same method and config")
    model.load_state_dict(fit, strict=False)
    info = {"file": init.name, "sha256": W.sha256(init), "method": meta.get("method"),
            "scale": meta.get("scale")}
    fresh = sorted(k for k in own if k not in fit)
    if fresh:
        info["not_loaded"] = fresh
        info["loaded_share_of_parameters"] = round(share, 4)
    return info


def train_coarsr(data, scale: int, out, **kw) -> dict:
    return train_method("coarsr", data, scale, out, **kw)


def _parse_range(text) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in str(text).split("-"))
    except ValueError:
        raise InputError(f"wavelength range {text!r} must look like 1000-1700 (nm)") from None
    if not hi > lo:
        raise InputError(f"wavelength range {text!r}: the upper end must exceed the lower")
    return lo, hi


def train_swir(method, sources, targets, scale: int, out, *, source_range="1000-1700",
               target_range="1700-2500", config="compact", resume=False, batches=1500, batch=None,
               lr=None, val_every=250, ckpt_every=50, max_minutes=None, seed=1, device="cpu",
               threads=None, progress=True, command="", alpha=0.01, alpha_rampup=0, l1_only=False,
               frozen_unmixing=False, psf=None, hr_crop=64, bicubic_skip=True,
               endmember_init="pixels", sam_weight=0.1, sam_domain="log") -> dict:
    """Train SNLSR (source range only) or A-SNLSR (source HR + target LR, adversarial)."""
    from .swir import SWIRTask, load_spectral_scenes

    out = Path(out)
    if not sources:
        raise InputError("give at least one --source scene (HR data of the source range)")
    targets = targets or sources
    src = [s for p in sources for s in load_spectral_scenes(p)]
    tgt = [s for p in targets for s in load_spectral_scenes(p)]
    task = SWIRTask(method, src, tgt, scale, _parse_range(source_range), _parse_range(target_range),
                    config, hr_crop=hr_crop, alpha=alpha, alpha_rampup=alpha_rampup, l1_only=l1_only,
                    frozen_unmixing=frozen_unmixing, psf=psf, device=device, seed=seed,
                    bicubic_skip=bicubic_skip, endmember_init=endmember_init, sam_weight=sam_weight,
                    sam_domain=sam_domain)
    settings = TrainSettings(lr=lr or 1e-3, batch=batch or 8, batches=batches, val_every=val_every,
                             ckpt_every=ckpt_every, seed=seed, max_minutes=max_minutes, device=device,
                             threads=threads, schedule="cosine", cycle=max(batches // 4, 1), final_lr=1e-4)
    t0 = time.time()
    trainer = Trainer(task, out, settings)
    if resume and (out / "checkpoint" / "state.json").is_file():
        task.step = json.loads((out / "checkpoint" / "state.json").read_text())["step"]
    result = trainer.run(resume=resume, progress=progress)
    final = trainer.validate()
    best = out / "best.safetensors"
    W.save(task.model.state_dict(), best, task.metadata())  # the last step's weights
    meta = task.metadata()
    card = {
        "method": method, "used_by": [method], "scale": scale, "config": config,
        "architecture": meta["config"], "wavelength": meta["wavelength"], "fwhm": meta["fwhm"],
        "range": meta["range"], "source_range": meta["source_range"],
        "parameters": sum(p.numel() for p in task.model.net.parameters()),
        "discriminator_parameters": (sum(p.numel() for p in task.model.disc.parameters())
                                     if task.model.disc is not None else 0),
        "data": {"source": [d.name for d in task.src], "target": [d.name for d in task.tgt],
                 "split": "last third of every scene along its longer axis held out (never seen); "
                          "training crops from the first two thirds",
                 "target_use": ("LR only (unmixing + domain loss)" if method == "a-snlsr"
                                else "none in training (held-out evaluation only)")},
        "normalisation": meta["normalisation"],
        "recipe": {"loss": ("L1(SR,HR)" if l1_only else
                            f"L1(SR,HR) + L1(rec,LR) + {sam_weight:g} (SAM(SR,HR) + SAM(rec,LR)), SAM in radians"
                            + (" of the log-normalised values" if sam_domain == "log" else
                               " of the linear (reflectance) values")),
                   "domain_loss": ("cross-entropy through gradient reversal, alpha = "
                                   f"{alpha}, ramp-up {alpha_rampup} batches" if method == "a-snlsr" else None),
                   "lr": settings.lr, "final_lr": settings.final_lr,
                   "schedule": f"cosine warm restarts every {settings.cycle} batches",
                   "batch": settings.batch, "hr_crop": hr_crop, "batches": result["batches"],
                   "seed": seed, "augment": "8 dihedral variants", "frozen_unmixing": frozen_unmixing,
                   "degradation": f"A-SNLSR PSF (32x32) + stride {scale}", "bicubic_skip": bicubic_skip,
                   "endmember_init": ("random LR training pixels (half source, half target)"
                                      if endmember_init == "pixels" and method == "a-snlsr" else
                                      "random LR source training pixels" if endmember_init == "pixels"
                                      else "random (PyTorch default)")},
        "held_out": final,
        "command": command,
        "trained_on": {"device": device, "torch": torch.__version__, "machine": platform.platform(),
                       "minutes_this_session": round((time.time() - t0) / 60, 1)},
        "sha256": W.sha256(best),
    }
    (out / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    return {"out": str(out), **result, "held_out": final, "sha256": card["sha256"]}
