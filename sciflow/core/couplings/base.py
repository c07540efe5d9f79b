"""Couplings pair x0 with x1. OT lives only here; the cost is injected."""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

import torch
from torch import Tensor

from ..errors import InputError
from ..random import multinomial, rand

__all__ = ["Cost", "Coupling", "IndependentCoupling", "PlanCoupling", "sample_plan", "squared_euclidean"]

#: A cost maps x0 (B0, ...) and x1 (B1, ...) to a (B0, B1) matrix.
Cost = Callable[[Tensor, Tensor], Tensor]


def squared_euclidean(x0: Tensor, x1: Tensor) -> Tensor:
    """(B0, B1) squared Euclidean distances between flattened rows.

    Computed as |a|^2 + |b|^2 - 2 a.b after removing the joint mean (distances do not change) and in float64,
    so that data far from the origin keeps its distances (in float32 a cloud at 1e3 loses them to rounding);
    returned in the inputs' dtype."""
    a, b = x0.reshape(x0.shape[0], -1), x1.reshape(x1.shape[0], -1)
    if a.shape[1] != b.shape[1]:
        raise InputError(f"x0/x1: rows have {a.shape[1]} and {b.shape[1]} features; a cost needs the same number")
    out_dtype = torch.promote_types(a.dtype, b.dtype)
    a, b = a.to(torch.float64), b.to(torch.float64)
    mean = torch.cat([a, b]).mean(0, keepdim=True)
    a, b = a - mean, b - mean
    d = (a * a).sum(1, keepdim=True) + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return d.clamp_min(0).to(out_dtype)


#: torch.multinomial draws from at most 2**24 categories
_MULTINOMIAL_MAX = 2 ** 24


def sample_plan(plan: Tensor, n: int, *, generator: torch.Generator | None = None,
                replace: bool = True) -> tuple[Tensor, Tensor]:
    """Draw n index pairs (i, j) with probability plan[i, j] (the plan need not be normalised).

    Plans with more than 2**24 entries (torch.multinomial's limit) are drawn in two stages with replacement
    (row i from the row sums, then j from row i) and by Gumbel top-k without."""
    p = plan.clamp_min(0)
    if not bool(p.sum() > 0):
        raise InputError("plan: has no positive mass")
    b1 = plan.shape[1]
    if not replace and int(n) > int((p > 0).sum()):     # torch.multinomial no longer refuses it: it drew
        raise InputError(f"n: cannot draw {n} distinct pairs from a plan with {int((p > 0).sum())} positive "
                         f"entries")                      # pairs of zero mass
    if p.numel() <= _MULTINOMIAL_MAX:
        idx = multinomial(p.reshape(-1), n, replacement=replace, generator=generator)
        return idx // b1, idx % b1
    if replace:
        i = multinomial(p.sum(1), n, replacement=True, generator=generator)
        j = multinomial(p[i], 1, replacement=True, generator=generator)[:, 0]
        return i, j
    u = rand(p.shape, generator=generator, device=p.device, dtype=torch.float64).clamp_min(1e-300)
    keys = torch.log(p.to(torch.float64)) - torch.log(-torch.log(u))
    idx = torch.topk(keys.reshape(-1), int(n)).indices
    return idx // b1, idx % b1


class Coupling(ABC):
    """Pairs rows of x0 with rows of x1 and returns the paired batches.

    ``indices`` gives the row indices (i, j) of the pairs, so that anything attached to the rows (conditions,
    graph data) can follow them; ``__call__`` returns (x0[i], x1[j]).
    """

    @abstractmethod
    def indices(self, x0: Tensor, x1: Tensor, *, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """(n,), (n,) row indices into x0 and x1 of the paired rows."""

    def __call__(self, x0: Tensor, x1: Tensor, *, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        i, j = self.indices(x0, x1, generator=generator)
        return x0[i], x1[j]


class IndependentCoupling(Coupling):
    """The product coupling: x0 and x1 are independent draws, kept as given (I-CFM)."""

    def indices(self, x0: Tensor, x1: Tensor, *, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        if x0.shape[0] != x1.shape[0]:
            raise InputError(f"x0/x1: batch sizes differ, {x0.shape[0]} vs {x1.shape[0]}")
        r = torch.arange(x0.shape[0], device=x0.device)
        return r, r

    def __call__(self, x0: Tensor, x1: Tensor, *, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        self.indices(x0, x1)
        return x0, x1

    def __repr__(self) -> str:
        return "IndependentCoupling()"


class PlanCoupling(Coupling):
    """A coupling defined by a transport plan between the empirical measures of the two batches.

    Args:
        cost: (B0, ...), (B1, ...) -> (B0, B1) cost matrix (default squared Euclidean).
        normalize_cost: divide the cost by its maximum before solving (numerical stability; the plan of
            exact OT is unchanged, a Sinkhorn regularisation is then relative to the largest cost).
        replace: draw the returned pairs with replacement from the plan.
    """

    def __init__(self, cost: Cost = squared_euclidean, *, normalize_cost: bool = True, replace: bool = True) -> None:
        self.cost = cost
        self.normalize_cost = normalize_cost
        self.replace = replace

    def cost_matrix(self, x0: Tensor, x1: Tensor) -> Tensor:
        for name, x in (("x0", x0), ("x1", x1)):
            if x.dim() == 0 or x.shape[0] == 0:
                raise InputError(f"{name}: an OT coupling needs at least one row, got shape {tuple(x.shape)}")
        m = self.cost(x0, x1)
        if m.shape != (x0.shape[0], x1.shape[0]):
            raise InputError(f"cost: expected a ({x0.shape[0]}, {x1.shape[0]}) matrix, got {tuple(m.shape)}")
        if not bool(torch.isfinite(m).all()):
            raise InputError("cost: matrix holds non-finite values")
        if self.normalize_cost:
            top = m.max()
            if top > 0:
                m = m / top
        return m

    @abstractmethod
    def plan(self, x0: Tensor, x1: Tensor) -> Tensor:
        """(B0, B1) plan with row sums 1/B0 and column sums 1/B1."""

    def indices(self, x0: Tensor, x1: Tensor, *, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        i, j = sample_plan(self.plan(x0, x1), x0.shape[0], generator=generator, replace=self.replace)
        return i.to(x0.device), j.to(x1.device)
