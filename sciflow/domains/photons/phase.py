"""Henyey-Greenstein phase function: density, closed-form CDF and stable inverse-CDF sampling.

Convention: mu is the cosine between the propagation directions before and after scattering; g > 0 scatters
forward. p(mu) = (1 - g^2) / (4 pi (1 + g^2 - 2 g mu)^{3/2}) per steradian.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from ...core.errors import InputError
from .frames import local_to_world

__all__ = ["hg_cdf", "hg_pdf", "hg_sample", "hg_sample_cos", "hg_sample_half_angle"]


def _anisotropy(g: Tensor | float, like: Tensor) -> Tensor:
    """``g`` as a tensor of ``like``'s dtype and device; a plain number must lie in (-1, 1)."""
    if not isinstance(g, Tensor) and not -1.0 < float(g) < 1.0:
        raise InputError(f"g: the anisotropy must lie in (-1, 1), got {g}")
    return torch.as_tensor(g, dtype=like.dtype, device=like.device)


def _base(mu: Tensor, g: Tensor) -> Tensor:
    """1 + g^2 - 2 g mu as a sum of non-negative terms, so that it keeps its precision where it is small
    (mu -> sign(g), |g| -> 1; float32 lost 10 % of the peak density at g = 0.999 and gave inf at 0.9999):
    (1 - g)^2 + 2 g (1 - mu) for g >= 0 and (1 + g)^2 - 2 g (1 + mu) for g < 0."""
    return torch.where(g >= 0, (1 - g).square() + 2 * g * (1 - mu), (1 + g).square() - 2 * g * (1 + mu))


def hg_pdf(mu: Tensor, g: Tensor | float) -> Tensor:
    """Density per steradian of the scattering cosine ``mu`` (clamped to [-1, 1])."""
    g = _anisotropy(g, mu)
    mu = mu.clamp(-1.0, 1.0)
    return (1 - g) * (1 + g) / (4 * math.pi * _base(mu, g).clamp_min(torch.finfo(mu.dtype).tiny) ** 1.5)


def hg_cdf(mu: Tensor, g: Tensor | float) -> Tensor:
    """P(cos <= mu) in closed form, (1 - g)(1 + mu) / (s (1 + g + s)) with s = sqrt(1 + g^2 - 2 g mu): no division
    by g (the isotropic (mu + 1) / 2 at g = 0) and no cancellation near |g| -> 1."""
    g = _anisotropy(g, mu)
    mu = mu.clamp(-1.0, 1.0)
    s = _base(mu, g).sqrt()
    return ((1 - g) * (1 + mu) / (s * (1 + g + s)).clamp_min(torch.finfo(mu.dtype).tiny)).clamp(0.0, 1.0)


def hg_sample_cos(g: Tensor, xi: Tensor) -> tuple[Tensor, Tensor]:
    """Inverse-CDF sample of the cosine for uniforms ``xi`` in [0, 1); returns (cos, sin) of the angle.

    Written without dividing by g, so it is exact at g = 0 and stays precise near |g| -> 1: for a = |g|,
    1 - mu = 2 (1-a)^2 (1-x)(1+a x) / D^2 and 1 + mu = 2 (1+a)^2 x (1-a+a x) / D^2, D = 1 - a + 2 a x, where
    x = xi for g >= 0; for g < 0 the mirror image, mu(g, xi) = -mu(|g|, 1 - xi) (the same inverse CDF, without
    the cancellation the direct formula has as g -> -1).
    """
    neg, one_minus, one_plus = _hg_one_minus_plus(g, xi)
    mu = 0.5 * (one_plus - one_minus)
    sin = torch.sqrt((one_minus * one_plus).clamp_min(0))
    return torch.where(neg, -mu, mu), sin


def _hg_one_minus_plus(g: Tensor | float, xi: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(g < 0, 1 - mu, 1 + mu) of the inverse CDF for |g|, as in ``hg_sample_cos`` (which mirrors g < 0)."""
    g = torch.as_tensor(g, dtype=xi.dtype, device=xi.device)
    neg = g < 0
    a = g.abs()
    x = torch.where(neg, 1 - xi, xi)
    d2 = (1 - a + 2 * a * x) ** 2
    one_minus = 2 * (1 - a) ** 2 * (1 - x) * (1 + a * x) / d2
    one_plus = 2 * (1 + a) ** 2 * x * (1 - a + a * x) / d2
    return neg, one_minus, one_plus


def hg_sample_half_angle(g: Tensor | float, xi: Tensor) -> tuple[Tensor, Tensor]:
    """(cos, sin) of half the scattering angle of ``hg_sample_cos`` for the same uniforms: cos^2(theta/2) =
    (1 + mu) / 2 and sin^2(theta/2) = (1 - mu) / 2 (rotations by theta as unit quaternions need the half angle)."""
    neg, one_minus, one_plus = _hg_one_minus_plus(g, xi)
    ch, sh = (0.5 * one_plus).clamp_min(0).sqrt(), (0.5 * one_minus).clamp_min(0).sqrt()
    return torch.where(neg, sh, ch), torch.where(neg, ch, sh)       # g < 0: theta -> pi - theta


def hg_sample(w: Tensor, g: Tensor, xi1: Tensor, xi2: Tensor) -> Tensor:
    """New unit directions (B, 3) scattered from propagation directions ``w`` (B, 3)."""
    mu, sin = hg_sample_cos(g, xi1)
    phi = (2 * math.pi) * xi2
    local = torch.stack([sin * torch.cos(phi), sin * torch.sin(phi), mu], dim=-1)
    return local_to_world(local, w)
