"""Piecewise path through K snapshots at absolute times (multi-marginal bridges)."""
from __future__ import annotations

import torch
from torch import Tensor

from ..errors import InputError, check_in_range
from ..random import randn_like
from .base import PathSample

__all__ = ["MultiMarginalPath"]

_EPS = 1e-8


class MultiMarginalPath:
    """Brownian bridges of diffusion ``sigma`` (per unit of absolute time) pinned at knots x_k at times t_k.

    On [t_k, t_{k+1}] with tau = (t - t_k) / dt_k:
        x_t = (1 - tau) x_k + tau x_{k+1} + sigma sqrt((t - t_k)(t_{k+1} - t) / dt_k) eps,
    and u_t its time derivative at fixed eps. ``sigma = 0`` gives the piecewise-linear path.
    """

    def __init__(self, knot_times: Tensor, sigma: float = 0.0) -> None:
        kt = torch.as_tensor(knot_times, dtype=torch.float64)
        if kt.dim() != 1 or kt.numel() < 2:
            raise InputError(f"knot_times: expected a 1-D tensor of at least 2 times, got shape {tuple(kt.shape)}")
        if not bool((kt[1:] > kt[:-1]).all()):
            raise InputError(f"knot_times: must be strictly increasing, got {kt.tolist()}")
        self.knot_times = kt
        self.sigma = check_in_range("sigma", sigma, 0.0)
        self.stochastic = self.sigma > 0

    def segment(self, t: Tensor) -> Tensor:
        """(B,) index k of the segment [t_k, t_{k+1}] holding each time."""
        kt = self.knot_times.to(t.device, t.dtype)
        k = torch.searchsorted(kt, t.contiguous(), right=True) - 1
        return k.clamp(0, kt.numel() - 2)

    def sample(self, knots: Tensor, t: Tensor, *, noise: Tensor | None = None,
               generator: torch.Generator | None = None) -> PathSample:
        """knots: (K, B, ...) chained points of each row; t: (B,) absolute times in [t_0, t_{K-1}]."""
        if knots.dim() < 2 or knots.shape[0] != self.knot_times.numel():
            raise InputError(f"knots: expected shape ({self.knot_times.numel()}, B, ...), got {tuple(knots.shape)}")
        b = knots.shape[1]
        t = torch.as_tensor(t, dtype=knots.dtype, device=knots.device)
        if t.dim() == 0:
            t = t.expand(b)
        if t.shape != (b,):
            raise InputError(f"t: expected a scalar or shape ({b},), got {tuple(t.shape)}")
        lo, hi = float(self.knot_times[0]), float(self.knot_times[-1])
        tol = 1e-6 * (hi - lo)
        if not bool(((t >= lo - tol) & (t <= hi + tol)).all()):      # also refuses NaN
            bad = t[~((t >= lo - tol) & (t <= hi + tol))]
            raise InputError(f"t: times must lie in the knots' range [{lo:g}, {hi:g}], got {bad[:4].tolist()}")
        if noise is not None and noise.shape != knots.shape[1:]:
            raise InputError(f"noise: expected shape {tuple(knots.shape[1:])}, got {tuple(noise.shape)}")
        k = self.segment(t)
        kt = self.knot_times.to(knots.device, knots.dtype)
        t_lo, t_hi = kt[k], kt[k + 1]
        dt = t_hi - t_lo
        rows = torch.arange(b, device=knots.device)
        x_lo, x_hi = knots[k, rows], knots[k + 1, rows]
        shape = (-1,) + (1,) * (knots.dim() - 2)
        tau = ((t - t_lo) / dt).reshape(shape)
        dtb = dt.reshape(shape)
        if noise is None:
            eps = randn_like(x_lo, generator=generator) if self.stochastic else torch.zeros_like(x_lo)
        else:
            eps = noise
        u = ((t - t_lo) * (t_hi - t) / dt).reshape(shape)
        s = self.sigma * torch.sqrt(u.clamp_min(0))
        du = ((t_lo + t_hi - 2 * t) / dt).reshape(shape)
        ds = self.sigma * du / (2 * torch.sqrt(u.clamp_min(_EPS)))
        xt = (1 - tau) * x_lo + tau * x_hi + s * eps
        ut = (x_hi - x_lo) / dtb + ds * eps
        return PathSample(xt=xt, ut=ut, t=t, noise=eps, sigma=s)
