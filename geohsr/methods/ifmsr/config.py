"""IFMSR sizes: the network (features ``n``, guided modules) and its recipe."""

from __future__ import annotations

from .. import ModelConfig

CONFIGS = {
    "paper": ModelConfig(dict(n=64, modules=2), lr=1e-4, batch=32, patch=12),
    "compact": ModelConfig(dict(n=32, modules=2), lr=4e-4, batch=16, patch=12),
    "tiny": ModelConfig(dict(n=8, modules=1), lr=1e-3, batch=2, patch=6),
}


def band_triplet(i: int, n: int) -> tuple[int, int, int]:
    """IFMSR's order (x_{i−1}, x_i, x_{i+1}), current band in the middle; boundaries
    i = 0 → (1, 0, 2), i = L−1 → (L−2, L−1, L−3); clamped for fewer than 3 bands."""
    if i == 0:
        t = (1, 0, 2)
    elif i == n - 1:
        t = (n - 2, n - 1, n - 3)
    else:
        t = (i - 1, i, i + 1)
    return tuple(min(max(k, 0), n - 1) for k in t)
