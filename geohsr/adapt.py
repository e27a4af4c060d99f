"""Scene adaptation: fine-tune a learned method on the user's own scene before applying it.

Wald's scale invariance: the scene reduced by the scale through a sensor model
(:class:`geohsr.sensor.SensorModel`, ``psf=``: by default a Gaussian MTF with gain 0.3 at the LR
Nyquist frequency, then sampling; or MATLAB bicubic, or a measured PSF) is the input, the scene itself the target (target-adaptive / zero-shot super-resolution). A
strip across one end of the scene's longer side (``HELD_OUT``, at least ``4·s`` px; of the two ends,
the one with more detail to restore) is held out: it is never trained on, it picks the checkpoint and it decides whether the adapted weights are kept —
when they do not beat the starting weights there, the starting weights are kept and the card
says so.

The budget is an upper bound: a network stops once ``PATIENCE`` validations on the held-out part
(every ``val_every`` batches) bring no new best — on ~100-px scenes the best checkpoint comes within
a few dozen batches and later ones only fluctuate or decline (``benchmarks/RESULTS.md``, "stops
when it stops gaining").

Bounded in memory: at most ``MAX_SIDE`` × ``MAX_SIDE`` px of the scene (a central window) are
read, whatever its size; bands are sampled in windows of ``BAND_WINDOW`` per batch, so a batch
costs the same on 30 or 400 bands and a budget of N minutes is N minutes of steps.

Every network the method runs adapts: DualSR at an even scale runs CoarSR ×s and, in its fine
stage, CoarSR ×s/2, and both are fine-tuned (on the CPU side by side, each for the whole budget
with half of torch's threads, all of them for the one still training once the other stops;
otherwise one after the other, the budget shared; the ×s/2 one into the sub-folder ``x<s/2>/``,
named in the ×s file's metadata as its companion, so that file alone is a complete ``--weights``
value). Adapting only the ×s network let the ×s/2 one, still tuned to another blur, pull the
result back (``benchmarks/RESULTS.md``).

``adapt(...)`` (``geohsr adapt``, ``geohsr run --adapt N``, ``superresolve(..., adapt=...)``)
writes ``best.safetensors`` and ``card.json`` into its output folder and returns an
:class:`Adapted` that says which weights to use.
"""

from __future__ import annotations

import json
import platform
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from . import weights as W
from .errors import InputError, MethodError

HELD_OUT = 0.25  # share of the scene's longer side held out (validation, keep-or-not)
FEW_HELD_OUT = 12  # LR px: a held-out strip shallower than this gets a warning (a noisy verdict)
MAX_SIDE = 512  # scene px a side read for adaptation (a central window of larger scenes)
BAND_WINDOW = 16  # contiguous bands per training batch on scenes with more bands
ADAPTABLE = {"coarsr": "coarsr", "dualsr": "coarsr"}  # method -> the network adapted
# validations (every task.val_every batches) without a new best on the held-out part after which a
# network stops (0: never; the budget alone ends it)
PATIENCE = 5


@dataclass
class Adapted:
    """The outcome of :func:`adapt`: the weights to use (``weights``, for ``--weights``), whether
    they are the adapted ones, the held-out PSNR before and after, and the card."""

    method: str
    scale: int
    weights: str | None  # a --weights value (None: the shipped weights)
    improved: bool
    before_db: float
    after_db: float
    out: Path | None
    card: dict = field(default_factory=dict)
    tried: str | None = None  # the adapted weights as a --weights value, kept or not

    def summary(self) -> str:
        verdict = "adapted weights kept" if self.improved else "no gain on the held-out part: starting weights kept"
        if "started_from" in self.card:  # another scale's shipped weights started it
            verdict += f" (started from the shipped ×{self.card['started_from']['scale']} weights)"
        nets = self.card.get("networks") or {"": self.card}
        early = [k for k, v in nets.items() if v.get("stopped_early")]
        if early and len(early) == len(nets):
            verdict += " (stopped before the budget: no more gain on the held-out part)"
        elif early:
            verdict += f" ({', '.join(early)} stopped before the budget: no more gain on the held-out part)"
        if self.card.get("interrupted"):
            verdict += " (training stopped early by Ctrl-C/SIGTERM; --resume continues it)"
        return (f"adaptation ({self.method} ×{self.scale}, {self.card.get('minutes', 0):.1f} min, "
                f"{self.card.get('batches', 0)} batches): held-out PSNR {self.before_db:.2f} → "
                f"{self.after_db:.2f} dB; {verdict}")


def _read_region(cube, max_side: int):
    """The scene's good bands in a central window of at most ``max_side`` px a side, float32,
    invalid pixels filled (nearest valid), with the validity mask and the normalisation."""
    from .tiling import fill_invalid, valid_mask

    h, w = cube.sizes["y"], cube.sizes["x"]
    ch, cw = min(h, max_side), min(w, max_side)
    y0, x0 = (h - ch) // 2, (w - cw) // 2
    good = np.flatnonzero(cube.coords["good_band"].values != 0)
    raw = np.asarray(cube.isel(y=slice(y0, y0 + ch), x=slice(x0, x0 + cw)).values)[good]
    valid = valid_mask(raw, cube.rio.nodata)
    data = fill_invalid(raw.astype(np.float32), valid)
    ok = valid.all(0)
    if not ok.any():
        raise InputError("the scene holds no pixel valid in every good band; nothing to adapt on")
    norm = float(np.abs(data[:, ok]).max()) or 1.0
    return data / norm, ok, good, (y0, x0)


def split(ok: np.ndarray, scale: int, held_out: float = HELD_OUT, data: np.ndarray | None = None, sensor=None):
    """Training and held-out slices of the region: ``held_out`` of the longer side at one of its two
    ends — with ``data`` and the ``sensor`` model (:class:`geohsr.sensor.SensorModel`) the end with more detail for super-resolution
    to restore (the larger error of the end reduced and brought back by bicubic), else the last.
    A held-out strip of flat ground scores every model alike and cannot judge the adaptation
    (``benchmarks/RESULTS.md``: ABU beach-2's last strip, bicubic at 62 dB). Chosen from the scene
    alone, before any training."""
    h, w = ok.shape
    axis = 0 if h >= w else 1
    n = (h, w)[axis]
    k = max(4 * scale, int(round(n * held_out))) // scale * scale
    if n - k < 6 * scale or k < 4 * scale:
        raise InputError(f"the scene ({w}×{h} px) is too small to adapt at ×{scale}: it needs at least "
                         f"{10 * scale} px along its longer side ({6 * scale} to train on and "
                         f"{4 * scale} held out)")
    if k // scale < FEW_HELD_OUT:
        warnings.warn(f"the held-out part is only {k // scale} LR px deep (the scene is {n} px along its longer "
                      f"side at ×{scale}): whether adapting gained is judged on few pixels and can be wrong by a few "
                      "tenths of a dB (benchmarks/RESULTS.md, San Diego); adapt on a larger scene if you have one",
                      stacklevel=3)

    def along(sl):
        return (sl, slice(None)) if axis == 0 else (slice(None), sl)

    last = (along(slice(0, n - k)), along(slice(n - k, None)))
    if data is None:
        return last
    first = (along(slice(k, None)), along(slice(0, k)))
    detail = [_detail(data[(slice(None),) + held], scale, sensor) for _, held in (first, last)]
    return first if detail[0] > detail[1] else last


def _detail(part: np.ndarray, s: int, sensor) -> float:
    """Mean squared difference between ``part`` and ``part`` reduced by ``sensor`` and brought back
    by bicubic: what super-resolution has to restore there."""
    from .degrade import bicubic_up

    part = part[:, :part.shape[1] // s * s, :part.shape[2] // s * s]
    up = np.asarray(bicubic_up(sensor.reduce(part, s), s), np.float32)
    return float(np.mean((up - part) ** 2))


def held_out_text(held_sl, shape) -> str:
    """The card's words for the held-out strip, e.g. "columns 72–95 of 96 (25% of the longer side, the end with
    more detail)"."""
    axis = 0 if held_sl[1] == slice(None) else 1
    n = shape[axis]
    start, stop, _ = held_sl[axis].indices(n)
    what = "rows" if axis == 0 else "columns"
    return f"{what} {start}–{stop - 1} of {n} ({HELD_OUT:.0%} of the longer side, the end with more detail)"


def adapt(cube, method: str = "dualsr", scale: int = 4, *, minutes: float = 10.0, batches: int | None = None,
          out=None, weights=None, seed: int = 1, device: str = "cpu", progress: bool | str = True,
          resume: bool = False, lr: float | None = None, command: str = "", guide=None, psf=None,
          raise_on_interrupt: bool = False, patience: int | None = None) -> Adapted:
    """Fine-tune ``method``'s network on ``cube`` itself for ``minutes`` (or ``batches``), starting
    from ``weights`` (default: the shipped ones), into the folder ``out`` (a temporary folder
    when None). Guided methods (MulSR, IFMSR) adapt with the scene's real ``guide``, reduced by the
    scale onto the scene's grid. ``psf``: how the scene is reduced (:class:`geohsr.sensor.SensorModel`:
    ``"gaussian"`` — gain 0.3 at Nyquist, the default —, ``"gaussian:G"``, ``"bicubic"``, or a PSF
    file). ``patience``: a network stops after that many validations on the held-out part (every
    ``val_every`` batches) without a new best (default ``PATIENCE``; 0: it uses the whole budget),
    so the budget is an upper bound. Ctrl-C / SIGTERM stop the training at a batch boundary (checkpointed for ``resume``);
    the adaptation then concludes with what it has, or raises KeyboardInterrupt when
    ``raise_on_interrupt`` (``geohsr run --adapt`` and ``superresolve(adapt=...)``: nothing more is
    done). See the module docstring for the protocol."""
    from .io import open_cube
    from .methods import get_method
    from .methods.dualsr.train import AdaptTask

    spec = get_method(method)
    spec = get_method(spec.weights_of) if spec.weights_of else spec  # DualSR-GLP: DualSR's networks
    from .sensor import SensorModel

    patience = PATIENCE if patience is None else int(patience)
    if patience < 0:
        raise InputError(f"--patience counts validations without a gain: give 0 (use the whole budget) or more, "
                         f"not {patience}")
    if isinstance(psf, str) and psf.strip().lower() == "measure":  # the scene's blur, from its guide
        if guide is None:
            raise InputError("--adapt-psf measure measures the scene's blur against its guide: give --guide, "
                             "or name the sensor model (gaussian:GAIN, bicubic or a PSF file)")
        from .engine import mtf_source, prepare

        # the guide with every band, co-registered, and the MTF measured on it as the fusion methods do
        plan = prepare(cube, "mtf-glp", scale, guide=guide, device=device, fit=False)
        sensor = SensorModel(f"gaussian:{plan.guide.mtf_gain}")
        sensor.source = mtf_source(plan.guide_mtf)
    else:
        sensor = SensorModel(psf)  # a bad --psf fails before anything is read
    kw = dict(minutes=minutes, batches=batches, out=out, weights=weights, seed=seed, device=device,
              progress=progress, resume=resume, lr=lr, command=command, sensor=sensor,
              raise_on_interrupt=raise_on_interrupt, patience=patience)
    if spec.guided and spec.train is not None and spec.bands != "grid":
        return _adapt_guided(cube, spec, scale, guide, **kw)
    if spec.bands == "grid" and spec.train is not None:
        return _adapt_grid(cube, spec, scale, **kw)
    if spec.name not in ADAPTABLE:
        raise MethodError(f"scene adaptation covers {', '.join(sorted(ADAPTABLE) + ['dualsr-glp', 'mulsr', 'ifmsr'])}"
                          f", snlsr and a-snlsr, not {method!r}; pick one of them, or run without --adapt")
    s = spec.check_scale(scale)
    _check_budget(minutes)
    from .methods import resolve_device

    device = str(resolve_device(device))
    cube = open_cube(cube)
    picked = weights is None
    if weights is None and spec.pick_weights is not None:  # the shipped weights that suit this scene
        weights = spec.pick_weights(s, cube)
    start, shipped = _start_weights(spec.name, s, weights)  # missing weights fail before the scene is read
    data, ok, good, origin = _read_region(cube, MAX_SIDE)
    train_sl, held_sl = split(ok, s, data=data, sensor=sensor)
    shipped = shipped or picked  # kept starting weights = the shipped ones this scene gets by default
    out = _out_dir(out)
    # every network the method runs at ×s adapts: DualSR's fine stage pulls the ×s output towards
    # the ×s/2 network's, so a ×s/2 network left on the blur it was trained for undoes most of the
    # gain (benchmarks/RESULTS.md); on the CPU they train side by side, each for the whole budget
    # with its share of the cores (one after the other, the budget shared, where there are fewer
    # cores than networks, or on a GPU)
    scales = sorted(start, reverse=True)
    together = _side_by_side(len(scales), device)
    share = None if minutes is None else minutes / (1 if together else len(scales))
    jobs, pair = [], {}
    for ws in scales:
        task = AdaptTask(data[(slice(None),) + train_sl], ok[train_sl], data[(slice(None),) + held_sl],
                         ws, start[ws], device=device, seed=seed, sensor=sensor)
        rec = spec.configs.get(task.config_name) if spec.configs else None
        sub = out if ws == s else out / f"x{ws}"
        jobs.append((task, sub, lr or (rec.lr / 2 if rec else 1e-4)))
        pair[ws] = str(sub / "best.safetensors")
    runs = dict(zip(scales, _fine_tune_all(jobs, minutes=share, batches=batches, seed=seed, device=device,
                                           resume=resume, progress=progress, together=together,
                                           raise_on_interrupt=raise_on_interrupt, patience=patience)))
    run = runs[s]
    adapted = pair[s]
    if len(scales) > 1:  # the ×s file names its companions: --weights with it alone takes them too
        tensors, meta = W.load(adapted)
        W.save(tensors, adapted, {**meta, "companions": {str(ws): f"x{ws}/best.safetensors"
                                                         for ws in scales if ws != s}})
    wstr = weights_arg(pair)
    before_m, after_m = _held_out_psnr(spec.name, s, data[(slice(None),) + held_sl], start, pair, device, sensor)
    improved = after_m > before_m
    card = {
        "method": spec.name, "network": "coarsr", "scale": s, "adapted_on": {
            "scene": str(cube.attrs.get("source", "in-memory cube")),
            "region_px": {"row": origin[0], "col": origin[1], "rows": int(ok.shape[0]),
                          "cols": int(ok.shape[1])},
            "bands": int(len(good)), "held_out": held_out_text(held_sl, ok.shape),
        },
        "degradation": sensor.describe(s),
        "band_window": task.band_window,
        "initialised_from": {f"x{k}": {"file": Path(v).name, "sha256": W.sha256(v)} for k, v in start.items()},
        "held_out_psnr_db": {"before": round(before_m, 3), "after": round(after_m, 3)},
        "networks": {f"x{ws}": {"file": str(Path(pair[ws]).relative_to(out)), "batches": r.result["batches"],
                                "best_batch": r.result["best_batch"], "stopped_early": r.result["stopped_early"],
                                "held_out_psnr_db": {"before": round(r.before, 3), "after": round(
                                    float(r.result["best"]) if r.result["best"] is not None else r.before, 3)}}
                     for ws, r in runs.items()},
        "networks_trained": (f"side by side, {len(scales)} at once, each for the whole budget; "
                             "a network that stops first gives its threads to the rest"
                             if together else "one after the other, the budget shared equally"),
        **_run_record(improved, run, command, device, adapted, "scene"),
    }
    card["batches"] = sum(r.result["batches"] for r in runs.values())
    card["interrupted"] = any(r.result.get("interrupted") for r in runs.values())
    (out / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    use = wstr if improved else (None if shipped else weights_arg(start))
    return Adapted(spec.name, s, use, improved, before_m, after_m, out, card, tried=wstr)


def adaptable(method: str) -> bool:
    """Whether :func:`adapt` can fine-tune ``method`` (DualSR, CoarSR, DualSR-GLP, MulSR, IFMSR, SNLSR,
    A-SNLSR)."""
    from .methods import get_method

    spec = get_method(method)
    spec = get_method(spec.weights_of) if spec.weights_of else spec
    return spec.name in ADAPTABLE or spec.train is not None and (spec.guided or spec.bands == "grid")


def _adapt_guided(cube, spec, scale, guide, *, minutes, batches, out, weights, seed, device, progress,
                  resume, lr, command, sensor, raise_on_interrupt, patience) -> Adapted:
    """:func:`adapt` for a guided network: the scene and its real guide, both reduced by the scale."""
    from .engine import prepare
    from .train.guided import GuidedAdaptTask

    if guide is None:
        raise MethodError(f"adapting {spec.name} needs the scene's guide (--guide)")
    s = spec.check_scale(scale)
    _check_budget(minutes)
    # another scale's weights re-tagged for ×s wait in a scratch folder until every check has
    # passed, so a failed start (a bad guide, a scene too small) leaves nothing in --out
    scratch = tempfile.mkdtemp(prefix="geohsr-start-")
    try:
        borrowed = _borrowed_start(spec, s, Path(scratch)) if weights is None else None
        start = borrowed[0] if borrowed else str(W.load_checked(spec.name, s, weights)[2])
        plan = prepare(cube, spec.name, s, guide=guide, weights=start, device=device)
        device = plan.device
        data, ok, good, origin = _read_region(plan.cube, MAX_SIDE)
        y0, x0 = origin
        g = plan.guide.window(y0 * s, x0 * s, ok.shape[0] * s, ok.shape[1] * s)  # the guide, HR grid
        g = sensor.reduce(g, s)
        train_sl, held_sl = split(ok, s, data=data, sensor=sensor)
        out = _out_dir(out)
        if borrowed:
            start = str(out / Path(start).name)
            shutil.move(borrowed[0], start)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    task = GuidedAdaptTask(spec.name, data[(slice(None),) + train_sl], ok[train_sl], g[(slice(None),) + train_sl],
                           data[(slice(None),) + held_sl], g[(slice(None),) + held_sl], s, start,
                           device=device, seed=seed, sensor=sensor)
    run = _fine_tune(task, out, lr=lr or spec.configs[task.config_name].lr / 2, minutes=minutes,
                     batches=batches, seed=seed, device=device, resume=resume, progress=progress,
                     raise_on_interrupt=raise_on_interrupt, patience=patience)
    fields = {"started_from": borrowed[1]} if borrowed else {}
    # borrowed: the starting weights (re-tagged for ×s) are what is kept when adaptation does not gain
    return _conclude(spec, s, run, out, start, start if borrowed else weights, command, device, "scene and guide", {
        **fields,
        "adapted_on": {
            "scene": str(plan.cube.attrs.get("source", "in-memory cube")),
            "guide": str(getattr(plan.guide, "path", None) or "in-memory guide"),
            "region_px": {"row": y0, "col": x0, "rows": int(ok.shape[0]), "cols": int(ok.shape[1])},
            "bands": int(len(good)), "held_out": held_out_text(held_sl, ok.shape),
            "held_out_bands": f"{min(len(good), 24)} evenly spaced bands scored",
        },
        "degradation": f"scene and guide: {sensor.describe(s)}; the guide co-registered first"})


def _borrowed_start(spec, s: int, out: Path) -> tuple[str, dict] | None:
    """Where no ×s weights are shipped for a guided network none of whose layers depends on the
    scale (IFMSR, MulSR: ``extras["scale_free"]``), adaptation starts from the shipped weights of
    the nearest scale (in ratio): written into the folder ``out`` re-tagged for ×s, so that they can also be
    run (and kept) at ×s. Returns (that file, its origin for the card), or None where ×s weights are
    shipped or the network has scale-bound layers."""
    if not spec.extras.get("scale_free") or W.find(spec.name, s) is not None:
        return None
    entries = spec.shipped_entries()
    if not entries:
        return None
    e = min(entries, key=lambda e: (abs(np.log(int(e["scale"]) / s)), int(e["scale"])))
    tensors, meta = W.load(W.models_dir() / e["file"], e["sha256"])
    origin = {"file": e["file"], "scale": int(e["scale"]), "sha256": e["sha256"],
              "why": f"no x{s} {spec.name} weights are shipped and no layer of the network depends on the "
                     f"scale: the shipped x{e['scale']} ones, run at x{s}, start the adaptation"}
    path = out / f"start_x{s}.safetensors"
    W.save(tensors, path, {**meta, "scale": s, "started_from": origin})
    return str(path), origin


def _adapt_grid(cube, spec, scale, *, minutes, batches, out, weights, seed, device, progress, resume, lr,
                command, sensor, raise_on_interrupt, patience) -> Adapted:
    """:func:`adapt` for a method on a fixed band grid (SNLSR, A-SNLSR): the scene's bands resampled
    onto the model's grid (as inference does), the scene reduced by the scale as input, the scene as
    target; the adapted weights keep the grid."""
    from .engine import resample_to_grid
    from .io import open_cube
    from .methods import resolve_device
    from .methods.snlsr.train import SWIRAdaptTask

    s = spec.check_scale(scale)
    _check_budget(minutes)
    device = str(resolve_device(device))
    start = str(W.load_checked(spec.name, s, weights)[2])
    cube = open_cube(cube)
    grid = resample_to_grid(cube, spec.band_grid(s, start), spec.name)
    data, ok, good, origin = _read_region(grid, MAX_SIDE)
    train_sl, held_sl = split(ok, s, data=data, sensor=sensor)
    out = _out_dir(out)
    task = SWIRAdaptTask(spec.name, data[(slice(None),) + train_sl], ok[train_sl], data[(slice(None),) + held_sl],
                         s, start, device=device, seed=seed, sensor=sensor)
    run = _fine_tune(task, out, lr=lr or 2e-4, minutes=minutes, batches=batches, seed=seed, device=device,
                     resume=resume, progress=progress, raise_on_interrupt=raise_on_interrupt, patience=patience)
    return _conclude(spec, s, run, out, start, weights, command, device, "scene", {
        "adapted_on": {
            "scene": str(cube.attrs.get("source", "in-memory cube")),
            "region_px": {"row": origin[0], "col": origin[1], "rows": int(ok.shape[0]), "cols": int(ok.shape[1])},
            "bands": f"the scene's bands resampled onto the model's {len(good)}-band grid",
            "held_out": held_out_text(held_sl, ok.shape),
        },
        "degradation": sensor.describe(s),
        "loss": "SNLSR's L1(SR,HR) + L1(rec,LR) + 0.1 (SAM(SR,HR) + SAM(rec,LR)) on log-normalised values; "
                "no domain loss"})


def _conclude(spec, s, run, out: Path, start: str, weights, command, device, what, fields: dict) -> Adapted:
    """A one-network adaptation's verdict (the task's held-out PSNR before and at the best
    checkpoint), its card (``fields`` + the run) and the weights to use."""
    before = run.before
    after = float(run.result["best"]) if run.result["best"] is not None else before
    improved = after > before
    adapted = str(out / "best.safetensors")
    card = {"method": spec.name, "network": spec.name, "scale": s, **fields,
            "initialised_from": {f"x{s}": {"file": Path(start).name, "sha256": W.sha256(start)}},
            "held_out_psnr_db": {"before": round(before, 3), "after": round(after, 3)},
            **_run_record(improved, run, command, device, adapted, what)}
    (out / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    use = adapted if improved else (None if weights is None else start)
    return Adapted(spec.name, s, use, improved, before, after, out, card, tried=adapted)


def _check_budget(minutes) -> None:
    if minutes is not None and minutes <= 0:
        raise InputError(f"the adaptation budget must be a positive number of minutes (--adapt N, --minutes N), "
                         f"got {minutes}")


def _out_dir(out) -> Path:
    """The adaptation's output folder (a new temporary one when None), created."""
    out = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="geohsr-adapt-"))
    out.mkdir(parents=True, exist_ok=True)
    return out


@dataclass
class _Run:
    settings: object
    t0: float
    before: float  # the task's held-out PSNR before training
    result: dict  # the Trainer's result


def _fine_tune(task, out: Path, *, lr, **kw) -> _Run:
    """Train ``task`` into ``out`` for ``minutes`` (or ``batches``), validating as it goes."""
    return _fine_tune_all([(task, out, lr)], **kw)[0]


def _fine_tune_all(jobs, *, minutes, batches, seed, device, resume, progress, together=False,
                   raise_on_interrupt=False, patience=0) -> list[_Run]:
    """Train each ``(task, out, lr)`` of ``jobs`` for ``minutes`` (or ``batches``): side by side
    when ``together`` (:func:`geohsr.train.trainer.run_together`), else one after the other.
    ``progress``: True (a bar per network), ``"json"`` (JSON lines, phase "adapt", the slowest
    network's share of the budget) or False. A stop (Ctrl-C, SIGTERM) stops every network (each
    checkpointed), then raises KeyboardInterrupt when ``raise_on_interrupt``."""
    from .train.trainer import TIME_ONLY, Trainer, TrainSettings, run_together

    trainers, runs = [], []
    for task, out, lr in jobs:
        settings = TrainSettings(lr=lr, batch=task.batch, batches=batches or TIME_ONLY, val_every=task.val_every,
                                 ckpt_every=task.val_every, seed=seed,
                                 max_minutes=minutes if batches is None else None, device=device,
                                 patience=patience)
        before = task.validate()["psnr"]
        trainers.append(Trainer(task, out, settings))
        trainers[-1].desc = f"adapt {task.name} ×{task.scale}"
        runs.append(_Run(settings, time.time(), before, {}))
    if progress == "json":
        from .io.write import JsonPercent

        percent, done = JsonPercent(1000, phase="adapt"), [0.0] * len(trainers)
        percent.update(0)  # 0 %: the adaptation has started

        def report(i, fraction):
            done[i] = fraction if together else (i + fraction) / len(trainers)
            percent.advance_to(int(1000 * (min(done) if together else done[i])))

        for i, tr in enumerate(trainers):
            tr.on_progress = lambda f, i=i: report(i, f)
    bars = bool(progress) and progress != "json"
    if together:
        results = run_together(trainers, resume=resume, progress=bars)
    else:
        results, t0 = [], time.time()
        for i, (tr, run) in enumerate(zip(trainers, runs)):
            if results and results[-1]["interrupted"]:
                tr.stop["signal"] = "stopped"  # the next ones stop at once too (a checkpoint each)
            if minutes is not None and batches is None:  # what one that stopped early left goes to the rest
                left = len(trainers) * minutes - (time.time() - t0) / 60
                tr.s.max_minutes = max(left / (len(trainers) - i), 1e-3)
            run.t0 = time.time()
            results.append(tr.run(resume=resume, progress=bars))
    for run, res in zip(runs, results):
        run.result = res
    if raise_on_interrupt and any(res["interrupted"] for res in results):
        raise KeyboardInterrupt
    return runs


def _side_by_side(networks: int, device: str) -> bool:
    """Whether ``networks`` networks adapt at the same time: on the CPU when there is at least one
    torch thread for each (the band recurrence's small steps leave cores idle: two side by side,
    one thread each, run ~1.2× the batches of two in turn with two threads; RESULTS.md)."""
    return networks > 1 and device == "cpu" and torch.get_num_threads() >= networks


def _run_record(improved, run: _Run, command, device, adapted, what) -> dict:
    """The card fields every adaptation records: the verdict, the run and the licence."""
    settings = run.settings
    return {"kept": "adapted" if improved else "starting weights (no gain on the held-out part)",
            "interrupted": bool(run.result.get("interrupted")),
            "minutes": round((time.time() - run.t0) / 60, 2), "batches": run.result["batches"],
            "best_batch": run.result.get("best_batch"), "stopped_early": run.result.get("stopped_early"),
            "patience": run.settings.patience,
            "lr": settings.lr, "batch": settings.batch, "seed": settings.seed, "command": command,
            "trained_on": {"device": device, "torch": torch.__version__, "machine": platform.platform()},
            "sha256": W.sha256(adapted),
            "licence": f"weights: GPL-3.0-or-later (code); the licence of the adapted-on {what} applies"}


def weights_arg(files: dict) -> str:
    """``{scale: path}`` as a ``--weights`` value (DualSR: "x4.safetensors,x2.safetensors")."""
    return ",".join(files[k] for k in sorted(files, reverse=True))


def _start_weights(method: str, s: int, weights) -> tuple[dict, bool]:
    """``({scale: path}, shipped)``: the files of the networks ``method`` uses at ×s (``weights``
    or the shipped ones), and whether all of them are the shipped ones."""
    from .methods import get_method
    from .methods.dualsr import _locate, _weights_pair

    spec = get_method(method)
    given = _weights_pair(weights, s) if weights else {}
    return ({ws: str(_locate(ws, given.get(ws))[0]) for ws in spec.scales_of_weights(s)}, not given)


def _held_out_psnr(method: str, s: int, held: np.ndarray, start: dict, pair: dict, device: str, sensor):
    """PSNR of ``method`` on the held-out part (reduced by the sensor model, peak 1) with the
    starting and with the adapted weights."""
    import xarray as xr

    from . import metrics
    from .api import superresolve

    h, w = held.shape[1] // s * s, held.shape[2] // s * s
    ref = held[:, :h, :w]
    low = sensor.reduce(ref, s)
    lr = xr.DataArray(low, dims=("band", "y", "x"))

    def score(wmap):
        sr = superresolve(lr, method, s, weights=weights_arg(wmap), device=device).values
        return metrics.psnr(np.clip(sr, 0, 1), ref)

    return score(start), score(pair)
