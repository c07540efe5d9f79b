"""Schedules of Gaussian interpolants, kept apart from the paths that use them.

A schedule gives, for flow time t in [0, 1], the coefficients of

    x_t = a(t) x0 + b(t) x1 + s(t) eps,        u_t = a'(t) x0 + b'(t) x1 + s'(t) eps,

with eps ~ N(0, I). All methods take and return tensors of the same shape as ``t``.
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import NamedTuple

import torch
from torch import Tensor

from .errors import check_in_range

__all__ = ["BridgeSchedule", "Coefficients", "CosineSchedule", "LinearSchedule", "Schedule", "VPSchedule"]

_EPS = 1e-5


class Coefficients(NamedTuple):
    a: Tensor
    b: Tensor
    s: Tensor
    da: Tensor
    db: Tensor
    ds: Tensor


class Schedule(ABC):
    """Coefficients (a, b, s) and their time derivatives."""

    @abstractmethod
    def __call__(self, t: Tensor) -> Coefficients: ...


class LinearSchedule(Schedule):
    """Conditional optimal-transport (rectified) line with constant noise ``sigma``:
    a = 1 - t, b = t, s = sigma."""

    def __init__(self, sigma: float = 0.0) -> None:
        self.sigma = check_in_range("sigma", sigma, 0.0)

    def __call__(self, t: Tensor) -> Coefficients:
        one = torch.ones_like(t)
        return Coefficients(1 - t, t, self.sigma * one, -one, one, torch.zeros_like(t))


class BridgeSchedule(Schedule):
    """Brownian bridge of diffusion ``sigma`` pinned at x0 (t=0) and x1 (t=1):
    a = 1 - t, b = t, s = sigma sqrt(t (1 - t)). With sigma -> 0 it is the linear path."""

    def __init__(self, sigma: float) -> None:
        self.sigma = check_in_range("sigma", sigma, 0.0)

    def __call__(self, t: Tensor) -> Coefficients:
        one = torch.ones_like(t)
        var = t * (1 - t)
        s = self.sigma * torch.sqrt(var.clamp_min(0))
        ds = self.sigma * (1 - 2 * t) / (2 * torch.sqrt(var.clamp_min(_EPS)))
        return Coefficients(1 - t, t, s, -one, one, ds)


class VPSchedule(Schedule):
    """Variance-preserving diffusion path written as a flow from noise x0 (t=0) to data x1 (t=1):
    b = alpha(t) = exp(-T(1 - t) / 2), a = sqrt(1 - alpha^2), s = 0, with
    T(r) = beta_min r + (beta_max - beta_min) r^2 / 2 (Song et al. 2021; Lipman et al. 2023)."""

    def __init__(self, beta_min: float = 0.1, beta_max: float = 20.0) -> None:
        self.beta_min = check_in_range("beta_min", beta_min, 0.0)
        self.beta_max = check_in_range("beta_max", beta_max, self.beta_min)

    def __call__(self, t: Tensor) -> Coefficients:
        r = 1 - t
        big_t = self.beta_min * r + 0.5 * (self.beta_max - self.beta_min) * r * r
        beta = self.beta_min + (self.beta_max - self.beta_min) * r
        alpha = torch.exp(-0.5 * big_t)
        dalpha = 0.5 * beta * alpha               # d alpha / dt (r = 1 - t)
        # 1 - alpha^2 = -expm1(-T): computed as 1 - alpha^2 it cancels near t = 1 (float32: 0 for T < 6e-8,
        # a few digits for T ~ 1e-5), which zeroed or distorted a and sent da to -inf there
        var = -torch.expm1(-big_t)
        a = torch.sqrt(var.clamp_min(0))
        da = -alpha * dalpha / torch.sqrt(var.clamp_min(_EPS))
        zero = torch.zeros_like(t)
        return Coefficients(a, alpha, zero, da, dalpha, zero)


class CosineSchedule(Schedule):
    """Trigonometric variance-preserving interpolant: a = cos(pi t / 2), b = sin(pi t / 2), s = 0."""

    def __call__(self, t: Tensor) -> Coefficients:
        h = 0.5 * math.pi
        zero = torch.zeros_like(t)
        return Coefficients(torch.cos(h * t), torch.sin(h * t), zero, -h * torch.sin(h * t), h * torch.cos(h * t), zero)
