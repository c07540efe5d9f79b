"""Orthonormal frames and the maps between walk records and unconstrained coordinates.

All functions are batched over the leading axis and keep the input's device and dtype.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = [
    "ball_to_space",
    "disk_to_plane",
    "local_to_world",
    "logtan_to_polar",
    "orthonormal_basis",
    "plane_to_disk",
    "plane_to_sphere",
    "polar_to_logtan",
    "rotate_z",
    "space_to_ball",
    "sphere_to_plane",
]


def orthonormal_basis(n: Tensor) -> tuple[Tensor, Tensor]:
    """Two unit vectors (B, 3) completing the unit vectors ``n`` (B, 3) to a right-handed frame (t1, t2, n).

    Branchless construction of Duff et al., JCGT 6(1), 2017 (no special case at the poles).
    """
    x, y, z = n.unbind(-1)
    sign = torch.where(z >= 0, torch.ones_like(z), -torch.ones_like(z))
    a = -1.0 / (sign + z)
    b = x * y * a
    t1 = torch.stack([1.0 + sign * x * x * a, sign * b, -sign * x], dim=-1)
    t2 = torch.stack([b, sign + y * y * a, -y], dim=-1)
    return t1, t2


def local_to_world(v: Tensor, n: Tensor) -> Tensor:
    """(B, 3) vectors given in a frame whose z axis is ``n`` (B, 3) -> world coordinates."""
    t1, t2 = orthonormal_basis(n)
    return v[..., :1] * t1 + v[..., 1:2] * t2 + v[..., 2:3] * n


def rotate_z(v: Tensor, cos_a: Tensor, sin_a: Tensor) -> Tensor:
    """Rotate (B, 3) vectors about +z by the angle whose cosine and sine are given (B,)."""
    x, y, z = v.unbind(-1)
    return torch.stack([cos_a * x - sin_a * y, sin_a * x + cos_a * y, z], dim=-1)


def disk_to_plane(t: Tensor, normal_cos: Tensor) -> Tensor:
    """Open unit disk (B, 2) -> R^2, mapping the cosine-weighted (Lambertian) law to a standard normal.

    |v|^2 = -2 log(1 - |t|^2); ``normal_cos`` = sqrt(1 - |t|^2) keeps precision near grazing directions.
    """
    r2 = (t * t).sum(-1)
    big = -4.0 * torch.log(normal_cos.clamp_min(1e-30))
    small = -2.0 * torch.log1p(-r2.clamp(max=0.5))
    L = torch.where(r2 < 0.5, small, big)
    scale = torch.sqrt(L / r2.clamp_min(1e-30))
    scale = torch.where(r2 > 1e-14, scale, torch.full_like(scale, math.sqrt(2.0)))
    return t * scale.unsqueeze(-1)


def plane_to_disk(v: Tensor) -> tuple[Tensor, Tensor]:
    """Inverse of ``disk_to_plane``: (B, 2) -> (tangent (B, 2) in the open disk, normal cosine (B,))."""
    L = (v * v).sum(-1)
    r2 = -torch.expm1(-0.5 * L)
    scale = torch.sqrt(r2 / L.clamp_min(1e-30))
    scale = torch.where(L > 1e-14, scale, torch.full_like(scale, 1.0 / math.sqrt(2.0)))
    return v * scale.unsqueeze(-1), torch.exp(-0.25 * L)


def polar_to_logtan(p: Tensor) -> Tensor:
    """Unit vectors (B, 3) -> a = 2 log tan(theta / 2), theta the angle to +z (uniform sphere -> logistic law)."""
    rho = torch.sqrt(p[..., 0] ** 2 + p[..., 1] ** 2)
    theta = torch.atan2(rho, p[..., 2])
    return 2.0 * torch.log(torch.tan(0.5 * theta).clamp(1e-30, 1e30))


def logtan_to_polar(a: Tensor) -> tuple[Tensor, Tensor]:
    """Inverse of ``polar_to_logtan``: a (B,) -> (cos theta, sin theta)."""
    theta = 2.0 * torch.atan(torch.exp(0.5 * a.clamp(-80, 80)))
    return torch.cos(theta), torch.sin(theta)


def ball_to_space(x: Tensor) -> Tensor:
    """Closed unit ball (B, 3) -> R^3 radially, r -> atanh(r) (the centre and small radii are kept as they are)."""
    r = x.norm(dim=-1, keepdim=True)
    r_c = r.clamp(max=1.0 - 1e-6)
    scale = torch.where(r > 1e-12, torch.atanh(r_c) / r.clamp_min(1e-12), torch.ones_like(r))
    return x * scale


def space_to_ball(y: Tensor) -> Tensor:
    """Inverse of ``ball_to_space``: R^3 -> open unit ball."""
    s = y.norm(dim=-1, keepdim=True)
    scale = torch.where(s > 1e-12, torch.tanh(s) / s.clamp_min(1e-12), torch.ones_like(s))
    return y * scale


def sphere_to_plane(t: Tensor, c: Tensor) -> Tensor:
    """Unit vectors, given by their tangential part t (B, 2) and their cosine c (B,) to a pole, -> R^2.

    |v|^2 = -2 log((1 + c) / 2) and v is parallel to t, so the uniform law on the sphere becomes a standard normal
    (the pole goes to 0, the antipode to infinity). Near the pole 1 - c is taken as |t|^2 / (1 + c) for precision.
    """
    rho2 = (t * t).sum(-1)
    one_minus = torch.where(c > 0, rho2 / (1 + c).clamp_min(1e-30), 1 - c)
    # the antipode itself (c = -1) would go to infinity: keep it at the largest finite radius of the dtype
    L = -2.0 * torch.log1p(-(0.5 * one_minus).clamp(max=1 - torch.finfo(c.dtype).eps))
    scale = torch.sqrt(L / rho2.clamp_min(1e-300))
    scale = torch.where(rho2 > 1e-14, scale, torch.full_like(scale, math.sqrt(0.5)))
    return t * scale.unsqueeze(-1)


def plane_to_sphere(v: Tensor) -> tuple[Tensor, Tensor]:
    """Inverse of ``sphere_to_plane``: (B, 2) -> (tangential part (B, 2), cosine to the pole (B,))."""
    L = (v * v).sum(-1)
    h = torch.exp(-0.5 * L)                       # (1 + c) / 2
    rho = 2.0 * torch.sqrt((-torch.expm1(-0.5 * L)) * h)
    scale = rho / torch.sqrt(L.clamp_min(1e-300))
    scale = torch.where(L > 1e-14, scale, torch.full_like(scale, math.sqrt(2.0)))
    return v * scale.unsqueeze(-1), 2.0 * h - 1.0
