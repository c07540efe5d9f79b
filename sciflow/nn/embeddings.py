"""Embeddings of scalar inputs (flow time, distances)."""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..core.errors import InputError

__all__ = ["GaussianFourierEmbedding", "RadialBasis", "SinusoidalEmbedding"]


class SinusoidalEmbedding(nn.Module):
    """t (B,) -> (B, dim) [sin(w_k t), cos(w_k t)] with log-spaced frequencies w_k in [1, max_freq]."""

    symmetry = "invariant (scalar input)"

    def __init__(self, dim: int, max_freq: float = 1000.0) -> None:
        super().__init__()
        half = dim // 2
        self.dim = dim
        self.register_buffer("freqs", torch.exp(torch.linspace(0.0, math.log(max_freq), half)), persistent=False)

    def forward(self, t: Tensor) -> Tensor:
        ang = t.reshape(-1, 1).to(self.freqs.dtype) * self.freqs
        emb = torch.cat([torch.sin(ang), torch.cos(ang)], dim=-1)
        if emb.shape[-1] < self.dim:
            emb = torch.cat([emb, t.reshape(-1, 1).to(emb.dtype)], dim=-1)
        return emb


class GaussianFourierEmbedding(nn.Module):
    """t (B,) -> (B, dim) random Fourier features with fixed frequencies ~ N(0, scale^2) (Tancik et al. 2020)."""

    symmetry = "invariant (scalar input)"

    def __init__(self, dim: int, scale: float = 16.0, seed: int = 0) -> None:
        super().__init__()
        if not isinstance(dim, int) or isinstance(dim, bool) or dim < 2 or dim % 2:
            raise InputError(f"dim: expected an even number >= 2 (a sine and a cosine per frequency), got {dim!r}")
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("w", torch.randn(dim // 2, generator=g) * scale * 2 * math.pi)

    def forward(self, t: Tensor) -> Tensor:
        ang = t.reshape(-1, 1).to(self.w.dtype) * self.w
        return torch.cat([torch.sin(ang), torch.cos(ang)], dim=-1)


class RadialBasis(nn.Module):
    """d (E,) -> (E, n) Gaussian radial basis on [0, cutoff] (smooth, rotation invariant)."""

    symmetry = "invariant (distances)"

    def __init__(self, n: int = 16, cutoff: float = 5.0) -> None:
        super().__init__()
        self.register_buffer("centers", torch.linspace(0.0, cutoff, n))
        self.gamma = (n / cutoff) ** 2

    def forward(self, d: Tensor) -> Tensor:
        return torch.exp(-self.gamma * (d.reshape(-1, 1) - self.centers.to(d.dtype)) ** 2)
