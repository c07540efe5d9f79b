"""Chaining pairwise plans across K snapshots into whole paths (multi-marginal coupling)."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from ..errors import InputError
from ..random import multinomial
from .base import PlanCoupling

__all__ = ["MultiMarginalCoupling"]


class MultiMarginalCoupling:
    """Markov chain of pairwise plans: x_0 is drawn from snapshot 0 and each x_{k+1} from the plan row of
    x_k between snapshots k and k+1. ``couplings`` is one plan coupling for every interval or a list with
    one per interval (e.g. a cost that depends on the interval's reference dynamics)."""

    def __init__(self, couplings: PlanCoupling | Sequence[PlanCoupling]) -> None:
        items = [couplings] if isinstance(couplings, PlanCoupling) else couplings
        if not isinstance(items, Sequence) or not all(isinstance(c, PlanCoupling) for c in items):
            raise InputError(f"couplings: expected a plan coupling (ExactOT, Sinkhorn, EntropicOT, ...) or a list of "
                             f"them, got {type(couplings).__name__}; an independent coupling has no plan to chain")
        self.couplings = couplings

    def _coupling(self, k: int, n_intervals: int) -> PlanCoupling:
        if isinstance(self.couplings, PlanCoupling):
            return self.couplings
        if len(self.couplings) != n_intervals:
            raise InputError(f"couplings: expected {n_intervals} (one per interval), got {len(self.couplings)}")
        return self.couplings[k]

    def plans(self, snapshots: Sequence[Tensor]) -> list[Tensor]:
        """The K-1 pairwise plans; snapshot k is (N_k, ...), sizes may differ."""
        if len(snapshots) < 2:
            raise InputError(f"snapshots: need at least 2, got {len(snapshots)}")
        n = len(snapshots) - 1
        return [self._coupling(k, n).plan(snapshots[k], snapshots[k + 1]) for k in range(n)]

    def sample_indices(self, plans: Sequence[Tensor], n: int, *,
                       generator: torch.Generator | None = None) -> Tensor:
        """(K, n) row indices into each snapshot of n chained paths."""
        idx = [multinomial(plans[0].sum(1), n, generator=generator)]
        for p in plans:
            rows = p[idx[-1]]
            idx.append(multinomial(rows, 1, generator=generator).squeeze(1))
        return torch.stack(idx)

    def __call__(self, snapshots: Sequence[Tensor], n: int, *,
                 generator: torch.Generator | None = None) -> Tensor:
        """(K, n, ...) knots of n paths through every snapshot."""
        idx = self.sample_indices(self.plans(snapshots), n, generator=generator)
        return torch.stack([s[i] for s, i in zip(snapshots, idx)])
