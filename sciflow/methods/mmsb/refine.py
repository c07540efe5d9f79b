"""Refinement step: maximum likelihood of the reference drift along fine-grained bridge trajectories.

For a path sampled every h, the Gaussian likelihood of the increments of dX = f_theta(X) dt + g(X) dW gives
the weighted least squares on finite differences

    L(theta) = mean over steps and paths of  sum_i (dX_i - fbar_theta,i h)^2 / (2 h g_i(X_t)^2),

with fbar = (f(X_t) + f(X_{t+h})) / 2 (trapezoid rule: the drift's discretisation error is O(h^3) per step
instead of Euler's O(h^2), so theta is that of the continuous-time SDE, not of its Euler scheme). The
diffusion g is fixed; only the drift is fitted. Parametric drifts are fitted full batch with L-BFGS
(strong Wolfe line search); networks with AdamW minibatches through the core ``Trainer``, warm-started from
the previous round.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ...core.errors import SciflowError
from ...core.random import randint, randperm
from ...core.training import TrainConfig, Trainer

__all__ = ["Increments", "drift_nll", "fit_drift", "increments"]


@dataclass(frozen=True)
class Increments:
    """Rows (X_t, X_{t+h}, dX = X_{t+h} - X_t, 1 / g(X_t)^2, h) of sampled paths.

    x, x_next, dx, weight: (R, d); h: (R, 1) step of each row.
    """

    x: Tensor
    x_next: Tensor
    dx: Tensor
    weight: Tensor
    h: Tensor

    @property
    def n_rows(self) -> int:
        return int(self.x.shape[0])


def increments(paths: list[Tensor], steps: list[float], diffusion: Callable[[Tensor], Tensor], *,
               max_rows: int | None = None, generator: torch.Generator | None = None) -> Increments:
    """Flatten path pieces (B, T_k, d) with steps h_k into increments, subsampled to ``max_rows`` rows."""
    xs, xn, hs = [], [], []
    for p, h in zip(paths, steps):
        xs.append(p[:, :-1].reshape(-1, p.shape[-1]))
        xn.append(p[:, 1:].reshape(-1, p.shape[-1]))
        hs.append(torch.full((xs[-1].shape[0], 1), float(h), dtype=p.dtype, device=p.device))
    x, x1, h = torch.cat(xs), torch.cat(xn), torch.cat(hs)
    if max_rows is not None and x.shape[0] > max_rows:
        keep = randperm(x.shape[0], generator=generator, device=x.device)[:max_rows]
        x, x1, h = x[keep], x1[keep], h[keep]
    w = 1.0 / diffusion(x).pow(2)
    return Increments(x=x.detach(), x_next=x1.detach(), dx=(x1 - x).detach(), weight=w.detach(), h=h)


def drift_nll(drift: nn.Module | Callable[[Tensor], Tensor], inc: Increments, rows: Tensor | None = None) -> Tensor:
    """Mean Euler negative log-likelihood (up to constants) of the increments ``rows`` (all by default)."""
    if rows is None:
        x, x1, dx, w, h = inc.x, inc.x_next, inc.dx, inc.weight, inc.h
    else:
        x, x1, dx, w, h = inc.x[rows], inc.x_next[rows], inc.dx[rows], inc.weight[rows], inc.h[rows]
    f = drift(torch.cat([x, x1]))
    r = dx - 0.5 * (f[: x.shape[0]] + f[x.shape[0]:]) * h
    return (r * r * w / (2 * h)).sum(-1).mean()


def _fit_lbfgs(drift: nn.Module, inc: Increments, max_iter: int) -> float:
    params = [p for p in drift.parameters() if p.requires_grad]
    if not params:
        return float(drift_nll(drift, inc))
    start = [p.detach().clone() for p in params]
    opt = torch.optim.LBFGS(params, lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe",
                            tolerance_grad=1e-10, tolerance_change=1e-12, history_size=20)

    def closure() -> Tensor:
        opt.zero_grad()
        loss = drift_nll(drift, inc)
        if torch.isfinite(loss):
            loss.backward()
        return loss

    opt.step(closure)
    final = drift_nll(drift, inc).detach()
    if not bool(torch.isfinite(final)):  # a line search that left the domain: keep the previous round
        with torch.no_grad():
            for p, s in zip(params, start):
                p.copy_(s)
        raise SciflowError("refinement: the drift likelihood became non-finite; the reference class may not "
                           "fit these data (try another reference or initial parameters)")
    return float(final)


def _fit_network(drift: nn.Module, inc: Increments, steps: int, batch_size: int, lr: float, seed: int,
                 device: torch.device) -> float:
    n = inc.x.shape[0]

    def sample_batch(g: torch.Generator) -> Tensor:
        return randint(n, (min(batch_size, n),), generator=g)

    def loss_fn(model: nn.Module, rows: Tensor, g: torch.Generator) -> Tensor:
        return drift_nll(model, inc, rows.to(inc.x.device))

    cfg = TrainConfig(steps=steps, lr=lr, weight_decay=1e-4, grad_clip=10.0, ema_decay=None, seed=seed,
                      progress=False, desc="mmsb refine")
    Trainer(drift, loss_fn, cfg, device=device).fit(sample_batch)
    with torch.no_grad():
        return float(drift_nll(drift, inc))


def fit_drift(drift: nn.Module, inc: Increments, *, parametric: bool, max_iter: int = 100, steps: int = 500,
              batch_size: int = 4096, lr: float = 1e-3, seed: int = 0) -> float:
    """Fit ``drift`` in place by maximum likelihood on ``inc``; returns the final mean NLL."""
    drift.train()
    try:
        if parametric:
            return _fit_lbfgs(drift, inc, max_iter)
        return _fit_network(drift, inc, steps, batch_size, lr, seed, inc.x.device)
    finally:
        drift.eval()
