"""Itô SDE solver with a Heun (trapezoid) drift: more accurate than Euler-Maruyama for stiff or oscillating
drifts at the same step, and still Itô (the noise is evaluated at the start of each step).

    x~      = x + f(x, t) h + g(x, t) sqrt(h) xi
    x_{n+1} = x + (f(x, t) + f(x~, t + h)) h / 2 + g(x, t) sqrt(h) xi,     xi ~ N(0, I)

With g = 0 it is Heun's ODE method (order 2); with noise it has weak order 2 for additive noise and weak
order 1 in general, like Euler-Maruyama, but a much smaller drift error.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..random import randn_like
from .base import Field
from .sde import EulerMaruyama

__all__ = ["ItoHeun"]


class ItoHeun(EulerMaruyama):
    """Drift-Heun Itô scheme; ``diffusion`` is a constant or a callable g(x, t) returning x's shape (diagonal
    noise), a scalar or one value per row (B,) (see ``EulerMaruyama``)."""

    name = "ito_heun"

    def _advance(self, field: Field, x: Tensor, t: Tensor, h: Tensor, cond: dict[str, Any],
                 generator: torch.Generator | None) -> Tensor:
        f0 = self._eval(field, x, t, cond)
        noise = self._g(x, t) * h.abs().sqrt() * randn_like(x, generator=generator)
        f1 = self._eval(field, x + h * f0 + noise, t + h, cond)
        return x + 0.5 * h * (f0 + f1) + noise
