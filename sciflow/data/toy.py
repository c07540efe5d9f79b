"""Toy distributions with known structure, drawn with an explicit generator."""
from __future__ import annotations

import math

import torch
from torch import Tensor

from ..core.errors import check_in_range
from ..core.random import rand, randint, randn

__all__ = ["eight_gaussians", "helix", "moons"]


def eight_gaussians(n: int, *, scale: float = 5.0, std: float = 0.5,
                    generator: torch.Generator | None = None) -> Tensor:
    """(n, 2) mixture of 8 Gaussians of std ``std`` on a circle of radius ``scale`` (TorchCFM's layout)."""
    k = randint(8, (n,), generator=generator)
    ang = k.to(torch.float32) * (2 * math.pi / 8)
    centers = torch.stack([torch.cos(ang), torch.sin(ang)], dim=1) * scale
    return centers + std * randn((n, 2), generator=generator)


def moons(n: int, *, noise: float = 0.2, generator: torch.Generator | None = None) -> Tensor:
    """(n, 2) two interleaved half circles with Gaussian noise, scaled by 3 and shifted by -1 (TorchCFM's target)."""
    upper = rand((n,), generator=generator) < 0.5
    s = rand((n,), generator=generator) * math.pi
    x = torch.where(upper, torch.cos(s), 1 - torch.cos(s))
    y = torch.where(upper, torch.sin(s), 1 - torch.sin(s) - 0.5)
    pts = torch.stack([x, y], dim=1) + noise * randn((n, 2), generator=generator)
    return pts * 3 - 1


def helix(n: int, pitch: Tensor | float, *, radius: float = 1.0, turns: float = 1.5, noise: float = 0.05,
          generator: torch.Generator | None = None) -> Tensor:
    """(n, 3) points on a helix x = r cos(2 pi k s), y = r sin(2 pi k s), z = pitch (s - 1/2), s ~ U(0, 1);
    ``pitch`` is a float or an (n,) tensor (the condition of the quickstart flow)."""
    check_in_range("radius", radius, 0.0, low_open=True)
    s = rand((n,), generator=generator)
    ang = 2 * math.pi * turns * s
    p = torch.as_tensor(pitch, dtype=torch.float32).expand(n)
    pts = torch.stack([radius * torch.cos(ang), radius * torch.sin(ang), p * (s - 0.5)], dim=1)
    return pts + noise * randn((n, 3), generator=generator)
