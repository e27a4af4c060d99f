"""SNLSR (Hu et al., IEEE TIP 2024) and A-SNLSR's modified SNLSR + domain discriminator.

Layer by layer from docs/methods.md, SNLSR/A-SNLSR (our code; the official repositories were read
for facts only):

* encoder (spatial-preserving decomposition): three conv3×3 stages C→8m→4m→2m, each followed by
  an attention (SNLSR: spatial attention; A-SNLSR: CBAM) and tanh; conv1×1 2m→m, ReLU, softmax
  over the m channels → abundances A (non-negative, sum to one);
* endmember decoder E: a bias-free conv1×1 m→C; ``rec = E(A)``;
* abundance SR network: conv3×3 m→F, three densely connected SSAM blocks, conv1×1 fusion,
  sub-pixel ×(s/2), three more SSAM blocks, fusion, sub-pixel ×2, conv3×3 F→m;
* ``SR = E(A_hr) + skip`` where skip is the bicubic upsampling of the LR input.

SSAM(x) = x + conv1×1(SANL(x) − x) + dwconv3×3(ESA(x) − x). The official model fixes ×4 with two
×(s/2) sub-pixel stages; here the first stage is ×(s/2) and the second ×2, so ×2, ×4 and ×8 all
produce ×s (×4 is identical to the paper).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass(frozen=True)
class SNLSRConfig:
    bands: int = 30
    feats: int = 64
    materials: int = 16
    attention: str = "cbam"  # "sa" (SNLSR) or "cbam" (A-SNLSR)
    blocks: int = 3  # SSAM blocks per stage
    bicubic_skip: bool = True
    esa_feats: int = 16
    abundance_relu: bool = True  # the papers' ReLU before the softmax (see Encoder)

    def to_dict(self) -> dict:
        return asdict(self)


class SpatialAttention(nn.Module):
    """Channel mean and max → conv7×7 (2→1) → sigmoid → multiply."""

    def __init__(self, bias: bool = True, reflect: bool = False):
        super().__init__()
        self.conv = nn.Conv2d(2, 1, 7, padding=3, bias=bias,
                              padding_mode="reflect" if reflect else "zeros")

    def forward(self, x):
        m = torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], 1)
        return x * torch.sigmoid(self.conv(m))


class ChannelAttention(nn.Module):
    """Shared bias-free MLP c → c/4 → c on the average- and max-pooled vectors, summed, sigmoid."""

    def __init__(self, c: int):
        super().__init__()
        r = max(c // 4, 1)
        self.mlp = nn.Sequential(nn.Conv2d(c, r, 1, bias=False), nn.ReLU(inplace=True),
                                 nn.Conv2d(r, c, 1, bias=False))

    def forward(self, x):
        a = self.mlp(x.mean((2, 3), keepdim=True)) + self.mlp(x.amax((2, 3), keepdim=True))
        return x * torch.sigmoid(a)


class CBAM(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.ca = ChannelAttention(c)
        self.sa = SpatialAttention(bias=False, reflect=True)

    def forward(self, x):
        return self.sa(self.ca(x))


class Encoder(nn.Module):
    """Spatial-preserving decomposition: LR cube (B, C, h, w) → abundances (B, m, h, w)."""

    def __init__(self, bands: int, m: int, attention: str = "cbam", relu: bool = True):
        super().__init__()
        chans = [bands, 8 * m, 4 * m, 2 * m]
        layers = []
        for a, b in zip(chans[:-1], chans[1:]):
            layers += [nn.Conv2d(a, b, 3, padding=1), CBAM(b) if attention == "cbam" else SpatialAttention(),
                       nn.Tanh()]
        layers += [nn.Conv2d(2 * m, m, 1)] + ([nn.ReLU()] if relu else [])
        self.body = nn.Sequential(*layers)

    def forward(self, x):
        return torch.softmax(self.body(x), dim=1)


class SANL(nn.Module):
    """Spectral-wise non-local attention: for every pixel a (F × F) attention between the
    channels of L2-normalised q and k, applied to v; added to the embedded feature."""

    def __init__(self, f: int):
        super().__init__()
        self.embed = nn.Sequential(nn.Conv2d(f, f, 3, padding=1), nn.ReLU(inplace=True),
                                   nn.Conv2d(f, f, 3, padding=1))
        self.q = nn.Linear(f, f, bias=False)
        self.k = nn.Linear(f, f, bias=False)
        self.v = nn.Linear(f, f, bias=False)
        self.proj = nn.Linear(f, f)

    def forward(self, x):
        e = self.embed(x)
        b, f, h, w = e.shape
        t = e.permute(0, 2, 3, 1).reshape(-1, f)  # (N, F)
        q = F.normalize(self.q(t), dim=1)
        k = F.normalize(self.k(t), dim=1)
        v = self.v(t)
        attn = torch.softmax(q[:, :, None] * k[:, None, :], dim=2)  # (N, F, F): row i over j
        o = self.proj(torch.bmm(attn, v[:, :, None])[:, :, 0])
        return o.reshape(b, h, w, f).permute(0, 3, 1, 2) + e


class ESA(nn.Module):
    """Enhanced spatial attention (RFANet style)."""

    def __init__(self, f: int, r: int = 16):
        super().__init__()
        self.c1 = nn.Conv2d(f, r, 1)
        self.cf = nn.Conv2d(r, r, 1)
        self.c2 = nn.Conv2d(r, r, 3, stride=2)
        self.c3 = nn.Conv2d(r, r, 3, padding=1)
        self.c4 = nn.Conv2d(r, r, 3, padding=1)
        self.c5 = nn.Conv2d(r, r, 3, padding=1)
        self.c6 = nn.Conv2d(r, f, 1)

    def forward(self, x):
        c1 = self.c1(x)
        if min(c1.shape[-2:]) < 15:  # tiny tiles: replicate-pad so the stride/pool chain fits
            ph, pw = max(0, 15 - c1.shape[-2]), max(0, 15 - c1.shape[-1])
            c1p = F.pad(c1, (0, pw, 0, ph), mode="replicate")
        else:
            c1p = c1
        c = F.max_pool2d(self.c2(c1p), 7, stride=3)
        c = self.c5(F.relu(self.c4(F.relu(self.c3(c)))))
        c = F.interpolate(c, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return x * torch.sigmoid(self.c6(c + self.cf(c1)))


class SSAM(nn.Module):
    def __init__(self, f: int, inputs: int = 1, esa_feats: int = 16):
        super().__init__()
        self.bottleneck = nn.Conv2d(inputs * f, f, 1) if inputs > 1 else nn.Identity()
        self.sanl = SANL(f)
        self.esa = ESA(f, esa_feats)
        self.pw = nn.Conv2d(f, f, 1)
        self.dw = nn.Conv2d(f, f, 3, padding=1, groups=f)

    def forward(self, x):
        x = self.bottleneck(x)
        return x + self.pw(self.sanl(x) - x) + self.dw(self.esa(x) - x)


def _upsampler(f: int, factor: int) -> nn.Module:
    layers = []
    while factor > 1:
        layers += [nn.Conv2d(f, 4 * f, 3, padding=1), nn.PixelShuffle(2)]
        factor //= 2
    return nn.Sequential(*layers) if layers else nn.Identity()


class AbundanceSR(nn.Module):
    def __init__(self, m: int, f: int, scale: int, blocks: int = 3, esa_feats: int = 16):
        super().__init__()
        self.head = nn.Conv2d(m, f, 3, padding=1)
        self.stage1 = nn.ModuleList([SSAM(f, i + 1, esa_feats) for i in range(blocks)])
        self.fuse1 = nn.Conv2d((blocks + 1) * f, f, 1)
        self.up1 = _upsampler(f, scale // 2)
        self.stage2 = nn.ModuleList([SSAM(f, i + 1, esa_feats) for i in range(blocks)])
        self.fuse2 = nn.Conv2d((blocks + 1) * f, f, 1)
        self.up2 = _upsampler(f, 2)
        self.tail = nn.Conv2d(f, m, 3, padding=1)

    @staticmethod
    def _dense(x, blocks):
        feats = [x]
        for blk in blocks:
            feats.append(blk(torch.cat(feats, 1)))
        return torch.cat(feats, 1)

    def forward(self, a):
        t = self.up1(self.fuse1(self._dense(self.head(a), self.stage1)))
        return self.tail(self.up2(self.fuse2(self._dense(t, self.stage2))))


class SNLSR(nn.Module):
    """``forward(lr) -> (sr, rec, abundances)`` on a (B, C, h, w) cube."""

    def __init__(self, scale: int, config: SNLSRConfig):
        super().__init__()
        if scale not in (2, 4, 8):
            raise ValueError(f"SNLSR supports ×2, ×4 and ×8, not ×{scale}")
        self.scale, self.config = scale, config
        m = config.materials
        self.encoder = Encoder(config.bands, m, config.attention, config.abundance_relu)
        self.endmembers = nn.Conv2d(m, config.bands, 1, bias=False)
        self.asr = AbundanceSR(m, config.feats, scale, config.blocks, config.esa_feats)

    def freeze_unmixing(self, frozen: bool = True) -> None:
        """The A-SNLSR repository's ``pretrain=False``: encoder and endmembers not trained."""
        for p in list(self.encoder.parameters()) + list(self.endmembers.parameters()):
            p.requires_grad_(not frozen)

    def forward(self, lr):
        a = self.encoder(lr)
        rec = self.endmembers(a)
        sr = self.endmembers(self.asr(a))
        if self.config.bicubic_skip:
            sr = sr + F.interpolate(lr, scale_factor=self.scale, mode="bicubic", align_corners=False)
        return sr, rec, a


class GradientReversal(torch.autograd.Function):
    """Identity forward; backward multiplies the gradient by −α."""

    @staticmethod
    def forward(ctx, x, alpha):
        ctx.alpha = float(alpha)
        return x.view_as(x)

    @staticmethod
    def backward(ctx, g):
        return -ctx.alpha * g, None


def grad_reverse(x: torch.Tensor, alpha: float) -> torch.Tensor:
    return GradientReversal.apply(x, alpha)


class DomainDiscriminator(nn.Module):
    """A-SNLSR's discriminator on the LR abundances: gradient reversal → two (conv3×3 → BN →
    LeakyReLU → maxpool 2 → Dropout2d 0.2) stages → global average pool → linear → 2 logits."""

    def __init__(self, m: int, domains: int = 2):
        super().__init__()
        self.alpha = 0.01
        self.body = nn.Sequential(
            nn.Conv2d(m, m, 3, padding=1, bias=False), nn.BatchNorm2d(m), nn.LeakyReLU(0.01),
            nn.MaxPool2d(2, ceil_mode=True), nn.Dropout2d(0.2),
            nn.Conv2d(m, 2 * m, 3, padding=1, bias=False), nn.BatchNorm2d(2 * m), nn.LeakyReLU(0.01),
            nn.MaxPool2d(2, ceil_mode=True), nn.Dropout2d(0.2))
        self.fc = nn.Linear(2 * m, domains)

    def forward(self, a, alpha: float | None = None):
        h = self.body(grad_reverse(a, self.alpha if alpha is None else alpha))
        return self.fc(h.mean((2, 3)))


def sam_radians(x: torch.Tensor, y: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """Mean per-pixel spectral angle in radians (A-SNLSR's loss term; norms offset by 1e−4)."""
    dot = (x * y).sum(1)
    n = (x.norm(dim=1) + eps) * (y.norm(dim=1) + eps)
    return torch.acos((dot / n).clamp(-1 + 1e-7, 1 - 1e-7)).mean()


def snlsr_loss(sr, hr, rec, lr, l1_only: bool = False) -> torch.Tensor:
    """The paper's four-term loss ``L1(SR, HR) + L1(rec, LR) + 0.1·(SAM(SR, HR) + SAM(rec, LR))``;
    ``l1_only`` is the official SNLSR code's effective loss ``L1(SR, HR)``."""
    loss = (sr - hr).abs().mean()
    if l1_only:
        return loss
    return loss + (rec - lr).abs().mean() + 0.1 * (sam_radians(sr, hr) + sam_radians(rec, lr))
