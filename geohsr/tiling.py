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
                max_out_bytes: int = DEFAULT_OUT_BLOCK_BYTES, keep_spatial: bool = False,
                min_side: int = 0) -> dsa.Array:
    """Rechunk so every output block stays under ``max_out_bytes`` (float32), the band axis is
    whole when the method needs all bands together, and no spatial chunk is smaller than the halo."""
    bands, h, w = data.shape
    bchunks = (bands,) if joint_bands else data.chunks[0]
    if keep_spatial:
        ychunks, xchunks = data.chunks[1], data.chunks[2]
    else:
        maxb = max(bchunks)
        side = int(math.sqrt(max_out_bytes / (4.0 * maxb * scale * scale)))
        side = max(side, 16, 2 * halo, min_side)
        ychunks = data.chunks[1] if max(data.chunks[1]) <= side else _split(h, side)
        xchunks = data.chunks[2] if max(data.chunks[2]) <= side else _split(w, side)
    chunks = (bchunks, ychunks, xchunks)
    if halo:
        need = max(halo, min(min_side, 2 * halo)) if min_side else halo

        def fit(c):  # no chunk smaller than the halo (2·halo when blending; one chunk when shorter)
            return c if len(c) == 1 else (sum(c),) if sum(c) <= need else ensure_minimum_chunksize(need, c)

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
              kwargs: dict | None = None, planes: int | None = None, blend: bool = False) -> dsa.Array:
    """Apply ``fn(block, *args, sides=(t, b, l, r), origin=(y0, x0), **kwargs)`` per block with a
    halo (``origin``: the LR row/column of the block's first pixel, halo included).

    ``fn`` returns ``(planes, s·h, s·w)`` for the block it was given, cropped by ``sides``
    (``planes`` defaults to the bands). ``args`` may hold 0-d dask arrays (e.g. a global
    normalisation scalar), broadcast to every block.

    ``blend=False`` (local methods): the halo is cropped, and tiled == whole exactly.
    ``blend=True`` (global-context methods): every tile is predicted with its halo, and the
    predictions of neighbouring tiles are cross-faded with linear ramps over the ``2·halo``
    band around each seam (weights sum to one everywhere), so no seam is visible.
    """
    ny, nx = data.numblocks[1], data.numblocks[2]
    depth = {0: 0, 1: halo if ny > 1 else 0, 2: halo if nx > 1 else 0}
    g = dsa.overlap.overlap(data, depth=depth, boundary="none") if any(depth.values()) else data
    bchunks = data.chunks[0] if planes is None or planes == data.shape[0] else (planes,)
    if bchunks != data.chunks[0] and len(data.chunks[0]) != 1:
        raise ValueError("extra output planes need the band axis in one chunk")
    out_chunks = (bchunks, tuple(c * scale for c in data.chunks[1]),
                  tuple(c * scale for c in data.chunks[2]))
    offsets = (np.cumsum((0,) + data.chunks[1]), np.cumsum((0,) + data.chunks[2]))
    meta = np.empty((0, 0, 0), dtype=dtype)
    common = dict(fn=fn, halo=halo, fnkw=kwargs or {}, offsets=offsets, dtype=dtype, meta=meta)
    if not blend or not halo or (ny == 1 and nx == 1):
        return dsa.map_blocks(_apply, g, *args, crop=True, chunks=out_chunks, **common)

    for c in data.chunks[1:]:
        if len(c) > 1 and min(c) < 2 * halo:
            raise ValueError(f"blended tiling needs chunks of at least 2·halo = {2 * halo} px, got {min(c)}")

    def padded(c):
        n = len(c)
        return tuple((v + (halo if i > 0 else 0) + (halo if i < n - 1 else 0)) * scale
                     for i, v in enumerate(c))

    pred = dsa.map_blocks(_apply, g, *args, crop=False,
                          chunks=(bchunks, padded(data.chunks[1]), padded(data.chunks[2])), **common)
    hs = halo * scale
    q = dsa.overlap.overlap(pred, depth={0: 0, 1: 2 * hs if ny > 1 else 0, 2: 2 * hs if nx > 1 else 0},
                            boundary="none")
    return dsa.map_blocks(_blend, q, hs=hs, cores=out_chunks[1:], chunks=out_chunks, dtype=dtype,
                          meta=meta)


def _apply(block, *args, fn, halo, fnkw, offsets, crop, block_info=None):
    sides = halo_sides(block_info[0], halo) if halo else (0, 0, 0, 0)
    iy, ix = block_info[0]["chunk-location"][1:]
    origin = (int(offsets[0][iy]) - sides[0], int(offsets[1][ix]) - sides[2])
    return fn(block, *args, sides=sides if crop else (0, 0, 0, 0), origin=origin, **fnkw)


def _ramp_sources(j: int, n: int, core: int, hs: int, q_len: int):
    """For one axis of a blended block: [(indices into the overlapped prediction, weights)]
    for the previous tile, this tile and the next one (see :func:`tiled_map`)."""
    has_prev, has_next = j > 0, j < n - 1
    x = np.arange(core)
    left = 2 * hs if has_prev else 0
    top = hs if has_prev else 0
    own_len = core + top + (hs if has_next else 0)
    r_in = np.where(has_prev & (x < hs), (x + hs + 0.5) / (2 * hs), 1.0) if hs else np.ones(core)
    r_out = np.where(has_next & (x >= core - hs), (core - x + hs - 0.5) / (2 * hs), 1.0) if hs else np.ones(core)
    out = [(left + top + x, np.minimum(r_in, r_out))]
    if has_prev:
        out.append((np.clip(x + hs, 0, q_len - 1), np.where(x < hs, 1.0 - r_in, 0.0)))
    if has_next:
        nxt = left + own_len + x - (core - hs)
        out.append((np.clip(nxt, 0, q_len - 1), np.where(x >= core - hs, 1.0 - r_out, 0.0)))
    return out


def _blend(q, *, hs, cores, block_info=None):
    loc, num = block_info[0]["chunk-location"], block_info[0]["num-chunks"]
    cy, cx = cores[0][loc[1]], cores[1][loc[2]]
    ys = _ramp_sources(loc[1], num[1], cy, hs, q.shape[1])
    xs = _ramp_sources(loc[2], num[2], cx, hs, q.shape[2])
    acc = np.zeros((q.shape[0], cy, cx), dtype=np.float64)
    nan = np.zeros((q.shape[0], cy, cx), dtype=bool)
    for iy, wy in ys:
        for ix, wx in xs:
            w = wy[:, None] * wx[None, :]
            if not w.any():
                continue
            part = q[:, iy][:, :, ix]
            bad = ~np.isfinite(part) & (w > 0)
            nan |= bad
            acc += np.where(bad, 0.0, part) * w
    acc[nan] = np.nan
    return acc.astype(q.dtype, copy=False)


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
