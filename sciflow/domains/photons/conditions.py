"""Checks and sampling of walk conditions (sigma_r, g, albedo) over the paper's training range."""
from __future__ import annotations

import torch
from torch import Tensor

from ...core.errors import InputError, check_in_range
from ...core.random import rand
from .fields import ALBEDO, SIGMA_R, G

__all__ = ["G_MAX", "MIN_SIGMA_R", "SIGMA_MAX", "check_conditions", "expected_events", "sample_conditions"]

#: Largest optical radius of the training range.
SIGMA_MAX = 300.0
#: Largest |g| of the training range.
G_MAX = 0.999
#: Thinnest sphere (in mean free paths) the learned tracer jumps through by default; thinner ones are walked
#: event by event. scatGen's next-event estimate is 10-29 % high in spheres of 4-16 mean free paths, above this
#: threshold too: the threshold only lowers the share of light that passes through it (docs/scattering.md).
MIN_SIGMA_R = 6.0


def _first_bad(name: str, x: Tensor, bad: Tensor, rule: str) -> None:
    if bool(bad.any()):
        i = int(bad.nonzero()[0, 0]) if x.dim() else 0
        v = float(x.reshape(-1)[i])
        raise InputError(f"{name}: {rule}, got {v} (at index {i})")


def check_conditions(sigma_r: Tensor | float, g: Tensor | float, albedo: Tensor | float | None = None, *,
                     names: tuple[str, str, str] = (SIGMA_R, G, ALBEDO)) -> tuple[Tensor, Tensor, Tensor | None]:
    """Validate and broadcast conditions; raises InputError naming the field (``names``: how the caller calls
    density, anisotropy and albedo) and the first bad value."""
    s = torch.as_tensor(sigma_r, dtype=torch.float64 if not torch.is_tensor(sigma_r) else None)
    gg = torch.as_tensor(g, dtype=torch.float64 if not torch.is_tensor(g) else None)
    for name, x in ((names[0], s), (names[1], gg)):
        _first_bad(name, x, ~torch.isfinite(x), "must be finite")
    _first_bad(names[0], s, s < 0, "density (optical radius) must be >= 0")
    _first_bad(names[1], gg, gg.abs() >= 1, "anisotropy must satisfy |g| < 1")
    a = None
    if albedo is not None:
        a = torch.as_tensor(albedo, dtype=torch.float64 if not torch.is_tensor(albedo) else None)
        _first_bad(names[2], a, ~torch.isfinite(a), "must be finite")
        _first_bad(names[2], a, (a < 0) | (a > 1), "single-scattering albedo must lie in [0, 1]")
    return s, gg, a


def sample_conditions(n: int, *, generator: torch.Generator | None = None, device: torch.device | str = "cpu",
                      sigma_max: float = SIGMA_MAX, g_max: float = G_MAX,
                      dtype: torch.dtype = torch.float32) -> dict[str, Tensor]:
    """n conditions: sigma_r = sigma_max u^3, g ~ U[-g_max, g_max], albedo = 1 - u^6 (near 1 as in real media)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise InputError(f"n: expected a whole number >= 0, got {n!r}")
    check_in_range("sigma_max", sigma_max, 0.0)
    check_in_range("g_max", g_max, 0.0, 1.0, high_open=True)
    u = rand((3, n), generator=generator, device=device, dtype=torch.float64)
    return {SIGMA_R: (sigma_max * u[0] ** 3).to(dtype), G: (g_max * (2 * u[1] - 1)).to(dtype),
            ALBEDO: (1 - u[2] ** 6).to(dtype)}


def expected_events(sigma_r: Tensor, g: Tensor) -> Tensor:
    """Rough E[N]: 1 + sigma_r ballistic, sigma_r^2 (1 - g) / 2 diffusive (the walk's cost, and a scale for log N)."""
    return 1 + sigma_r + 0.5 * sigma_r * sigma_r * (1 - g)
