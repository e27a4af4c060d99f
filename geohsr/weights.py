"""Weights: safetensors only (never pickle), sha256-checked, described by model cards.

Shipped weights are package data, ``geohsr/models/`` (in the repository a link to the top-level
``models/`` folder; ``$GEOHSR_MODELS`` points elsewhere) with
``catalog.json`` listing, for each file: method, scale, config, band policy, normalisation,
training data and split, the command that reproduces it, validation metrics and sha256.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from safetensors import SafetensorError

from .errors import WeightsError

if TYPE_CHECKING:
    import torch


def models_dir() -> Path:
    env = os.environ.get("GEOHSR_MODELS")
    return Path(env) if env else Path(__file__).parent / "models"


def sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def catalog() -> list[dict]:
    """Entries of ``models/catalog.json`` (empty when there is none)."""
    p = models_dir() / "catalog.json"
    if not p.is_file():
        return []
    return json.loads(p.read_text())["weights"]


def of_kind(kind: str | None, method: str | None = None) -> list[dict]:
    """Catalogue entries of weights trained on ``kind`` data ("CAVE", "remote sensing"; any when
    None), of ``method``'s network when given."""
    return [e for e in catalog() if (kind is None or e.get("data", {}).get("kind") == kind)
            and (method is None or e["method"] == method)]


def find(method: str, scale: int, config: str | None = None, kind: str | None = None) -> dict | None:
    """The catalogue entry for ``method`` at ``scale`` (preferring ``config`` when given; only
    weights trained on ``kind`` data — "CAVE", "remote sensing" — when given)."""
    hits = [e for e in of_kind(kind, method) if int(e["scale"]) == int(scale)]
    if config is not None:
        hits = [e for e in hits if e.get("config") == config] or hits
    # the paper-size model when shipped, else the compact one
    hits.sort(key=lambda e: 0 if e.get("config") == "paper" else 1)
    return hits[0] if hits else None


def save(state: dict, path, metadata: dict | None = None) -> str:
    """Write a state dict as safetensors (metadata values JSON-encoded); returns its sha256."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state.items()}
    meta = {k: json.dumps(v) for k, v in (metadata or {}).items()}
    tmp = path.with_name(f".{path.name}.tmp")
    from safetensors.torch import save_file

    save_file(tensors, str(tmp), metadata=meta)
    os.replace(tmp, path)
    return sha256(path)


def with_companions(paths: list[str]) -> dict[int, str]:
    """``{scale: path}`` of the weight files ``paths`` (the scale read from each file's metadata),
    plus the files they name as ``companions`` ({scale: path relative to the file}; scene
    adaptation of DualSR writes its ×s/2 network that way) for scales not given."""
    out, extra = {}, {}
    for p in paths:
        meta = read_metadata(p)
        out[int(meta.get("scale", 0))] = p
        for k, rel in (meta.get("companions") or {}).items():
            extra.setdefault(int(k), str(Path(p).parent / rel))
    for k, path in extra.items():
        if k not in out and Path(path).is_file():
            out[k] = path
    return out


def _require_file(path) -> None:
    if not Path(path).is_file():
        raise WeightsError(f"{path}: weights file not found; check --weights or reinstall geohsr")


def read_metadata(path) -> dict:
    from safetensors import safe_open

    _require_file(path)
    try:
        with safe_open(str(path), framework="numpy") as f:  # the header only: no torch needed
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"{path}: not a valid safetensors file ({exc}); re-download or retrain it") from None
    out = {}
    for k, v in meta.items():
        try:
            out[k] = json.loads(v)
        except ValueError:
            out[k] = v
    return out


def load(path, expected_sha256: str | None = None) -> tuple[dict[str, torch.Tensor], dict]:
    """Load (tensors, metadata) from a safetensors file, refusing a sha256 mismatch.

    When no hash is given, a ``<file>.sha256`` beside the file (if any) is checked.
    """
    path = Path(path)
    _require_file(path)
    if path.suffix != ".safetensors":
        raise WeightsError(f"{path}: only .safetensors weights are loaded (no pickle files); "
                           "convert with safetensors.torch.save_file")
    side = path.with_name(path.name + ".sha256")
    if expected_sha256 is None and side.is_file():
        expected_sha256 = side.read_text().split()[0]
    if expected_sha256 is not None:
        got = sha256(path)
        if got != expected_sha256:
            raise WeightsError(f"{path}: sha256 {got[:12]}… does not match the expected "
                               f"{expected_sha256[:12]}…; the file is corrupt or was altered — "
                               "restore it from the repository")
    meta = read_metadata(path)
    from safetensors.torch import load_file

    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise WeightsError(f"{path}: cannot read weights ({exc})") from None
    return tensors, meta


def resolve(method: str, scale: int, weights=None) -> tuple[str, str | None]:
    """(path, expected sha256) of ``weights`` (a user path: no expected hash) or, when None,
    of the shipped weights for ``method`` ×``scale`` from the catalogue."""
    if weights is not None:
        return str(weights), None
    entry = find(method, scale)
    if entry is None:
        from .errors import WeightsError
        from .methods import get_method

        shipped = sorted({e["scale"] for e in catalog() if e["method"] == method})
        # networks with no scale-bound layer can start from another scale's weights by adapting
        adapt = " (or --adapt 10: adapt on this scene from the nearest shipped scale)" \
            if shipped and get_method(method).extras.get("scale_free") else ""
        raise WeightsError(f"no shipped {method} weights for ×{scale} (shipped: "
                           f"{', '.join(f'×{s}' for s in shipped) or 'none'}); train them with "
                           f"`geohsr train {method} --scale {scale}` and pass --weights{adapt}")
    return str(models_dir() / entry["file"]), entry["sha256"]


def load_checked(method: str, scale: int, weights=None) -> tuple[dict, dict, str]:
    """Load the weights of ``method`` ×``scale`` (see :func:`resolve`) and check that their
    metadata name this method and scale and carry an architecture: (tensors, metadata, path)."""
    from .errors import WeightsError

    path, sha = resolve(method, scale, weights)
    tensors, meta = load(path, sha)
    if meta.get("method") not in (None, method):
        raise WeightsError(f"{path}: these are {meta.get('method')} weights, not {method}")
    wscale = int(meta.get("scale", scale))
    if wscale != scale:
        raise WeightsError(f"{path}: weights are for ×{wscale}, not ×{scale}")
    if not isinstance(meta.get("config"), dict):
        raise WeightsError(f"{path}: no architecture in the weights' metadata")
    return tensors, meta, path


def load_into(model: torch.nn.Module, tensors: dict, where) -> None:
    """``model.load_state_dict`` with a one-line error when the weights do not fit."""
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise WeightsError(f"{where}: weights do not fit the model ({first}); "
                           "check the method, scale and config") from None


def ship(run_dir, name: str, metrics: dict | None = None, dest=None) -> dict:
    """Copy a training run's ``best.safetensors`` into ``models/`` as ``<name>.safetensors``,
    write its model card (``<name>.md`` + the JSON in ``catalog.json``) with ``metrics``
    measured on held-out data, and return the catalogue entry."""
    import shutil

    run_dir = Path(run_dir)
    dest = Path(dest) if dest else models_dir()
    dest.mkdir(parents=True, exist_ok=True)
    card = json.loads((run_dir / "card.json").read_text())
    target = dest / f"{name}.safetensors"
    shutil.copyfile(run_dir / "best.safetensors", target)
    entry = {**card, "file": target.name, "sha256": sha256(target), "held_out_metrics": metrics or {}}
    cat_path = dest / "catalog.json"
    cat = json.loads(cat_path.read_text()) if cat_path.is_file() else {"weights": []}
    cat["weights"] = [e for e in cat["weights"] if e["file"] != target.name] + [entry]
    cat_path.write_text(json.dumps(cat, indent=2) + "\n")
    (dest / f"{name}.md").write_text(model_card_markdown(entry))
    return entry


LABELS = {"psnr": "PSNR (dB)", "ssim": "SSIM", "sam": "SAM (°)", "ergas": "ERGAS", "rmse": "RMSE",
          "psnr_log": "PSNR log-domain (dB)", "ssim_log": "SSIM log-domain", "seconds": "time (s)"}


def _fmt(v, col: str = "") -> str:
    if isinstance(v, dict) and "mean" in v:
        return f"{v['mean']:.3f} ± {v['std']:.3f}"
    if isinstance(v, float):
        return f"{v:.5f}" if col == "rmse" else f"{v:.4f}" if col.startswith("ssim") else f"{v:.3f}"
    return str(v)


def model_card_markdown(e: dict) -> str:
    """A human-readable model card from a catalogue entry."""
    rec, data = e.get("recipe", {}), e.get("data", {})
    if e.get("wavelength"):
        wl = e["wavelength"]
        bands = (f"fixed grid of {len(wl)} bands, {wl[0]:.0f}–{wl[-1]:.0f} nm (FWHM {e.get('fwhm', 0):.1f} nm); "
                 "inputs are resampled onto it")
    elif e["method"] == "coarsr" and data.get("kind") == "remote sensing" and any(
            a.get("kind") == "CAVE" for a in data.get("added_train", [])):
        bands = ("any count (band-recurrent); trained on airborne scenes of 156–191 bands, ~370–2500 nm, "
                 "together with 31-band CAVE 400–700 nm, in windows of 31 contiguous bands; geohsr uses these "
                 "weights for scenes whose bands reach beyond 720 nm or whose wavelengths are unknown")
    elif e["method"] == "coarsr" and data.get("kind") == "remote sensing":
        bands = ("any count (band-recurrent); trained on airborne scenes of 156–191 bands, ~370–2500 nm, "
                 "in windows of 32 contiguous bands; geohsr uses these weights for scenes whose bands "
                 "reach beyond 720 nm or whose wavelengths are unknown")
    elif e["method"] == "coarsr":
        bands = "any count (band-recurrent); trained on 31-band CAVE 400–700 nm"
    else:
        bands = "any count (band by band); trained on 31-band CAVE 400–700 nm"
    lines = [f"# {e['file']}", "",
             f"**{e['method']}** ×{e['scale']}, `{e.get('config')}` config "
             f"({e.get('parameters', '?'):,} parameters), used by: {', '.join(e.get('used_by', []))}.", "",
             "| field | value |", "|---|---|",
             f"| architecture | `{json.dumps(e.get('architecture'))}` |",
             f"| bands | {bands} |",
             f"| normalisation | {e.get('normalisation')} |"]
    if "source" in data:
        lines += [f"| source-range scenes (HR used) | {', '.join(data['source'])} ({e.get('source_range')} nm) |",
                  f"| target-range scenes | {', '.join(data['target'])} ({e.get('range')} nm): {data.get('target_use')} |",
                  f"| split | {data.get('split')} |"]
    else:
        added = "".join(f" + {a['kind']} `{a['path']}` (training scenes only)" for a in data.get("added_train", []))
        lines += [f"| training data | {data.get('kind')} `{data.get('path')}`{added} |",
                  f"| train scenes | {', '.join(data.get('train_scenes', []))} |",
                  f"| validation (held-out) scenes | {', '.join(data.get('val_scenes', []))} |"]
        if data.get("test_scenes"):
            lines.append(f"| test scenes (never trained on, never chose a checkpoint) | "
                         f"{', '.join(data['test_scenes'])} |")
    lines += [f"| recipe | {json.dumps(rec)} |",
              f"| reproduce | `{e.get('command')}` |",
              f"| trained on | {json.dumps(e.get('trained_on'))} |",
              f"| sha256 | `{e['sha256']}` |",
              f"| licence | {e.get('licence', 'weights: GPL-3.0-or-later (code); training data: see README.md, Data attribution')} |", ""]
    t = e.get("test_metrics") or {}
    if t:  # scenes that chose nothing come first
        lines += ["## Test metrics (scenes that chose nothing)", "", t.get("protocol", ""), ""]
        for which, c in t.get("cuts", {}).items():
            lines += [f"**{which.capitalize()}**: {c['bands']}; per scene (PSNR dB): " + "; ".join(
                f"{k}: " + ", ".join(f"{m} {v:.2f}" for m, v in row.items()) for k, row in c["per_scene"].items()), ""]
            lines += _table(c["table"])
    m = e.get("held_out_metrics") or {}
    if m:
        lines += ["## Validation metrics (these scenes also chose the checkpoint: optimistic)" if t else
                  "## Held-out metrics", "", m.get("protocol", ""), ""]
        lines += _table(m.get("table", {}))
        for note in m.get("notes", []):
            lines.append(f"* {note}")
    return "\n".join(lines) + "\n"


def _table(rows: dict) -> list[str]:
    if not rows:
        return []
    cols = list(next(iter(rows.values())).keys())
    out = ["| method | " + " | ".join(LABELS.get(c, c) for c in cols) + " |", "|---" * (len(cols) + 1) + "|"]
    out += [f"| {k} | " + " | ".join(_fmt(r.get(c, ""), c) for c in cols) + " |" for k, r in rows.items()]
    return out + [""]
