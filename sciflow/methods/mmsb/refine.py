"""Refinement step: maximum likelihood of the reference drift along fine-grained bridge trajectories.

For a path sampled every h, the Gaussian likelihood of the increments of dX = f_theta(X) dt + g(X) dW gives
the weighted least squares on finite differences

    L(theta) = mean over steps and paths of  sum_i (dX_i - fbar_theta,i h)^2 / (2 h g_i(X_t)^2)  + c_theta,

with fbar the drift over the step. Two schemes are implemented (``SCHEME``, ``drift_nll(scheme=)``):

* ``"trapezoid"`` (default): fbar = (f(X_t) + f(X_{t+h})) / 2 and the Itô correction
  c_theta = (h / 2) sum_i df_i/dx_i (X_t) per row, the exact divergence by autograd. Without the correction
  the trapezoid is biased: the noise in dX correlates with f(X_{t+h}), which adds -(h / 2) div f(X_t) per
  row, so the fit rewards a positive divergence and does not tend to the SDE's theta as h -> 0 (on a
  stationary OU path with theta = 1, sigma = 1 it gave A = +0.01 instead of -1). With the correction this is
  the discretised Girsanov log-likelihood in Stratonovich form. Its discretisation bias is O(h), like
  Euler's, with the opposite sign: on stationary OU paths A -> -2 theta / (1 + exp(-theta h)) against
  Euler's (exp(-theta h) - 1) / h. It was kept because on the repressilator benchmark the bridge/refinement
  rounds settle much closer to the true rates with it than with Euler (``docs/mmsb.md``).
* ``"euler"``: the left-point (Itô) drift fbar = f(X_t), c_theta = 0. Used above ``MAX_DIV_DIM``
  dimensions, where the d backward passes of the exact divergence would cost too much.

The correction assumes a diagonal diffusion evaluated at X_t (additive or multiplicative noise).
The diffusion g is fixed; only the drift is fitted. Parametric drifts are fitted full batch with L-BFGS
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

__all__ = ["MAX_DIV_DIM", "SCHEME", "Increments", "divergence", "drift_nll", "fit_drift", "increments"]

#: likelihood of the increments (see the module docstring)
SCHEME = "trapezoid"
#: above this dimension the exact divergence (d backward passes) is skipped: Euler
MAX_DIV_DIM = 16


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


def divergence(drift: nn.Module | Callable[[Tensor], Tensor], x: Tensor) -> tuple[Tensor, Tensor]:
    """f(x) (R, d) and its exact divergence sum_i df_i/dx_i (R,), differentiable in the drift's parameters
    (d reverse-mode passes with ``create_graph``)."""
    with torch.enable_grad():
        xi = x.detach().requires_grad_(True)
        f = drift(xi)
        div = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        if not f.requires_grad:
            return f, div
        for i in range(x.shape[1]):
            (gi,) = torch.autograd.grad(f[:, i].sum(), xi, create_graph=True, allow_unused=True)
            if gi is not None:
                div = div + gi[:, i]
    return f, div


def drift_nll(drift: nn.Module | Callable[[Tensor], Tensor], inc: Increments, rows: Tensor | None = None, *,
              scheme: str | None = None) -> Tensor:
    """Mean negative log-likelihood (up to constants) of the increments ``rows`` (all by default), with the
    Itô-corrected trapezoid (``"trapezoid"``) or the left-point Euler drift (``"euler"``); ``None``: the
    module's ``SCHEME`` up to ``MAX_DIV_DIM`` dimensions, Euler above."""
    if rows is None:
        x, x1, dx, w, h = inc.x, inc.x_next, inc.dx, inc.weight, inc.h
    else:
        x, x1, dx, w, h = inc.x[rows], inc.x_next[rows], inc.dx[rows], inc.weight[rows], inc.h[rows]
    scheme = scheme or (SCHEME if x.shape[1] <= MAX_DIV_DIM else "euler")
    if scheme == "euler":
        r = dx - drift(x) * h
        return (r * r * w / (2 * h)).sum(-1).mean()
    if scheme != "trapezoid":
        raise SciflowError(f"scheme: expected trapezoid or euler, got {scheme!r}")
    f0, div = divergence(drift, x)
    r = dx - 0.5 * (f0 + drift(x1)) * h
    return ((r * r * w / (2 * h)).sum(-1) + 0.5 * h[:, 0] * div).mean()


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
