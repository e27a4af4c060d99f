"""Training task for CoarSR (DualSR's learned stage), the paper's recipe (docs/methods.md, DualSR).

L1 between each predicted band and the HR band, **one optimiser step per band** (forward band
``i`` with the detached state of band ``i−1``, loss, step), Adam β = (0.9, 0.999).
"""

from __future__ import annotations

import numpy as np
import torch

from ... import metrics
from ...degrade import bicubic_down, bicubic_up
from ...train.data import DualSRPatches, Scene
from .. import TaskInfo
from .config import CONFIGS
from .net import CoarSR


class CoarSRTask:
    name = "coarsr"
    val_key = "psnr"

    def __init__(self, train: list[Scene], val: list[Scene], scale: int, config: str = "compact",
                 lr_patch: int | None = None, val_crop: int = 256, per_band_steps: bool = True,
                 device: str = "cpu", seed: int = 1, amp: bool = False):
        torch.manual_seed(seed)
        self.scale, self.config_name = scale, config
        self.model = CoarSR(scale, CONFIGS[config].arch).to(device)
        self.device = torch.device(device)
        self.per_band_steps = per_band_steps
        self.amp = amp  # bf16 autocast of the forward passes (CUDA; works but is slow on CPUs without bf16)
        self.patches = DualSRPatches(train, scale, lr_patch or CONFIGS[config].patch)
        self.val = []
        for sc in val:  # centre crops, LR by MATLAB bicubic (Wald protocol)
            h = min(val_crop, sc.cube.shape[1]) // scale * scale
            w = min(val_crop, sc.cube.shape[2]) // scale * scale
            y0, x0 = (sc.cube.shape[1] - h) // 2, (sc.cube.shape[2] - w) // 2
            hr = sc.cube[:, y0:y0 + h, x0:x0 + w].astype(np.float32)
            self.val.append((hr, bicubic_down(hr, scale).astype(np.float32)))
        self.train_scenes = [s.name for s in train]
        self.val_scenes = [s.name for s in val]

    def sample(self, rng, batch):
        lr, hr = self.patches.sample(rng, batch)
        bic = bicubic_up(torch.from_numpy(lr), self.scale)
        return (torch.from_numpy(lr).to(self.device), bic.to(self.device),
                torch.from_numpy(hr).to(self.device))

    def train_batch(self, batch, opt) -> float:
        lr, bic, hr = batch
        state, total = None, 0.0
        if not self.per_band_steps:
            opt.zero_grad(set_to_none=True)
        for i in range(lr.shape[1]):
            x, g2, g3 = self.model.band_inputs(lr, i)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                y, state = self.model(x, g2, g3, bic[:, i:i + 1], state)
            loss = (y.float() - hr[:, i:i + 1]).abs().mean()
            if self.per_band_steps:
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                state = state.detach()
            else:
                (loss / lr.shape[1]).backward(retain_graph=False)
                state = state.detach()
            state = state.float()
            total += loss.item()
        if not self.per_band_steps:
            opt.step()
        return total / lr.shape[1]

    @torch.inference_mode()
    def validate(self) -> dict:
        ps, pb, ss = [], [], []
        for hr, lr in self.val:
            x = torch.from_numpy(lr).to(self.device)
            bic = bicubic_up(x, self.scale)
            sr = self.model.forward_cube(x[None], bic[None])[0].clamp(0, 1).cpu().numpy()
            ps.append(metrics.psnr(sr, hr))
            pb.append(metrics.psnr(bic.cpu().numpy(), hr))
            ss.append(metrics.sam(sr, hr))
        return {"psnr": float(np.mean(ps)), "psnr_bicubic": float(np.mean(pb)), "sam": float(np.mean(ss))}

    def metadata(self) -> dict:
        return {"method": "coarsr", "scale": self.scale, "config": CONFIGS[self.config_name].arch.to_dict(),
                "config_name": self.config_name, "normalisation": "divide by the data's max (CAVE: /65535)",
                "train_scenes": self.train_scenes, "val_scenes": self.val_scenes}


def make_task(train, val, scale, config, *, device, seed, amp, options) -> TaskInfo:
    """``geohsr train coarsr|dualsr``: CoarSR ×scale (DualSR's fine stage needs no training)."""
    task = CoarSRTask(train, val, scale, config, device=device, seed=seed, amp=amp)
    recipe = {"loss": "L1", "steps": "one Adam step per band", "lr_patch": task.patches.lr_patch,
              "augment": "rescale {1, .75, .5} x crop x {id, rot180, rot90, rot270, vflip}",
              "degradation": "MATLAB bicubic x1/s (anti-aliased)"}
    return TaskInfo(task, recipe, "coarsr", ["coarsr", "dualsr"], task.metadata()["config"])
