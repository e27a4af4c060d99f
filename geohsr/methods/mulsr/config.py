"""MulSR sizes: the network (features ``n``, SGE blocks per branch ``n_sge``) and its recipe."""

from __future__ import annotations

from .. import ModelConfig

CONFIGS = {
    "paper": ModelConfig(dict(n=64, n_sge=4), lr=1e-4, batch=32, patch=12),
    "compact": ModelConfig(dict(n=32, n_sge=2), lr=4e-4, batch=16, patch=12),
    "tiny": ModelConfig(dict(n=8, n_sge=1), lr=1e-3, batch=2, patch=6),
}


def band_triplet(i: int, n: int) -> tuple[int, int, int]:
    """MulSR's band order (x_{i−1}, x_{i+1}, x_i): the current band last. Boundaries:
    i = 0 → (1, 2, 0); i = L−1 → (L−2, L−3, L−1); indices clamped for fewer than 3 bands."""
    if i == 0:
        t = (1, 2, 0)
    elif i == n - 1:
        t = (n - 2, n - 3, n - 1)
    else:
        t = (i - 1, i + 1, i)
    return tuple(min(max(k, 0), n - 1) for k in t)
