"""Tiling over dask blocks with a halo, and the per-block nodata handling.

Blocks are extended by ``halo`` LR pixels on every side that has a neighbour
(``dask.array.overlap`` with ``boundary="none"``: the scene's real edges keep the method's own
boundary rule, so tiled == whole), processed, and cropped by ``halo·s`` inside the block
function. Output chunks are the input chunks times ``s``.
"""

from __future__ import annotations

import math

import dask.array as dsa
import numpy as np
from dask.array.overlap import ensure_minimum_chunksize
from scipy import ndimage

DEFAULT_OUT_BLOCK_BYTES = 96 * 2**20


def _split(n: int, size: int) -> tuple[int, ...]:
    size = max(1, min(n, size))
    k = math.ceil(n / size)
    base, extra = divmod(n, k)
    return tuple(base + (1 if i < extra else 0) for i in range(k))


def plan_chunks(data: dsa.Array, scale: int, halo: int, joint_bands: bool,
                max_out_bytes: int = DEFAULT_OUT_BLOCK_BYTES, keep_spatial: bool = False) -> dsa.Array:
    """Rechunk so every output block stays under ``max_out_bytes`` (float32), the band axis is
    whole when the method needs all bands together, and no spatial chunk is smaller than the halo."""
    bands, h, w = data.shape
    bchunks = (bands,) if joint_bands else data.chunks[0]
    if keep_spatial:
        ychunks, xchunks = data.chunks[1], data.chunks[2]
    else:
        maxb = max(bchunks)
        side = int(math.sqrt(max_out_bytes / (4.0 * maxb * scale * scale)))
        side = max(side, 16, 2 * halo)
        ychunks = data.chunks[1] if max(data.chunks[1]) <= side else _split(h, side)
        xchunks = data.chunks[2] if max(data.chunks[2]) <= side else _split(w, side)
    chunks = (bchunks, ychunks, xchunks)
    if halo:
        def fit(c):  # no chunk smaller than the halo (one chunk when the axis is shorter)
            return c if len(c) == 1 else (sum(c),) if sum(c) <= halo else ensure_minimum_chunksize(halo, c)

        chunks = (bchunks, fit(ychunks), fit(xchunks))
    return data.rechunk(chunks) if chunks != data.chunks else data


def halo_sides(block_info: dict, halo: int) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) halo actually present around a block from ``overlap``."""
    loc = block_info["chunk-location"]
    num = block_info["num-chunks"]
    top = halo if loc[1] > 0 else 0
    bottom = halo if loc[1] < num[1] - 1 else 0
    left = halo if loc[2] > 0 else 0
    right = halo if loc[2] < num[2] - 1 else 0
    return top, bottom, left, right


def tiled_map(data: dsa.Array, fn, scale: int, halo: int, dtype, args: tuple = (),
              kwargs: dict | None = None, planes: int | None = None) -> dsa.Array:
    """Apply ``fn(block, *args, sides=(t, b, l, r), **kwargs)`` per block with a halo.

    ``fn`` returns the cropped ``(planes, s·h, s·w)`` block (``planes`` defaults to the bands). ``args`` may hold 0-d dask arrays
    (e.g. a global normalisation scalar), broadcast to every block.
    """
    depth = {0: 0, 1: halo if data.numblocks[1] > 1 else 0, 2: halo if data.numblocks[2] > 1 else 0}
    g = dsa.overlap.overlap(data, depth=depth, boundary="none") if any(depth.values()) else data
    bchunks = data.chunks[0] if planes is None or planes == data.shape[0] else (planes,)
    if bchunks != data.chunks[0] and len(data.chunks[0]) != 1:
        raise ValueError("extra output planes need the band axis in one chunk")
    out_chunks = (bchunks, tuple(c * scale for c in data.chunks[1]),
                  tuple(c * scale for c in data.chunks[2]))
    return dsa.map_blocks(_apply, g, *args, fn=fn, halo=halo, fnkw=kwargs or {}, chunks=out_chunks,
                          dtype=dtype, meta=np.empty((0, 0, 0), dtype=dtype))


def _apply(block, *args, fn, halo, fnkw, block_info=None):
    sides = halo_sides(block_info[0], halo) if halo else (0, 0, 0, 0)
    return fn(block, *args, sides=sides, **fnkw)


def valid_mask(x: np.ndarray, nodata) -> np.ndarray:
    """True where a pixel holds data: finite and not the nodata value."""
    if x.dtype.kind == "f":
        valid = np.isfinite(x)
        if nodata is not None and np.isfinite(nodata):
            valid &= x != nodata
        return valid
    if nodata is None:
        return np.ones(x.shape, dtype=bool)
    return x != nodata


def fill_invalid(x: np.ndarray, valid: np.ndarray, empty_value: float = 0.0) -> np.ndarray:
    """Replace invalid pixels by their nearest valid pixel, band by band (a band with no valid
    pixel becomes ``empty_value``). Models never see the nodata sentinel."""
    if valid.all():
        return x
    out = np.array(x, dtype=np.float32, copy=True)
    cache: dict[bytes, tuple] = {}
    for b in range(x.shape[0]):
        m = valid[b]
        if m.all():
            continue
        if not m.any():
            out[b] = empty_value
            continue
        key = np.packbits(m).tobytes()
        if key not in cache:
            cache[key] = tuple(ndimage.distance_transform_edt(~m, return_distances=False,
                                                              return_indices=True))
        iy, ix = cache[key]
        out[b] = out[b][iy, ix]
    return out


def upsample_mask(valid: np.ndarray, scale: int, dilation: int = 0) -> np.ndarray:
    """HR validity: each HR pixel takes its LR parent's validity (after eroding by ``dilation``)."""
    if dilation > 0 and not valid.all():
        st = np.zeros((1, 3, 3), dtype=bool)
        st[0] = True
        valid = ndimage.binary_erosion(valid, structure=st, iterations=dilation, border_value=1)
    return np.repeat(np.repeat(valid, scale, axis=1), scale, axis=2)
