"""Predictions at any time: simulate the refined reference SDE, or a learned bridge drift, forward from the
first observed snapshot.

``reference``: dX = f_theta(X) dt + g(X) dW with the fitted theta (time homogeneous: it extrapolates beyond
the last snapshot). ``bridge``: a time-dependent drift b(x, t) regressed on the bridge paths' increments
(bridge matching of the Markovian projection, E[dX | X_t = x] / dt), simulated with the same diffusion; it
is what a vanilla Schrödinger bridge (zero reference) predicts and only covers [t_0, t_{K-1}].
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from ...core.errors import InputError
from ...core.random import randint
from ...core.solvers.sde_heun import ItoHeun
from ...core.training import TrainConfig, Trainer
from ...core.trajectory import Trajectory
from ...domains.cells.simulate import MAX_STEPS, check_steps
from ...nn.mlp import TimeConditionedMLP

__all__ = ["MAX_STEPS", "BridgeDrift", "SimulationDiverged", "fit_bridge_drift", "simulate"]


class SimulationDiverged(InputError):
    """The simulated states of an SDE became non-finite (a drift or diffusion that blows up)."""


def check_times(times: Sequence[float] | Tensor, t0: float) -> Tensor:
    """``times`` (a number or a 1-D sequence) as a 1-D float64 tensor of at least one finite time, none before
    ``t0``; a nested sequence (2-D or more) is refused rather than flattened."""
    try:
        t = torch.as_tensor(times, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        raise InputError(f"times: expected numbers, got {times!r}") from None
    if t.dim() > 1:
        raise InputError(f"times: expected a number or a 1-D sequence of times, got shape {tuple(t.shape)}")
    t = t.reshape(-1)
    if t.numel() == 0:
        raise InputError("times: need at least one time")
    if not bool(torch.isfinite(t).all()):
        raise InputError(f"times: must be finite, got {t.tolist()}")
    if float(t.min()) < t0 - 1e-12:
        raise InputError(f"times: predictions start from the first snapshot at t={t0:g}; got {float(t.min()):g}")
    return t


def simulate(drift: Callable[[Tensor, Tensor], Tensor], diffusion: Callable[[Tensor], Tensor], x0: Tensor, t0: float,
             times: Sequence[float] | Tensor, *, dt: float, generator: torch.Generator | None = None,
             grad: bool = False) -> Trajectory:
    """States at ``times`` (each >= t0, any order) of dX = drift(X, t) dt + g(X) dW from x0 at t0, with
    Itô-Heun steps no longer than ``dt``. Returns a Trajectory with the times sorted ascending. ``grad``: keep
    the autograd graph (to differentiate the states with respect to the drift's parameters)."""
    t = torch.unique(check_times(times, t0))
    if not (math.isfinite(dt) and dt > 0):
        raise InputError(f"dt: the simulation step must be a positive number, got {dt!r}")
    check_steps(float(t0), float(t[-1]), dt)
    solver = ItoHeun(lambda x, tt: diffusion(x))
    field = lambda x, tt: drift(x, tt).to(x.dtype)        # a float32 custom drift on float64 states
    x, cur, out = x0, float(t0), []
    with torch.set_grad_enabled(grad):
        for target in t.tolist():
            span = target - cur
            if span > 1e-12:
                if cur > float(t0) and not bool(torch.isfinite(x).all()):
                    # the paths blew up on the way to an earlier time: say so (the solver would report its own
                    # starting state, "x0", which the caller never gave)
                    bad = int((~torch.isfinite(x)).sum())
                    raise SimulationDiverged(f"the simulated SDE diverged: {bad} state value(s) became non-finite "
                                             f"by t={cur:g}")
                n = max(1, int(math.ceil(span / dt - 1e-9)))
                solver.substeps = n
                grid = torch.tensor([cur, target], dtype=x.dtype, device=x.device)
                x = solver.solve(field, x, grid, generator=generator, keep="last").states[0]
                cur = target
            out.append(x)
    return Trajectory(times=t.to(x0.dtype), states=torch.stack(out), info={"dt": dt, "start_time": t0})


class BridgeDrift(nn.Module):
    """b(x, t): a time-conditioned MLP on standardised x and time tau = (t - t_start) / (t_end - t_start),
    returning a drift in data units."""

    symmetry = "none"

    def __init__(self, dim: int, hidden: Sequence[int] = (64, 64, 64), activation: str = "selu") -> None:
        super().__init__()
        self.net = TimeConditionedMLP(dim, 0, tuple(hidden), activation=activation, time_embedding="raw")
        self.register_buffer("mean", torch.zeros(dim, dtype=torch.float64))
        self.register_buffer("scale", torch.ones(dim, dtype=torch.float64))
        self.register_buffer("span", torch.tensor([0.0, 1.0], dtype=torch.float64))

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        dtype = self.mean.dtype if not list(self.net.parameters()) else next(self.net.parameters()).dtype
        z = ((x - self.mean.to(x)) / self.scale.to(x)).to(dtype)
        tau = ((t - self.span[0].to(t)) / (self.span[1] - self.span[0]).to(t)).to(dtype)
        return self.net(z, tau).to(x.dtype) * self.scale.to(x)


def fit_bridge_drift(net: BridgeDrift, pieces: list[Tensor], steps: list[float], times: Tensor, *,
                     mean: Tensor, scale: Tensor, train_steps: int = 2000, batch_size: int = 512, lr: float = 1e-3,
                     seed: int = 0, progress: bool = False) -> float:
    """Regress (X_{t+h} - X_t) / h on (X_t, t) along bridge pieces (n, S_k + 1, d); returns the final loss."""
    xs, ts, vs = [], [], []
    for k, (p, h) in enumerate(zip(pieces, steps)):
        s = p.shape[1] - 1
        tk = float(times[k]) + h * torch.arange(s, dtype=p.dtype)
        xs.append(p[:, :-1].reshape(-1, p.shape[-1]))
        vs.append(((p[:, 1:] - p[:, :-1]) / h).reshape(-1, p.shape[-1]))
        ts.append(tk.repeat(p.shape[0]))
    x, t, v = torch.cat(xs), torch.cat(ts), torch.cat(vs)
    with torch.no_grad():
        net.mean.copy_(mean)
        net.scale.copy_(scale)
        net.span.copy_(torch.stack([times[0], times[-1]]).to(torch.float64))
    n = x.shape[0]

    def sample_batch(g: torch.Generator) -> Tensor:
        return randint(n, (batch_size,), generator=g)

    def loss_fn(model: nn.Module, rows: Tensor, g: torch.Generator) -> Tensor:
        pred = model(x[rows], t[rows])
        return (((pred - v[rows]) / net.scale.to(pred)) ** 2).mean()

    cfg = TrainConfig(steps=train_steps, lr=lr, lr_schedule="cosine", ema_decay=None, seed=seed, progress=progress,
                      desc="mmsb bridge drift")
    res = Trainer(net, loss_fn, cfg, device="cpu").fit(sample_batch)
    net.eval()
    return res.final_loss
