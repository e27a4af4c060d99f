"""SNLSR / A-SNLSR training: cross-spectral domain adaptation (docs/methods.md, SNLSR/A-SNLSR).

Data preparation is geohsr's own and works on any cube with wavelengths:

* each scene's good bands are resampled onto a fixed grid per range
  (:func:`geohsr.degrade.spectral_grid`: Gaussian bands, absorption ranges removed, 30 bands),
  with Gaussian weights evaluated at the scene's actual band centres;
* every resampled cube is divided by its maximum (what ``superresolve`` does with the scene-wide
  maximum at inference) and log-normalised: ``(ln max(x, 1e−4) − ln 1e−4) / (ln 2 − ln 1e−4)``;
* LR = the fixed A-SNLSR PSF + stride degradation of the HR crop.

Split: the last third of every scene along its longer axis is **held out** (never seen in any
domain); training crops come from the first two thirds. Source samples train SR + unmixing;
target samples (LR only) train unmixing and, for A-SNLSR, the domain discriminator through a
gradient-reversal layer. The weights are those of the last step (no model selection on
held-out data).
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ... import degrade, metrics
from ... import weights as W
from ...errors import InputError
from ...train.data import Scene, load_spectral_scenes
from ...train.trainer import Trainer, TrainSettings
from ...transforms import from_log, to_log
from .. import get_method
from .net import DomainDiscriminator, SNLSR, SNLSRConfig, sam_radians


def default_psf(path=None) -> np.ndarray:
    """The PSF of ``path`` (a ``.mat`` with key ``data``, e.g. the A-SNLSR authors'
    ``psf/asnlsr_psf_32x32.mat`` of the data folder), else an anisotropic Gaussian with that
    PSF's fitted variances (6.3 px² across columns, 3.4 px² across rows)."""
    if path:
        p = Path(path)
        if not p.is_file():
            raise InputError(f"{path}: PSF file not found")
        return degrade.load_mat_kernel(p, "data").astype(np.float64)
    y, x = np.mgrid[0:32, 0:32].astype(np.float64)
    k = np.exp(-0.5 * (((x - 15.98) ** 2) / 6.306 + ((y - 15.99) ** 2) / 3.340))
    return k / k.sum()


def split_scene(cube: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(train, held-out): the first two thirds and the last third along the longer axis."""
    axis = 1 if cube.shape[1] >= cube.shape[2] else 2
    cut = int(round(cube.shape[axis] * 2 / 3))
    sl_a = [slice(None)] * 3
    sl_b = [slice(None)] * 3
    sl_a[axis], sl_b[axis] = slice(0, cut), slice(cut, None)
    return cube[tuple(sl_a)], cube[tuple(sl_b)]


@dataclass
class DomainCube:
    name: str
    train: np.ndarray  # (30, h, w) divided by the scene max (linear)
    held_out: np.ndarray


def common_range(scenes: list[Scene], lo: float, hi: float) -> tuple[float, float]:
    """The part of ``lo``–``hi`` nm every scene covers (the grid a model is trained on)."""
    for s in scenes:
        wl = np.asarray(s.wavelength, np.float64)
        inside = wl[(wl >= lo) & (wl <= hi)]
        if inside.size < 2:
            raise InputError(f"{s.name} has fewer than 2 bands between {lo:.0f} and {hi:.0f} nm")
        lo, hi = max(lo, float(inside.min())), min(hi, float(inside.max()))
    return lo, hi


def domain_cubes(scenes: list[Scene], lo: float, hi: float, bands_out: int = 30,
                 split: bool = True, grid=None) -> tuple[list[DomainCube], np.ndarray, float]:
    """Every scene resampled onto the range's grid (``grid`` = (centres, fwhm) of a trained
    model, or the grid of the part of ``lo``–``hi`` all scenes cover), divided by its maximum,
    split into (train, held-out)."""
    if grid is None:
        lo, hi = common_range(scenes, lo, hi)
        centres, fwhm = degrade.spectral_grid(lo, hi, bands_out)
    else:
        centres, fwhm = np.asarray(grid[0], np.float64), float(grid[1])
    out = []
    for s in scenes:
        try:
            m = degrade.resample_matrix(s.wavelength, centres, fwhm)
        except ValueError as e:
            raise InputError(f"{s.name} does not cover {lo:.0f}-{hi:.0f} nm: {e}") from None
        cube = np.tensordot(m, s.cube.astype(np.float64), axes=(1, 0))
        cube = (cube / max(float(cube.max()), 1e-12)).astype(np.float32)
        tr, ho = split_scene(cube) if split else (cube, cube[:, :0])
        out.append(DomainCube(s.name, tr, ho))
    return out, centres, fwhm


def _dihedral(x: np.ndarray, k: int) -> np.ndarray:
    if k >= 4:
        x = x[:, ::-1]
    return np.rot90(x, k % 4, axes=(1, 2))


class SWIRModel(nn.Module):
    """The SR network and (A-SNLSR) its domain discriminator, saved together."""

    def __init__(self, scale: int, config: SNLSRConfig, adversarial: bool):
        super().__init__()
        self.net = SNLSR(scale, config)
        self.disc = DomainDiscriminator(config.materials) if adversarial else None


class _SWIRLosses:
    """SNLSR's loss terms and optimiser step, shared by training (:class:`SWIRTask`) and scene
    adaptation (:class:`SWIRAdaptTask`). The class attributes are the shipped recipe's values; the
    training task sets its own from its arguments."""

    adversarial = False
    l1_only = False
    sam_weight, sam_domain = 0.1, "log"
    alpha, alpha_rampup = 0.0, 0

    def alpha_at(self, step: int) -> float:
        if self.alpha_rampup and step < self.alpha_rampup:
            return self.alpha * step / self.alpha_rampup
        return self.alpha

    def _sam(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """SAM loss term (radians). The papers take it of the log-normalised values, where a
        per-pixel brightness change moves the angle; ``sam_domain="linear"`` takes it of the
        reflectances the user gets (norms offset by 1e-8, not the papers' 1e-4, which floors the
        angle of dim reflectance spectra at ~0.03 rad)."""
        if self.sam_domain == "linear":
            return sam_radians(from_log(x), from_log(y), eps=1e-8)
        return sam_radians(x, y)

    def losses(self, batch) -> dict:
        """The loss terms of one batch: SR terms on the source samples only (the first ``ns``),
        unmixing terms on every sample, the domain cross-entropy (A-SNLSR) on every sample."""
        lr, hr, dom, ns = batch
        sr, rec, a = self.model.net(lr)
        terms = {"sr_l1": (sr[:ns] - hr).abs().mean()}
        if not self.l1_only:
            terms["unmix_l1"] = (rec - lr).abs().mean()
            terms["sam"] = self.sam_weight * (self._sam(sr[:ns], hr) + self._sam(rec, lr))
        if self.adversarial:
            terms["domain_ce"] = F.cross_entropy(self.model.disc(a, self.alpha_at(self.step)), dom)
        return terms

    def train_batch(self, batch, opt) -> float:
        loss = sum(self.losses(batch).values())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        self.step += 1
        return float(loss.item())


class SWIRTask(_SWIRLosses):
    val_key = None  # final weights; nothing held out is used for selection

    def __init__(self, method: str, source: list[Scene], target: list[Scene], scale: int = 4,
                 source_range=(1000.0, 1700.0), target_range=(1700.0, 2500.0), config: str = "compact",
                 hr_crop: int = 64, alpha: float = 0.01, alpha_rampup: int = 0, l1_only: bool = False,
                 frozen_unmixing: bool = False, psf=None, device: str = "cpu", seed: int = 1,
                 bicubic_skip: bool = True, endmember_init: str = "pixels", sam_weight: float = 0.1,
                 sam_domain: str = "log"):
        torch.manual_seed(seed)
        if sam_domain not in ("log", "linear"):
            raise InputError(f"SAM loss domain {sam_domain!r}: use log (the papers') or linear")
        self.sam_weight, self.sam_domain = float(sam_weight), sam_domain
        self.name = self.method = method
        self.adversarial = method == "a-snlsr"
        self.scale, self.hr_crop = scale, hr_crop
        self.alpha, self.alpha_rampup, self.l1_only = alpha, alpha_rampup, l1_only
        self.psf = default_psf(psf)
        self.device = torch.device(device)
        configs = get_method(method).configs
        if config not in configs:
            raise InputError(f"unknown config {config!r}; use {', '.join(configs)}")
        preset = dict(configs[config].arch)
        self.config_name = config
        self.src, self.src_centres, self.src_fwhm = domain_cubes(source, *source_range)
        self.tgt, self.centres, self.fwhm = domain_cubes(target, *target_range)
        self.cfg = SNLSRConfig(bands=len(self.centres), bicubic_skip=bicubic_skip, **preset)
        self.model = SWIRModel(scale, self.cfg, self.adversarial).to(self.device)
        self.source_range, self.target_range = tuple(source_range), tuple(target_range)
        for d in self.src + self.tgt:
            if min(d.train.shape[1:]) < hr_crop:
                raise InputError(f"{d.name}: its training part ({d.train.shape[1]}×{d.train.shape[2]}) "
                                 f"is smaller than the {hr_crop}-px crop; drop it or lower the crop")
        if endmember_init not in ("pixels", "random"):
            raise InputError(f"endmember init {endmember_init!r}: use pixels or random")
        self.endmember_init = endmember_init
        if endmember_init == "pixels":
            self._init_endmembers(np.random.default_rng([seed, 2**20]))
        if frozen_unmixing:
            self.model.net.freeze_unmixing(True)
        self.step = 0

    def _init_endmembers(self, rng) -> None:
        """Start the endmember matrix from LR training pixels (half source, half target for
        A-SNLSR) instead of a random matrix. With a random start the decoder's output is ~4×
        too small for the log-normalised data, the unmixing loss stays near 0.6 and every pixel
        gets the same abundances (the collapse measured in benchmarks/RESULTS.md)."""
        m = self.cfg.materials
        lr, _, dom, _ = self.sample(rng, max(8, 2 * m))
        pix = lr.permute(1, 0, 2, 3).reshape(lr.shape[1], lr.shape[0], -1)  # (C, B, h·w)
        groups = [pix[:, (dom == d).cpu().numpy()].reshape(lr.shape[1], -1) for d in (0, 1)]
        groups = [g for g in groups if g.shape[1]]
        take = [m // len(groups) + (i < m % len(groups)) for i in range(len(groups))]
        cols = [g[:, torch.from_numpy(rng.choice(g.shape[1], k, replace=False)).to(g.device)]
                for g, k in zip(groups, take)]
        with torch.no_grad():
            self.model.net.endmembers.weight.copy_(torch.cat(cols, 1)[:, :, None, None])

    # -- sampling -----------------------------------------------------------------------------
    def _crop(self, cubes: list[DomainCube], rng, n: int) -> np.ndarray:
        c = self.hr_crop
        out = []
        for _ in range(n):
            d = cubes[rng.integers(len(cubes))].train
            y = rng.integers(0, d.shape[1] - c + 1)
            x = rng.integers(0, d.shape[2] - c + 1)
            out.append(np.ascontiguousarray(_dihedral(d[:, y:y + c, x:x + c], int(rng.integers(8)))))
        return np.stack(out)

    def degrade(self, hr: np.ndarray) -> np.ndarray:
        return np.stack([degrade.psf_stride(h, self.psf, self.scale) for h in hr]).astype(np.float32)

    def sample(self, rng, batch):
        ns = max(1, batch // 2) if self.adversarial else batch
        src_hr = self._crop(self.src, rng, ns)
        parts = [to_log(self.degrade(src_hr))]
        if self.adversarial:
            parts.append(to_log(self.degrade(self._crop(self.tgt, rng, batch - ns))))
        lr = np.concatenate(parts)
        dom = np.r_[np.zeros(ns, np.int64), np.ones(lr.shape[0] - ns, np.int64)]
        t = lambda a: torch.from_numpy(a).to(self.device)  # noqa: E731
        return t(lr), t(to_log(src_hr)), t(dom), ns

    # -- evaluation (Wald protocol, PSF degradation) ------------------------------------------------
    def _eval(self, cubes: list[DomainCube]) -> dict:
        net = self.model.net
        rows = {}
        for d in cubes:
            hr = d.held_out
            h, w = (hr.shape[1] // self.scale) * self.scale, (hr.shape[2] // self.scale) * self.scale
            if h < 4 * self.scale or w < 4 * self.scale:
                continue
            hr = hr[:, :h, :w]
            lr = degrade.psf_stride(hr, self.psf, self.scale).astype(np.float32)
            x = torch.from_numpy(to_log(lr))[None].to(self.device)
            y = net(x)[0][0].clamp(0, 1)
            bic = F.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False)[0].clamp(0, 1)
            hl = to_log(hr)
            rows[d.name] = {
                "psnr": metrics.psnr(y.cpu().numpy(), hl), "psnr_bicubic": metrics.psnr(bic.cpu().numpy(), hl),
                "sam": metrics.sam(from_log(y.cpu().numpy()), hr),
                "sam_bicubic": metrics.sam(from_log(bic.cpu().numpy()), hr)}
        return rows

    @torch.inference_mode()
    def validate(self) -> dict:
        out = {}
        for tag, cubes in (("source", self.src), ("target", self.tgt)):
            rows = self._eval(cubes)
            for k in ("psnr", "psnr_bicubic", "sam", "sam_bicubic"):
                if rows:
                    out[f"{tag}_{k}"] = float(np.mean([r[k] for r in rows.values()]))
        return out

    def metadata(self) -> dict:
        return {"method": self.method, "scale": self.scale, "config": self.cfg.to_dict(),
                "config_name": self.config_name,
                "wavelength": [round(float(c), 3) for c in self.centres], "fwhm": float(self.fwhm),
                "range": list(self.target_range), "source_range": list(self.source_range),
                "normalisation": "divide by the scene max of the resampled range, then "
                                 "(ln max(x, 1e-4) - ln 1e-4) / (ln 2 - ln 1e-4)"}


class SWIRAdaptTask(_SWIRLosses):
    """SNLSR / A-SNLSR fine-tuned on one scene (:mod:`geohsr.adapt`): the scene's bands resampled
    onto the model's grid and divided by their maximum; HR crops of the training part (8 dihedral
    variants), LR through the sensor model (``sensor``: :class:`geohsr.sensor.SensorModel`); SNLSR's SR and
    unmixing losses (no domain loss: here the source and the target are the same scene; A-SNLSR's
    discriminator is left out). Validation: PSNR of the linear values (peak 1) on the held-out part
    reduced the same way — what picks the checkpoint and decides keep-or-not."""

    val_key = "psnr"
    val_every = 10

    def __init__(self, method: str, train: np.ndarray, ok: np.ndarray, held: np.ndarray, scale: int,
                 init: str, device: str = "cpu", seed: int = 1, sensor=None):
        from ...sensor import SensorModel

        self.sensor = sensor or SensorModel()
        torch.manual_seed(seed)
        tensors, meta, path = W.load_checked(method, scale, init)
        self.name = self.method = method  # the loss terms: _SWIRLosses's defaults, no domain loss
        self.scale, self.device, self.step = scale, torch.device(device), 0
        self.cfg = SNLSRConfig(**meta["config"])
        configs = get_method(method).configs
        self.config_name = meta.get("config_name") if meta.get("config_name") in configs else "compact"
        self.model = SWIRModel(scale, self.cfg, adversarial=False).to(self.device)
        W.load_into(self.model.net, {k[4:]: v for k, v in tensors.items() if k.startswith("net.")} or tensors, path)
        self._meta = {k: v for k, v in meta.items() if k not in ("adapted",)}
        self.batch = configs[self.config_name].batch
        side = min(train.shape[1], train.shape[2])
        self.hr_crop = max(4 * scale, min(64, side) // scale * scale)
        self.train, self.ok = train, ok
        hs = held.shape[1] // scale * scale, held.shape[2] // scale * scale
        self.held = np.ascontiguousarray(held[:, :hs[0], :hs[1]])
        self.held_lr = self.degrade(self.held[None])[0]
        bic = F.interpolate(torch.from_numpy(self.held_lr)[None], scale_factor=scale, mode="bicubic",
                            align_corners=False)[0].clamp(0, 1).numpy()
        self.held_bicubic_db = metrics.psnr(bic, self.held)  # constant: measured once
        self.train_scenes, self.val_scenes = ["scene (training part)"], ["scene (held-out part)"]

    def degrade(self, hr: np.ndarray) -> np.ndarray:
        return self.sensor.reduce(hr, self.scale)

    def sample(self, rng, batch):
        from ...train.data import valid_corner

        c, hrs = self.hr_crop, []
        for _ in range(batch):
            y, x = valid_corner(rng, self.ok, c)
            hrs.append(np.ascontiguousarray(_dihedral(self.train[:, y:y + c, x:x + c], int(rng.integers(8)))))
        hr = np.stack(hrs)
        t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(self.device)  # noqa: E731
        return t(to_log(self.degrade(hr))), t(to_log(hr)), t(np.zeros(batch, np.int64)), batch

    @torch.inference_mode()
    def validate(self) -> dict:
        x = torch.from_numpy(to_log(self.held_lr))[None].to(self.device)
        was = self.model.training
        self.model.eval()
        sr = from_log(self.model.net(x)[0][0].clamp(0, 1).cpu().numpy())
        self.model.train(was)
        return {"psnr": metrics.psnr(sr, self.held), "psnr_bicubic": self.held_bicubic_db}

    def metadata(self) -> dict:
        return {**self._meta, "adapted": "scene adaptation (geohsr.adapt)"}


def _parse_range(text) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in str(text).split("-"))
    except ValueError:
        raise InputError(f"wavelength range {text!r} must look like 1000-1700 (nm)") from None
    if not hi > lo:
        raise InputError(f"wavelength range {text!r}: the upper end must exceed the lower")
    return lo, hi


def entry(method, sources, targets, scale: int, out, *, options=None, **kw) -> dict:
    """``geohsr train snlsr|a-snlsr``: the registered entry (``options`` as the CLI names them)."""
    o = dict(options or {})
    if "crop" in o:
        o["hr_crop"] = o.pop("crop")
    return train_swir(method, sources, targets, scale, out, **o, **kw)


def train_swir(method, sources, targets, scale: int, out, *, source_range="1000-1700",
               target_range="1700-2500", config="compact", resume=False, batches=1500, batch=None,
               lr=None, val_every=250, ckpt_every=50, max_minutes=None, seed=1, device="cpu",
               threads=None, progress=True, command="", alpha=0.01, alpha_rampup=0, l1_only=False,
               frozen_unmixing=False, psf=None, hr_crop=64, bicubic_skip=True,
               endmember_init="pixels", sam_weight=0.1, sam_domain="log", **unused) -> dict:
    """Train SNLSR (source range only) or A-SNLSR (source HR + target LR, adversarial)."""
    out = Path(out)
    if unused.get("init") is not None:
        raise InputError(f"--init is not available for {method} (its band grid is fixed by the data)")
    if method == "a-snlsr" and not targets:
        raise InputError("a-snlsr adapts to --target scenes; give at least one")
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
