"""Entry points behind ``geohsr train``: :func:`train` dispatches on the method's registered
:class:`~geohsr.methods.TrainSpec`; :func:`train_method` drives every scene-trained method."""

from __future__ import annotations

import json
import math
import platform
import sys
import time
from pathlib import Path

import torch

from .. import weights as W
from ..errors import InputError, WeightsError
from ..methods import get_method
from .data import RS_SPLIT, cave_scenes, find_dataset, is_rs_root, rs_scenes
from .trainer import Trainer, TrainSettings


def _split_scenes(data: Path):
    data = Path(data)
    if data.is_dir() and any(p.is_dir() and list(p.glob("*_ms_01.png")) for p in data.iterdir()):
        return cave_scenes(data, "train"), cave_scenes(data, "val"), "CAVE"
    if is_rs_root(data):  # the shared data folder: the fixed remote-sensing split by scene
        return rs_scenes(data, "train"), rs_scenes(data, "val"), "remote sensing"
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


def _data_licence(kind: str, data) -> str:
    if kind == "CAVE":
        return "; CAVE data: research use, cite Yasuma et al. 2008"
    if kind == "remote sensing":
        return ("; training data: AVIRIS/HYDICE ABU scenes (NASA/JPL public data, ABU benchmark release), "
                "SAMSON (unmixing benchmark release); see ../shared/data/README.md")
    return f"; training data: the licence of {data} applies"


def _make_task(method, train, val, scale, config, device, seed, amp, options):
    spec = get_method(method)
    if spec.train is None or spec.train.make_task is None:
        raise InputError(f"geohsr cannot train {method!r} from --data")
    if config not in spec.configs:
        raise InputError(f"unknown config {config!r} for {spec.name}; use {', '.join(spec.configs)}")
    info = spec.train.task_factory()(train, val, scale, config, device=device, seed=seed, amp=amp,
                                     options={**options, "method": spec.name})
    return info, spec.configs[config]


def train(method, scale: int, out, *, data=None, source=(), target=(), options=None, **kw) -> dict:
    """Train ``method`` (any registered method with a :class:`~geohsr.methods.TrainSpec`) into the
    run folder ``out``. ``data`` for scene-trained methods, ``source``/``target`` for those whose
    spec reads them; ``options``: the method's own options (``TrainSpec.options``)."""
    spec = get_method(method)
    if spec.train is None:
        raise InputError(f"{spec.name} has nothing to train (it needs no weights)")
    if spec.train.entry is not None:
        return spec.train.entry_point()(spec.name, list(source), list(target), int(scale), out,
                                        options=options or {}, **kw)
    if data is None:
        raise InputError(f"{spec.name} trains from --data (a CAVE root, a folder of rasters or a raster)")
    return train_method(spec.name, data, int(scale), out, options=options, **kw)


def train_method(method, data, scale: int, out, *, config="compact", resume=False, batches=2000,
                 batch=None, lr=None, halve_every=0, val_every=50, ckpt_every=25, max_minutes=None,
                 seed=1, device="cpu", threads=None, progress=True, command="", amp=False,
                 options: dict | None = None, init=None, add_train=(), split_scenes=None) -> dict:
    """Train ``method`` on ``data`` into the run folder ``out`` (best.safetensors + card.json).

    ``init``: a safetensors file of the same architecture (any scale where the network's weights
    do not depend on it) to start from instead of a random initialisation (fine-tuning).
    ``add_train``: more data (each as ``data``) whose *training* scenes join ``data``'s, placed
    ahead of them; validation stays ``data``'s (e.g. CAVE beside the remote-sensing split, to keep
    the visible-band detail the remote-sensing scenes alone teach less of).
    ``split_scenes``: ``path -> (train scenes, validation scenes, kind)`` for ``data`` and each of
    ``add_train`` (default: the fixed split by scene of a CAVE root or the shared data folder, else
    the rasters found); developer tools that bring their scenes another way pass their own."""
    out = Path(out)
    split_scenes = split_scenes or _split_scenes
    train, val, kind = split_scenes(data)
    if not train or not val:
        raise InputError(f"{data}: need at least one training and one validation scene")
    splits = [(extra, split_scenes(extra)) for extra in add_train]
    added = [{"path": str(extra), "kind": more_kind, "train_scenes": [sc.name for sc in more]}
             for extra, (more, _, more_kind) in splits]
    train = [sc for _, (more, _, _) in splits for sc in more] + list(train)
    info, rec = _make_task(method, train, val, scale, config, device, seed, amp, options or {})
    task, recipe = info.task, dict(info.recipe)
    init_info = _initialise(task.model, init) if init else None
    # fine-tuning whole weights: they are the score to beat (partly fresh ones are not a model yet)
    whole = init_info is not None and "not_loaded" not in init_info
    settings = TrainSettings(lr=lr or rec.lr, batch=batch or rec.batch, batches=batches,
                             halve_every=halve_every, val_every=val_every, ckpt_every=ckpt_every,
                             seed=seed, max_minutes=max_minutes, device=device, threads=threads,
                             validate_start=whole)
    t0 = time.time()
    trainer = Trainer(task, out, settings)
    result = trainer.run(resume=resume, progress=progress)
    if whole and trainer.start_score is not None:
        init_info["val_psnr_crop"] = trainer.start_score
        init_info["beaten"] = result["best"] > trainer.start_score
        if not init_info["beaten"]:
            print(f"no validation beat the starting weights ({trainer.start_score:.3f}): best.safetensors "
                  "holds them unchanged", file=sys.stderr)
    best = out / "best.safetensors"
    recipe.update({"lr": settings.lr, "batch": settings.batch, "halve_every_batches": halve_every,
                   "batches": result["batches"], "seed": seed, "amp_bf16": amp})
    card = {
        "method": info.weights_method, "used_by": info.used_by, "scale": scale, "config": config,
        "architecture": info.arch,
        "parameters": sum(p.numel() for p in task.model.parameters()),
        "data": {"kind": kind, "path": str(data), "train_scenes": task.train_scenes,
                 "val_scenes": task.val_scenes,
                 **({"test_scenes": list(RS_SPLIT["test"])} if kind == "remote sensing" else {}),
                 **({"added_train": added} if added else {})},
        "normalisation": task.metadata()["normalisation"],
        "recipe": recipe,
        "best_val_psnr_crop": result["best"],
        "initialised_from": init_info,
        "command": command,
        "trained_on": {"device": device, "torch": torch.__version__, "machine": platform.platform(),
                       "minutes_this_session": round((time.time() - t0) / 60, 1)},
        "sha256": W.sha256(best),
        "licence": info.licence + _data_licence(kind, data)
                   + "".join(_data_licence(a["kind"], a["path"]) for a in added),
    }
    (out / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    return {"out": str(out), **result, "sha256": card["sha256"]}


def _grow(model: torch.nn.Module, fit: dict) -> list[str]:
    """Residual blocks of ``model`` none of whose parameters are in ``fit`` (the weights of a
    shallower config): made the identity (:meth:`geohsr.nn.ResBlock.make_identity`), so the
    deeper network starts from the shallower one's output. Their module names."""
    from ..nn import ResBlock

    grown = []
    for name, m in model.named_modules():
        if isinstance(m, ResBlock) and not any(f"{name}.{k}" in fit for k, _ in m.named_parameters()):
            m.make_identity()
            grown.append(name)
    return grown


class _Widened(dict):
    n_old = n_new = 0


def _widen(model: torch.nn.Module, tensors: dict, own: dict) -> _Widened:
    """Weights of a narrower config (fewer features, e.g. ``compact``'s 32 into ``paper``'s 64)
    placed into ``model``'s wider tensors, function-preserving: each feature dimension (a channel
    count that is a multiple of the file's feature count: concatenations of feature blocks such as
    a 3n→n fusion take block ``k``'s channel ``c`` to ``k·n_new + c``; a sub-pixel convolution's
    output keeps its prefix, which PixelShuffle turns into the first ``n_old`` channels) holds
    the file's values at the mapped places; the weights from added input channels into the file's
    output channels are zero, so the added channels (freshly initialised) change nothing the
    file's channels compute until training makes them. ``own``: ``model.state_dict()``. Empty
    when nothing needs widening."""
    pairs = {k: (v, own[k]) for k, v in tensors.items() if k in own and v.ndim == own[k].ndim
             and tuple(v.shape) != tuple(own[k].shape)}
    out = _Widened()
    if not pairs or any(any(a > b for a, b in zip(v.shape, o.shape)) for v, o in pairs.values()):
        return out
    grow = {(b // a) for v, o in pairs.values() for a, b in zip(v.shape, o.shape) if a != b and b % a == 0}
    if len(grow) != 1 or any(b != a and b % a for v, o in pairs.values() for a, b in zip(v.shape, o.shape)):
        return out
    r = grow.pop()
    n_old = math.gcd(*[a for v, o in pairs.values() for a, b in zip(v.shape, o.shape) if a != b])
    subpixel = set()  # keys of convolutions whose output a PixelShuffle rearranges: outputs keep the prefix
    for name, m in model.named_modules():
        kids = list(m.named_children())
        for (a, conv), (_, nxt) in zip(kids, kids[1:]):
            if isinstance(nxt, torch.nn.PixelShuffle):
                subpixel.update(f"{name}.{a}.{k}" if name else f"{a}.{k}" for k in conv.state_dict())
    if subpixel.issuperset(pairs):  # only an upsampler differs: another scale, not a width
        return out

    def index(size_old: int, prefix: bool) -> torch.Tensor:
        if prefix or size_old < n_old:
            return torch.arange(size_old)
        return torch.cat([k * n_old * r + torch.arange(n_old) for k in range(size_old // n_old)])

    for k, (v, o) in pairs.items():
        new = o.clone()
        idx = [(index(a, prefix=(d == 0 and k in subpixel)) if a != b else torch.arange(a)).to(new.device)
               for d, (a, b) in enumerate(zip(v.shape, o.shape))]
        if v.ndim >= 2 and v.shape[1] != o.shape[1]:  # file's outputs read nothing from added inputs
            new[idx[0][:, None], :] = 0
        new[torch.meshgrid(*idx, indexing="ij")] = v.to(new.device, new.dtype)
        out[k] = new
    out.n_old, out.n_new = n_old, n_old * r
    return out


def _initialise(model: torch.nn.Module, init) -> dict:
    """Load ``init`` (safetensors) into ``model``. Weights of another scale fit except for the
    scale-dependent layers (CoarSR's sub-pixel upsampler): those keep their fresh initialisation
    and are listed in the card. Weights of a shallower config (fewer residual blocks per body,
    e.g. ``compact`` into ``medium``) fit with the missing blocks made the identity: the start is
    the shallower model itself, validated like any whole start. Weights of a narrower config
    (``compact`` into ``paper``) are widened by :func:`_widen`, so the start computes what the file
    does (the card says what was widened and grown). A file of which less than half the
    model's parameters fit (another method, or a wider config) is refused with a one-line error."""
    init = Path(init)
    tensors, meta = W.load(init)
    own = model.state_dict()
    widened = _widen(model, tensors, own)
    if widened:
        tensors = {**tensors, **widened}
    fit = {k: v for k, v in tensors.items() if k in own and tuple(own[k].shape) == tuple(v.shape)}
    total = sum(v.numel() for v in own.values())
    share = sum(own[k].numel() for k in fit) / max(total, 1)
    if share < 0.5:
        raise WeightsError(f"{init}: weights do not fit the model (only {share:.0%} of its parameters "
                           f"match these {meta.get('method')} ×{meta.get('scale')} weights); use weights "
                           "of the same method, and of the same config or a smaller one")
    model.load_state_dict(fit, strict=False)
    info = {"file": init.name, "sha256": W.sha256(init), "method": meta.get("method"),
            "scale": meta.get("scale")}
    grown = _grow(model, fit)
    if widened:
        info["widened"] = (f"{len(widened)} tensors widened from {widened.n_old} to {widened.n_new} features "
                           "(the added channels feed nothing the file's channels compute, so the wider "
                           "network starts from the file's output)")
    if grown:
        info["grown"] = f"{len(grown)} residual blocks added as the identity (a deeper config than the file's)"
    fresh = sorted(k for k in own if k not in fit and not any(k.startswith(g + ".") for g in grown))
    if fresh:
        info["not_loaded"] = fresh
        info["loaded_share_of_parameters"] = round(share, 4)
    return info
