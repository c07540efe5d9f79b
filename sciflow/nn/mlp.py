"""Multilayer perceptrons, plain and as time-conditioned vector fields."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .embeddings import SinusoidalEmbedding

__all__ = ["MLP", "TimeConditionedMLP"]

_ACT = {"silu": nn.SiLU, "relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh, "selu": nn.SELU}


class MLP(nn.Module):
    """in_dim -> hidden... -> out_dim with an activation between layers (none after the last)."""

    symmetry = "none"

    def __init__(self, in_dim: int, out_dim: int, hidden: Sequence[int] = (64, 64), activation: str = "silu") -> None:
        super().__init__()
        if activation not in _ACT:
            raise ValueError(f"activation: expected one of {sorted(_ACT)}, got {activation!r}")
        dims = [in_dim, *hidden, out_dim]
        layers: list[nn.Module] = []
        for i in range(len(dims) - 1):
            layers.append(nn.Linear(dims[i], dims[i + 1]))
            if i < len(dims) - 2:
                layers.append(_ACT[activation]())
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class TimeConditionedMLP(nn.Module):
    """Vector field v(x, t, cond) for flat states: MLP on [x, embed(t), cond].

    x: (B, dim); t: (B,); cond: (B, cond_dim) or None. Returns (B, dim).
    """

    symmetry = "none"

    def __init__(self, dim: int, cond_dim: int = 0, hidden: Sequence[int] = (64, 64, 64), time_dim: int = 16,
                 activation: str = "selu", time_embedding: str = "sinusoidal") -> None:
        super().__init__()
        self.dim, self.cond_dim = dim, cond_dim
        if time_embedding == "sinusoidal":
            self.embed = SinusoidalEmbedding(time_dim)
        elif time_embedding == "raw":
            self.embed, time_dim = None, 1
        else:
            raise ValueError(f"time_embedding: expected 'sinusoidal' or 'raw', got {time_embedding!r}")
        self.net = MLP(dim + time_dim + cond_dim, dim, hidden, activation)

    def forward(self, x: Tensor, t: Tensor, cond: Tensor | None = None) -> Tensor:
        te = self.embed(t) if self.embed is not None else t.reshape(-1, 1)
        parts = [x, te.to(x.dtype)]
        if self.cond_dim:
            if cond is None:
                raise ValueError(f"cond: this field needs a (B, {self.cond_dim}) condition")
            parts.append(cond.to(x.dtype))
        return self.net(torch.cat(parts, dim=-1))
