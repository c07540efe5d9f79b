"""Gaussian interpolant paths built from a schedule: linear (cond-OT), Brownian bridge, variance preserving."""
from __future__ import annotations

import torch
from torch import Tensor

from ..schedules import BridgeSchedule, CosineSchedule, LinearSchedule, Schedule, VPSchedule
from .base import PathSample, ProbPath, broadcast_time

__all__ = ["BrownianBridgePath", "CosinePath", "InterpolantPath", "LinearPath", "VPPath"]


class InterpolantPath(ProbPath):
    """x_t = a x0 + b x1 + s eps and u_t = a' x0 + b' x1 + s' eps for a given schedule."""

    def __init__(self, schedule: Schedule) -> None:
        self.schedule = schedule
        # noisy if s(t) or s'(t) is non-zero anywhere on a grid of (0, 1) (a schedule may vanish at t = 1/2)
        probe = schedule(torch.linspace(0.0, 1.0, 65, dtype=torch.float64)[1:-1])
        self.stochastic = bool(probe.s.abs().max() > 0) or bool(probe.ds.abs().max() > 0)

    def sample(self, x0: Tensor, x1: Tensor, t: Tensor, *, noise: Tensor | None = None,
               generator: torch.Generator | None = None) -> PathSample:
        self._check_pair(x0, x1)
        tb = broadcast_time(t, x0)
        eps = self._noise(x0, noise, generator)
        c = self.schedule(tb)
        xt = c.a * x0 + c.b * x1 + c.s * eps
        ut = c.da * x0 + c.db * x1 + c.ds * eps
        return PathSample(xt=xt, ut=ut, t=tb.reshape(-1), noise=eps, sigma=c.s)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({type(self.schedule).__name__})"


class LinearPath(InterpolantPath):
    """Conditional OT / rectified-flow line x_t = (1 - t) x0 + t x1 (+ sigma eps); u_t = x1 - x0."""

    def __init__(self, sigma: float = 0.0) -> None:
        super().__init__(LinearSchedule(sigma))
        self.sigma = self.schedule.sigma

    def sample(self, x0: Tensor, x1: Tensor, t: Tensor, *, noise: Tensor | None = None,
               generator: torch.Generator | None = None) -> PathSample:
        # the schedule's general form, reduced to two tensor ops (this path is the hot loop of CFM training)
        self._check_pair(x0, x1)
        tb = broadcast_time(t, x0)
        eps = self._noise(x0, noise, generator)
        xt = torch.lerp(x0, x1, tb)    # (1 - t) x0 + t x1, exact at both ends
        if self.sigma:
            xt = xt + self.sigma * eps
        return PathSample(xt=xt, ut=x1 - x0, t=tb.reshape(-1), noise=eps, sigma=tb.new_full(tb.shape, self.sigma))


class BrownianBridgePath(InterpolantPath):
    """Brownian bridge of diffusion sigma: the Schrödinger-bridge path of SB-CFM. Pair it with the coupling
    ``sciflow.core.couplings.sb_coupling(sigma)``, entropic OT at the absolute temperature 2 sigma^2 on squared
    distances (equal to ``Sinkhorn(reg=2 sigma^2, normalize_cost=False)``; the default ``normalize_cost=True``
    makes Sinkhorn's reg relative to the largest cost, another coupling)."""

    def __init__(self, sigma: float) -> None:
        super().__init__(BridgeSchedule(sigma))


class _NoiseToDataPath(InterpolantPath):
    """x0 is the Gaussian noise itself: report it as ``noise`` and a(t) as ``sigma``, so the score and noise
    losses apply (score of p_t(x | x1) = -x0 / a)."""

    stochastic = False

    def sample(self, x0: Tensor, x1: Tensor, t: Tensor, *, noise: Tensor | None = None,
               generator: torch.Generator | None = None) -> PathSample:
        self._check_pair(x0, x1)
        tb = broadcast_time(t, x0)
        c = self.schedule(tb)
        xt = c.a * x0 + c.b * x1
        ut = c.da * x0 + c.db * x1
        return PathSample(xt=xt, ut=ut, t=tb.reshape(-1), noise=x0, sigma=c.a)


class VPPath(_NoiseToDataPath):
    """Variance-preserving diffusion path from N(0, I) at t=0 to data at t=1."""

    def __init__(self, beta_min: float = 0.1, beta_max: float = 20.0) -> None:
        InterpolantPath.__init__(self, VPSchedule(beta_min, beta_max))
        self.stochastic = False


class CosinePath(_NoiseToDataPath):
    """Trigonometric variance-preserving interpolant from N(0, I) at t=0 to data at t=1."""

    def __init__(self) -> None:
        InterpolantPath.__init__(self, CosineSchedule())
        self.stochastic = False
