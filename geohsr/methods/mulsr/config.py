"""MulSR sizes: the network (features ``n``, SGE blocks per branch ``n_sge``) and its recipe."""

from __future__ import annotations

from .. import ModelConfig

CONFIGS = {
    "paper": ModelConfig(dict(n=64, n_sge=4), lr=1e-4, batch=32, patch=12),
    "compact": ModelConfig(dict(n=32, n_sge=2), lr=4e-4, batch=16, patch=12),
    "tiny": ModelConfig(dict(n=8, n_sge=1), lr=1e-3, batch=2, patch=6),
}
