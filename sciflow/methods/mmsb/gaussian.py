"""Gaussian (linear-noise) approximation of a reference SDE dX = f(X) dt + g(X) dW and its bridges.

Started at x, the reference is approximated by X_t = m_t + delta_t with the mean path dm/dt = f(m) and the
linearised fluctuation d delta = J(m_t) delta dt + g(m_t) dW (J = df/dx), a Gaussian process:

    P' = J P + P J^T + diag(g(m)^2),   P(0) = 0           (covariance of delta_t)
    Psi' = -J^T Psi,                  Psi(0) = I          (Psi = Phi^{-T}, Phi the state-transition matrix)

Cov(delta_t, delta_T) = P_t Phi(T, t)^T = N_t Phi_T^T with N_t = P_t Psi_t. The transition density
p_ref(y | x) ~= Normal(y; m_T, P_T) gives the cost -log p_ref of the bridge step, and conditioning the
Gaussian process on its end value (Matheron's rule) gives a bridge from x to y:

    X^bridge_t = X^free_t + N_t N_T^{-1} (y - X^free_T),

where X^free is a draw of the reference itself (Euler-Maruyama from x). For a linear drift with additive
noise the approximation is exact and so is the bridge; for a nonlinear drift it is the linear-noise
approximation of van Kampen, accurate when the noise is small against the drift's curvature.
All ODEs are integrated with classical RK4 on a fixed grid; free paths use the Itô-Heun scheme.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from ...core.errors import SciflowError
from ...core.solvers.sde_heun import ItoHeun

__all__ = ["Linearization", "grid_steps", "jacobian", "linearize", "sample_bridges", "simulate_free", "transition_cost"]

Diffusion = Callable[[Tensor], Tensor]


def jacobian(drift: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """(B, d, d) Jacobian df_i/dx_j of a row-wise drift at each row of x: the drift's own closed form when it
    has a ``jacobian`` method, else d reverse-mode passes."""
    if hasattr(drift, "jacobian"):
        with torch.no_grad():
            return drift.jacobian(x)
    with torch.enable_grad():
        xi = x.detach().requires_grad_(True)
        y = drift(xi)
        if not y.requires_grad:
            return torch.zeros(x.shape[0], x.shape[1], x.shape[1], dtype=x.dtype, device=x.device)
        rows = []
        for i in range(x.shape[1]):
            (gi,) = torch.autograd.grad(y[:, i].sum(), xi, retain_graph=i < x.shape[1] - 1, allow_unused=True)
            rows.append(torch.zeros_like(x) if gi is None else gi)
    return torch.stack(rows, 1).detach()


@dataclass(frozen=True)
class Linearization:
    """End values of the linear-noise approximation from each start row over one interval.

    mean: (B, d) m_T.  cov: (B, d, d) P_T.  gain: (B, d, d) N_T = P_T Psi_T.
    """

    mean: Tensor
    cov: Tensor
    gain: Tensor


def _rhs(drift: Callable[[Tensor], Tensor], diffusion: Diffusion, m: Tensor, p: Tensor,
         psi: Tensor | None) -> tuple[Tensor, Tensor, Tensor | None]:
    with torch.no_grad():
        fm = drift(m)
    jm = jacobian(drift, m)
    q = torch.diag_embed(diffusion(m) ** 2)
    jp = jm @ p
    dp = jp + jp.transpose(1, 2) + q
    dpsi = -jm.transpose(1, 2) @ psi if psi is not None else None
    return fm.detach(), dp, dpsi


def _rk4_step(drift: Callable[[Tensor], Tensor], diffusion: Diffusion, m: Tensor, p: Tensor, psi: Tensor | None,
              h: float) -> tuple[Tensor, Tensor, Tensor | None]:
    k1 = _rhs(drift, diffusion, m, p, psi)
    k2 = _rhs(drift, diffusion, m + 0.5 * h * k1[0], p + 0.5 * h * k1[1],
              None if psi is None else psi + 0.5 * h * k1[2])
    k3 = _rhs(drift, diffusion, m + 0.5 * h * k2[0], p + 0.5 * h * k2[1],
              None if psi is None else psi + 0.5 * h * k2[2])
    k4 = _rhs(drift, diffusion, m + h * k3[0], p + h * k3[1], None if psi is None else psi + h * k3[2])
    m = m + (h / 6) * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0])
    p = p + (h / 6) * (k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1])
    p = 0.5 * (p + p.transpose(1, 2))
    if psi is not None:
        psi = psi + (h / 6) * (k1[2] + 2 * k2[2] + 2 * k3[2] + k4[2])
    return m, p, psi


def grid_steps(duration: float, h: float) -> tuple[int, float]:
    """(n, duration / n): the fewest equal steps no longer than h."""
    n = max(1, int(math.ceil(duration / h - 1e-9)))
    return n, duration / n


def linearize(drift: Callable[[Tensor], Tensor], diffusion: Diffusion, x0: Tensor, duration: float,
              h: float) -> Linearization:
    """Linear-noise approximation from each row of x0 (B, d) over ``duration`` with RK4 steps <= h."""
    n, hh = grid_steps(duration, h)
    b, d = x0.shape
    m = x0.detach().clone()
    p = torch.zeros(b, d, d, dtype=x0.dtype, device=x0.device)
    psi = torch.eye(d, dtype=x0.dtype, device=x0.device).expand(b, d, d).clone()
    for _ in range(n):
        m, p, psi = _rk4_step(drift, diffusion, m, p, psi, hh)
    return Linearization(mean=m, cov=p, gain=p @ psi)


def _jittered(cov: Tensor, rel: float = 1e-9) -> Tensor:
    d = cov.shape[-1]
    tr = torch.diagonal(cov, dim1=-2, dim2=-1).sum(-1).clamp_min(1e-300)
    eye = torch.eye(d, dtype=cov.dtype, device=cov.device)
    return cov + (rel * tr / d + 1e-300)[..., None, None] * eye


def _cholesky(cov: Tensor) -> Tensor:
    """Lower Cholesky factors of (B, d, d) covariances. The exact LNA covariance is positive semi-definite;
    RK4 on a stiff drift can leave it slightly indefinite, so a failed factor is retried on the matrix with its
    eigenvalues raised to 1e-9 of its trace. A non-finite covariance means the drift itself diverged."""
    if not bool(torch.isfinite(cov).all()):
        raise SciflowError("reference: its linear-noise covariance is not finite: the drift diverges over a "
                           "snapshot interval (too few cells per snapshot to pin it down, or a sigma far too "
                           "small for the data); pass a numeric sigma or use more cells")
    cov = _jittered(cov)
    chol, info = torch.linalg.cholesky_ex(cov)
    bad = info != 0
    if bool(bad.any()):
        evals, evecs = torch.linalg.eigh(cov[bad])
        floor = 1e-9 * evals.abs().sum(-1, keepdim=True).clamp_min(1e-300)
        fixed = (evecs * evals.clamp_min(floor)[..., None, :]) @ evecs.transpose(-1, -2)
        chol = chol.clone()
        chol[bad] = torch.linalg.cholesky(0.5 * (fixed + fixed.transpose(-1, -2)))
    return chol


def transition_cost(lin: Linearization, y: Tensor) -> Tensor:
    """(B, M) matrix -log Normal(y_j; m_i, P_i) for start rows i and end rows y (M, d), i.e. the
    reference's negative log transition density under the Gaussian approximation."""
    chol = _cholesky(lin.cov)                                           # (B, d, d)
    r = y[None, :, :] - lin.mean[:, None, :]                            # (B, M, d)
    z = torch.linalg.solve_triangular(chol, r.transpose(1, 2), upper=False)   # (B, d, M)
    logdet = 2 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)    # (B,)
    d = y.shape[1]
    return 0.5 * (z * z).sum(1) + 0.5 * logdet[:, None] + 0.5 * d * math.log(2 * math.pi)


def simulate_free(drift: Callable[[Tensor], Tensor], diffusion: Diffusion, x0: Tensor, duration: float, h: float,
                  *, generator: torch.Generator | None = None) -> Tensor:
    """(B, n+1, d) path of the reference from x0 on n equal steps <= h (Itô scheme with a Heun drift)."""
    n, _ = grid_steps(duration, h)
    grid = torch.linspace(0.0, float(duration), n + 1, dtype=x0.dtype, device=x0.device)
    solver = ItoHeun(lambda x, t: diffusion(x))
    with torch.no_grad():
        traj = solver.solve(lambda x, t: drift(x).to(x.dtype), x0, grid, generator=generator)  # float32 drifts too
    return traj.states.transpose(0, 1)


def _gains(drift: Callable[[Tensor], Tensor], diffusion: Diffusion, x0: Tensor, duration: float, n_fine: int,
           h_lna: float) -> Tensor:
    """(B, n_fine+1, d, d) gains N_t on the fine grid, from RK4 on a grid of steps <= h_lna, interpolated
    linearly in time (N_t is smooth: it has a continuous derivative)."""
    nc = min(grid_steps(duration, h_lna)[0], n_fine)
    hc = duration / nc
    b, d = x0.shape
    m = x0.detach().clone()
    p = torch.zeros(b, d, d, dtype=x0.dtype, device=x0.device)
    psi = torch.eye(d, dtype=x0.dtype, device=x0.device).expand(b, d, d).clone()
    coarse = [p @ psi]
    for _ in range(nc):
        m, p, psi = _rk4_step(drift, diffusion, m, p, psi, hc)
        coarse.append(p @ psi)
    coarse_t = torch.stack(coarse, 1)                                   # (B, nc+1, d, d)
    if nc == n_fine:
        return coarse_t
    pos = torch.arange(n_fine + 1, dtype=x0.dtype, device=x0.device) * (nc / n_fine)
    lo = pos.floor().long().clamp(max=nc - 1)
    w = (pos - lo.to(pos.dtype)).reshape(1, -1, 1, 1)
    return coarse_t[:, lo] * (1 - w) + coarse_t[:, lo + 1] * w


def sample_bridges(drift: Callable[[Tensor], Tensor], diffusion: Diffusion, x0: Tensor, y: Tensor,
                   duration: float, h: float, *, h_lna: float = 0.05,
                   generator: torch.Generator | None = None) -> Tensor:
    """(B, n+1, d) bridges of the reference from x0 (B, d) at time 0 to y (B, d) at ``duration``.

    A free reference path is drawn on steps <= h, then pinned to y by the Gaussian gain N_t N_T^{-1} of the
    linear-noise approximation (exact for linear drift and additive noise; computed with RK4 steps <= h_lna
    and interpolated to the fine grid). The first row is x0, the last is y.
    """
    free = simulate_free(drift, diffusion, x0, duration, h, generator=generator)
    n, _ = grid_steps(duration, h)
    gain = _gains(drift, diffusion, x0, duration, n, h_lna)             # (B, n+1, d, d)
    end = _jittered(gain[:, -1] @ gain[:, -1].transpose(1, 2), 1e-12)
    # w = N_T^{-1} r computed as N_T^T (N_T N_T^T)^{-1} r for stability when N_T is badly scaled
    r = (y - free[:, -1]).unsqueeze(-1)
    w = gain[:, -1].transpose(1, 2) @ torch.linalg.solve(end, r)        # (B, d, 1)
    bridge = free + (gain @ w.unsqueeze(1)).squeeze(-1)
    bridge[:, -1] = y
    return bridge
