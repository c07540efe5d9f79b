"""Euler-Maruyama for Itô SDEs dX = f(X, t) dt + g(X, t) dW."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from ..errors import InputError, check_count, check_in_range
from ..random import randn_like
from .base import Field, FixedStepSolver, time_like

__all__ = ["EulerMaruyama", "diffusion_like"]


def diffusion_like(g: Any, x: Tensor) -> Tensor | float:
    """What a diffusion g(x, t) returned, made to multiply noise of x's shape row by row: x's shape (diagonal
    noise), a number or a 0-d tensor (the same for all), (B,) (one value per row, read as (B, 1, ...); plain
    broadcasting would have spread it over the columns), or a tensor of x's dimensions that broadcasts to x's
    shape, such as (B, 1). Anything else raises an InputError naming ``diffusion``."""
    if isinstance(g, (int, float)) and not isinstance(g, bool):
        return float(g)
    if not isinstance(g, Tensor):
        raise InputError(f"diffusion: g(x, t) returned {type(g).__name__}; expected a tensor of the states' shape "
                         f"{tuple(x.shape)}, one value per row ({x.shape[0]},) or a scalar")
    if g.shape == x.shape or g.dim() == 0:
        return g
    if g.dim() == 1 and g.shape[0] == x.shape[0]:
        return g.reshape(g.shape + (1,) * (x.dim() - 1))
    if g.dim() == x.dim() and all(a in (1, b) for a, b in zip(g.shape, x.shape)):
        return g
    raise InputError(f"diffusion: g(x, t) returned shape {tuple(g.shape)} for states of shape {tuple(x.shape)}; "
                     f"expected the states' shape, one value per row ({x.shape[0]},) or a scalar")


class EulerMaruyama(FixedStepSolver):
    """X_{n+1} = X_n + f dt + g sqrt(|dt|) xi, xi ~ N(0, I) drawn from the caller's generator.

    ``diffusion`` is a constant g or a callable g(x, t) returning x's shape (diagonal noise), a scalar, or one
    value per row, (B,) (see ``diffusion_like``). ``substeps`` splits each grid interval into equal steps.
    """

    name = "euler_maruyama"

    def __init__(self, diffusion: float | Callable[[Tensor, Tensor], Tensor], substeps: int = 1) -> None:
        super().__init__()
        if not callable(diffusion):
            check_in_range("diffusion", diffusion, 0.0)
        check_count("substeps", substeps)             # 1.5 was truncated to 1
        self.diffusion = diffusion
        self.substeps = int(substeps)

    def _g(self, x: Tensor, t: Tensor) -> Tensor | float:
        if not callable(self.diffusion):
            return float(self.diffusion)
        return diffusion_like(self.diffusion(x, time_like(t, x)), x)

    def _advance(self, field: Field, x: Tensor, t: Tensor, h: Tensor, cond: dict[str, Any],
                 generator: torch.Generator | None) -> Tensor:
        drift = self._eval(field, x, t, cond)
        return x + h * drift + self._g(x, t) * h.abs().sqrt() * randn_like(x, generator=generator)
