"""Fixed-step explicit Runge-Kutta ODE solvers from Butcher tableaux: Euler, midpoint, Heun, RK4."""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..errors import check_count
from .base import Field, FixedStepSolver, NonFinite

__all__ = ["RK4", "Euler", "ExplicitRK", "Heun", "Midpoint"]


class ExplicitRK(FixedStepSolver):
    """One explicit RK step per interval of the grid, times ``substeps`` equal sub-steps.

    Tableau: ``a`` (lower triangular stage weights), ``b`` (output weights), ``c`` (stage times).
    """

    a: tuple[tuple[float, ...], ...] = ()
    b: tuple[float, ...] = ()
    c: tuple[float, ...] = ()
    non_finite: NonFinite = "raise"

    def __init__(self, substeps: int = 1) -> None:
        super().__init__()
        check_count("substeps", substeps)             # 1.5 was truncated to 1
        self.substeps = int(substeps)

    def step(self, field: Field, x: Tensor, t: Tensor, h: Tensor, cond: dict[str, Any]) -> Tensor:
        ks: list[Tensor] = []
        for i, ci in enumerate(self.c):
            xi = x
            for aij, kj in zip(self.a[i], ks):
                if aij:
                    xi = xi + (h * aij) * kj
            ks.append(self._eval(field, xi, t + ci * h, cond))
        out = x
        for bi, ki in zip(self.b, ks):
            if bi:
                out = out + (h * bi) * ki
        return out

    def _advance(self, field: Field, x: Tensor, t: Tensor, h: Tensor, cond: dict[str, Any],
                 generator: torch.Generator | None) -> Tensor:
        return self.step(field, x, t, h, cond)


class Euler(ExplicitRK):
    """Forward Euler, order 1."""
    name = "euler"
    a = ((),)
    b = (1.0,)
    c = (0.0,)


class Midpoint(ExplicitRK):
    """Explicit midpoint, order 2."""
    name = "midpoint"
    a = ((), (0.5,))
    b = (0.0, 1.0)
    c = (0.0, 0.5)


class Heun(ExplicitRK):
    """Heun's method (explicit trapezoid), order 2."""
    name = "heun"
    a = ((), (1.0,))
    b = (0.5, 0.5)
    c = (0.0, 1.0)


class RK4(ExplicitRK):
    """Classical Runge-Kutta, order 4."""
    name = "rk4"
    a = ((), (0.5,), (0.0, 0.5), (0.0, 0.0, 1.0))
    b = (1 / 6, 1 / 3, 1 / 3, 1 / 6)
    c = (0.0, 0.5, 0.5, 1.0)
