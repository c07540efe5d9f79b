"""Probability paths: stateless objects that sample x_t and its conditional velocity u_t."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch
from torch import Tensor

from ..errors import InputError
from ..random import randn_like

__all__ = ["PathSample", "ProbPath", "broadcast_time"]


@dataclass(frozen=True)
class PathSample:
    """One draw from a conditional path.

    xt: (B, ...) point on the path.  ut: (B, ...) conditional velocity d x_t / dt.
    t: (B,) time of each row.  noise: (B, ...) the standard normal draw (zeros for a deterministic path).
    sigma: (B, 1, ...) standard deviation of the Gaussian part at t (score = -noise / sigma).
    """

    xt: Tensor
    ut: Tensor
    t: Tensor
    noise: Tensor
    sigma: Tensor

    @property
    def score(self) -> Tensor:
        """Conditional score grad log p_t(x | x0, x1) = -noise / sigma (infinite where sigma = 0)."""
        return -self.noise / self.sigma


def broadcast_time(t: Tensor | float, x: Tensor) -> Tensor:
    """Return t as (B, 1, ..., 1) for x of shape (B, ...); t may be a scalar or (B,), each in [0, 1] (a time
    outside, or NaN, is refused: the paths' schedules are defined on [0, 1] only, and beyond it their clamped
    variances gave velocities that were not the time derivative of the states). The check reads the times
    back, so it runs for host tensors only; on an accelerator (a training step) the times come from a
    ``FlowMatcher`` time sampler, which is checked once when the matcher is built."""
    t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
    if t.dim() == 0:
        t = t.expand(x.shape[0])
    if t.dim() != 1 or t.shape[0] != x.shape[0]:
        raise InputError(f"t: expected a scalar or shape ({x.shape[0]},), got {tuple(t.shape)}")
    if t.device.type == "cpu":
        inside = (t >= -1e-6) & (t <= 1.0 + 1e-6)         # also refuses NaN
        if not bool(inside.all()):
            raise InputError(f"t: times must lie in [0, 1], got {t[~inside][:4].tolist()}")
    return t.reshape((-1,) + (1,) * (x.dim() - 1))


class ProbPath(ABC):
    """A conditional probability path between paired endpoints x0 (t=0) and x1 (t=1)."""

    #: True when the path adds Gaussian noise (so ``noise`` is drawn).
    stochastic: bool = False

    @abstractmethod
    def sample(self, x0: Tensor, x1: Tensor, t: Tensor, *, noise: Tensor | None = None,
               generator: torch.Generator | None = None) -> PathSample:
        """Sample x_t and u_t for rows of (x0, x1) at times t ((B,) or scalar)."""

    def _noise(self, x0: Tensor, noise: Tensor | None, generator: torch.Generator | None) -> Tensor:
        if noise is not None:
            if noise.shape != x0.shape:
                raise InputError(f"noise: expected shape {tuple(x0.shape)}, got {tuple(noise.shape)}")
            return noise
        return randn_like(x0, generator=generator) if self.stochastic else torch.zeros_like(x0)

    @staticmethod
    def _check_pair(x0: Tensor, x1: Tensor) -> None:
        if x0.shape != x1.shape:
            raise InputError(f"x0/x1: shapes differ, {tuple(x0.shape)} vs {tuple(x1.shape)}")
