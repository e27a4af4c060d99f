"""Value transforms shared by inference, training and the benchmarks.

The A-SNLSR log normalisation of values already divided by the scene maximum:
``(ln max(x, 1e−4) − ln 1e−4) / (ln 2 − ln 1e−4)``, and its inverse. Works on numpy arrays
(float32 result) and torch tensors.
"""

from __future__ import annotations

import numpy as np

FLOOR = 1e-4
LOG_LO, LOG_HI = float(np.log(FLOOR)), float(np.log(2.0))


def to_log(x, lo: float = LOG_LO, hi: float = LOG_HI):
    """Log-normalise ``x`` (values divided by the scene maximum) onto [0, 1]."""
    if not isinstance(x, np.ndarray) and hasattr(x, "clamp_min"):  # a torch tensor
        import torch

        return (torch.log(x.clamp_min(FLOOR)) - lo) / (hi - lo)
    return ((np.log(np.maximum(x, FLOOR)) - lo) / (hi - lo)).astype(np.float32)


def from_log(y, lo: float = LOG_LO, hi: float = LOG_HI):
    """The inverse of :func:`to_log` (for values in [0, 1])."""
    if not isinstance(y, np.ndarray) and hasattr(y, "clamp_min"):
        import torch

        return torch.exp(y * (hi - lo) + lo)
    return np.exp(y * (hi - lo) + lo)
