"""Training task for the RGB-guided methods MulSR and IFMSR (methods.md §3.2 / §4.3).

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
from ..nets import ifmsr as ifmsr_net
from ..nets import mulsr as mulsr_net
from .data import GuidedPatches, Scene

CONFIGS = {
    "mulsr": {"paper": dict(n=64, n_sge=4), "compact": dict(n=32, n_sge=2), "tiny": dict(n=8, n_sge=1)},
    "ifmsr": {"paper": dict(n=64, modules=2), "compact": dict(n=32, modules=2),
              "tiny": dict(n=8, modules=1)},
}
RECIPES = {
    "paper": dict(lr=1e-4, batch=32, lr_patch=12),
    "compact": dict(lr=4e-4, batch=16, lr_patch=12),
    "tiny": dict(lr=1e-3, batch=2, lr_patch=6),
}


def build_model(method: str, scale: int, config: dict) -> torch.nn.Module:
    cfg = dict(config)
    if method == "mulsr":
        return mulsr_net.MulSR(scale, n=cfg["n"], n_sge=cfg["n_sge"])
    if method == "ifmsr":
        return ifmsr_net.IFMSR(scale, n=cfg["n"], modules=cfg["modules"],
                               swap_bug=bool(cfg.get("swap_bug", False)))
    raise ValueError(f"not a guided method: {method}")


def band_triplet(method: str):
    return mulsr_net.band_triplet if method == "mulsr" else ifmsr_net.band_triplet


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
                 swap_bug: bool = False, amp: bool = False):
        if method == "mulsr" and scale % 2:
            raise ValueError("MulSR needs an even scale")
        torch.manual_seed(seed)
        self.name = self.method = method
        self.scale, self.config_name = scale, config
        self.config = dict(CONFIGS[method][config])
        if method == "ifmsr":
            self.config["swap_bug"] = swap_bug
        self.model = build_model(method, scale, self.config).to(device)
        self.device = torch.device(device)
        self.per_band_steps, self.amp = per_band_steps, amp
        self.triplet = band_triplet(method)
        wl = train[0].wavelength
        self.response = degrade.cie_rgb_response(wl if wl is not None else np.linspace(400, 700, train[0].cube.shape[0]))
        self.patches = GuidedPatches(train, scale, self.response, lr_patch or RECIPES[config]["lr_patch"],
                                     rgb_norm=True, gain=(0.7, 1.4))
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
