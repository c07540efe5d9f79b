"""Initial parameters of a mechanistic reference by multiple shooting on snapshot means.

The bridge/refinement alternation is a fixed-point iteration: from a reference far from the data (an
oscillator started with the wrong period) it can settle on a poor fixed point. Before the first bridge
step, the parameters of a small parametric drift are therefore started where the reference's own flow
already carries each observed snapshot's mean close to the next one:

    min_theta  sum_k || mean(Phi_theta(X_k, t_{k+1} - t_k)) - mean(X_{k+1}) ||^2 / s^2,

with Phi_theta the ODE flow (RK4), X_k snapshot k (subsampled to ``max_rows``) and s the pooled per-dimension
spread. Shooting over one interval at a time (not from t_0 to the end) keeps the loss smooth for oscillators.
Several log-uniform random starts are screened with a few L-BFGS iterations; the best are run to convergence.

One-interval gaps pin the flow locally but leave its period loosely determined: a small error in an
oscillator's frequency costs little per interval and adds up over the whole time range. Once the one-interval
fit has converged (so the parameters sit in the right basin), a polishing stage therefore shoots from every
snapshot to every later one, which weighs the phase accumulated over long times. The all-pairs loss contains
the one-interval terms; the polished parameters are kept when they lower it.

Given a ``StageLog`` (``resume.py``; ``MMSB.fit`` with a checkpoint), every L-BFGS run (each start's screening,
each kept start's refinement, the polish) records its loss and end point there and the checkpoint is written;
a resumed init draws the same starts and takes the finished runs from the log instead of running them again.
"""
from __future__ import annotations

import copy
import math

import torch
from torch import Tensor, nn

from ...core.random import rand, randperm
from ...domains.cells.snapshots import Snapshots
from .resume import StageLog, cpu_state

__all__ = ["flow", "shooting_groups", "shooting_init", "shooting_loss"]


def flow(drift: nn.Module, x: Tensor, duration: float, h: float) -> Tensor:
    """RK4 flow of dx/dt = drift(x) over ``duration`` with steps <= h (differentiable in the parameters)."""
    n = max(1, math.ceil(duration / h - 1e-9))
    hh = duration / n
    for _ in range(n):
        k1 = drift(x)
        k2 = drift(x + 0.5 * hh * k1)
        k3 = drift(x + 0.5 * hh * k2)
        k4 = drift(x + hh * k3)
        x = x + (hh / 6) * (k1 + 2 * k2 + 2 * k3 + k4)
    return x


def shooting_loss(drift: nn.Module, groups: list[tuple[Tensor, Tensor, Tensor, float]], scale: Tensor,
                  h: float) -> Tensor:
    """Sum over intervals of the squared, scaled gap between flowed start means and next-snapshot means.

    ``groups``: (starts (M, d), interval index of each start (M,), target means (I, d), duration); intervals
    of equal duration share one batched flow."""
    loss = torch.zeros((), dtype=scale.dtype, device=scale.device)
    for x, which, targets, dur in groups:
        end = flow(drift, x, dur, h)
        sums = torch.zeros_like(targets).index_add_(0, which, end)
        counts = torch.bincount(which, minlength=targets.shape[0]).to(end.dtype)[:, None]
        loss = loss + ((((sums / counts) - targets) / scale) ** 2).sum()
    return loss


def _lbfgs(trial: nn.Module, groups: list, scale: Tensor, h: float, max_iter: int) -> float:
    params = [p for p in trial.parameters() if p.requires_grad]
    opt = torch.optim.LBFGS(params, lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        opt.zero_grad()
        loss = shooting_loss(trial, groups, scale, h)
        if torch.isfinite(loss):
            loss.backward()
        return loss

    try:
        opt.step(closure)
        with torch.no_grad():
            final = float(shooting_loss(trial, groups, scale, h))
    except (RuntimeError, ValueError, IndexError):  # a start whose flow blew up
        return float("inf")
    return final if math.isfinite(final) else float("inf")


def shooting_groups(snapshots: Snapshots, span: int, max_rows: int,
                    generator: torch.Generator | None = None) -> list[tuple[Tensor, Tensor, Tensor, float]]:
    """The (starts, interval index, target means, duration) groups of ``shooting_loss`` for every pair of
    snapshots (k, j) with 1 <= j - k <= span; pairs of equal duration share a group."""
    rows = []
    for k in range(snapshots.n_snapshots - 1):
        x = snapshots.samples[k]
        if x.shape[0] > max_rows:
            x = x[randperm(x.shape[0], generator=generator)[:max_rows].to(x.device)]
        rows.append(x)
    by_duration: dict[float, list[tuple[int, int]]] = {}
    for k in range(snapshots.n_snapshots - 1):
        for j in range(k + 1, min(k + span, snapshots.n_snapshots - 1) + 1):
            dur = round(float(snapshots.times[j] - snapshots.times[k]), 12)
            by_duration.setdefault(dur, []).append((k, j))
    groups = []
    for dur, pairs in by_duration.items():
        xs = [rows[k] for k, _ in pairs]
        which = [torch.full((x.shape[0],), i, dtype=torch.long, device=x.device) for i, x in enumerate(xs)]
        targets = torch.stack([snapshots.samples[j].mean(0) for _, j in pairs])
        groups.append((torch.cat(xs), torch.cat(which), targets, dur))
    return groups


def shooting_init(drift: nn.Module, snapshots: Snapshots, *, n_starts: int = 12, low: float = 0.1,
                  high: float = 10.0, max_rows: int = 1000, h: float = 0.1, screen_iter: int = 10,
                  max_iter: int = 60, keep: int = 2, keep_given: bool = True, polish: bool = True,
                  generator: torch.Generator | None = None, log: StageLog | None = None) -> dict[str, float]:
    """Set the log-parameters of ``drift`` (e.g. ``LotkaVolterra``) in place to the best of ``n_starts``
    shooting fits: every start gets ``screen_iter`` L-BFGS iterations, the ``keep`` best then ``max_iter``
    more. The given parameters are one of the starts when ``keep_given``. With ``polish``, the winner is
    then refitted on all snapshot pairs (see the module docstring). Returns {"loss", "starts", "polished"}.
    ``log``: where the finished runs are recorded, and replayed from when the init resumes (module docstring)."""
    names = [n for n, p in drift.named_parameters() if p.requires_grad]
    if not names:
        return {"loss": float("nan"), "starts": 0, "polished": False}

    def run(trial: nn.Module, groups: list, iters: int) -> float:
        """``_lbfgs`` on ``trial``, or the result of the same run from ``log``."""
        key = [v.detach().clone() for v in trial.state_dict().values()] if log is not None else []
        saved = log.replay(key) if log is not None else None
        if saved is not None:
            trial.load_state_dict(saved["state"])
            return float(saved["loss"])
        loss = _lbfgs(trial, groups, scale, h, iters)
        if log is not None:
            log.add(key, loss=loss, state=cpu_state(trial))
        return loss

    groups = shooting_groups(snapshots, 1, max_rows, generator)
    allx, _ = snapshots.stacked()
    scale = allx.std(0).clamp_min(1e-8)
    candidates: list[dict[str, Tensor]] = []
    if keep_given:
        candidates.append({k: v.detach().clone() for k, v in drift.state_dict().items()})
    for _ in range(max(0, n_starts - len(candidates))):
        state = {k: v.detach().clone() for k, v in drift.state_dict().items()}
        for name in names:
            u = rand(state[name].shape, generator=generator, dtype=torch.float64)
            state[name] = (math.log(low) + u * (math.log(high) - math.log(low))).to(state[name])
        candidates.append(state)
    screened = []
    for state in candidates:
        trial = copy.deepcopy(drift)
        trial.load_state_dict(state)
        screened.append((run(trial, groups, screen_iter), trial))
    screened.sort(key=lambda r: r[0])
    best_loss, best = screened[0]
    for loss, trial in screened[:keep]:
        if not math.isfinite(loss):
            continue
        final = run(trial, groups, max_iter)
        if final < best_loss or trial is best:
            best_loss, best = final, trial
    polished = False
    if polish and snapshots.n_snapshots > 2 and math.isfinite(best_loss):
        long = shooting_groups(snapshots, snapshots.n_snapshots - 1, max_rows, generator)
        trial = copy.deepcopy(best)
        with torch.no_grad():
            before = float(shooting_loss(best, long, scale, h))
        after = run(trial, long, max_iter)
        if after < before:
            best, polished = trial, True
            with torch.no_grad():
                best_loss = float(shooting_loss(best, groups, scale, h))
    drift.load_state_dict(best.state_dict())
    return {"loss": best_loss, "starts": len(candidates), "polished": polished}
