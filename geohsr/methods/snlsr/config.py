"""SNLSR and A-SNLSR sizes: the network (``SNLSRConfig`` fields; the band count comes from the
data's grid) and the recipe (Adam 1e-3 with cosine warm restarts, batch 8, 64-px HR crops).

SNLSR's encoder uses spatial attention, A-SNLSR's CBAM; the papers' SNLSR has 30 materials,
A-SNLSR 16.
"""

from __future__ import annotations

from .. import ModelConfig


def _table(attention: str, paper_materials: int) -> dict:
    return {
        "paper": ModelConfig(dict(feats=64, materials=paper_materials, attention=attention),
                             lr=1e-3, batch=8, patch=64),
        "compact": ModelConfig(dict(feats=32, materials=16, attention=attention, blocks=2),
                               lr=1e-3, batch=8, patch=64),
        "tiny": ModelConfig(dict(feats=8, materials=4, attention=attention, blocks=1, esa_feats=4),
                            lr=1e-3, batch=8, patch=64),
    }


SNLSR_CONFIGS = _table("sa", 30)
ASNLSR_CONFIGS = _table("cbam", 16)
