"""CoarSR/DualSR sizes: the network configuration and the training recipe of each, in one table.

``paper`` is the published network (64 features, 2 residual blocks per body, 2 fusion mechanisms;
the paper halves 1e-4 every 30 epochs of ~360 samples per image); ``compact`` is the CPU-trained
model geohsr ships; ``medium`` is ``compact``'s width with the paper's depth (two residual blocks
per body), grown from ``compact`` weights (``geohsr train --init``: the added blocks start as the
identity, so training starts from the compact model's output); ``tiny`` is for tests.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .. import ModelConfig


@dataclass(frozen=True)
class CoarSRConfig:
    n_feats: int = 64
    n_blocks: int = 2  # residual blocks per body
    n_asfm: int = 2  # adjacent spectral fusion mechanisms
    bn: bool = False  # official code's accidental BatchNorm in residual blocks
    neighbour_bug: bool = False  # official code: every band uses bands 1..4 as neighbours

    def to_dict(self) -> dict:
        return asdict(self)


def receptive_field(config: CoarSRConfig) -> int:
    """Radius in LR pixels beyond which an input pixel cannot change an output pixel: head 3×3
    (1) + per ASFM the two residual bodies (2 convolutions per block each) and the two spatial
    3×3 of the inter-group unit (4·blocks + 2) + fuse 3×3 (1) + upsampler and tail (< 2 LR px
    at every scale). The recurrent state passes between bands through 1×1 convolutions only, so
    it does not widen this. Measured with an impulse (``tests/test_dualsr.py``)."""
    return 1 + config.n_asfm * (4 * config.n_blocks + 2) + 1 + 2


CONFIGS = {
    "paper": ModelConfig(CoarSRConfig(64, 2, 2), lr=1e-4, batch=64, patch=32),
    "compact": ModelConfig(CoarSRConfig(32, 1, 2), lr=2e-4, batch=8, patch=24),
    "medium": ModelConfig(CoarSRConfig(32, 2, 2), lr=5e-5, batch=8, patch=16),
    "tiny": ModelConfig(CoarSRConfig(8, 1, 1), lr=1e-3, batch=2, patch=8),
}
