"""Exact and entropic optimal-transport couplings through POT (CPU and CUDA tensors)."""
from __future__ import annotations

import torch
from torch import Tensor

from ..errors import InputError, check_in_range
from .base import Cost, PlanCoupling, squared_euclidean

__all__ = ["ExactOT", "Sinkhorn"]


def _uniform(n: int, like: Tensor) -> Tensor:
    return torch.full((n,), 1.0 / n, dtype=like.dtype, device=like.device)


class ExactOT(PlanCoupling):
    """Exact OT (network simplex, ``ot.emd``). With equal batch sizes the plan is a permutation and the
    coupling returns x1 reordered by it, each row used once (no resampling); else pairs are drawn from the plan."""

    def __init__(self, cost: Cost = squared_euclidean, *, normalize_cost: bool = True, replace: bool = True,
                 num_iter_max: int = 1_000_000) -> None:
        super().__init__(cost, normalize_cost=normalize_cost, replace=replace)
        self.num_iter_max = int(num_iter_max)

    def plan(self, x0: Tensor, x1: Tensor) -> Tensor:
        m = self.cost_matrix(x0, x1).detach()
        # the network simplex runs on the CPU in float64 whatever the input: hand POT numpy arrays directly
        # (its torch backend would convert them on every call) and bring the plan back to the cost's device
        cost = m.to("cpu", torch.float64).numpy()
        import ot  # POT: imported where used, so importing sciflow needs no POT (a bare GPU machine)

        p = ot.emd(ot.unif(cost.shape[0]), ot.unif(cost.shape[1]), cost, numItermax=self.num_iter_max)
        return torch.from_numpy(p).to(m.device)

    def assignment(self, x0: Tensor, x1: Tensor) -> Tensor:
        """(B,) index j(i) of the x1 row matched to x0 row i (equal batch sizes only)."""
        if x0.shape[0] != x1.shape[0]:
            raise InputError(f"x0/x1: an assignment needs equal batch sizes, got {x0.shape[0]} and {x1.shape[0]}")
        return self.plan(x0, x1).argmax(dim=1)

    def indices(self, x0: Tensor, x1: Tensor, *, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        if x0.shape[0] == x1.shape[0]:
            return torch.arange(x0.shape[0], device=x0.device), self.assignment(x0, x1).to(x1.device)
        return super().indices(x0, x1, generator=generator)

    def __repr__(self) -> str:
        return f"ExactOT(cost={getattr(self.cost, '__name__', self.cost)})"


class Sinkhorn(PlanCoupling):
    """Entropic OT (``ot.sinkhorn``) with regularisation ``reg`` (relative to the largest cost when
    ``normalize_cost``). Pairs are drawn from the plan with the caller's generator."""

    def __init__(self, reg: float = 0.05, cost: Cost = squared_euclidean, *, normalize_cost: bool = True,
                 replace: bool = True, method: str = "sinkhorn_log", num_iter_max: int = 2000,
                 stop_threshold: float = 1e-7) -> None:
        super().__init__(cost, normalize_cost=normalize_cost, replace=replace)
        self.reg = check_in_range("reg", reg, 0.0, low_open=True)
        if method not in ("sinkhorn", "sinkhorn_log", "sinkhorn_stabilized"):
            raise InputError(f"method: expected sinkhorn, sinkhorn_log or sinkhorn_stabilized, got {method!r}")
        self.method = method
        self.num_iter_max = int(num_iter_max)
        self.stop_threshold = float(stop_threshold)

    def plan(self, x0: Tensor, x1: Tensor) -> Tensor:
        m = self.cost_matrix(x0, x1).detach()
        m = m.to(torch.float64) if m.device.type == "cpu" else m
        import ot

        p = ot.sinkhorn(_uniform(x0.shape[0], m), _uniform(x1.shape[0], m), m, self.reg, method=self.method,
                        numItermax=self.num_iter_max, stopThr=self.stop_threshold)
        if not bool(torch.isfinite(p).all()):
            raise InputError(f"Sinkhorn: plan is not finite at reg={self.reg}; raise reg or use method='sinkhorn_log'")
        return p

    def __repr__(self) -> str:
        return f"Sinkhorn(reg={self.reg})"
