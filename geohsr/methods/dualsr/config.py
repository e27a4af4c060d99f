"""CoarSR/DualSR sizes: the network configuration and the training recipe of each, in one table.

``paper`` is the published network (64 features, 2 residual blocks per body, 2 fusion mechanisms;
the paper halves 1e-4 every 30 epochs of ~360 samples per image); ``compact`` is the CPU-trained
model geohsr ships; ``medium`` is ``compact``'s width with the paper's depth (two residual blocks
per body), grown from ``compact`` weights (``geohsr train --init``: the added blocks start as the
identity, so training starts from the compact model's output); ``tiny`` is for tests.
"""

from __future__ import annotations

from .. import ModelConfig
from .net import CoarSRConfig

CONFIGS = {
    "paper": ModelConfig(CoarSRConfig(64, 2, 2), lr=1e-4, batch=64, patch=32),
    "compact": ModelConfig(CoarSRConfig(32, 1, 2), lr=2e-4, batch=8, patch=24),
    "medium": ModelConfig(CoarSRConfig(32, 2, 2), lr=5e-5, batch=8, patch=16),
    "tiny": ModelConfig(CoarSRConfig(8, 1, 1), lr=1e-3, batch=2, patch=8),
}
