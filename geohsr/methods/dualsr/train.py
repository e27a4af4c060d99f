"""Training task for CoarSR (DualSR's learned stage), the paper's recipe (docs/methods.md, DualSR).

L1 between each predicted band and the HR band, **one optimiser step per band** (forward band
``i`` with the detached state of band ``i−1``, loss, step), Adam β = (0.9, 0.999). Scenes with
more than ``TRAIN_BAND_WINDOW`` bands train on a random window of that many contiguous bands per
sample, drawn within the sample's own scene (a 224-band EnMAP batch costs what a 32-band one does).
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import torch

from ... import metrics
from ...degrade import bicubic_down, bicubic_up
from ...train.data import DualSRPatches, Scene
from ...train.trainer import stop_point
from .. import TaskInfo
from .config import CONFIGS
from .net import CoarSR


TRAIN_BAND_WINDOW = 32  # CAVE's 31 bands train whole (the shipped cards' recipe)


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
        # one Adam step per band: on scenes with more than TRAIN_BAND_WINDOW bands each sample takes a
        # random window of that many contiguous bands of its scene, so the cost does not grow with
        # the band count
        self.band_window = TRAIN_BAND_WINDOW
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
        lr, hr = self.patches.sample(rng, batch, band_window=self.band_window)
        bic = bicubic_up(torch.from_numpy(lr), self.scale)
        return (torch.from_numpy(lr).to(self.device), bic.to(self.device),
                torch.from_numpy(hr).to(self.device))

    def train_batch(self, batch, opt) -> float:
        lr, bic, hr = batch
        state, total = None, 0.0
        if not self.per_band_steps:
            opt.zero_grad(set_to_none=True)
        for i in range(lr.shape[1]):
            stop_point(self)  # Ctrl-C / SIGTERM / the budget: stop between band steps, not after the batch
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

    val_sam = True  # adaptation reads only PSNR

    @cached_property
    def _val_inputs(self) -> list:
        """Per validation pair (``self.val``, fixed once built): the HR reference, the LR and its
        bicubic upsampling on the device (the network's inputs) and the bicubic PSNR — none of
        which changes between validations."""
        out = []
        for hr, lr in self.val:
            x = torch.from_numpy(lr).to(self.device)
            bic = bicubic_up(x, self.scale)
            out.append((hr, x, bic, metrics.psnr(bic.cpu().numpy(), hr)))
        return out

    @torch.inference_mode()
    def validate(self) -> dict:
        ps, pb, ss = [], [], []
        for hr, x, bic, psnr_bicubic in self._val_inputs:
            sr = self.model.forward_cube(x[None], bic[None])[0].clamp(0, 1).cpu().numpy()
            ps.append(metrics.psnr(sr, hr))
            pb.append(psnr_bicubic)
            if self.val_sam:
                ss.append(metrics.sam(sr, hr))
        out = {"psnr": float(np.mean(ps)), "psnr_bicubic": float(np.mean(pb))}
        if self.val_sam:
            out["sam"] = float(np.mean(ss))
        return out

    def metadata(self) -> dict:
        return {"method": "coarsr", "scale": self.scale, "config": CONFIGS[self.config_name].arch.to_dict(),
                "config_name": self.config_name, "normalisation": "divide by the data's max (CAVE: /65535)",
                "train_scenes": self.train_scenes, "val_scenes": self.val_scenes}


def make_task(train, val, scale, config, *, device, seed, amp, options) -> TaskInfo:
    """``geohsr train coarsr|dualsr``: CoarSR ×scale (DualSR's fine stage needs no training)."""
    task = CoarSRTask(train, val, scale, config, lr_patch=options.get("patch"), device=device, seed=seed, amp=amp)
    window = task.patches.window(task.band_window)
    recipe = {"loss": "L1", "steps": f"one Adam step per band (a window of {window} contiguous "
                                      "bands of its scene per sample on scenes with more)", "lr_patch": task.patches.lr_patch,
              "augment": "rescale {1, .75, .5} x crop x {id, rot180, rot90, rot270, vflip}",
              "degradation": "MATLAB bicubic x1/s (anti-aliased)"}
    return TaskInfo(task, recipe, "coarsr", ["coarsr", "dualsr"], task.metadata()["config"])


class AdaptTask(CoarSRTask):
    """CoarSR fine-tuned on one scene (:mod:`geohsr.adapt`): HR patches from the scene's training
    part, LR through the sensor model (``sensor``, a :class:`geohsr.sensor.SensorModel`; default
    the Gaussian MTF of :func:`geohsr.sensor.guide_low`), a window of
    ``band_window`` contiguous bands per batch; validation on the held-out part reduced the same
    way (PSNR, peak 1; :meth:`CoarSRTask.validate`)."""

    val_every = 10
    val_sam = False

    def __init__(self, train: np.ndarray, ok: np.ndarray, held: np.ndarray, scale: int, init: str,
                 device: str = "cpu", seed: int = 1, sensor=None):
        from ... import weights as W
        from ...adapt import BAND_WINDOW
        from ...sensor import SensorModel
        from . import _config_of

        self.sensor = sensor or SensorModel()

        torch.manual_seed(seed)
        tensors, meta = W.load(init)
        arch = _config_of(meta)
        self.config_name = next((k for k, v in CONFIGS.items() if v.arch == arch), "compact")
        self.scale, self.device, self.amp, self.per_band_steps = scale, torch.device(device), False, True
        self.model = CoarSR(scale, arch)
        W.load_into(self.model, tensors, init)
        self.model.to(self.device)
        self._arch = arch
        rec = CONFIGS[self.config_name]
        self.batch = rec.batch
        side = min(train.shape[1], train.shape[2]) // scale
        self.lr_patch = max(4, min(rec.patch, side - 1))
        self.train, self.ok = train, ok
        self.band_window = min(train.shape[0], BAND_WINDOW)
        hs = held.shape[1] // scale * scale, held.shape[2] // scale * scale
        held = np.ascontiguousarray(held[:, :hs[0], :hs[1]])
        self.val = [(held, self._reduce(held[None])[0])]  # CoarSRTask.validate scores it
        self.train_scenes, self.val_scenes = ["scene (training part)"], ["scene (held-out part)"]

    def _reduce(self, hr: np.ndarray) -> np.ndarray:
        return self.sensor.reduce(hr, self.scale)

    def sample(self, rng, batch):
        from ...train.data import _augment5, valid_corner

        p = self.lr_patch * self.scale
        b0 = int(rng.integers(0, self.train.shape[0] - self.band_window + 1))
        hrs = []
        for _ in range(batch):
            y, x = valid_corner(rng, self.ok, p)
            patch = self.train[b0:b0 + self.band_window, y:y + p, x:x + p]
            hrs.append(np.ascontiguousarray(_augment5(patch, int(rng.integers(5)))))
        hr = np.stack(hrs)
        lr = torch.from_numpy(self._reduce(hr))
        bic = bicubic_up(lr, self.scale)
        return lr.to(self.device), bic.to(self.device), torch.from_numpy(hr).to(self.device)

    def metadata(self) -> dict:
        return {"method": "coarsr", "scale": self.scale, "config": self._arch.to_dict(),
                "config_name": self.config_name, "normalisation": "divide by the scene's max (adapted)",
                "adapted": "scene adaptation (geohsr.adapt)"}
