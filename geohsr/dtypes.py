"""Casting model output back to the product's data type without wrap-around."""

from __future__ import annotations

import numpy as np


def cast(values: np.ndarray, dtype, nodata=None, valid: np.ndarray | None = None,
         inplace: bool = False) -> np.ndarray:
    """Cast float ``values`` to ``dtype``: integers are rounded and clipped to the type's range;
    a valid pixel never takes the nodata value (it is nudged by one step instead), and
    invalid pixels (``~valid``) get ``nodata`` (NaN for floats without one). ``inplace``: the
    caller gives ``values`` up, which then serves as the working buffer (no float copies)."""
    dtype = np.dtype(dtype)
    out_nodata = nodata
    if dtype.kind == "f":
        if valid is None or valid.all():
            return values.astype(dtype, copy=False)
        out = values.astype(dtype, copy=not inplace)
        out[~valid] = np.nan if out_nodata is None else out_nodata
        return out
    info = np.iinfo(dtype)
    # float32 cannot hold 2**31 − 1 exactly (it rounds up and would wrap): clip in float64
    work = np.float64 if dtype.itemsize >= 4 else np.float32
    v = values if inplace and values.dtype == work else np.array(values, dtype=work)
    np.nan_to_num(v, copy=False, nan=0.0, posinf=info.max, neginf=info.min)
    np.rint(v, out=v)
    np.clip(v, info.min, info.max, out=v)
    if out_nodata is not None and np.isfinite(out_nodata):
        nd = float(out_nodata)
        v[v == nd] = nd + (1.0 if nd < info.max else -1.0)
    out = v.astype(dtype)
    del v
    if valid is not None and out_nodata is not None and np.isfinite(out_nodata) and not valid.all():
        out[~valid] = np.asarray(out_nodata).astype(dtype)
    return out


def cast_finite(values: np.ndarray, dtype, nodata=None, slab: int = 8) -> np.ndarray:
    """:func:`cast` of a float cube ``(bands, h, w)`` the caller gives up, with every non-finite
    value invalid, a few bands at a time: the temporaries stay a fraction of the cube."""
    dtype = np.dtype(dtype)
    out = values if dtype == values.dtype else np.empty(values.shape, dtype=dtype)
    for k in range(0, values.shape[0], slab):
        part = values[k:k + slab]
        out[k:k + slab] = cast(part, dtype, nodata, np.isfinite(part), inplace=True)
    return out


def check_nodata_fits(nodata, dtype) -> None:
    """Raise ValueError when ``nodata`` cannot be stored in ``dtype``."""
    if nodata is None:
        return
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        if not np.isfinite(nodata) or not (info.min <= nodata <= info.max) or nodata != int(nodata):
            raise ValueError(f"nodata {nodata} does not fit {dtype}")
