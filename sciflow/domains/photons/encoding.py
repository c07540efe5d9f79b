"""Walk records <-> the unconstrained coordinates the three CVAEs model (the photon domain adapter).

Symmetry does part of the work: a walk's law is invariant under rotations about the incoming direction (+z),
so records are rotated about z until the exit point lies in the half plane y = 0, x >= 0 (the canonical frame),
and a uniform azimuth is drawn back at generation. In the canonical frame:

- lenGen models  y = log(N + u) - log E0[N]   (u ~ U[0, 1) dequantises N; E0 is ``expected_events``),
- pathGen models [2 log tan(theta_exit / 2), v1, v2] where (v1, v2) maps the exit direction's tangential part
  (in the frame normal, e_theta, e_y) from the unit disk to the plane so that a Lambertian exit is N(0, I),
- scatGen models the representative event k >= 2 as [its radius as a normal quantile, its radial direction and
  its arriving direction, each relative to the exit] (``events.event_encode``; ``scat_coords="depth"``, the
  default; "depth-logit" uses logit(radius) instead),
  the first event (at the centre) being drawn exactly; the first release modelled every event as [atanh-radial
  map of the position (3), direction (3, normalised at sampling)] (``scat_coords="ball"``, kept to load it).
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from ...core.errors import InputError
from ...core.random import rand
from ...core.trajectory import Trajectory
from ..base import DomainAdapter
from .conditions import SIGMA_MAX, expected_events
from .events import EVENT_DIM, event_decode, event_encode
from .fields import ALBEDO, EXIT_DIR, EXIT_POS, N_EVENTS, SCATTER_DIR, SCATTER_INDEX, SCATTER_POS, SIGMA_R, G
from .frames import (
    ball_to_space,
    disk_to_plane,
    logtan_to_polar,
    plane_to_disk,
    polar_to_logtan,
    rotate_z,
    space_to_ball,
)
from .phase import hg_sample_cos

__all__ = ["COND_DIM", "LEN_DIM", "PATH_DIM", "SCAT_COND_DIM", "SCAT_COORDS", "SCAT_DIM", "WALK_DIM",
           "PhotonAdapter"]

COND_DIM, LEN_DIM, PATH_DIM = 3, 1, 3
#: scatGen output size per event parameterisation
SCAT_COORDS = {"depth": EVENT_DIM, "depth-logit": EVENT_DIM, "ball": 6}
SCAT_DIM = SCAT_COORDS["depth"]
WALK_DIM = COND_DIM + 2
SCAT_COND_DIM = WALK_DIM + 1 + PATH_DIM
_LS = math.log1p(SIGMA_MAX)


class PhotonAdapter(DomainAdapter):
    """Encode walk records for training and decode CVAE samples back to walks (in the incoming frame)."""

    symmetry = "SO(2) about the incoming direction (handled by the canonical frame)"

    def __init__(self, scat_coords: str = "depth") -> None:
        if scat_coords not in SCAT_COORDS:
            raise InputError(f"scat_coords: expected one of {sorted(SCAT_COORDS)}, got {scat_coords!r}")
        self.scat_coords = scat_coords

    @property
    def scat_dim(self) -> int:
        return SCAT_COORDS[self.scat_coords]

    @property
    def exact_first_event(self) -> bool:
        """True when scatGen models events k >= 2 only and the first one (the centre) is drawn exactly."""
        return self.scat_coords.startswith("depth")

    @property
    def radial(self) -> str:
        return "logit" if self.scat_coords == "depth-logit" else "probit"

    # -- conditions ---------------------------------------------------------------------------------
    @staticmethod
    def cond_features(sigma_r: Tensor, g: Tensor) -> Tensor:
        """(B, 3) network features of (sigma_r, g), each of order one."""
        s = sigma_r.clamp_min(0)
        return torch.stack([torch.log1p(s) / _LS * 2 - 1, g,
                            torch.log1p(s * (1 - g)) / math.log1p(2 * SIGMA_MAX) * 2 - 1], dim=-1)

    @staticmethod
    def walk_features(cf: Tensor, n: Tensor, sigma_r: Tensor, g: Tensor) -> Tensor:
        """(B, 5) pathGen condition: condition features, log N / 8 and log((N + 1/2) / E0[N])."""
        e0 = expected_events(sigma_r.double(), g.double())
        nf = n.double()
        extra = torch.stack([torch.log(nf) / 8, torch.log((nf + 0.5) / e0)], dim=-1).to(cf.dtype)
        return torch.cat([cf, extra], dim=-1)

    @staticmethod
    def scat_cond(walk_f: Tensor, n: Tensor, albedo: Tensor, path_y: Tensor) -> Tensor:
        """(B, 9) scatGen condition: walk features, the albedo term log(1 - N log albedo) / 5, the exit."""
        absorb = -n.double() * torch.log(albedo.double().clamp_min(1e-300))
        scale = torch.tensor([0.25, 0.5, 0.5], dtype=walk_f.dtype, device=walk_f.device)
        return torch.cat([walk_f, (torch.log1p(absorb) / 5).to(walk_f.dtype).unsqueeze(-1), path_y * scale], dim=-1)

    # -- lenGen ---------------------------------------------------------------------------------------
    @staticmethod
    def len_encode(n: Tensor, sigma_r: Tensor, g: Tensor, u: Tensor) -> Tensor:
        """(B, 1) log(N + u) - log E0[N]."""
        e0 = expected_events(sigma_r.double(), g.double())
        return (torch.log(n.double() + u.double()) - torch.log(e0)).to(u.dtype).unsqueeze(-1)

    @staticmethod
    def len_decode(y: Tensor, sigma_r: Tensor, g: Tensor) -> Tensor:
        """(B,) int64 N >= 1 from lenGen samples (B, 1)."""
        e0 = expected_events(sigma_r.double(), g.double())
        n = torch.floor(torch.exp(y[:, 0].double().clamp(max=30) + torch.log(e0)))
        return n.clamp(1, 1e12).long()

    # -- canonical frame ------------------------------------------------------------------------------
    @staticmethod
    def azimuth(p: Tensor) -> tuple[Tensor, Tensor]:
        """(cos, sin) of the exit point's azimuth about z (1, 0 at the poles)."""
        rho = torch.sqrt(p[:, 0] ** 2 + p[:, 1] ** 2)
        ok = rho > 1e-12
        c = torch.where(ok, p[:, 0] / rho.clamp_min(1e-12), torch.ones_like(rho))
        s = torch.where(ok, p[:, 1] / rho.clamp_min(1e-12), torch.zeros_like(rho))
        return c, s

    @classmethod
    def path_encode(cls, exit_pos: Tensor, exit_dir: Tensor) -> Tensor:
        """(B, 3) pathGen coordinates of exit points and directions."""
        c, s = cls.azimuth(exit_pos)
        w = rotate_z(exit_dir, c, -s)
        a = polar_to_logtan(exit_pos)
        rho = torch.sqrt(exit_pos[:, 0] ** 2 + exit_pos[:, 1] ** 2)
        cz = exit_pos[:, 2]
        # local frame at the canonical exit point (sin t, 0, cos t): normal, e_theta = (cos t, 0, -sin t), e_y
        wn = w[:, 0] * rho + w[:, 2] * cz
        t1 = w[:, 0] * cz - w[:, 2] * rho
        v = disk_to_plane(torch.stack([t1, w[:, 1]], dim=-1), wn.clamp_min(0))
        return torch.cat([a.unsqueeze(-1), v], dim=-1)

    @staticmethod
    def path_decode(y: Tensor) -> tuple[Tensor, Tensor]:
        """Canonical exit points and directions (B, 3) from pathGen coordinates (B, 3)."""
        cz, sz = logtan_to_polar(y[:, 0])
        t, wn = plane_to_disk(y[:, 1:3])
        zero = torch.zeros_like(cz)
        pos = torch.stack([sz, zero, cz], dim=-1)
        dirx = wn * sz + t[:, 0] * cz
        dirz = wn * cz - t[:, 0] * sz
        d = torch.stack([dirx, t[:, 1], dirz], dim=-1)
        return pos, d / d.norm(dim=-1, keepdim=True)

    @classmethod
    def single_scatter(cls, g: Tensor, single: Tensor, path_y: Tensor, pos: Tensor, dirn: Tensor, *,
                       generator: torch.Generator | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """Replace the rows flagged ``single`` (B,) by exact single-scattering exits in the canonical frame.

        A walk with N = 1 scatters once at the centre and flies straight out, so its exit point and direction are
        both the Henyey-Greenstein direction about +z: (sin t, 0, cos t). Returns (path_y, pos, dirn)."""
        if not bool(single.any()):
            return path_y, pos, dirn
        xi = rand(g.shape, generator=generator, device=g.device, dtype=torch.float64)
        mu, sin = hg_sample_cos(g.double(), xi)
        w = torch.stack([sin, torch.zeros_like(sin), mu], dim=-1).to(pos.dtype)
        # pathGen coordinates of such an exit (normal direction: tangent 0), clamped at the poles
        y = torch.cat([polar_to_logtan(w).clamp(-30, 30).unsqueeze(-1), torch.zeros_like(w[:, :2])], dim=-1)
        m = single.unsqueeze(-1)
        return torch.where(m, y.to(path_y.dtype), path_y), torch.where(m, w, pos), torch.where(m, w, dirn)

    def scat_encode(self, exit_pos: Tensor, scatter_pos: Tensor, scatter_dir: Tensor) -> Tensor:
        """(B, scat_dim) scatGen coordinates of the representative event, in the canonical frame."""
        c, s = self.azimuth(exit_pos)
        pos, d = rotate_z(scatter_pos, c, -s), rotate_z(scatter_dir, c, -s)
        if self.exact_first_event:
            return event_encode(rotate_z(exit_pos, c, -s), pos, d, self.radial)
        return torch.cat([ball_to_space(pos), d], dim=-1)

    def scat_decode(self, y: Tensor, exit_pos: Tensor) -> tuple[Tensor, Tensor]:
        """Canonical event positions (in the ball) and unit directions from scatGen coordinates, given the
        canonical exit points (B, 3) of their walks."""
        if self.exact_first_event:
            return event_decode(exit_pos, y, self.radial)
        d = y[:, 3:6]
        n = d.norm(dim=-1, keepdim=True)
        d = torch.where(n > 1e-12, d / n.clamp_min(1e-12), torch.tensor([0.0, 0.0, 1.0], dtype=d.dtype,
                                                                          device=d.device).expand_as(d))
        return space_to_ball(y[:, 0:3]), d

    # -- DomainAdapter --------------------------------------------------------------------------------
    def encode(self, raw: Any) -> dict[str, Tensor]:
        """Walk records (dict of fields) -> {"cond", "path", "scat"} model tensors (lenGen's needs noise)."""
        missing = [k for k in (SIGMA_R, G, ALBEDO, N_EVENTS, EXIT_POS, EXIT_DIR, SCATTER_POS, SCATTER_DIR)
                   if k not in raw]
        if missing:
            raise InputError(f"walks: missing field(s) {', '.join(missing)}")
        sig, g = raw[SIGMA_R].float(), raw[G].float()
        cf = self.cond_features(sig, g)
        wf = self.walk_features(cf, raw[N_EVENTS], sig, g)
        path = self.path_encode(raw[EXIT_POS].float(), raw[EXIT_DIR].float())
        if self.exact_first_event:
            if SCATTER_INDEX not in raw:
                raise InputError(f"walks: missing field {SCATTER_INDEX} (needed by scat_coords={self.scat_coords!r})")
            keep = raw[SCATTER_INDEX] >= 2
        else:
            keep = torch.ones_like(raw[N_EVENTS], dtype=torch.bool)
        return {"cond": cf, "walk": wf, "path": path,
                "scat": self.scat_encode(raw[EXIT_POS].float(), raw[SCATTER_POS].float(), raw[SCATTER_DIR].float()),
                "scat_cond": self.scat_cond(wf, raw[N_EVENTS], raw[ALBEDO], path), "scat_keep": keep,
                "multi": raw[N_EVENTS] >= 2}

    def decode(self, traj: Trajectory) -> dict[str, Any]:
        """A generated walk batch -> numpy arrays of its exit and representative event."""
        out = {EXIT_POS: traj.states[-1, :, :3].cpu().numpy(), EXIT_DIR: traj.states[-1, :, 3:6].cpu().numpy()}
        out.update({k: v.detach().cpu().numpy() for k, v in traj.extras.items()})
        return out
