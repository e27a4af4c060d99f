"""MulSR (Li, Yuan, Wang, IEEE TGRS 61:5523110, 2023), from ``docs/methods.md`` (MulSR).

RGB-guided, band by band: for band ``i`` the network sees three LR bands (previous, next,
current — the current band last) and the HR RGB, in two branches at ×s/2 (α) and ×s (β), each
with four symmetrical guided encoder (SGE) blocks; a multiscale information interaction (MII)
with direction-aware spatial context aggregation (DSCA) couples the branches, and a learnable
feedback compensation correction (LFCC) refines the β output, which is the HR band.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...nn import Unit, wn_conv2d, wn_conv3d
from .config import band_triplet  # torch-free, beside the size table


class CrossFusion(nn.Module):
    def __init__(self, n: int = 64):
        super().__init__()
        self.diff = wn_conv2d(n, 72)
        self.union = wn_conv2d(2 * n, 72)
        self.scale = nn.Parameter(torch.ones(3))
        self.c133 = wn_conv3d(48, 48, (1, 3, 3))
        self.c311 = wn_conv3d(48, 48, (3, 1, 1))
        self.out = wn_conv2d(144, n)

    def forward(self, h, r):
        d = self.diff(h - r)
        u = self.union(torch.cat([h, r], 1))
        v = torch.stack([self.scale[0] * u[:, :48], self.scale[1] * torch.cat([u[:, 48:], d[:, :24]], 1),
                         self.scale[2] * d[:, 24:]], 2)  # (B, 48, 3, H, W)
        v = v + self.c311(self.c133(v))
        b, c, dd, hh, ww = v.shape
        return self.out(v.reshape(b, c * dd, hh, ww))


class SGE(nn.Module):
    """Symmetrical guided encoder block (``RDE`` in the official code)."""

    def __init__(self, n: int = 64):
        super().__init__()
        self.uh1, self.ur1, self.uh2, self.ur2 = Unit(n), Unit(n), Unit(n), Unit(n)
        self.fuse = CrossFusion(n)

    def forward(self, h, r):
        h1, r1 = self.uh1(h), self.ur1(r)
        f = self.fuse(h1, r1)
        return self.uh2(h1 + f) + h, self.ur2(r1 + f) + r


class DSCA(nn.Module):
    """Direction-aware spatial context aggregation: SCNN-style sequential message passing,
    rows top→bottom then bottom→top (1×7 conv + PReLU), then columns left→right and right→left
    (7×1 conv + PReLU); one conv per direction pair, each step uses the already-updated slice."""

    def __init__(self, n: int = 64, k: int = 7):
        super().__init__()
        self.row = nn.Conv2d(n, n, (1, k), padding=(0, k // 2))
        self.col = nn.Conv2d(n, n, (k, 1), padding=(k // 2, 0))
        self.prelu_row, self.prelu_col = nn.PReLU(), nn.PReLU()

    @staticmethod
    def _pass(x, dim, conv, act, reverse):
        slices = list(x.split(1, dim))
        order = range(len(slices) - 2, -1, -1) if reverse else range(1, len(slices))
        for k in order:
            prev = slices[k + 1] if reverse else slices[k - 1]
            slices[k] = slices[k] + act(conv(prev))
        return torch.cat(slices, dim)

    def forward(self, x):
        x = self._pass(x, 2, self.row, self.prelu_row, False)
        x = self._pass(x, 2, self.row, self.prelu_row, True)
        x = self._pass(x, 3, self.col, self.prelu_col, False)
        return self._pass(x, 3, self.col, self.prelu_col, True)


class MulSR(nn.Module):
    """One band step: ``forward(lr3, rgb) -> (B, 1, H, W)`` with ``lr3`` (B, 3, h, w)."""

    def __init__(self, scale: int, n: int = 64, n_sge: int = 4):
        super().__init__()
        if scale < 2 or scale % 2:
            raise ValueError(f"MulSR needs an even scale (α = s/2), not {scale}")
        self.scale = scale
        self.xa, self.ya, self.xb, self.yb = (wn_conv2d(3, n) for _ in range(4))
        self.sge_a = nn.ModuleList([SGE(n) for _ in range(n_sge)])
        self.sge_b = nn.ModuleList([SGE(n) for _ in range(n_sge)])
        self.fa, self.fb = wn_conv2d(2 * n, n, 1), wn_conv2d(2 * n, n, 1)
        self.down = nn.Conv2d(n, n, 3, stride=2, padding=1)
        self.mix = wn_conv2d(2 * n, n, 1)
        self.dsca = DSCA(n)
        self.up_m = wn_conv2d(n, 4 * n, 1)
        self.ua, self.ub = Unit(n), Unit(n)
        self.down_e = wn_conv2d(n, n, 3, stride=2)
        self.up_e = wn_conv2d(n, 4 * n, 1)
        self.tail1, self.tail2 = wn_conv2d(n, n), wn_conv2d(n, 1)

    def forward(self, lr3, rgb):
        s = self.scale
        xa = self.xa(F.interpolate(lr3, scale_factor=s // 2, mode="nearest"))
        ya = self.ya(rgb[:, :, ::2, ::2])
        xb = self.xb(F.interpolate(lr3, scale_factor=s, mode="nearest"))
        yb = self.yb(rgb)
        for ga, gb in zip(self.sge_a, self.sge_b):
            xa, ya = ga(xa, ya)
            xb, yb = gb(xb, yb)
        fa = self.fa(torch.cat([xa, ya], 1))
        fb = self.fb(torch.cat([xb, yb], 1))
        m = self.dsca(self.mix(torch.cat([self.down(fb), fa], 1)))
        fa = fa + m
        fb = fb + F.pixel_shuffle(self.up_m(m), 2)
        fa2, fb2 = self.ua(fa), self.ub(fb)
        e = self.down_e(fb2) - fa2
        fb3 = fb2 + F.pixel_shuffle(self.up_e(e), 2)
        return self.tail2(self.tail1(fb3))

    def forward_cube(self, lr: torch.Tensor, rgb: torch.Tensor) -> torch.Tensor:
        """All bands of ``lr`` (B, L, h, w) with the HR ``rgb`` (B, 3, H, W) → (B, L, H, W)."""
        n = lr.shape[1]
        out = []
        for i in range(n):
            a, b, c = band_triplet(i, n)
            out.append(self(torch.cat([lr[:, a:a + 1], lr[:, b:b + 1], lr[:, c:c + 1]], 1), rgb))
        return torch.cat(out, 1)
