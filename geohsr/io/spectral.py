"""Per-band spectral metadata: wavelength (nm), fwhm (nm), band_name, good_band.

Readers, in this order (the first source that has a field wins):
STAC ``eo:bands`` → ENVI header → GDAL ``IMAGERY`` domain → per-band tags → band descriptions.
Writers put the same facts back as per-band tags, descriptions, the ``IMAGERY`` domain and,
for ENVI output, the header.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

SPECTRAL_COORDS = ("wavelength", "fwhm", "band_name", "good_band")

_UNIT_TO_NM = {
    "nm": 1.0, "nanometer": 1.0, "nanometers": 1.0, "nanometre": 1.0, "nanometres": 1.0,
    "um": 1000.0, "µm": 1000.0, "micrometer": 1000.0, "micrometers": 1000.0,
    "micrometre": 1000.0, "micrometres": 1000.0, "micron": 1000.0, "microns": 1000.0,
    "mm": 1e6, "millimeter": 1e6, "millimeters": 1e6,
    "m": 1e9, "meter": 1e9, "meters": 1e9,
    "wavenumber": None, "index": None, "unknown": None,
}

_DESC_RE = re.compile(
    r"\(?\s*([-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)\s*"
    r"(nanometers?|nanometres?|nm|micrometers?|micrometres?|microns?|um|µm)\s*\)?",
    re.IGNORECASE,
)


def unit_factor(unit: str | None, values=None) -> float | None:
    """Factor that converts wavelengths in ``unit`` to nm; guesses µm for values < 100."""
    if unit:
        key = unit.strip().lower()
        if key in _UNIT_TO_NM:
            return _UNIT_TO_NM[key]
    if values is not None:
        arr = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=float)
        if arr.size and np.nanmax(arr) < 100.0:
            return 1000.0  # 0.4 … 2.5: micrometres
        return 1.0
    return None


@dataclass
class SpectralInfo:
    """Per-band spectral facts of a cube with ``n`` bands (missing entries are None)."""

    n: int
    wavelength: list = field(default_factory=list)
    fwhm: list = field(default_factory=list)
    band_name: list = field(default_factory=list)
    good_band: list = field(default_factory=list)

    def __post_init__(self):
        for name in SPECTRAL_COORDS:
            vals = getattr(self, name)
            if not vals:
                setattr(self, name, [None] * self.n)

    def fill(self, name: str, values) -> None:
        """Fill the still-missing entries of field ``name`` from ``values``."""
        if values is None:
            return
        values = list(values)
        if len(values) != self.n:
            return
        cur = getattr(self, name)
        for i, v in enumerate(values):
            if cur[i] is None and v is not None:
                cur[i] = v

    def coords(self) -> dict:
        """xarray coordinate arrays on the ``band`` dim (NaN / defaults where unknown)."""
        wl = np.array([np.nan if v is None else float(v) for v in self.wavelength], dtype=np.float64)
        fw = np.array([np.nan if v is None else float(v) for v in self.fwhm], dtype=np.float64)
        names = np.array([f"band {i + 1}" if v in (None, "") else str(v)
                          for i, v in enumerate(self.band_name)], dtype=object)
        good = np.array([1 if v is None else int(v) for v in self.good_band], dtype=np.int8)
        return {
            "wavelength": ("band", wl, {"units": "nm", "long_name": "band centre wavelength"}),
            "fwhm": ("band", fw, {"units": "nm", "long_name": "full width at half maximum"}),
            "band_name": ("band", names.astype(str)),
            "good_band": ("band", good, {"long_name": "ENVI bbl: 1 good, 0 bad"}),
        }


def _floats(values) -> list:
    out = []
    for v in values:
        try:
            f = float(str(v).strip())
            out.append(f if np.isfinite(f) else None)
        except (TypeError, ValueError):
            out.append(None)
    return out


def from_stac_bands(info: SpectralInfo, eo_bands: list[dict] | None) -> None:
    """STAC ``eo:bands``: ``center_wavelength`` and ``full_width_half_max`` in µm."""
    if not eo_bands or len(eo_bands) != info.n:
        return
    info.fill("wavelength", [None if b.get("center_wavelength") is None
                             else float(b["center_wavelength"]) * 1000.0 for b in eo_bands])
    info.fill("fwhm", [None if b.get("full_width_half_max") is None
                       else float(b["full_width_half_max"]) * 1000.0 for b in eo_bands])
    info.fill("band_name", [b.get("name") or b.get("description") for b in eo_bands])


def from_envi_header(info: SpectralInfo, hdr: dict) -> None:
    """ENVI header fields ``wavelength``, ``fwhm``, ``wavelength units``, ``bbl``, ``band names``."""
    unit = hdr.get("wavelength units")
    if "wavelength" in hdr:
        wl = _floats(hdr["wavelength"])
        f = unit_factor(unit, wl)
        if f is not None:
            info.fill("wavelength", [None if v is None else v * f for v in wl])
            if "fwhm" in hdr:
                info.fill("fwhm", [None if v is None else v * f for v in _floats(hdr["fwhm"])])
    if "bbl" in hdr:
        info.fill("good_band", [None if v is None else int(round(v)) for v in _floats(hdr["bbl"])])
    if "band names" in hdr:
        info.fill("band_name", [str(v).strip() for v in hdr["band names"]])


def from_rasterio(info: SpectralInfo, ds) -> None:
    """GDAL ``IMAGERY`` domain, then per-band tags, then band descriptions, of an open dataset."""
    imagery_wl, imagery_fw = [], []
    tag_wl, tag_fw, tag_bbl, desc_wl = [], [], [], []
    for b in range(1, ds.count + 1):
        img = {k.upper(): v for k, v in ds.tags(b, ns="IMAGERY").items()} if "IMAGERY" in (
            ds.tag_namespaces(b) or []) else {}
        imagery_wl.append(_floats([img.get("CENTRAL_WAVELENGTH_UM")])[0])
        imagery_fw.append(_floats([img.get("FWHM_UM")])[0])
        tags = {k.lower(): v for k, v in ds.tags(b).items()}
        unit = tags.get("wavelength_units") or tags.get("wavelength_unit") or tags.get("units")
        wl = _floats([tags.get("wavelength", tags.get("center_wavelength"))])[0]
        fw = _floats([tags.get("fwhm")])[0]
        f = unit_factor(unit, [wl]) if wl is not None else None
        tag_wl.append(None if wl is None or f is None else wl * f)
        tag_fw.append(None if fw is None or f is None else fw * f)
        bbl = _floats([tags.get("bbl", tags.get("good_band"))])[0]
        tag_bbl.append(None if bbl is None else int(round(bbl)))
        desc = ds.descriptions[b - 1]
        m = _DESC_RE.search(desc) if desc else None
        if m:
            v = float(m.group(1)) * (unit_factor(m.group(2)) or 1.0)
            desc_wl.append(v)
        else:
            desc_wl.append(None)
    # IMAGERY (µm) ranks first; where the per-band nm tag says the same, keep its exact digits
    for name, tag, img in (("wavelength", tag_wl, imagery_wl), ("fwhm", tag_fw, imagery_fw)):
        info.fill(name, [t if t is not None and im is not None and abs(t - im * 1000.0) < 1e-6
                         else None for t, im in zip(tag, img)])
        info.fill(name, [None if v is None else v * 1000.0 for v in img])
    info.fill("wavelength", tag_wl)
    info.fill("fwhm", tag_fw)
    info.fill("good_band", tag_bbl)
    info.fill("wavelength", desc_wl)
    info.fill("band_name", [d if d else None for d in ds.descriptions])


def from_coords(da) -> SpectralInfo:
    """Read the spectral coords back from a DataArray (for writers)."""
    n = da.sizes["band"]
    info = SpectralInfo(n)
    for name in SPECTRAL_COORDS:
        if name in da.coords and da.coords[name].dims == ("band",):
            vals = da.coords[name].values.tolist()
            if name in ("wavelength", "fwhm"):
                vals = [None if v is None or not np.isfinite(v) else float(v) for v in vals]
            info.fill(name, vals)
    return info


def fmt(v: float) -> str:
    """Shortest decimal that round-trips ``v`` exactly."""
    return repr(float(v))


def band_tags(info: SpectralInfo, i: int) -> dict:
    """Per-band GDAL tags written for band ``i`` (0-based)."""
    tags = {}
    if info.wavelength[i] is not None:
        tags["wavelength"] = fmt(info.wavelength[i])
        tags["wavelength_units"] = "Nanometers"
    if info.fwhm[i] is not None:
        tags["fwhm"] = fmt(info.fwhm[i])
    tags["bbl"] = str(1 if info.good_band[i] is None else int(info.good_band[i]))
    return tags


def imagery_tags(info: SpectralInfo, i: int) -> dict:
    """GDAL ``IMAGERY`` domain items for band ``i`` (micrometres)."""
    tags = {}
    if info.wavelength[i] is not None:
        tags["CENTRAL_WAVELENGTH_UM"] = fmt(info.wavelength[i] / 1000.0)
    if info.fwhm[i] is not None:
        tags["FWHM_UM"] = fmt(info.fwhm[i] / 1000.0)
    return tags


def envi_band_name(info: SpectralInfo, i: int) -> str:
    """The ENVI header's band name: :func:`description` without the " (<wavelength> Nanometers)"
    GDAL's ENVI driver appends itself when the header has wavelengths."""
    d = description(info, i)
    if info.wavelength[i] is not None and all(v is not None for v in info.wavelength):
        for suffix in (f" ({info.wavelength[i]:g} Nanometers)", f" ({fmt(info.wavelength[i])} Nanometers)"):
            if d.endswith(suffix):
                return d[:-len(suffix)]
    return d


def description(info: SpectralInfo, i: int) -> str:
    name = info.band_name[i]
    if name:
        return str(name)
    if info.wavelength[i] is not None:
        return f"band {i + 1} ({info.wavelength[i]:g} Nanometers)"
    return f"band {i + 1}"
