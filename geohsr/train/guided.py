"""Training task shared by the RGB-guided methods MulSR and IFMSR (docs/methods.md, MulSR/IFMSR).

The method's network, band triplet and sizes come from its registered spec (``build_net``,
``extras["band_triplet"]``, ``configs``).

Patches: random HR crops of ``lr_patch·s`` with the papers' augmentations; RGB synthesised by a
spectral response (CIE 1931 → linear sRGB by default, :func:`geohsr.degrade.cie_rgb_response`)
and scaled by the scene's 99.9th percentile like geohsr's guide alignment, times a random gain;
LR by the papers' random blur / downsampler / noise degradation.

Steps: the papers make **one optimiser step per band** over every band of a batch
(``per_band_steps=True``). The default draws one random band per sample instead and takes one
step per batch — the networks treat bands independently, so this is the same objective with
31× fewer forward passes per update (the CPU recipe).

Validation: the papers' test degradation (anisotropic Gaussian λ = (2, 10), θ = π/2, torch
bicubic ×1/s, σ = 3/255, fixed seed) on centre crops of the validation scenes.
"""

from __future__ import annotations

import numpy as np
import torch

from .. import degrade, metrics
from ..methods import TaskInfo, get_method
from .data import GuidedPatches, Scene
from .trainer import stop_point


def normalised_rgb(hr: np.ndarray, response: np.ndarray) -> np.ndarray:
    """RGB of an HR cube scaled by its 99.9th percentile and clipped to [0, 1] (what
    :func:`geohsr.guide.align_guide` does to a real guide)."""
    rgb = degrade.project(hr, response)
    return np.clip(rgb / max(float(np.percentile(rgb, 99.9)), 1e-12), 0, 1).astype(np.float32)


class GuidedTask:
    val_key = "psnr"

    def __init__(self, method: str, train: list[Scene], val: list[Scene], scale: int,
                 config: str = "compact", lr_patch: int | None = None, val_crop: int = 192,
                 per_band_steps: bool = False, device: str = "cpu", seed: int = 1,
                 swap_bug: bool = False, amp: bool = False, guide_perturb: float = 0.0):
        spec = get_method(method)
        if spec.train.scales is not None and scale not in spec.train.scales:
            raise ValueError(f"{spec.name} trains at scales {spec.train.scales}, not {scale}")
        torch.manual_seed(seed)
        self.name = self.method = spec.name
        self.scale, self.config_name = scale, config
        self.config = dict(spec.configs[config].arch)
        if any(o.name == "swap-bug" for o in spec.train.options):
            self.config["swap_bug"] = swap_bug
        self.model = spec.build_net(scale, self.config).to(device)
        self.device = torch.device(device)
        self.per_band_steps, self.amp = per_band_steps, amp
        self.triplet = spec.extras["band_triplet"]
        lr_default = spec.configs[config].patch
        wl = train[0].wavelength
        self.response = degrade.cie_rgb_response(wl if wl is not None else np.linspace(400, 700, train[0].cube.shape[0]))
        self.patches = GuidedPatches(train, scale, self.response, lr_patch or lr_default,
                                     rgb_norm=True, gain=(0.7, 1.4), perturb=guide_perturb)
        self.guide_perturb = guide_perturb
        self.val = []
        rng = np.random.default_rng(2023)
        for sc in val:
            h = min(val_crop, sc.cube.shape[1]) // scale * scale
            w = min(val_crop, sc.cube.shape[2]) // scale * scale
            y0, x0 = (sc.cube.shape[1] - h) // 2, (sc.cube.shape[2] - w) // 2
            hr = sc.cube[:, y0:y0 + h, x0:x0 + w].astype(np.float32)
            lr = degrade.guided_test_degradation(hr, scale, rng)
            self.val.append((hr, lr, normalised_rgb(hr, self.response)))
        self.train_scenes = [s.name for s in train]
        self.val_scenes = [s.name for s in val]

    def sample(self, rng, batch):
        lr, rgb, hr = self.patches.sample(rng, batch)
        n = lr.shape[1]
        if self.per_band_steps:
            bands = None
        else:  # one random band per sample
            bands = rng.integers(0, n, size=batch)
        return (torch.from_numpy(lr).to(self.device), torch.from_numpy(rgb).to(self.device),
                torch.from_numpy(hr).to(self.device), bands)

    def _triplets(self, lr: torch.Tensor, bands) -> torch.Tensor:
        n = lr.shape[1]
        idx = torch.tensor([self.triplet(int(i), n) for i in bands], device=lr.device)
        return torch.gather(lr, 1, idx[:, :, None, None].expand(-1, -1, *lr.shape[2:]))

    def _loss(self, lr3, rgb, target):
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            y = self.model(lr3, rgb)
        return (y.float() - target).abs().mean()

    def train_batch(self, batch, opt) -> float:
        lr, rgb, hr, bands = batch
        if bands is not None:
            target = torch.stack([hr[b, int(i)] for b, i in enumerate(bands)])[:, None]
            opt.zero_grad(set_to_none=True)
            loss = self._loss(self._triplets(lr, bands), rgb, target)
            loss.backward()
            opt.step()
            return float(loss.item())
        total, n = 0.0, lr.shape[1]
        for i in range(n):  # the papers' recipe: one step per band
            stop_point(self)  # a stop asked for is honoured between band steps
            opt.zero_grad(set_to_none=True)
            loss = self._loss(self._triplets(lr, [i] * lr.shape[0]), rgb, hr[:, i:i + 1])
            loss.backward()
            opt.step()
            total += float(loss.item())
        return total / n

    @torch.inference_mode()
    def validate(self) -> dict:
        ps, pb, ss, sb = [], [], [], []
        for hr, lr, rgb in self.val:
            x = torch.from_numpy(lr)[None].to(self.device)
            g = torch.from_numpy(rgb)[None].to(self.device)
            sr = self.model.forward_cube(x, g)[0].clamp(0, 1).float().cpu().numpy()
            bic = np.clip(degrade.bicubic_up(torch.from_numpy(lr), self.scale).numpy(), 0, 1)
            ps.append(metrics.psnr(sr, hr))
            pb.append(metrics.psnr(bic, hr))
            ss.append(metrics.sam(sr, hr))
            sb.append(metrics.sam(bic, hr))
        return {"psnr": float(np.mean(ps)), "psnr_bicubic": float(np.mean(pb)),
                "sam": float(np.mean(ss)), "sam_bicubic": float(np.mean(sb))}

    def metadata(self) -> dict:
        return {"method": self.method, "scale": self.scale, "config": self.config,
                "config_name": self.config_name, "rgb_response": "cie1931-srgb",
                "normalisation": "HSI: divide by the scene's max (CAVE: /65535); RGB: scene 99.9th percentile",
                "train_scenes": self.train_scenes, "val_scenes": self.val_scenes}


def make_task(train, val, scale, config, *, device, seed, amp, options) -> TaskInfo:
    """``geohsr train mulsr|ifmsr``: the guided task and what its model card records."""
    method = options["method"]
    task = GuidedTask(method, train, val, scale, config, device=device, seed=seed, amp=amp,
                      per_band_steps=bool(options.get("per_band_steps")),
                      swap_bug=bool(options.get("swap_bug")),
                      guide_perturb=float(options.get("guide_perturb") or 0.0))
    recipe = {"loss": "L1",
              "steps": ("one Adam step per band" if task.per_band_steps
                        else "one random band per sample, one Adam step per batch"),
              "lr_patch": task.patches.lr_patch,
              "augment": "hflip, vflip, roll H/2, rot90, rot-90 (p = 0.5 each)",
              "rgb": "CIE 1931 2deg -> linear sRGB response (geohsr.degrade.cie_rgb_response), "
                     "scene 99.9th-percentile scaling x log-uniform gain [0.7, 1.4]"
                     + (f"; {task.guide_perturb:.0%} of the samples with a real-guide perturbation "
                        "(geohsr.train.data.perturbed_guide: random response incl. pan-like, "
                        "+-0.5 LR px misregistration, brightness/offset/gamma, noise)"
                        if task.guide_perturb else ""),
              "degradation": "random kernel (iso/aniso, k in {7,9,13,15,21}) x {bicubic, bilinear, "
                             "direction} downsampler, p=0.8 noise sigma in {1..4}/255",
              "validation_degradation": "aniso Gaussian k=13 (2, 10, pi/2), torch bicubic, "
                                        "noise 3/255, seed 2023, centre crops"}
    return TaskInfo(task, recipe, method, [method], task.config)


VAL_BANDS = 24  # bands (evenly spaced) the held-out check of an adaptation scores


class GuidedAdaptTask(GuidedTask):
    """A guided network fine-tuned on one scene and its real guide (:mod:`geohsr.adapt`): HR
    patches from the scene's training part, LR through the sensor model (``sensor``, a
    :class:`geohsr.sensor.SensorModel`; default the Gaussian MTF), the guide reduced by the same
    model onto the scene's grid (so guide : scene = scene : LR); one random band per
    sample; validation on the held-out part reduced the same way (PSNR, peak 1)."""

    val_every = 10

    def __init__(self, method: str, train: np.ndarray, ok: np.ndarray, guide: np.ndarray, held: np.ndarray,
                 held_guide: np.ndarray, scale: int, init: str, device: str = "cpu", seed: int = 1, sensor=None):
        from .. import weights as W
        from ..sensor import SensorModel

        self.sensor = sensor or SensorModel()

        spec = get_method(method)
        torch.manual_seed(seed)
        tensors, meta = W.load(init)
        self.name = self.method = spec.name
        self.config = meta.get("config")
        self.config_name = next((k for k, v in spec.configs.items() if dict(v.arch) == dict(self.config or {})),
                                "compact")
        self.model = spec.build_net(scale, self.config)
        W.load_into(self.model, tensors, init)
        self.device = torch.device(device)
        self.model.to(self.device)
        self.scale, self.amp, self.per_band_steps = scale, False, False
        self.triplet = spec.extras["band_triplet"]
        rec = spec.configs[self.config_name]
        self.batch = rec.batch
        side = min(train.shape[1], train.shape[2]) // scale
        self.lr_patch = max(4, min(rec.patch, side - 1))
        self.train, self.ok, self.guide = train, ok, guide
        h, w = held.shape[1] // scale * scale, held.shape[2] // scale * scale
        self.held, self.held_guide = held[:, :h, :w], np.ascontiguousarray(held_guide[:, :h, :w])
        self.held_lr = self._reduce(self.held[None])[0]
        self.train_scenes, self.val_scenes = ["scene (training part)"], ["scene (held-out part)"]
        self.guide_perturb = 0.0

    def _reduce(self, hr: np.ndarray) -> np.ndarray:
        return self.sensor.reduce(hr, self.scale)

    def sample(self, rng, batch):
        from .data import _augment5, valid_corner

        p = self.lr_patch * self.scale
        n = self.train.shape[0]
        hrs, gs = [], []
        for _ in range(batch):
            y, x = valid_corner(rng, self.ok, p)
            both = np.concatenate([self.train[:, y:y + p, x:x + p], self.guide[:, y:y + p, x:x + p]])
            both = np.ascontiguousarray(_augment5(both, int(rng.integers(5))))
            hrs.append(both[:n])
            gs.append(both[n:])
        hr = np.stack(hrs)
        lr = self._reduce(hr)
        bands = rng.integers(0, n, size=batch)
        return (torch.from_numpy(lr).to(self.device), torch.from_numpy(np.stack(gs)).to(self.device),
                torch.from_numpy(hr).to(self.device), bands)

    @torch.inference_mode()
    def validate(self) -> dict:
        x = torch.from_numpy(self.held_lr)[None].to(self.device)
        g = torch.from_numpy(self.held_guide)[None].to(self.device)
        was = self.model.training
        self.model.eval()
        n = x.shape[1]
        bands = np.unique(np.linspace(0, n - 1, min(n, VAL_BANDS)).round().astype(int))
        sr = torch.cat([self.model(self._triplets(x, [int(i)]), g) for i in bands], 1)
        sr = sr[0].clamp(0, 1).float().cpu().numpy()
        self.model.train(was)
        bic = np.clip(degrade.bicubic_up(torch.from_numpy(self.held_lr[bands]), self.scale).numpy(), 0, 1)
        return {"psnr": metrics.psnr(sr, self.held[bands]), "psnr_bicubic": metrics.psnr(bic, self.held[bands])}

    def metadata(self) -> dict:
        return {"method": self.method, "scale": self.scale, "config": self.config,
                "config_name": self.config_name, "normalisation": "HSI: divide by the scene's max; guide: "
                "the real guide as geohsr aligns it (99.9th percentile), reduced onto the scene's grid",
                "adapted": "scene adaptation (geohsr.adapt)"}
