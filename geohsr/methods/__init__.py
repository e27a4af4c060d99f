"""Method registry: every super-resolution method registers a :class:`MethodSpec`.

A method is one folder (``geohsr/methods/<name>/``): its network(s), its configurations
(``paper`` / ``compact`` / ``tiny``, :class:`ModelConfig`) in one table, its inference spec and,
for learned methods, its training task (:class:`TrainSpec`: how a task is built, the recipe
recorded in the model card, extra ``geohsr train`` options). The folder's ``__init__`` calls
:func:`register`; every sub-package of ``geohsr.methods`` whose name does not start with ``_`` is
imported on first use, and so is every entry point of the ``geohsr.methods`` group (a method
shipped in another package). Everything else — ``geohsr methods``, ``geohsr train``'s choices and
options, the catalogue check, the QGIS method list, the conformance tests — reads the registry.

A spec says what a method needs (LR only or LR + HR guide), which scales it supports, its
receptive field (the halo tiles are read with), whether it sees global context (then tiles
overlap and are blended), how it treats the band axis, and how to build its runner. Runners
are built once per process (and so once per dask worker) and cached.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from ..errors import MethodError

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class ModelConfig:
    """One size of a learned method: the network's configuration and its training recipe."""

    arch: Any  # the network's configuration (a dataclass or a dict of constructor arguments)
    lr: float  # Adam learning rate
    batch: int  # samples per batch
    patch: int  # LR training patch side (SNLSR/A-SNLSR: the HR crop)


@dataclass(frozen=True)
class TrainOption:
    """A ``geohsr train`` option only some methods take (``--name``; a flag when ``type`` is None)."""

    name: str
    help: str
    type: Any = None
    default: Any = None
    multiple: bool = False
    in_command: str = "changed"  # in the card's command line: "changed" from the default, or "always"

    @property
    def param(self) -> str:
        return self.name.replace("-", "_")


@dataclass(frozen=True)
class TrainSpec:
    """How ``geohsr train <method>`` trains a method.

    ``make_task(train, val, scale, config, *, device, seed, amp, options) -> TaskInfo``: the
    task for scene-trained methods (:func:`geohsr.train.run.train_method` drives it). A method
    with other inputs gives ``entry(method, scale, out, **kw) -> dict`` instead (SNLSR/A-SNLSR:
    ``--source``/``--target`` scenes). ``options``: the method's own CLI options, passed to
    ``make_task``/``entry`` as ``options``. ``inputs``: which generic inputs it reads
    (``("data",)`` or ``("source", "target")``)."""

    make_task: Callable | str | None = None  # a callable, or "module:name" imported when training
    entry: Callable | str | None = None
    options: tuple[TrainOption, ...] = ()
    inputs: tuple[str, ...] = ("data",)
    init: bool = True  # takes --init (fine-tuning from other weights)
    scales: tuple[int, ...] | None = None  # trainable scales (None: the method's)

    @staticmethod
    def _resolve(ref):
        if isinstance(ref, str):
            mod, _, name = ref.partition(":")
            return getattr(importlib.import_module(mod), name)
        return ref

    def task_factory(self) -> Callable | None:
        return self._resolve(self.make_task)

    def entry_point(self) -> Callable | None:
        return self._resolve(self.entry)


@dataclass
class TaskInfo:
    """What :attr:`TrainSpec.make_task` returns: the task and what the model card records."""

    task: Any
    recipe: dict  # loss, steps, patches, augmentation, degradation (the card's "recipe")
    weights_method: str  # the catalogue method the weights belong to (DualSR trains "coarsr")
    used_by: list  # methods that use these weights
    arch: Any  # the architecture as recorded in the card
    licence: str = "weights: GPL-3.0-or-later (code)"


@dataclass(frozen=True)
class MethodSpec:
    """Metadata and factory of one method.

    ``builder(scale, weights, device)`` returns a :class:`Runner` around a function taking a
    batch of float32 device tensors ``(B, bands, h, w)`` (normalised when ``normalise``; guided
    methods also get the guide ``(B, 3, s·h, s·w)``) and returning ``(B, planes, s·h, s·w)`` on
    the device.
    """

    name: str
    summary: str
    builder: Callable
    guided: bool = False
    scales: tuple[int, ...] | None = None  # None: any integer scale >= 2
    scales_why: str = ""  # why some scales are out and what to use there (ends the scale error)
    halo: int = 0  # receptive field radius in LR pixels (the widest the method's models have)
    # ``halo_for(scale, weights) -> int``: the halo of the weights actually used, when smaller
    halo_for: Callable | None = None
    context: str = "local"  # "local" (crop-only tiling is exact) or "global" (overlap + blend)
    bands: str = "any"  # "any", or "grid": the weights fix a wavelength grid the input is resampled to
    band_axis: str = "independent"  # "independent" bands, or "joint" (all bands in one block)
    normalise: bool = False  # divide by a global scale before the model
    mask_dilation: int = 0  # LR pixels of invalid-mask dilation applied to the output
    paper: str = ""
    needs_weights: bool = False
    # auxiliary planes the runner appends after the HR bands: ``aux_per_band`` blocks of one
    # plane per band (in data units, e.g. DualSR's back-projection residual), then ``aux_extra``
    # unitless planes (e.g. DualSR's per-pixel angle)
    aux_per_band: int = 0
    aux_extra: int = 0
    # scene-wide statistic (e.g. DualSR's λ): ``block_stat(planes, bands, good) -> (sum, count)``
    # per block, summed over the scene, then ``finish(planes, bands, sum, count) -> HR bands``
    block_stat: Callable | None = None
    finish: Callable | None = None
    # the network sizes (``paper`` / ``compact`` / ``tiny``) and the training task (learned methods)
    configs: dict = field(default_factory=dict)
    train: TrainSpec | None = None
    # ``build_net(scale, arch) -> torch.nn.Module``: the network of a configuration's ``arch``
    # (or of the architecture recorded in a weights file), untrained
    build_net: Callable | None = None
    # ``bands == "grid"``: ``band_grid(scale, weights) -> {"wavelength": [...], "fwhm": f}``
    band_grid: Callable | None = None
    extras: dict = field(default_factory=dict)  # what a method family's shared code needs
    # ``weight_scales(scale) -> tuple``: the scales of the weights files a run at ``scale`` takes,
    # comma-separated in ``weights`` (DualSR ×4: the ×4 and ×2 CoarSR); default ``(scale,)``
    weight_scales: Callable | None = None
    # ``fit(plan) -> np.ndarray``: parameters fitted once per scene before any block (classical
    # fusion's regression at low resolution); the runner gets them, one copy per block, after the
    # LR blocks and guide windows, so every block of a scene uses the same ones.
    # ``fit_in_data_units``: they are linear in the data, and a ``normalise`` method gets them
    # divided by the scene's normalisation
    fit: Callable | None = None
    fit_in_data_units: bool = False
    # the method whose shipped weights this one runs with (DualSR-GLP: "dualsr"); default its own
    weights_of: str | None = None
    # ``pick_weights(scale, cube) -> str | None``: the shipped weights that suit this scene (e.g.
    # remote-sensing or close-range ones, from its wavelengths) when none are given; None: default
    pick_weights: Callable | None = None
    guide_channels: str = "rgb"  # guided methods: "rgb" (three channels in [0, 1]) or "all" bands
    # guided methods that reduce the guide through the sensor MTF (classical fusion): prepare
    # measures the scene's MTF against the guide (engine.set_mtf) or takes the user's gain,
    # and the runner gets that gain as one more argument, a (B,) tensor after the fitted parameters
    uses_mtf: bool = False
    # the RMS difference between 32-px LR tiles and one whole-scene tile, relative to the data's
    # range, the conformance test holds the method to (local methods: crop-only tiling, exact up
    # to float rounding; global-context methods blend overlapping tiles)
    tile_tolerance: float = 1e-6
    order: int = 100  # position in `geohsr methods` (bicubic 0)

    def halo_of(self, scale: int, weights: str | None = None) -> int:
        """LR pixels of halo tiles need with these weights (``halo`` unless ``halo_for`` says)."""
        return self.halo if self.halo_for is None else min(self.halo, int(self.halo_for(scale, weights)))

    def scales_of_weights(self, scale: int) -> tuple[int, ...]:
        return (int(scale),) if self.weight_scales is None else tuple(self.weight_scales(int(scale)))

    def planes(self, bands: int) -> int:
        return bands * (1 + self.aux_per_band) + self.aux_extra

    def check_scale(self, scale) -> int:
        s = check_scale(scale)
        if self.scales is not None and s not in self.scales:
            why = f"; {self.scales_why}" if self.scales_why else ""
            raise MethodError(f"method {self.name!r} supports scales "
                              f"{', '.join(map(str, self.scales))}, not {s}{why}")
        return s

    def shipped_entries(self, scale: int | None = None) -> list[dict]:
        """Catalogue entries of the shipped weights this method runs with (at ``scale``), the
        paper-size ones first."""
        from ..weights import catalog

        name = self.weights_of or self.name
        hits = [e for e in catalog() if name in e.get("used_by", [e["method"]])
                and (scale is None or int(e["scale"]) == int(scale))]
        return sorted(hits, key=lambda e: 0 if e.get("config") == "paper" else 1)

    def shipped_weights(self) -> list[str]:
        """Files of the shipped weights this method uses (from models/catalog.json)."""
        return [f"{e['file']} (x{e['scale']}, {e.get('config', '?')}"
                + (", remote sensing" if e.get("data", {}).get("kind") == "remote sensing" else "") + ")"
                for e in self.shipped_entries()]

    def weights_ready(self, scale: int) -> bool:
        """Whether shipped weights cover a run at ``scale`` (every file it takes; True for methods
        without weights)."""
        return not self.needs_weights or all(self.shipped_entries(w) for w in self.scales_of_weights(scale))

    def _scales_text(self):
        """The scales as a user can run them: for learned methods those the shipped weights cover,
        then the others the network takes once trained (`geohsr train` / `geohsr adapt`)."""
        if not self.needs_weights:
            return "any integer >= 2" if self.scales is None else list(self.scales)
        have = {int(e["scale"]) for e in self.shipped_entries()}
        cand = sorted(have | set(self.scales or ()))
        ready = [s for s in cand if all(w in have for w in self.scales_of_weights(s))]
        later = [s for s in (self.scales or ()) if s not in ready]
        text = ", ".join(map(str, ready)) or "none shipped"
        first = "train or --adapt first" if self.extras.get("scale_free") and have else "train first"
        return text + (f" ({first}: {', '.join(map(str, later))})" if later else "")

    def describe(self) -> dict:
        bands = self.bands
        if bands == "grid":
            from ..weights import catalog

            grids = {f"{e['wavelength'][0]:.0f}-{e['wavelength'][-1]:.0f}nm/{len(e['wavelength'])}"
                     for e in catalog() if e["method"] == self.name and e.get("wavelength")}
            bands = "model grid" + (f" ({', '.join(sorted(grids))})" if grids else "")
        return {
            "name": self.name,
            "summary": self.summary,
            "inputs": "LR + HR guide" if self.guided else "LR only",
            "scales": self._scales_text(),
            "halo": self.halo,
            "context": self.context,
            "bands": bands,
            "needs_weights": self.needs_weights,
            "weights": self.shipped_weights(),
            "paper": self.paper,
        }


class Runner:
    """A method's model on one device, built once per process (and so once per dask worker).

    ``runner.batch(x[, guide])`` takes device tensors with a leading block axis and returns the
    planes on the device (no host synchronisation: the caller decides when to copy back);
    ``runner(x[, guide])`` runs one CPU block ``(bands, h, w)`` and returns CPU planes."""

    def __init__(self, batch: Callable, device: torch.device):
        import torch

        self.batch = batch
        self.device = torch.device(device)

    def __call__(self, x: torch.Tensor, guide: torch.Tensor | None = None) -> torch.Tensor:
        args = (x[None].to(self.device),) + (() if guide is None else (guide[None].to(self.device),))
        return self.batch(*args)[0].cpu()


_REGISTRY: dict[str, MethodSpec] = {}


def register(spec: MethodSpec, *, replace: bool = False) -> MethodSpec:
    """Add ``spec`` to the registry (names are case-insensitive); a second method of the same name
    is refused unless ``replace``."""
    key = spec.name.lower()
    if not replace and key in _REGISTRY and _REGISTRY[key] is not spec:
        raise MethodError(f"a method named {spec.name!r} is already registered; pick another name "
                          "or pass replace=True")
    _REGISTRY[key] = spec
    _build_runner.cache_clear()
    return spec


def unregister(name: str) -> None:
    """Remove a method from the registry (a no-op when it is not there)."""
    _REGISTRY.pop(str(name).lower(), None)
    _build_runner.cache_clear()


def specs() -> list[MethodSpec]:
    """The registered :class:`MethodSpec` objects in listing order (bicubic first)."""
    _load_builtin()
    rank = {k: i for i, k in enumerate(_REGISTRY)}
    return sorted(_REGISTRY.values(), key=lambda s: (s.order, rank[s.name.lower()]))


def trainable() -> list[MethodSpec]:
    """The methods ``geohsr train`` can train."""
    return [s for s in specs() if s.train is not None]


def dualsr_scales() -> list[int]:
    """The scales at which shipped (or installed) weights run DualSR: ×s and, for its fine stage, ×s/2."""
    from ..weights import find

    dualsr = get_method("dualsr")
    return [s for s in dualsr.scales if all(find("coarsr", w) for w in dualsr.scales_of_weights(s))]


def check_scale(scale) -> int:
    """``scale`` as an int, or a one-line error unless it is an integer >= 2 (whatever the method)."""
    try:
        s = float(scale)
    except (TypeError, ValueError):
        raise MethodError(f"scale must be an integer >= 2, got {scale!r}") from None
    if s != int(s) or s < 2:
        raise MethodError(f"scale must be an integer >= 2, got {scale}; e.g. --scale 4")
    return int(s)


def default_method(scale: int) -> str:
    """``auto``: DualSR where shipped weights cover ×scale (and ×scale/2), else bicubic."""
    return "dualsr" if int(scale) in dualsr_scales() else "bicubic"


def get_method(name: str) -> MethodSpec:
    _load_builtin()
    key = str(name).lower()
    if key not in _REGISTRY:
        raise MethodError(f"unknown method {name!r}; available: {', '.join(_REGISTRY)} "
                          "(see `geohsr methods`)")
    return _REGISTRY[key]


def methods() -> list[dict]:
    """Registered methods with their metadata, bicubic first."""
    return [s.describe() for s in specs()]


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``auto`` → CUDA when available, else CPU. A device asked for by name that this machine does
    not have (``cuda`` without CUDA, ``cuda:7`` with two GPUs) is an error: ``auto`` is the fallback."""
    import torch

    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(str(device))
    except RuntimeError:
        raise MethodError(f"unknown device {device!r}; use auto, cpu or cuda[:N]") from None
    if dev.type == "cuda":
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n == 0 or (dev.index is not None and dev.index >= n):
            have = "no CUDA GPU" if n == 0 else f"{n} CUDA GPU{'s' if n > 1 else ''} (cuda:0…cuda:{n - 1})"
            raise MethodError(f"device {device!r} is not available: this machine has {have}; use "
                              "--device auto (a GPU when there is one, else the CPU) or cpu")
    elif dev.type not in ("cpu", "cuda"):
        raise MethodError(f"device {device!r} is not supported; use auto, cpu or cuda[:N]")
    return dev


def worker_device(device: str | torch.device | None = "auto") -> torch.device:
    """The device this process runs on: :func:`resolve_device`, except that a ``dask.distributed``
    worker asked for ``auto``/``cuda`` on a machine with several visible GPUs takes GPU
    ``worker name mod count`` (LocalCluster names its workers 0, 1, …), so each worker holds
    one model on its own GPU. (dask-cuda's ``LocalCUDACluster`` instead shows each worker one GPU.)"""
    import torch

    dev = resolve_device(device)
    if dev.type != "cuda" or dev.index is not None or torch.cuda.device_count() < 2:
        return dev
    try:
        from distributed import get_worker

        name = get_worker().name
    except (ImportError, ValueError):
        return dev
    try:
        k = int(name)
    except (TypeError, ValueError):
        k = sum(map(ord, str(name)))
    return torch.device("cuda", k % torch.cuda.device_count())


def load_runner(name: str, scale: int, weights: str | None, device: str):
    """The runner of ``name`` at ``scale`` on ``device`` (``auto``, ``cpu``, ``cuda[:N]``), resolved
    in this process (:func:`worker_device`) and built once per process and device."""
    return _build_runner(name, scale, weights, str(worker_device(device)))


@functools.lru_cache(maxsize=16)
def _build_runner(name: str, scale: int, weights: str | None, device: str):
    import torch

    spec = get_method(name)
    return spec.builder(scale, weights, torch.device(device))


load_runner.cache_clear = _build_runner.cache_clear


_LOADED = False


def _load_builtin() -> None:
    """Import every method folder of this package, then the ``geohsr.methods`` entry points."""
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    for mod in pkgutil.iter_modules(__path__):
        if mod.ispkg and not mod.name.startswith("_"):
            importlib.import_module(f"{__name__}.{mod.name}")
    from importlib.metadata import entry_points

    for ep in entry_points(group="geohsr.methods"):
        try:
            ep.load()
        except Exception as exc:  # noqa: BLE001  (a broken plug-in must not break geohsr)
            warnings.warn(f"method plug-in {ep.name!r} ({ep.value}) failed to load: {exc}", RuntimeWarning)
