"""IFMSR (Li, Gong, Yuan, Wang, IEEE TGRS 61, 2023), the full paper model of ``docs/methods.md`` (IFMSR).

RGB-guided, band by band, all features at HR resolution: two cross-modality guided modules
(CGM: residual units, multi-corresponding patch aggregation (MCPA) with a vectorised patch
similarity computed once from the RGB, channel split-and-exchange, RGB-induced detail
enhancement (RDE)), then deep cross-modality feature modulation (DCFM). The official code's
channel-swap bug is available as ``swap_bug=True`` (off by default).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...nn import Unit, wn_conv2d
from .config import band_triplet  # torch-free, beside the size table


def _pad_to(x: torch.Tensor, p: int) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
    """Symmetric zero padding so both spatial sizes are multiples of ``p``."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % p, (-w) % p
    pads = (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2)
    return F.pad(x, pads), pads


def _patches(x: torch.Tensor, p: int) -> torch.Tensor:
    """(B, C, H, W) with H, W multiples of p → (B, L, C, p, p) non-overlapping patches."""
    b, c, h, w = x.shape
    return x.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 1, 3, 5).reshape(b, -1, c, p, p)


def _unpatch(t: torch.Tensor, h: int, w: int) -> torch.Tensor:
    b, n, c, p, _ = t.shape
    return t.reshape(b, h // p, w // p, c, p, p).permute(0, 3, 1, 4, 2, 5).reshape(b, c, h, w)


def mcpa_index(rgb: torch.Tensor, p: int, k: int = 3) -> torch.Tensor:
    """For each non-overlapping p×p patch of the (padded) RGB, the indices (B, L, k) of the k
    most cosine-similar other patches — one matrix product instead of the official double loop."""
    x, _ = _pad_to(rgb, p)
    v = _patches(x, p).flatten(2)  # (B, L, 3p²)
    v = F.normalize(v, dim=2, eps=1e-12)
    sim = v @ v.transpose(1, 2)  # (B, L, L)
    sim.diagonal(dim1=1, dim2=2).fill_(-float("inf"))  # never the patch itself
    k = min(k, sim.shape[-1] - 1) if sim.shape[-1] > 1 else 0
    if k == 0:
        return torch.zeros(sim.shape[0], sim.shape[1], 3, dtype=torch.long, device=rgb.device)
    idx = sim.topk(k, dim=2).indices
    if idx.shape[-1] < 3:  # tiny images: repeat the best matches
        idx = idx[..., [min(j, idx.shape[-1] - 1) for j in range(3)]]
    return idx


class MCPA(nn.Module):
    """Multi-corresponding patch aggregation on one modality's features."""

    def __init__(self, n: int = 64):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(4))
        self.conv = wn_conv2d(4 * n, n)

    def forward(self, x: torch.Tensor, idx: torch.Tensor, p: int) -> torch.Tensor:
        xp, (l, r, t, b) = _pad_to(x, p)
        hp, wp = xp.shape[-2:]
        pt = _patches(xp, p)  # (B, L, C, p, p)
        bidx = torch.arange(pt.shape[0], device=x.device)[:, None]
        parts = [self.gamma[0] * xp]
        for j in range(3):
            q = pt[bidx, idx[:, :, j]]  # (B, L, C, p, p)
            parts.append(self.gamma[j + 1] * _unpatch(q, hp, wp))
        y = torch.cat(parts, 1)[..., t:hp - b, l:wp - r]
        return x + self.conv(y)


class RDE(nn.Module):
    """RGB-induced detail enhancement (the code's DDPM variant): per-pixel 3×3 kernels made
    from the RGB features, applied (dilation 1 and 3) to reduced HSI features."""

    def __init__(self, n: int = 64, m: int = 32):
        super().__init__()
        self.m = m
        self.reduce = nn.Conv2d(n, m, 1)
        self.kgen = nn.ModuleList([nn.Sequential(nn.Conv2d(n, n, 3, padding=1), nn.Conv2d(n, m * 9, 1))
                                   for _ in range(2)])
        self.post = nn.ModuleList([nn.Conv2d(m, m, 3, padding=1) for _ in range(2)])
        self.out = nn.Conv2d(3 * m, n, 3, padding=1)

    def forward(self, h, r):
        x = self.reduce(h)
        b, m, hh, ww = x.shape
        branches = [x]
        for dil, kg, post in zip((1, 3), self.kgen, self.post):
            kern = kg(r).reshape(b, m, 9, hh, ww)
            nb = F.unfold(x, 3, dilation=dil, padding=dil).reshape(b, m, 9, hh, ww)
            branches.append(post((kern * nb).sum(2)))
        return self.out(torch.cat(branches, 1))


class CGM(nn.Module):
    """Cross-modality guided module."""

    def __init__(self, n: int = 64, swap_bug: bool = False):
        super().__init__()
        self.uh, self.ur = Unit(n), Unit(n)
        self.mh, self.mr = MCPA(n), MCPA(n)
        self.uh2, self.ur2 = Unit(n), Unit(n)
        self.rde = RDE(n)
        self.swap_bug = swap_bug
        self.half = n // 2

    def forward(self, H, R, idx, p):
        h, r = F.relu(self.uh(H)), F.relu(self.ur(R))
        h, r = self.mh(h, idx, p), self.mr(r, idx, p)
        k = self.half
        r2 = torch.cat([r[:, :k], h[:, :k]], 1)
        h2 = torch.cat([(r2 if self.swap_bug else r)[:, k:], h[:, k:]], 1)
        H2, R2 = self.uh2(h2) + H, self.ur2(r2) + R
        d = self.rde(H2, R2)
        return H2 + d, R2 + d


class IFMSR(nn.Module):
    """One band step: ``forward(lr3, rgb, idx) -> (B, 1, H, W)``; ``idx`` from :func:`mcpa_index`."""

    def __init__(self, scale: int, n: int = 64, modules: int = 2, swap_bug: bool = False):
        super().__init__()
        self.scale, self.p = scale, 3 * scale
        self.head_h = nn.Conv2d(3, n, 3, padding=1)
        self.head_r = nn.Conv2d(3, n, 3, padding=1)
        self.cgm = nn.ModuleList([CGM(n, swap_bug) for _ in range(modules)])
        self.hc = wn_conv2d(modules * n, n, 1)
        self.rc = wn_conv2d(modules * n, n, 1)
        self.ua, self.ub = Unit(n), Unit(n)
        self.tail = wn_conv2d(n, 1)

    def forward(self, lr3, rgb, idx=None):
        if idx is None:
            idx = mcpa_index(rgb, self.p)
        H0 = self.head_h(F.interpolate(lr3, scale_factor=self.scale, mode="nearest"))
        H, R = H0, self.head_r(rgb)
        hs, rs = [], []
        for m in self.cgm:
            H, R = m(H, R, idx, self.p)
            hs.append(H)
            rs.append(R)
        hc, rc = self.hc(torch.cat(hs, 1)), self.rc(torch.cat(rs, 1))
        z = self.ua(rc) * hc + self.ub(rc)
        return self.tail(z + H0)

    def forward_cube(self, lr: torch.Tensor, rgb: torch.Tensor) -> torch.Tensor:
        idx = mcpa_index(rgb, self.p)  # once per image
        n = lr.shape[1]
        out = []
        for i in range(n):
            a, b, c = band_triplet(i, n)
            out.append(self(torch.cat([lr[:, a:a + 1], lr[:, b:b + 1], lr[:, c:c + 1]], 1), rgb, idx))
        return torch.cat(out, 1)
