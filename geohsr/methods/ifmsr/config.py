"""IFMSR sizes: the network (features ``n``, guided modules) and its recipe."""

from __future__ import annotations

from .. import ModelConfig

CONFIGS = {
    "paper": ModelConfig(dict(n=64, modules=2), lr=1e-4, batch=32, patch=12),
    "compact": ModelConfig(dict(n=32, modules=2), lr=4e-4, batch=16, patch=12),
    "tiny": ModelConfig(dict(n=8, modules=1), lr=1e-3, batch=2, patch=6),
}
