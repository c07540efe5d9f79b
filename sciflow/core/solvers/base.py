"""Solvers: integrate a field f(x, t, **cond) over a time grid and return a Trajectory.

A solver knows nothing of domains or models. The field receives t as a (B,) tensor (B = x.shape[0], i.e. one
time per row, per node for graphs). Wrap calls in ``torch.no_grad()`` when sampling.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any, Literal

import torch
from torch import Tensor

from ..errors import InputError, SciflowError, check_finite
from ..trajectory import Trajectory

__all__ = ["Field", "FixedStepSolver", "Solver", "check_grid", "time_like"]

#: A vector field: f(x (B, ...), t (B,), **cond) -> dx/dt (B, ...).
Field = Callable[..., Tensor]
Keep = Literal["all", "last"]
NonFinite = Literal["raise", "keep"]


def check_grid(times: Tensor | list[float], dtype: torch.dtype | None = None) -> Tensor:
    """Return ``times`` as a 1-D tensor of at least two strictly monotone values, or raise InputError.

    A grid given as a list (not a tensor) is built in ``dtype`` when that is a floating type (the states'
    dtype: float64 states are then integrated at float64 times, not at times rounded to float32).
    """
    floating = dtype is not None and dtype.is_floating_point
    t = torch.as_tensor(times, dtype=dtype if floating and not isinstance(times, Tensor) else None)
    if t.dim() != 1 or t.numel() < 2:
        raise InputError(f"times: expected a 1-D grid of at least 2 times, got shape {tuple(t.shape)}")
    if not t.is_floating_point():
        t = t.to(torch.get_default_dtype())
    check_finite("times", t)
    d = t[1:] - t[:-1]
    if not (bool((d > 0).all()) or bool((d < 0).all())):
        raise InputError(f"times: must be strictly increasing or strictly decreasing, got {t.tolist()[:8]}...")
    return t


def time_like(t: Tensor | float, x: Tensor) -> Tensor:
    """(B,) tensor holding t for every row of x."""
    return torch.as_tensor(t, dtype=x.dtype, device=x.device).expand(x.shape[0]).contiguous()


class Solver(ABC):
    """Integrates ``field`` from ``x0`` along ``times``; ``nfe`` counts field evaluations of the last solve."""

    name: str = "solver"
    #: what a solve whose final state is not finite does unless ``solve(non_finite=...)`` says: "raise" (the
    #: fixed-step ODE solvers) or "keep" (SDE solvers, whose callers score diverging paths themselves)
    non_finite: NonFinite = "keep"

    def __init__(self) -> None:
        self.nfe = 0

    def _eval(self, field: Field, x: Tensor, t: Tensor | float, cond: Mapping[str, Any]) -> Tensor:
        self.nfe += 1
        out = field(x, time_like(t, x), **cond)
        if not isinstance(out, Tensor) or out.shape != x.shape:
            got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
            raise InputError(f"field: returned {got} for states of shape {tuple(x.shape)}; a velocity field must "
                             f"return one value per state entry")
        if out.dtype != x.dtype:            # the states would silently change dtype after the first step
            raise InputError(f"field: returned {out.dtype} for states of {x.dtype}; return the states' dtype")
        return out

    def solve(self, field: Field, x0: Tensor, times: Tensor | list[float], *, cond: Mapping[str, Any] | None = None,
              generator: torch.Generator | None = None, keep: Keep = "all",
              non_finite: NonFinite | None = None) -> Trajectory:
        """Integrate and return the states at every time of the grid (``keep="all"``) or only the last.

        ``non_finite="raise"`` (default of the fixed-step ODE solvers) raises a SciflowError naming the field and
        the first non-finite time when the final state is not finite; ``"keep"`` returns it, for callers that
        find and report diverging rows themselves."""
        if keep not in ("all", "last"):
            raise InputError(f"keep: expected 'all' or 'last', got {keep!r}")
        if non_finite not in (None, "raise", "keep"):
            raise InputError(f"non_finite: expected 'raise', 'keep' or None, got {non_finite!r}")
        check_finite("x0", x0)
        grid = check_grid(times, x0.dtype).to(x0.device)
        self.nfe = 0
        states, info = self._integrate(field, x0, grid, dict(cond or {}), generator, keep)
        if (non_finite or self.non_finite) == "raise" and not bool(torch.isfinite(states[-1]).all()):  # once a solve
            raise SciflowError(self._non_finite(states, grid, keep))
        kept = grid if keep == "all" else grid[-1:]
        info = {"solver": self.name, "nfe": self.nfe, **info}
        return Trajectory(times=kept, states=torch.stack(states), info=info)

    def _non_finite(self, states: list[Tensor], grid: Tensor, keep: Keep) -> str:
        """The message for a solve whose final state is not finite (names the first non-finite grid time)."""
        if keep == "all":
            i = next(i for i, x in enumerate(states) if not bool(torch.isfinite(x).all()))
            where = f"first at t={float(grid[i]):.6g} (after t={float(grid[i - 1]):.6g})"
        else:
            where = f"by t={float(grid[-1]):.6g}"
        return (f"field: returned non-finite values; the {self.name} solve's states became non-finite {where}; "
                f"check the field, or use a finer grid")

    @abstractmethod
    def _integrate(self, field: Field, x0: Tensor, grid: Tensor, cond: dict[str, Any],
                   generator: torch.Generator | None, keep: Keep) -> tuple[list[Tensor], dict[str, Any]]:
        """Return the kept states and extra info."""


class FixedStepSolver(Solver):
    """Solvers that take ``substeps`` equal steps per interval of the grid; a subclass says how one step of
    length ``h`` from ``(x, t)`` goes (``_advance``)."""

    substeps: int = 1

    @abstractmethod
    def _advance(self, field: Field, x: Tensor, t: Tensor, h: Tensor, cond: dict[str, Any],
                 generator: torch.Generator | None) -> Tensor:
        """The state one step of length ``h`` after ``x`` at time ``t``."""

    def _integrate(self, field: Field, x0: Tensor, grid: Tensor, cond: dict[str, Any],
                   generator: torch.Generator | None, keep: Keep) -> tuple[list[Tensor], dict[str, Any]]:
        x = x0
        states = [x0] if keep == "all" else []
        for i in range(grid.numel() - 1):
            t0, t1 = grid[i].to(x.dtype), grid[i + 1].to(x.dtype)
            h = (t1 - t0) / self.substeps
            for s in range(self.substeps):
                x = self._advance(field, x, t0 + s * h, h, cond, generator)
            if keep == "all":
                states.append(x)
        if keep == "last":
            states = [x]
        return states, {"steps": (grid.numel() - 1) * self.substeps}
