"""One training loop for every learned method.

A *task* owns the model and the method-specific parts (sampling a batch, one training step —
which for band-recurrent methods is one optimiser step per band — and validation); the trainer
owns everything else: Adam with a step schedule, checkpoints every N batches (safetensors only),
exact ``--resume``, determinism from the seed, a progress bar with loss and throughput,
validation metrics, a wall-clock budget and the final weights + model card.
:func:`run_together` runs several trainers at once (scene adaptation of DualSR's two networks),
each in its own thread with its share of torch's CPU threads.

Determinism: batch ``k`` is drawn from ``numpy.random.default_rng([seed, k])``, so a resumed
run sees exactly the batches the uninterrupted run would have seen.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import copy
import json
import math
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from .. import weights as W
from ..errors import InputError


class BatchInterrupted(Exception):
    """Raised by a task between the optimiser steps of a batch when a stop was asked for
    (Ctrl-C, SIGTERM, the time budget): the trainer rolls the batch back and stops."""


def stop_point(task) -> None:
    """Called by tasks between the steps of one batch (e.g. per band): raise
    :class:`BatchInterrupted` when the trainer has been asked to stop."""
    check = getattr(task, "should_stop", None)
    if check is not None and check():
        raise BatchInterrupted


TIME_ONLY = 10 ** 6  # TrainSettings.batches at or above this: the budget is the time alone


@dataclass
class TrainSettings:
    lr: float = 1e-4
    batch: int = 16
    batches: int = 1000  # total batches (a budget in minutes may stop earlier)
    halve_every: int = 0  # halve the learning rate every N batches (0: constant)
    val_every: int = 50
    ckpt_every: int = 25
    seed: int = 1
    max_minutes: float | None = None
    device: str = "cpu"
    threads: int | None = None
    schedule: str = "step"  # "step" (halve_every) or "cosine" (warm restarts every `cycle` batches)
    cycle: int = 0
    final_lr: float = 1e-4
    # fine-tuning: validate the starting weights before the first batch and count them as the best
    # so far, so a run whose validations never beat them leaves them in best.safetensors
    validate_start: bool = False
    # stop after `patience` validations in a row without a new best (0: never; the budget alone ends the run)
    patience: int = 0
    extra: dict = field(default_factory=dict)


def _optim_tensors(opt: torch.optim.Optimizer) -> tuple[dict, dict]:
    tensors, meta = {}, {"param_groups": [{k: v for k, v in g.items() if k != "params"}
                                          for g in opt.state_dict()["param_groups"]]}
    for idx, st in opt.state_dict()["state"].items():
        for k, v in st.items():
            t = v if torch.is_tensor(v) else torch.tensor(v)
            tensors[f"{idx}.{k}"] = t
    return tensors, meta


def _load_optim(opt: torch.optim.Optimizer, tensors: dict, meta: dict) -> None:
    sd = opt.state_dict()
    state: dict = {}
    for key, t in tensors.items():
        idx, k = key.split(".", 1)
        state.setdefault(int(idx), {})[k] = t
    sd["state"] = state
    for g, saved in zip(sd["param_groups"], meta["param_groups"]):
        g.update({k: v for k, v in saved.items() if k != "params"})
    opt.load_state_dict(sd)


class Trainer:
    def __init__(self, task, out: Path, settings: TrainSettings):
        self.task, self.out, self.s = task, Path(out), settings
        self.out.mkdir(parents=True, exist_ok=True)
        if settings.threads:
            torch.set_num_threads(settings.threads)
        self.opt = torch.optim.Adam(task.model.parameters(), lr=settings.lr, betas=(0.9, 0.999), eps=1e-8)
        self.step = 0  # completed batches
        self.best: float | None = None
        self.history: list[dict] = []
        self.stop = {"signal": None}  # set (by a signal handler or run_together) to stop after the batch
        self.position = 0  # the progress bar's line (run_together: one line per trainer)
        self.desc = f"train {task.name}"  # the progress bar's label
        self.on_progress = None  # called with the fraction of the budget done after each batch
        # torch CPU threads for this trainer's own thread, applied before each batch (run_together
        # raises it when a trainer beside it ends; torch's thread count is per calling thread)
        self.threads: int | None = None

    # -- checkpoints ------------------------------------------------------------------------
    @property
    def ckpt(self) -> Path:
        return self.out / "checkpoint"

    def save_checkpoint(self) -> None:
        self.ckpt.mkdir(exist_ok=True)
        W.save(self.task.model.state_dict(), self.ckpt / "model.safetensors")
        t, meta = _optim_tensors(self.opt)
        W.save(t, self.ckpt / "optim.safetensors", {"optim": meta})
        state = {"step": self.step, "best": self.best, "history": self.history,
                 "settings": asdict(self.s), "scenes": self._scenes()}
        tmp = self.ckpt / ".state.json.tmp"
        tmp.write_text(json.dumps(state, indent=1))
        tmp.replace(self.ckpt / "state.json")

    def load_checkpoint(self) -> bool:
        if not (self.ckpt / "state.json").is_file():
            return False
        state = json.loads((self.ckpt / "state.json").read_text())
        was, now = state.get("scenes"), self._scenes()
        for key, what in (("train", "training"), ("val", "validation")) if was and now else ():
            if was[key] != now[key]:
                raise InputError(f"{self.out}: --resume with other {what} scenes ({len(now[key])}: "
                                 f"{_names(now[key])}) than the run it resumes ({len(was[key])}: "
                                 f"{_names(was[key])}); give the same --data/--add-train, or train into a new folder")
        tensors, _ = W.load(self.ckpt / "model.safetensors")
        W.load_into(self.task.model, tensors, self.ckpt)
        ot, ometa = W.load(self.ckpt / "optim.safetensors")
        _load_optim(self.opt, ot, ometa["optim"])
        self.step, self.best, self.history = state["step"], state["best"], state["history"]
        return True

    def _scenes(self) -> dict | None:
        """The task's training and validation scene names (None for tasks that name none)."""
        train = getattr(self.task, "train_scenes", None)
        return None if train is None else {"train": list(train), "val": list(self.task.val_scenes)}

    # -- loop -------------------------------------------------------------------------------
    def lr_at(self, step: int) -> float:
        if self.s.schedule == "cosine":  # CosineAnnealingWarmRestarts(T_0 = cycle, T_mult = 1)
            t = (step % self.s.cycle) / max(self.s.cycle, 1)
            return self.s.final_lr + (self.s.lr - self.s.final_lr) * 0.5 * (1 + math.cos(math.pi * t))
        if self.s.halve_every:
            return self.s.lr * 0.5 ** (step // self.s.halve_every)
        return self.s.lr

    @property
    def best_batch(self) -> int:
        """The batch of the best validation (0: the starting weights', or none yet)."""
        return next((r["batch"] for r in self.history if "val" in r
                     and r["val"].get(self.task.val_key) == self.best), 0)

    @property
    def stale(self) -> int:
        """Validations since the best one (the starting weights' counts as one when validated)."""
        return sum(1 for r in self.history if "val" in r and r["batch"] > self.best_batch)

    def validate(self) -> dict:
        self.task.model.eval()
        with torch.inference_mode():
            m = self.task.validate()
        self.task.model.train()
        return m

    def run(self, resume: bool = False, progress: bool = True) -> dict:
        from tqdm import tqdm

        if resume and self.load_checkpoint():
            print(f"resumed from batch {self.step}", file=sys.stderr)
        elif self.s.validate_start:
            self._validate_start(progress)
        t0 = time.time()
        self.task.model.train()
        # a time budget: the bar counts seconds, so its ETA is the budget's (or, with a batch budget
        # too, whichever of the two ends the run first at the speed so far: see _loop)
        self._timed = self.s.max_minutes is not None
        bar = tqdm(total=round(self.s.max_minutes * 60) if self._timed else self.s.batches,
                   initial=0 if self._timed else self.step, disable=not progress, file=sys.stderr,
                   desc=self.desc, dynamic_ncols=True, unit="s" if self._timed else "it",
                   position=self.position)
        # in the main thread, Ctrl-C / SIGTERM finish the batch, then checkpoint and write the card
        # (in a worker thread of run_together, whose handlers set every trainer's stop)
        with _stop_on_signals([self]):
            self._loop(t0, bar)
        stopped_by_budget = self._budget_hit
        if self._timed and (stopped_by_budget or self._early or self.step >= self.s.batches):  # done
            bar.update(bar.total - bar.n)
        if self._early and not bar.disable:
            bar.write(f"{self.desc}: stopped at batch {self.step}, {self._early}", file=sys.stderr)
        if self.on_progress is not None and (stopped_by_budget or self._early or self.step >= self.s.batches):
            self.on_progress(1.0)
        bar.close()
        self.save_checkpoint()
        if not (self.out / "best.safetensors").exists():
            W.save(self.task.model.state_dict(), self.out / "best.safetensors", self.task.metadata())
        with open(self.out / "history.jsonl", "w") as f:
            for rec in self.history:
                f.write(json.dumps(rec) + "\n")
        return {"batches": self.step, "best": self.best, "best_batch": self.best_batch,
                "stopped_by_budget": stopped_by_budget, "stopped_early": self._early,
                "interrupted": self.stop["signal"] is not None}

    @property
    def start_score(self) -> float | None:
        """The starting weights' validation score (``validate_start``), or None."""
        rec = next((r for r in self.history if r.get("batch") == 0), None)
        return None if rec is None else rec["val"].get(self.task.val_key)

    def _validate_start(self, progress: bool) -> None:
        rec = {"batch": 0, "loss": None, "time_s": 0.0, "val": self.validate()}
        self.history.append(rec)
        self.best = rec["val"].get(self.task.val_key)
        W.save(self.task.model.state_dict(), self.out / "best.safetensors", self.task.metadata())
        if progress:
            print("batch 0 (starting weights): " + ", ".join(f"{k}={v:.4f}" for k, v in rec["val"].items()),
                  file=sys.stderr)

    def _loop(self, t0, bar):
        stop = self.stop
        self._budget_hit = False
        self._early = None  # why validation stopped the run (TrainSettings.patience), or None
        seen, first = 0, self.step
        while self.step < self.s.batches:
            if stop["signal"] is not None:
                break
            if self.s.patience and self.stale >= self.s.patience:
                self._early = (f"no gain on validation in the last {self.stale} validations "
                               f"(best at batch {self.best_batch})")
                break
            if self.s.max_minutes is not None and (time.time() - t0) / 60 > self.s.max_minutes:
                self._budget_hit = True
                break
            if self.threads and torch.get_num_threads() != self.threads:
                torch.set_num_threads(self.threads)
            rng = np.random.default_rng([self.s.seed, self.step])
            batch = self.task.sample(rng, self.s.batch)
            for g in self.opt.param_groups:
                g["lr"] = self.lr_at(self.step)
            # a stop asked for during a batch (between its per-band steps) rolls it back, so the
            # checkpoint sits on a batch boundary and --resume stays exact
            snap = (copy.deepcopy(self.task.model.state_dict()), copy.deepcopy(self.opt.state_dict()))
            deadline = None if self.s.max_minutes is None else t0 + 60 * self.s.max_minutes
            self.task.should_stop = lambda: stop["signal"] is not None or (
                deadline is not None and time.time() > deadline)
            try:
                loss = self.task.train_batch(batch, self.opt)
            except BatchInterrupted:
                self.task.model.load_state_dict(snap[0])
                self.opt.load_state_dict(snap[1])
                self._budget_hit = stop["signal"] is None
                break
            finally:
                self.task.should_stop = None
            del snap
            if not math.isfinite(loss):
                raise FloatingPointError(f"loss became {loss} at batch {self.step}")
            self.step += 1
            seen += self.s.batch
            if self._timed:
                elapsed, total = time.time() - t0, 60 * self.s.max_minutes
                if self.s.batches < TIME_ONLY:  # the batches may run out before the minutes do
                    total = min(total, elapsed * (self.s.batches - first) / (self.step - first))
                    bar.total = max(1, round(total))
                bar.update(min(bar.total, round(elapsed)) - bar.n)
            else:
                bar.update(1)
            if self.on_progress is not None:
                self.on_progress(min(1.0, elapsed / total) if self._timed else self.step / self.s.batches)
            bar.set_postfix(**({"batch": self.step} if self._timed else {}), loss=f"{loss:.4f}",
                            lr=f"{self.lr_at(self.step - 1):.1e}",
                            samples_s=f"{seen / max(time.time() - t0, 1e-9):.2f}")
            rec = {"batch": self.step, "loss": loss, "time_s": round(time.time() - t0, 1)}
            if self.step % self.s.val_every == 0 or self.step == self.s.batches:
                rec["val"] = self.validate()
                score = rec["val"].get(self.task.val_key)
                if score is not None and (self.best is None or score > self.best):
                    self.best = score
                    W.save(self.task.model.state_dict(), self.out / "best.safetensors",
                           self.task.metadata())
                if not bar.disable:
                    bar.write(f"batch {self.step}: " + ", ".join(f"{k}={v:.4f}" for k, v in rec["val"].items()),
                              file=sys.stderr)
            self.history.append(rec)
            if self.step % self.s.ckpt_every == 0:
                self.save_checkpoint()


@contextlib.contextmanager
def _stop_on_signals(trainers):
    """While in the block, SIGINT/SIGTERM ask ``trainers`` to stop after their current batch
    (installed only in the main thread, where Python runs signal handlers)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def request_stop(signum, frame):
        for tr in trainers:
            tr.stop["signal"] = signum

    old = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)


def run_together(trainers: list[Trainer], *, resume: bool = False, progress: bool = True) -> list[dict]:
    """Run ``trainers`` at the same time, each in its own thread with an equal share of torch's CPU
    threads (restored afterwards), each with its own progress line; Ctrl-C / SIGTERM stop them
    all at a batch boundary, an error in one stops the others and is raised. When one ends (its
    budget spent, or validation stopped gaining) its threads go to those still running, from their
    next batch. On the CPU two band-recurrent networks side by side with one thread each take ~1.2×
    the batches of the same two one after the other with two threads (the recurrence's small steps
    leave cores idle; ``benchmarks/RESULTS.md``, "side by side")."""
    if len(trainers) == 1:
        return [trainers[0].run(resume=resume, progress=progress)]
    threads = torch.get_num_threads()
    running, lock = list(trainers), threading.Lock()

    def share():  # torch's threads split over the trainers still running, at least one each
        for k, tr in enumerate(running):
            tr.threads = max(1, threads // len(running) + (k < threads % len(running)))

    def run_one(tr):
        try:
            return tr.run(resume=resume, progress=progress)
        finally:
            with lock:
                running.remove(tr)
                share()

    share()
    torch.set_num_threads(max(1, threads // len(trainers)))
    for i, tr in enumerate(trainers):
        tr.position = i
    pool = cf.ThreadPoolExecutor(len(trainers), thread_name_prefix="geohsr-train")
    try:
        with _stop_on_signals(trainers):
            futures = [pool.submit(run_one, tr) for tr in trainers]
            pending = set(futures)
            while pending:  # short waits: the main thread must come back to run signal handlers
                done, pending = cf.wait(pending, timeout=0.5, return_when=cf.FIRST_EXCEPTION)
                if any(f.exception() is not None for f in done):
                    for tr in trainers:
                        tr.stop["signal"] = "error"
            return [f.result() for f in futures]
    finally:
        pool.shutdown(wait=True)
        torch.set_num_threads(threads)
        for tr in trainers:
            tr.threads = None


def _names(scenes: list[str], shown: int = 3) -> str:
    return ", ".join(scenes[:shown]) + (f", … {len(scenes) - shown} more" if len(scenes) > shown else "")
