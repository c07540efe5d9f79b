"""A conditional 1-D temporal U-Net: a velocity (or noise) field over sequences, e.g. chunks of actions.

x (B, C, L) -> (B, C, L). Every residual block is modulated by FiLM (a per-channel scale and shift) computed
from the flow-time embedding concatenated with a conditioning vector (B, cond_dim). The sequence is halved at
each level below the top (L must be divisible by 2^(levels - 1)) and skip connections join the mirrored
levels. Convolutions over time make it equivariant to shifts of the sequence away from the borders, not
exactly (padding), so it declares no symmetry.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .embeddings import SinusoidalEmbedding

__all__ = ["ConvNormAct1D", "FiLMResBlock1D", "UNet1D"]


def _groups(channels: int, groups: int) -> int:
    g = min(groups, channels)
    while channels % g:
        g -= 1
    return g


class ConvNormAct1D(nn.Module):
    """Conv1d (same length) -> GroupNorm -> SiLU."""

    symmetry = "none"

    def __init__(self, c_in: int, c_out: int, kernel_size: int, groups: int = 8) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv1d(c_in, c_out, kernel_size, padding=kernel_size // 2),
                                 nn.GroupNorm(_groups(c_out, groups), c_out), nn.SiLU())

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class FiLMResBlock1D(nn.Module):
    """Two conv blocks; the first output is scaled and shifted per channel by a map of the embedding."""

    symmetry = "none"

    def __init__(self, c_in: int, c_out: int, emb_dim: int, kernel_size: int = 5, groups: int = 8) -> None:
        super().__init__()
        self.conv1 = ConvNormAct1D(c_in, c_out, kernel_size, groups)
        self.conv2 = ConvNormAct1D(c_out, c_out, kernel_size, groups)
        self.film = nn.Sequential(nn.SiLU(), nn.Linear(emb_dim, 2 * c_out))
        self.skip = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        h = self.conv1(x)
        scale, shift = self.film(emb).unsqueeze(-1).chunk(2, dim=1)
        h = h * (1 + scale) + shift
        return self.conv2(h) + self.skip(x)


class UNet1D(nn.Module):
    """Conditional temporal U-Net.

    Args:
        channels: C of the sequence (e.g. action dimension).
        cond_dim: size of the conditioning vector (0 for none).
        widths: feature widths per level, top to bottom (e.g. (32, 64, 128)).
        kernel_size: temporal kernel. time_dim: size of the flow-time embedding.
        blocks: residual blocks per level (and in the middle).
    forward(x (B, C, L), t (B,), cond (B, cond_dim) | None) -> (B, C, L).
    """

    symmetry = "none"

    def __init__(self, channels: int, cond_dim: int = 0, widths: Sequence[int] = (32, 64, 128),
                 kernel_size: int = 5, time_dim: int = 32, groups: int = 8, blocks: int = 2) -> None:
        super().__init__()
        widths = list(widths)
        if blocks < 1:
            raise ValueError(f"blocks: must be >= 1, got {blocks}")
        if not widths:
            raise ValueError("widths: needs at least one level")
        self.channels, self.cond_dim, self.levels = channels, cond_dim, len(widths)
        self.time_embed = nn.Sequential(SinusoidalEmbedding(time_dim), nn.Linear(time_dim, 2 * time_dim), nn.SiLU(),
                                        nn.Linear(2 * time_dim, time_dim))
        emb = time_dim + cond_dim
        self.down = nn.ModuleList()
        self.pool = nn.ModuleList()
        c = channels
        for i, w in enumerate(widths):
            self.down.append(nn.ModuleList([FiLMResBlock1D(c if k == 0 else w, w, emb, kernel_size, groups)
                                            for k in range(blocks)]))
            if i < len(widths) - 1:
                self.pool.append(nn.Conv1d(w, w, 3, stride=2, padding=1))
            c = w
        self.mid = nn.ModuleList([FiLMResBlock1D(c, c, emb, kernel_size, groups) for _ in range(blocks)])
        self.unpool = nn.ModuleList()
        self.up = nn.ModuleList()
        for i in reversed(range(len(widths) - 1)):
            w = widths[i]
            self.unpool.append(nn.ConvTranspose1d(c, w, 4, stride=2, padding=1))
            self.up.append(nn.ModuleList([FiLMResBlock1D(2 * w if k == 0 else w, w, emb, kernel_size, groups)
                                          for k in range(blocks)]))
            c = w
        self.out = nn.Sequential(ConvNormAct1D(c, c, kernel_size, groups), nn.Conv1d(c, channels, 1))

    def forward(self, x: Tensor, t: Tensor, cond: Tensor | None = None) -> Tensor:
        b, _, length = x.shape
        if length % (2 ** (self.levels - 1)):
            raise ValueError(f"x: length {length} must be divisible by {2 ** (self.levels - 1)}")
        emb = self.time_embed(t.reshape(-1).expand(b).to(x.dtype))
        if self.cond_dim:
            if cond is None:
                raise ValueError(f"cond: this network needs a (B, {self.cond_dim}) condition")
            emb = torch.cat([emb, cond.to(x.dtype)], dim=-1)
        skips = []
        h = x
        for i, level in enumerate(self.down):
            for blk in level:
                h = blk(h, emb)
            if i < self.levels - 1:
                skips.append(h)
                h = self.pool[i](h)
        for blk in self.mid:
            h = blk(h, emb)
        for unpool, level in zip(self.unpool, self.up):
            h = torch.cat([unpool(h), skips.pop()], dim=1)
            for blk in level:
                h = blk(h, emb)
        return self.out(h)
