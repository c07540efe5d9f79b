"""Entropic OT at an absolute temperature, robust when the cost dwarfs the temperature.

``Sinkhorn`` (POT) needs thousands of iterations once the costs are thousands of times the regularisation
(the nearly deterministic regime of Schrödinger bridges with little noise). ``EntropicOT`` starts the
log-domain Sinkhorn iterations from the dual potentials of the exact (network simplex) solution, which are
already close to the entropic ones in that regime, stops at a marginal tolerance or an iteration cap, and
rounds the result onto the transport polytope (Altschuler, Weed & Rigollet 2017) so that both marginals hold
exactly whatever the stopping point.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from ..errors import InputError, check_in_range
from .base import Cost, PlanCoupling, squared_euclidean

__all__ = ["EntropicOT", "round_to_marginals", "sb_coupling"]


def round_to_marginals(plan: Tensor, a: Tensor, b: Tensor) -> Tensor:
    """The rounding of Altschuler et al. (2017, Alg. 2): a plan with row sums ``a`` and column sums ``b``
    within ||plan 1 - a||_1 + ||plan^T 1 - b||_1 of ``plan`` in L1."""
    p = plan * torch.clamp(a / plan.sum(1).clamp_min(1e-300), max=1.0)[:, None]
    p = p * torch.clamp(b / p.sum(0).clamp_min(1e-300), max=1.0)[None, :]
    ra, rb = (a - p.sum(1)).clamp_min(0), (b - p.sum(0)).clamp_min(0)
    mass = ra.sum()
    if float(mass) > 0:
        p = p + ra[:, None] * rb[None, :] / mass
    return p


class EntropicOT(PlanCoupling):
    """argmin_P <P, C> + eps KL(P | a b^T) over couplings of uniform marginals, at absolute ``eps``.

    Args:
        eps: temperature in the units of the cost (no normalisation: for a Schrödinger bridge the cost is
            -log p_ref(y | x) and eps = 1).
        tol: stop when the L1 error of the row marginal falls below ``tol``.
        max_iter: cap on Sinkhorn sweeps (the result is then rounded to exact marginals).
        warm_start: start from the exact OT duals (else from zero potentials).
    """

    def __init__(self, eps: float = 1.0, cost: Cost = squared_euclidean, *, tol: float = 1e-6,
                 max_iter: int = 500, warm_start: bool = True, replace: bool = True) -> None:
        super().__init__(cost, normalize_cost=False, replace=replace)
        self.eps = check_in_range("eps", eps, 0.0, low_open=True)
        self.tol = check_in_range("tol", tol, 0.0, low_open=True)
        if int(max_iter) < 0:
            raise InputError(f"max_iter: must be >= 0, got {max_iter}")
        self.max_iter = int(max_iter)
        self.warm_start = bool(warm_start)
        self.last_info: dict[str, float] = {}

    def solve(self, m: Tensor) -> Tensor:
        """Plan (n, k) for a cost matrix (n, k) (float64, on the cost's device)."""
        m = m.detach().to(torch.float64)
        n, k = m.shape
        la = torch.full((n,), -math.log(n), dtype=m.dtype, device=m.device)
        lb = torch.full((k,), -math.log(k), dtype=m.dtype, device=m.device)
        if self.warm_start:
            import ot  # POT only for this warm start; importing sciflow needs no POT

            _, log = ot.emd(np.full(n, 1.0 / n), np.full(k, 1.0 / k), m.cpu().numpy(), log=True)
            f = torch.as_tensor(log["u"], dtype=m.dtype, device=m.device)
            g = torch.as_tensor(log["v"], dtype=m.dtype, device=m.device)
        else:
            f = torch.zeros(n, dtype=m.dtype, device=m.device)
            g = torch.zeros(k, dtype=m.dtype, device=m.device)
        e = self.eps
        g = e * lb - e * torch.logsumexp((f[:, None] - m) / e, 0)
        err, it = float("inf"), 0
        while it < self.max_iter:
            f = e * la - e * torch.logsumexp((g[None, :] - m) / e, 1)
            g = e * lb - e * torch.logsumexp((f[:, None] - m) / e, 0)
            it += 1
            if it % 5 == 0 or it == self.max_iter:
                row = torch.logsumexp((f[:, None] + g[None, :] - m) / e, 1).exp()
                err = float((row - la.exp()).abs().sum())
                if err < self.tol:
                    break
        plan = torch.exp((f[:, None] + g[None, :] - m) / e)
        if not bool(torch.isfinite(plan).all()):
            raise InputError(f"EntropicOT: plan is not finite at eps={e}; check the cost matrix")
        self.last_info = {"iterations": it, "marginal_error": err}
        return round_to_marginals(plan, la.exp(), lb.exp())

    def plan(self, x0: Tensor, x1: Tensor) -> Tensor:
        return self.solve(self.cost_matrix(x0, x1))

    def __repr__(self) -> str:
        return f"EntropicOT(eps={self.eps:g})"


def sb_coupling(sigma: float, cost: Cost = squared_euclidean, **kwargs: object) -> EntropicOT:
    """The static Schrödinger-bridge coupling of a Brownian motion of diffusion ``sigma`` over unit time, the
    coupling that ``BrownianBridgePath(sigma)`` pairs with (SB-CFM): pi(x, y) proportional to
    exp(-|x - y|^2 / (2 sigma^2)) with the batch's uniform marginals, i.e. ``EntropicOT(eps=2 sigma^2)`` on the
    raw squared distances. ``Sinkhorn(reg=2 sigma^2)`` is not it: by default Sinkhorn divides the cost by its
    largest entry first (``normalize_cost=True``), so its reg is relative; ``Sinkhorn(reg=2 sigma^2,
    normalize_cost=False)`` is the same plan. ``kwargs`` go to ``EntropicOT`` (tol, max_iter, ...)."""
    sigma = check_in_range("sigma", sigma, 0.0)
    if sigma == 0:
        raise InputError("sigma: the Schrödinger bridge of sigma = 0 is exact OT; use ExactOT()")
    return EntropicOT(2.0 * sigma * sigma, cost, **kwargs)
