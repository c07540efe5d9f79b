"""Conditional flow matching: one training objective and one sampler shared by every flow-based method.

``FlowMatcher`` composes a path, a coupling and a time distribution. It never knows the network or the domain:
the velocity is any callable v(x_t, t, **cond), and graph batches pass ``batch`` (graph index per row) so that
times are drawn per graph and the loss averages per graph.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor

from .couplings.base import Coupling, IndependentCoupling
from .errors import InputError, check_count
from .losses import TimeWeighting, cfm_loss
from .paths.base import ProbPath
from .random import rand
from .solvers.base import Solver, check_grid
from .trajectory import Trajectory

__all__ = ["FlowMatcher", "logit_normal_time", "uniform_time"]

#: Draws n flow times in [0, 1]: (n, generator, device, dtype) -> (n,).
TimeSampler = Callable[[int, "torch.Generator | None", torch.device, torch.dtype], Tensor]


def uniform_time(n: int, generator: torch.Generator | None, device: torch.device, dtype: torch.dtype) -> Tensor:
    return rand((n,), generator=generator, device=device, dtype=dtype)


def logit_normal_time(mean: float = 0.0, std: float = 1.0) -> TimeSampler:
    """t = sigmoid(mean + std z): puts more training weight on the middle of the path (Esser et al. 2024)."""
    def draw(n: int, generator: torch.Generator | None, device: torch.device, dtype: torch.dtype) -> Tensor:
        from .random import randn
        return torch.sigmoid(mean + std * randn((n,), generator=generator, device=device, dtype=dtype))
    return draw


def _gather(cond: Mapping[str, Tensor], idx: Tensor, n_rows: int) -> dict[str, Any]:
    return {k: (v[idx] if torch.is_tensor(v) and v.dim() and v.shape[0] == n_rows else v) for k, v in cond.items()}


def _check_rows(name: str, x: Any) -> None:
    """A floating tensor of at least one row (numpy arrays, integer tensors and empty batches are refused)."""
    if not torch.is_tensor(x):
        raise InputError(f"{name}: expected a torch tensor (B, ...), got {type(x).__name__}"
                         + ("; convert with torch.as_tensor" if hasattr(x, "__array__") else ""))
    if not x.is_floating_point():
        raise InputError(f"{name}: expected a floating tensor, got {x.dtype}")
    if x.dim() == 0 or x.shape[0] == 0:
        raise InputError(f"{name}: expected at least one row (B, ...), got shape {tuple(x.shape)}")


def _checked_time_sampler(sampler: TimeSampler) -> TimeSampler:
    """``sampler`` after one probe on the host: 4,096 draws of the right shape, all in [0, 1]. (The paths check
    their times on the host only, so that a training step on an accelerator has no extra read-back.)"""
    if not callable(sampler):
        raise InputError(f"time_sampler: expected a callable (n, generator, device, dtype) -> (n,) times, got "
                         f"{type(sampler).__name__}")
    t = sampler(4096, torch.Generator().manual_seed(0), torch.device("cpu"), torch.float64)
    if not isinstance(t, Tensor) or t.shape != (4096,):
        got = tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__
        raise InputError(f"time_sampler: returned {got} for n=4096; expected a tensor of shape (n,)")
    inside = (t >= 0.0) & (t <= 1.0)
    if not bool(inside.all()):
        raise InputError(f"time_sampler: drew times outside [0, 1] (or NaN), e.g. {t[~inside][:4].tolist()}")
    return sampler


class FlowMatcher:
    """Training loss and sampler of (conditional) flow matching.

    Args:
        path: the conditional probability path between x0 (source, t=0) and x1 (target, t=1).
        coupling: how x0 and x1 are paired (independent, exact OT, Sinkhorn). Conditions attached to the x1
            rows follow the coupling's pairing.
        time_sampler: distribution of training times (uniform by default).
        weighting: optional w(t) multiplying each row's loss.
    """

    def __init__(self, path: ProbPath, coupling: Coupling | None = None, *,
                 time_sampler: TimeSampler = uniform_time, weighting: TimeWeighting | None = None) -> None:
        self.path = path
        self.coupling = coupling if coupling is not None else IndependentCoupling()
        self.time_sampler = _checked_time_sampler(time_sampler)
        self.weighting = weighting

    def loss(self, velocity: Callable[..., Tensor], x0: Tensor, x1: Tensor, *,
             cond: Mapping[str, Any] | None = None, batch: Tensor | None = None,
             generator: torch.Generator | None = None) -> Tensor:
        """E ||v(x_t, t, **cond) - u_t||^2 for one batch.

        x0, x1: (B, ...) source and target rows; ``cond`` entries with first axis B follow x1's pairing.
        batch: (B,) graph index when rows are nodes of ragged graphs (no re-pairing across rows then).
        """
        _check_rows("x0", x0)
        _check_rows("x1", x1)
        if x0.dtype != x1.dtype or x0.device != x1.device:
            raise InputError(f"x0: {x0.dtype} on {x0.device}, but x1 is {x1.dtype} on {x1.device}; give both the "
                             f"same dtype and device")
        if x0.shape[1:] != x1.shape[1:]:
            raise InputError(f"x0: rows of shape {tuple(x0.shape[1:])}, but x1 rows are {tuple(x1.shape[1:])}")
        cond = dict(cond or {})
        if batch is None:
            if isinstance(self.coupling, IndependentCoupling):  # identity pairing: no copies of the rows
                x0, x1 = self.coupling(x0, x1, generator=generator)
            else:
                i, j = self.coupling.indices(x0, x1, generator=generator)
                n = x1.shape[0]
                x0, x1, cond = x0[i], x1[j], _gather(cond, j, n)
            t = self.time_sampler(x0.shape[0], generator, x0.device, x0.dtype)
        else:
            if not isinstance(self.coupling, IndependentCoupling):
                raise InputError("coupling: graph batches pair atoms within each graph; use IndependentCoupling "
                                 "and align x0 to x1 in the domain adapter instead")
            n_graphs = int(batch.max()) + 1
            t = self.time_sampler(n_graphs, generator, x0.device, x0.dtype)[batch]
        s = self.path.sample(x0, x1, t, generator=generator)
        v = velocity(s.xt, s.t, **cond)
        return cfm_loss(v, s.ut, s.t, weighting=self.weighting, batch=batch)

    @staticmethod
    def sample(velocity: Callable[..., Tensor], x0: Tensor, solver: Solver, *, steps: int = 20,
               t0: float = 0.0, t1: float = 1.0, times: Tensor | None = None, cond: Mapping[str, Any] | None = None,
               generator: torch.Generator | None = None, keep: str = "all", non_finite: str = "keep") -> Trajectory:
        """Integrate dx/dt = v(x, t, **cond) from x0 at t0 to t1 (``steps`` equal intervals unless ``times``).

        ``non_finite`` as in ``Solver.solve``: "keep" (the default here) returns diverging samples for the
        method to find and report by sample; "raise" refuses a non-finite final state."""
        if not isinstance(solver, Solver):
            hint = (f"; build one from a name with sciflow.core.registry.SOLVERS.build({solver!r})"
                    if isinstance(solver, str) else "")
            raise InputError(f"solver: expected a Solver object (e.g. sciflow.core.solvers.RK4()), got "
                             f"{type(solver).__name__}{hint}")
        _check_rows("x0", x0)
        if times is not None:
            grid = check_grid(times, x0.dtype)
        else:
            grid = torch.linspace(t0, t1, check_count("steps", steps) + 1, dtype=x0.dtype)
        with torch.no_grad():
            return solver.solve(velocity, x0, grid.to(x0.device), cond=cond, generator=generator, keep=keep,
                                non_finite=non_finite)  # type: ignore[arg-type]
