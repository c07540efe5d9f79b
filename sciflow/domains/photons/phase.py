"""Henyey-Greenstein phase function: density, closed-form CDF and stable inverse-CDF sampling.

Convention: mu is the cosine between the propagation directions before and after scattering; g > 0 scatters
forward. p(mu) = (1 - g^2) / (4 pi (1 + g^2 - 2 g mu)^{3/2}) per steradian.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from .frames import local_to_world

__all__ = ["hg_cdf", "hg_pdf", "hg_sample", "hg_sample_cos"]


def hg_pdf(mu: Tensor, g: Tensor | float) -> Tensor:
    """Density per steradian of the scattering cosine ``mu``."""
    g = torch.as_tensor(g, dtype=mu.dtype, device=mu.device)
    return (1 - g * g) / (4 * math.pi * (1 + g * g - 2 * g * mu).clamp_min(1e-30) ** 1.5)


def hg_cdf(mu: Tensor, g: Tensor | float) -> Tensor:
    """P(cos <= mu) in closed form (isotropic limit (mu + 1) / 2 at g = 0)."""
    g = torch.as_tensor(g, dtype=mu.dtype, device=mu.device).expand_as(mu)
    small = g.abs() < 1e-6
    gs = torch.where(small, torch.ones_like(g), g)
    val = (1 - gs * gs) / (2 * gs) * ((1 + gs * gs - 2 * gs * mu) ** -0.5 - 1 / (1 + gs))
    return torch.where(small, 0.5 * (mu + 1), val)


def hg_sample_cos(g: Tensor, xi: Tensor) -> tuple[Tensor, Tensor]:
    """Inverse-CDF sample of the cosine for uniforms ``xi`` in [0, 1); returns (cos, sin) of the angle.

    Written without dividing by g, so it is exact at g = 0 and stays precise near |g| -> 1:
    1 - mu = 2 (1-g)^2 (1-xi)(1+g xi) / D^2 and 1 + mu = 2 (1+g)^2 xi (1-g+g xi) / D^2, D = 1 - g + 2 g xi.
    """
    d2 = (1 - g + 2 * g * xi) ** 2
    one_minus = 2 * (1 - g) ** 2 * (1 - xi) * (1 + g * xi) / d2
    one_plus = 2 * (1 + g) ** 2 * xi * (1 - g + g * xi) / d2
    mu = 0.5 * (one_plus - one_minus)
    sin = torch.sqrt((one_minus * one_plus).clamp_min(0))
    return mu, sin


def hg_sample(w: Tensor, g: Tensor, xi1: Tensor, xi2: Tensor) -> Tensor:
    """New unit directions (B, 3) scattered from propagation directions ``w`` (B, 3)."""
    mu, sin = hg_sample_cos(g, xi1)
    phi = (2 * math.pi) * xi2
    local = torch.stack([sin * torch.cos(phi), sin * torch.sin(phi), mu], dim=-1)
    return local_to_world(local, w)
