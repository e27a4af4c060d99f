"""Readers for the real training data and patch samplers.

Every reader returns ``(name, cube)`` with ``cube`` a float32 array ``(bands, rows, cols)`` in
[0, 1] (or reflectance scaled as stated) and, where known, the band wavelengths in nm.
Splits are by scene and fixed, so a model card can name them.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import degrade
from ..errors import InputError

CAVE_WAVELENGTHS = np.arange(400.0, 701.0, 10.0)
# fixed scene-level split of the 12 CAVE scenes (the CAVE root is an argument of the readers)
CAVE_VALIDATION = ("balloons_ms", "flowers_ms", "superballs_ms")


@dataclass
class Scene:
    name: str
    cube: np.ndarray  # (bands, rows, cols) float32
    wavelength: np.ndarray | None = None


def read_cave_scene(folder: Path) -> Scene:
    """One CAVE scene: 31 16-bit PNGs ``<scene>_ms_01.png`` … ``_31.png``, divided by 65535."""
    import rasterio

    folder = Path(folder)
    files = sorted(folder.glob("*_ms_[0-9][0-9].png"))
    if len(files) != 31:
        raise InputError(f"{folder}: expected 31 band PNGs (<scene>_ms_01.png … _31.png), found {len(files)}")
    bands = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PNGs carry no georeferencing
        for f in files:
            with rasterio.open(f) as ds:
                a = ds.read(1)
            if a.dtype == np.uint8:
                a = a.astype(np.uint16) * 257
            bands.append(a.astype(np.float32) / 65535.0)
    return Scene(folder.name, np.stack(bands), CAVE_WAVELENGTHS.copy())


def cave_scenes(root, split: str = "train") -> list[Scene]:
    """CAVE scenes under ``root`` for ``split`` in {train, val, all} (fixed scene split)."""
    root = Path(root)
    folders = sorted(p for p in root.iterdir() if p.is_dir() and list(p.glob("*_ms_01.png")))
    if not folders:
        raise InputError(f"{root}: no CAVE scene folders (<scene>_ms/<scene>_ms_01.png …) found")
    if split == "val":
        folders = [f for f in folders if f.name in CAVE_VALIDATION]
    elif split == "train":
        folders = [f for f in folders if f.name not in CAVE_VALIDATION]
    return [read_cave_scene(f) for f in folders]


def raster_scenes(paths, scale_to_unit: bool = True) -> list[Scene]:
    """Any rasters geohsr opens (EnMAP tiles/mosaics, ENVI, …), good bands only, nodata-free.

    Values are divided by the scene's largest valid value when ``scale_to_unit``.
    """
    from ..io import open_cube
    from ..tiling import valid_mask

    out = []
    for p in paths:
        cube = open_cube(p)
        data = np.asarray(cube.values, dtype=np.float32)
        valid = valid_mask(data, cube.rio.nodata)
        good = (cube.good_band.values != 0) & valid.all(axis=(1, 2))
        data = data[good]
        if scale_to_unit:
            data = data / max(float(np.abs(data).max()), 1e-12)
        out.append(Scene(Path(p).stem, data, cube.wavelength.values[good]))
    return out


def read_unmixing_mat(path, key: str | None = None, scale: float | None = None) -> Scene:
    """Jasper Ridge (``Y`` (198, 10000) uint16, max 5000 → /10000) or Samson (``V`` (156, 9025)
    float64) unmixing releases: pixels stored column-major, cube = Y.T reshaped in Fortran order."""
    from scipy.io import loadmat

    m = loadmat(str(path))
    key = key or ("Y" if "Y" in m else "V")
    y = np.asarray(m[key], dtype=np.float64)
    rows, cols = int(np.ravel(m["nRow"])[0]), int(np.ravel(m["nCol"])[0])
    cube = y.T.reshape(rows, cols, y.shape[0], order="F").transpose(2, 0, 1)
    if scale is None:
        scale = 10000.0 if key == "Y" else max(float(cube.max()), 1e-12)
    return Scene(Path(path).stem, (cube / scale).astype(np.float32))


def find_dataset(path) -> list[Scene]:
    """Scenes of the dataset at ``path``: a CAVE root, a folder of rasters, or one raster."""
    path = Path(path)
    if path.is_dir() and any(p.is_dir() and list(p.glob("*_ms_01.png")) for p in path.iterdir()):
        raise InputError("use cave_scenes() for CAVE (it has a fixed train/val split)")
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in (".tif", ".tiff", ".img", ".hdr"))
        if not files:
            raise InputError(f"{path}: no rasters (.tif, .img, .hdr) and no CAVE scene folders here; "
                             "point --data at your training scenes")
        return raster_scenes(files)
    return raster_scenes([path])


def _augment5(patch: np.ndarray, k: int) -> np.ndarray:
    """DualSR/MCNet's five versions: original, rot180, rot90, rot270, vertical flip."""
    if k == 0:
        return patch
    if k == 1:
        return np.rot90(patch, 2, axes=(1, 2))
    if k == 2:
        return np.rot90(patch, 1, axes=(1, 2))
    if k == 3:
        return np.rot90(patch, 3, axes=(1, 2))
    return patch[:, ::-1, :]


def valid_corner(rng: np.random.Generator, ok: np.ndarray, size: int, tries: int = 20) -> tuple[int, int]:
    """Top-left ``(y, x)`` of a random ``size`` × ``size`` window of the mask ``ok`` (H, W) holding
    only valid pixels, when one of ``tries`` draws finds one (else the last draw): how the scene
    adaptation tasks cut their training patches."""
    H, W = ok.shape
    for _ in range(tries):
        y, x = int(rng.integers(0, H - size + 1)), int(rng.integers(0, W - size + 1))
        if ok[y:y + size, x:x + size].all():
            break
    return y, x


class DualSRPatches:
    """Random patches with the DualSR recipe (docs/methods.md, DualSR), sampled on the fly.

    Each sample: a scene, a rescale factor in {1, 0.75, 0.5} (MATLAB bicubic of the whole scene,
    precomputed), a random HR crop of ``lr_patch·s``, one of the five augmentations, LR =
    MATLAB bicubic ×1/s. Deterministic for a given ``numpy.random.Generator``.
    """

    def __init__(self, scenes: list[Scene], scale: int, lr_patch: int = 32,
                 rescales: tuple[float, ...] = (1.0, 0.75, 0.5)):
        self.scale, self.lr_patch = scale, lr_patch
        hr = lr_patch * scale
        self.images = []
        for sc in scenes:
            for f in rescales:
                img = sc.cube if f == 1.0 else degrade.imresize(sc.cube, scale=f)
                if min(img.shape[1:]) > hr:
                    self.images.append(np.ascontiguousarray(img, dtype=np.float32))
        if not self.images:
            raise InputError(f"no training image is larger than a {hr}×{hr} HR patch ({lr_patch} LR px at "
                             f"×{scale}); give scenes of more than {hr} px a side, or a configuration with "
                             "smaller patches (--config tiny), or a smaller --scale")

    def window(self, band_window: int | None = None) -> int:
        """The band count of every batch :meth:`sample` draws: ``band_window``, narrowed to the
        smallest band count of the scenes (all of it when ``band_window`` is None)."""
        nb = min(img.shape[0] for img in self.images)
        return nb if band_window is None else min(nb, band_window)

    def sample(self, rng: np.random.Generator, batch: int,
               band_window: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(lr (B, L, p, p), hr (B, L, p·s, p·s)) float32; with ``band_window`` (scenes with more
        bands) each sample is a random window of that many contiguous bands of its own scene, so
        every band of every scene is trained on. (Until session 17 one window start was drawn per
        batch over the *smallest* band count of all scenes: with SAMSON's 156 bands among the
        remote-sensing scenes, the last 5–35 bands of the others — their SWIR2 — never trained.)
        When a scene has fewer bands than ``band_window`` (31-band CAVE next to remote-sensing
        scenes), the window narrows to the smallest band count, still drawn within each scene."""
        hr_size = self.lr_patch * self.scale
        nw = self.window(band_window)
        hrs = []
        for _ in range(batch):
            img = self.images[rng.integers(len(self.images))]
            y = rng.integers(0, img.shape[1] - hr_size + 1)
            x = rng.integers(0, img.shape[2] - hr_size + 1)
            b0 = int(rng.integers(0, img.shape[0] - nw + 1)) if img.shape[0] > nw else 0
            p = img[b0:b0 + nw, y:y + hr_size, x:x + hr_size]
            hrs.append(np.ascontiguousarray(_augment5(p, int(rng.integers(5)))))
        hr = np.stack(hrs)
        lr = degrade.bicubic_down(hr, self.scale).astype(np.float32)
        return lr, hr


def isotropic_kernel_mulsr(size: int, sigma: float, centred: bool = True) -> np.ndarray:
    """MulSR/IFMSR isotropic kernel; ``centred=False`` reproduces the official code's bug
    (evaluated on 0..k−1 without centring: a quarter-Gaussian peaking at the corner)."""
    ax = np.arange(size, dtype=np.float64) - ((size - 1) / 2.0 if centred else 0.0)
    g = np.exp(-(ax[:, None] ** 2 + ax[None, :] ** 2) / (2.0 * sigma * sigma))
    return g / g.sum()


def _augment_guided(patch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """MulSR/IFMSR order: hflip, vflip, roll by half the height, rot90, rot−90 (each p = 0.5)."""
    if rng.random() < 0.5:
        patch = patch[:, :, ::-1]
    if rng.random() < 0.5:
        patch = patch[:, ::-1, :]
    if rng.random() < 0.5:
        patch = np.roll(patch, patch.shape[1] // 2, axis=1)
    if rng.random() < 0.5:
        patch = np.rot90(patch, 1, axes=(1, 2))
    if rng.random() < 0.5:
        patch = np.rot90(patch, -1, axes=(1, 2))
    return np.ascontiguousarray(patch)


def random_degradation(hr: np.ndarray, scale: int, rng: np.random.Generator,
                       iso_bug: bool = False) -> np.ndarray:
    """MulSR/IFMSR training degradation (docs/methods.md, MulSR): kernel size ∈ {7, 9, 13, 15, 21};
    isotropic (σ ~ U(0.2, s)) or anisotropic (λ1, λ2 ~ U(0.2, s), θ ~ U(0, π), off-centre)
    with p = ½; downsampler ∈ {bicubic, bilinear, direction}; with p = 0.8 Gaussian noise
    σ = n/255, n ∈ {1, 2, 3, 4}; clipped to [0, 1]."""
    k = int(rng.choice([7, 9, 13, 15, 21]))
    if rng.random() < 0.5:
        kernel = isotropic_kernel_mulsr(k, rng.uniform(0.2, scale), centred=not iso_bug)
    else:
        kernel = degrade.anisotropic_gaussian(k, rng.uniform(0.2, scale), rng.uniform(0.2, scale),
                                              rng.uniform(0, np.pi), scale=scale)
    mode = str(rng.choice(["bicubic", "bilinear", "direction"]))
    lr = degrade.blur_downsample(hr, kernel, scale, mode)
    if rng.random() < 0.8:
        lr = degrade.add_noise(lr, int(rng.integers(1, 5)) / 255.0, rng)
    return np.clip(lr, 0.0, 1.0).astype(np.float32)


class GuidedPatches:
    """MulSR/IFMSR patches (docs/methods.md, MulSR and IFMSR): random HR crop of ``lr_patch·s``, the
    recipe's augmentations, RGB = response · HSI from the augmented crop, LR by the random
    blur / downsampler / noise degradation. Returns (lr, rgb, hr)."""

    def __init__(self, scenes: list[Scene], scale: int, response: np.ndarray, lr_patch: int = 12,
                 iso_bug: bool = False, rgb_norm: bool = False, gain: tuple[float, float] = (1.0, 1.0),
                 perturb: float = 0.0):
        self.scenes, self.scale, self.lr_patch = scenes, scale, lr_patch
        self.perturb = perturb  # share of samples whose guide is perturbed like a real one (GuidePerturbation)
        wl = scenes[0].wavelength
        self.wavelength = np.asarray(wl if wl is not None else np.linspace(400, 700, scenes[0].cube.shape[0]))
        self.response, self.iso_bug = np.asarray(response, np.float64), iso_bug
        if self.response.shape[1] != scenes[0].cube.shape[0]:
            raise InputError(f"the response matrix has {self.response.shape[1]} columns but the "
                             f"scenes have {scenes[0].cube.shape[0]} bands")
        # ``rgb_norm``: divide the RGB by its scene-wide 99.9th percentile, as geohsr's guide
        # alignment does at inference; ``gain``: a random log-uniform gain on top (robustness)
        self.rgb_scale = [float(np.percentile(degrade.project(s.cube[:, ::4, ::4], self.response), 99.9))
                          if rgb_norm else 1.0 for s in scenes]
        self.gain = gain

    def sample(self, rng: np.random.Generator, batch: int):
        hr_size = self.lr_patch * self.scale
        lrs, rgbs, hrs = [], [], []
        for _ in range(batch):
            k = rng.integers(len(self.scenes))
            img = self.scenes[k].cube
            y = rng.integers(0, img.shape[1] - hr_size + 1)
            x = rng.integers(0, img.shape[2] - hr_size + 1)
            hr = _augment_guided(img[:, y:y + hr_size, x:x + hr_size], rng)
            g = np.exp(rng.uniform(np.log(self.gain[0]), np.log(self.gain[1]))) / self.rgb_scale[k]
            if self.perturb and rng.random() < self.perturb:
                rgb = perturbed_guide(hr, self.wavelength, self.response, self.scale, rng)
            else:
                rgb = degrade.project(hr, self.response) * g
            rgbs.append((np.clip(rgb, 0, 1) if self.rgb_scale[k] != 1.0 else rgb).astype(np.float32))
            lrs.append(random_degradation(hr, self.scale, rng, self.iso_bug))
            hrs.append(hr.astype(np.float32))
        return np.stack(lrs), np.stack(rgbs), np.stack(hrs)


def perturbed_guide(hr: np.ndarray, wavelength: np.ndarray, response: np.ndarray, scale: int,
                    rng: np.random.Generator) -> np.ndarray:
    """A guide as another sensor on another date would give it (robust training of the guided
    methods): a random spectral response (p = 1/3 a pan-like broad band in all three channels,
    p = 1/3 three random Gaussian bands, else the nominal response with per-channel gains of
    0.8–1.25), a sub-pixel misregistration (uniform ±0.5 LR px in each direction), brightness
    (the patch's 99.9th percentile times a log-uniform gain in [0.6, 1.6], an offset of ±0.05,
    a gamma in [0.8, 1.25]) and Gaussian noise (σ uniform in [0, 0.03]). Returns ``(3, H, W)``."""
    from scipy import ndimage

    lo, hi = float(wavelength.min()), float(wavelength.max())
    kind = rng.integers(3)
    if kind < 2:
        n = 1 if kind == 0 else 3
        centres = np.sort(rng.uniform(lo, hi, n))
        fwhm = rng.uniform(0.3, 1.0, n) * (hi - lo) if n == 1 else rng.uniform(0.1, 0.4, n) * (hi - lo)
        sig = fwhm / 2.3548
        resp = np.exp(-0.5 * ((wavelength[None] - centres[:, None]) / sig[:, None]) ** 2)
        resp /= resp.sum(1, keepdims=True)
        resp = np.repeat(resp, 3, 0) if n == 1 else resp
    else:
        resp = response * rng.uniform(0.8, 1.25, (response.shape[0], 1))
    g = degrade.project(hr, resp)
    dy, dx = rng.uniform(-0.5, 0.5, 2) * scale
    g = np.stack([ndimage.shift(c, (dy, dx), order=1, mode="reflect") for c in g])
    g = g / max(float(np.percentile(g, 99.9)), 1e-12) * np.exp(rng.uniform(np.log(0.6), np.log(1.6)))
    g = np.clip(g + rng.uniform(-0.05, 0.05), 0, None) ** rng.uniform(0.8, 1.25)
    return g + rng.normal(0, rng.uniform(0, 0.03), g.shape)


def asnlsr_tiles(cube: np.ndarray, wavelengths, domain: tuple[float, float], n_out: int,
                 remove: list[tuple[float, float]], psf: np.ndarray, scale: int = 4,
                 tile: int = 128) -> list[dict]:
    """A-SNLSR tile preparation (docs/methods.md, A-SNLSR) on any cube with wavelengths: bands in
    ``domain``, Gaussian spectral resampling to ``n_out`` bands, absorption ranges removed,
    non-overlapping ``tile``² HR tiles, LR by the fixed PSF + stride ``scale`` (and ×2 from the
    same HR tile), values kept linear (log normalisation happens when tiles are loaded)."""
    idx = degrade.select_range(wavelengths, *domain)
    if idx.size < 2:
        raise InputError(f"fewer than 2 bands between {domain[0]} and {domain[1]} nm")
    spec, centres = degrade.gaussian_spectral_resample(cube[idx], np.asarray(wavelengths)[idx], n_out, remove)
    tiles = []
    for y0 in range(0, spec.shape[1] - tile + 1, tile):
        for x0 in range(0, spec.shape[2] - tile + 1, tile):
            hr = spec[:, y0:y0 + tile, x0:x0 + tile].astype(np.float32)
            tiles.append({"hr": hr, "lr": degrade.psf_stride(hr, psf, scale),
                          "lr_div2": degrade.psf_stride(hr, psf, scale // 2) if scale >= 4 else None,
                          "origin": (y0, x0), "wavelength": centres})
    return tiles


# -- readers of the spectral scenes (SNLSR/A-SNLSR training and evaluation) ----------------------------------------------------------------------------------
def _indian_pines(folder: Path) -> Scene:
    cube = np.load(folder / "Indian_pines_corrected.npy").astype(np.float32).transpose(2, 0, 1)
    wl = np.loadtxt(folder / "wavelengths_nm.txt")
    wl = np.asarray(wl, np.float64).ravel()
    if wl.size > 170 and wl[169] > wl[171]:  # the two typos the data README documents
        wl[169], wl[170] = 2212.0, 2222.0
    return Scene("indian_pines", cube / cube.max(), wl)


def _jasper(path: Path) -> Scene:
    from scipy.io import loadmat

    sc = read_unmixing_mat(path, "Y", scale=10000.0)
    sel = np.ravel(loadmat(str(path))["SlectBands"]).astype(int) - 1  # 1-based AVIRIS indices
    lib = path.parent.parent / "spectral_library" / "USGS_1995_Library.mat"
    if not lib.is_file():
        raise InputError(f"{path}: Jasper Ridge stores no wavelengths; geohsr takes them from the "
                         f"AVIRIS grid in {lib}, which is missing")
    grid = np.asarray(loadmat(str(lib))["datalib"][:, 0], np.float64) * 1000.0
    return Scene("jasper_ridge", sc.cube, grid[sel])


def _ranges(spec: str) -> np.ndarray:
    """1-based band ranges "1-6,33-35,97" → 0-based indices."""
    out = []
    for part in spec.split(","):
        a, _, b = part.partition("-")
        out.extend(range(int(a) - 1, int(b or a)))
    return np.array(out, int)


# AVIRIS anomaly-detection (ABU) scenes store no wavelengths. Two of them have published
# removed-band lists (the counts match the files: 224 − 35 = 189, 210 − 48 = 162), so their
# bands can be placed exactly on the sensor grid; the others cannot (see _abu).
ABU_BANDS = {
    "sandiego": ("aviris", "1-6,33-35,97,107-113,153-166,221-224"),
    "hydice": ("hydice", "1-4,76,87,101-111,136-153,198-210"),
}


def _aviris_grid(path: Path) -> np.ndarray:
    from scipy.io import loadmat

    lib = path.parent.parent / "spectral_library" / "USGS_1995_Library.mat"
    if not lib.is_file():
        raise InputError(f"{path}: AVIRIS scenes store no wavelengths; geohsr takes them from the "
                         f"AVIRIS grid in {lib}, which is missing")
    return np.asarray(loadmat(str(lib))["datalib"][:, 0], np.float64) * 1000.0


def _abu(path: Path) -> Scene:
    """An AVIRIS / HYDICE scene of the ABU anomaly-detection set (``data`` (rows, cols, bands))."""
    from scipy.io import loadmat

    data = np.asarray(loadmat(str(path))["data"], np.float32).transpose(2, 0, 1)
    if path.stem not in ABU_BANDS:
        raise InputError(f"{path.name}: no wavelengths and no published list of its removed bands, so "
                         f"its {data.shape[0]} bands cannot be placed on the AVIRIS grid; geohsr reads "
                         f"the ABU scenes {', '.join(sorted(ABU_BANDS))} only")
    sensor, removed = ABU_BANDS[path.stem]
    grid = _aviris_grid(path) if sensor == "aviris" else np.linspace(400.0, 2500.0, 210)  # HYDICE
    wl = np.delete(grid, _ranges(removed))
    if wl.size != data.shape[0]:
        raise InputError(f"{path.name}: {data.shape[0]} bands, but its published band list keeps {wl.size}")
    data = np.maximum(data, 0.0)
    return Scene(path.stem, data / max(float(data.max()), 1e-12), wl)


def _neon(path: Path) -> Scene:
    import h5py

    with h5py.File(path, "r") as f:
        site = next(iter(f.keys()))
        refl = f[f"{site}/Reflectance/Reflectance_Data"]
        data = np.asarray(refl[...], np.float32).transpose(2, 0, 1)
        wl = np.asarray(f[f"{site}/Reflectance/Metadata/Spectral_Data/Wavelength"][...], np.float64)
    data = np.where(data == -9999, np.nan, data)
    good = np.isfinite(data).all(axis=(1, 2)) & (np.nanmax(data, axis=(1, 2)) > 0)
    data = data[good] / 10000.0
    return Scene(path.stem, data.astype(np.float32), wl[good])


# -- the remote-sensing training set: a fixed split by scene of the shared data --------------------
# Low-signal (water-vapour) bands of the ABU scenes, 0-based, as the data README lists them; they
# are left out of training (the scenes store no band list otherwise).
ABU_LOW_SIGNAL = {
    "abu-airport-1": "106-107,147-151,156,200-205", "abu-airport-2": "106-107,147-151,156,200-205",
    "abu-airport-3": "106-107,147-151,156,200-205", "abu-urban-5": "106-107,147-151,156,200-205",
    "abu-airport-4": "81-84,106-110,141-142,146-147,183-191",
    "abu-beach-1": "80-83,105-108,139-140,144-145,181-188", "abu-beach-2": "139-147,182-193",
    "abu-urban-1": "81-84,106-109,139-156,188-204", "abu-urban-2": "81-84,106-111,141-159,191-207",
    "abu-urban-3": "81-84,106-110,141-147,180-191", "sandiego": "", "hydice": "",
}  # (1-based ranges for _ranges)
# train / validation / test by scene. Test scenes never train or choose a checkpoint; the EnMAP
# mosaics and tiles overlap one another, so EnMAP is test-only (one mosaic).
RS_SPLIT = {
    "train": ("abu-airport-1", "abu-airport-3", "abu-airport-4", "abu-beach-1", "abu-urban-1",
              "abu-urban-2", "abu-urban-5", "hydice", "samson"),
    "val": ("abu-airport-2", "abu-beach-2", "jasper_ridge"),
    "test": ("indian_pines", "sandiego", "abu-urban-3", "enmap_a"),
}
ENMAP_TEST = {"enmap_a": "enmap_potsdam_mosaic_x160-224_y64-192.tif"}


def is_rs_root(path) -> bool:
    """Whether ``path`` is the shared data folder (it holds ``aviris_abu/`` and ``indian_pines/``)."""
    p = Path(path)
    return p.is_dir() and (p / "aviris_abu").is_dir() and (p / "indian_pines").is_dir()


def rs_scene(root, name: str) -> Scene:
    """One scene of the remote-sensing split by name (values divided by the scene's maximum)."""
    root = Path(root)
    if name == "indian_pines":
        return _indian_pines(root / "indian_pines")
    if name == "jasper_ridge":
        return _jasper(root / "jasper_ridge" / "jasperRidge2_R198.mat")
    if name == "samson":
        return Scene("samson", read_unmixing_mat(root / "samson" / "samson_1.mat", "V").cube)
    if name in ENMAP_TEST:
        sc = raster_scenes([root / "enmap_potsdam" / ENMAP_TEST[name]])[0]
        return Scene(name, sc.cube, sc.wavelength)
    if name in ABU_LOW_SIGNAL:
        from scipy.io import loadmat

        path = root / "aviris_abu" / f"{name}.mat"
        if name in ABU_BANDS:
            return _abu(path)
        data = np.asarray(loadmat(str(path))["data"], np.float32).transpose(2, 0, 1)
        keep = np.setdiff1d(np.arange(data.shape[0]), _ranges(ABU_LOW_SIGNAL[name]))
        data = np.maximum(data[keep], 0.0)
        return Scene(name, data / max(float(data.max()), 1e-12), None)
    raise InputError(f"unknown remote-sensing scene {name!r}")


def rs_scenes(root, split: str = "train") -> list[Scene]:
    """The remote-sensing scenes of ``split`` (train, val or test) under the shared data folder."""
    if split not in RS_SPLIT:
        raise InputError(f"unknown split {split!r}; use {', '.join(RS_SPLIT)}")
    return [rs_scene(root, n) for n in RS_SPLIT[split]]


def load_spectral_scenes(path) -> list[Scene]:
    """Scenes with wavelengths from ``path``: a raster (GeoTIFF, ENVI, …, good bands only), a
    folder of rasters, the Indian Pines folder, the Jasper Ridge ``.mat``, the San Diego or HYDICE
    ``.mat`` of the ABU set, or a NEON HDF5."""
    p = Path(path)
    if p.is_dir() and (p / "Indian_pines_corrected.npy").is_file():
        return [_indian_pines(p)]
    if p.suffix.lower() == ".mat":
        from scipy.io import whosmat

        return [_abu(p) if "data" in {n for n, *_ in whosmat(str(p))} else _jasper(p)]
    if p.suffix.lower() in (".h5", ".hdf5"):
        return [_neon(p)]
    if p.is_dir():
        files = sorted(q for q in p.iterdir() if q.suffix.lower() in (".tif", ".tiff", ".hdr", ".nc", ".zarr")
                       or q.name.endswith(".json"))
        if not files:
            raise InputError(f"{p}: no rasters here")
        scenes = raster_scenes(files)
    else:
        scenes = raster_scenes([p])
    for s in scenes:
        if s.wavelength is None or not np.isfinite(s.wavelength).all():
            raise InputError(f"{s.name}: no wavelengths; SWIR adaptation needs band centres")
    return scenes
