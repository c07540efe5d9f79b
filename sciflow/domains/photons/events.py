"""The representative scattering event in depth-and-direction coordinates relative to the walk's exit.

In the canonical frame the exit point is n = (sin t, 0, cos t); (a, b, n) with a = (cos t, 0, -sin t), b = +y is
the spherical frame at the exit. An event at x (radius r, radial direction u = x / r) arriving with direction w is
written as five unconstrained numbers:

- the radius r as a normal quantile: ``radial="probit"`` (default) y = Phi^-1(r^3), the radial law of a uniform
  ball made standard normal, so a density that stays finite up to the surface (as the events' does) gets a
  Gaussian tail there, with 1 - r ~ exp(-y^2 / 2) / (3 sqrt(2 pi) y) resolving depths far below a mean free path;
  or ``radial="logit"``: y = log(r / (1 - r)), about -log(depth) near the surface (an exponential tail there,
  which a Gaussian head under-fills: see docs/scattering.md),
- u as a point of the sphere with the exit as pole, mapped to R^2 so that a uniform u is N(0, I)
  (``sphere_to_plane``),
- w in the spherical frame at u (e_alpha, e_beta, u) of that same pole, mapped the same way with u as pole (an
  isotropic w is N(0, I); w = u, moving straight outwards, is 0).

The first event of every walk sits at the centre with w = +z; its probability given N is known exactly
(albedo / sum_k albedo^k), so it is drawn analytically and the coordinates only describe events k >= 2 (r > 0).
"""
from __future__ import annotations

import torch
from torch import Tensor

from .frames import plane_to_sphere, sphere_to_plane

__all__ = ["EVENT_DIM", "RADIAL", "R_EPS", "event_decode", "event_encode", "normal_to_radius", "radius_to_normal"]

EVENT_DIM = 5
#: radii are kept in [R_EPS, 1 - R_EPS] before the logit
R_EPS = 1e-7
RADIAL = ("probit", "logit")


def radius_to_normal(r: Tensor, radial: str = "probit") -> Tensor:
    """Radii in (0, 1) -> R (see the module doc); computed in float64, returned in r's dtype."""
    rd = r.double().clamp(R_EPS, 1 - R_EPS)
    if radial == "logit":
        y = torch.log(rd) - torch.log1p(-rd)
    else:
        lr3 = 3 * torch.log(rd)
        y = torch.where(lr3 < -0.6931, torch.special.ndtri(torch.exp(lr3)), -torch.special.ndtri(-torch.expm1(lr3)))
    return y.to(r.dtype)


def normal_to_radius(y: Tensor, radial: str = "probit") -> Tensor:
    """Inverse of ``radius_to_normal`` (float64 inside, precise for depths 1 - r down to ~1e-10)."""
    yd = y.double()
    r = torch.sigmoid(yd) if radial == "logit" else torch.exp(torch.special.log_ndtr(yd) / 3)
    return r.to(y.dtype)


def _exit_frame(exit_pos: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(a, b, n) at canonical exit points (y = 0) (B, 3)."""
    st, ct = exit_pos[:, 0], exit_pos[:, 2]
    zero = torch.zeros_like(st)
    a = torch.stack([ct, zero, -st], dim=-1)
    b = torch.stack([zero, torch.ones_like(st), zero], dim=-1)
    return a, b, exit_pos


def _dot(x: Tensor, y: Tensor) -> Tensor:
    return (x * y).sum(-1)


def _local_frame(ta: Tensor, tb: Tensor, cu: Tensor, a: Tensor, b: Tensor, n: Tensor
                 ) -> tuple[Tensor, Tensor, Tensor]:
    """u and the spherical frame (e_alpha, e_beta) at u from its exit-frame components (ta, tb, cu)."""
    rho = torch.sqrt(ta * ta + tb * tb)
    ok = rho > 1e-12
    cb = torch.where(ok, ta / rho.clamp_min(1e-12), torch.ones_like(rho))
    sb = torch.where(ok, tb / rho.clamp_min(1e-12), torch.zeros_like(rho))
    u = ta.unsqueeze(-1) * a + tb.unsqueeze(-1) * b + cu.unsqueeze(-1) * n
    radial = cb.unsqueeze(-1) * a + sb.unsqueeze(-1) * b
    e_alpha = cu.unsqueeze(-1) * radial - rho.unsqueeze(-1) * n
    e_beta = -sb.unsqueeze(-1) * a + cb.unsqueeze(-1) * b
    return u, e_alpha, e_beta


def event_encode(exit_pos: Tensor, pos: Tensor, direction: Tensor, radial: str = "probit") -> Tensor:
    """(B, 5) coordinates of events (positions in the ball, r > 0, and unit directions), all in the canonical
    frame of their walk's exit point ``exit_pos`` (B, 3)."""
    a, b, n = _exit_frame(exit_pos)
    r = pos.norm(dim=-1)
    u = pos / r.clamp_min(1e-30).unsqueeze(-1)
    depth = radius_to_normal(r, radial)
    ta, tb, cu = _dot(u, a), _dot(u, b), _dot(u, n)
    v_pos = sphere_to_plane(torch.stack([ta, tb], dim=-1), cu)
    u, e_alpha, e_beta = _local_frame(ta, tb, cu, a, b, n)
    w = direction / direction.norm(dim=-1, keepdim=True)
    v_dir = sphere_to_plane(torch.stack([_dot(w, e_alpha), _dot(w, e_beta)], dim=-1), _dot(w, u))
    return torch.cat([depth.unsqueeze(-1), v_pos, v_dir], dim=-1)


def event_decode(exit_pos: Tensor, y: Tensor, radial: str = "probit") -> tuple[Tensor, Tensor]:
    """Inverse of ``event_encode``: canonical event positions (in the open ball) and unit directions."""
    a, b, n = _exit_frame(exit_pos)
    r = normal_to_radius(y[:, 0], radial)
    t, cu = plane_to_sphere(y[:, 1:3])
    u, e_alpha, e_beta = _local_frame(t[:, 0], t[:, 1], cu, a, b, n)
    tw, cw = plane_to_sphere(y[:, 3:5])
    w = tw[:, :1] * e_alpha + tw[:, 1:2] * e_beta + cw.unsqueeze(-1) * u
    u = u / u.norm(dim=-1, keepdim=True)
    return r.unsqueeze(-1) * u, w / w.norm(dim=-1, keepdim=True)
