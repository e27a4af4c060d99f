"""Casting model output back to the product's data type without wrap-around."""

from __future__ import annotations

import numpy as np


def cast(values: np.ndarray, dtype, nodata=None, valid: np.ndarray | None = None) -> np.ndarray:
    """Cast float ``values`` to ``dtype``: integers are rounded and clipped to the type's range;
    a valid pixel never takes the nodata value (it is nudged by one step instead), and
    invalid pixels (``~valid``) get ``nodata`` (NaN for floats without one)."""
    dtype = np.dtype(dtype)
    out_nodata = nodata
    if dtype.kind == "f":
        out = values.astype(dtype, copy=False)
        if valid is not None:
            fill = np.nan if out_nodata is None else out_nodata
            out = np.where(valid, out, np.asarray(fill, dtype=dtype))
        return out
    info = np.iinfo(dtype)
    # float32 cannot hold 2**31 − 1 exactly (it rounds up and would wrap): clip in float64
    work = np.float64 if dtype.itemsize >= 4 else np.float32
    v = np.nan_to_num(np.asarray(values, dtype=work), nan=0.0, posinf=info.max, neginf=info.min)
    v = np.clip(np.rint(v), info.min, info.max)
    if out_nodata is not None and np.isfinite(out_nodata):
        nd = float(out_nodata)
        step = 1.0 if nd < info.max else -1.0
        v = np.where(v == nd, nd + step, v)
    out = v.astype(dtype)
    if valid is not None and out_nodata is not None and np.isfinite(out_nodata):
        out = np.where(valid, out, np.asarray(out_nodata).astype(dtype))
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
