"""Calibration: a last, global fit of a parametric reference against every training snapshot at once.

The bridge/refinement rounds see one interval at a time. For an oscillator that leaves its period loosely
pinned: a fraction of a percent in the rates shifts the phase by the last snapshot, and the rounds' fixed point
at a finite sample size is not the true rates (on the repressilator data it sits at beta ~ 9.85 instead of 10).
Calibration closes that gap with information the rounds do not use, the whole time span:

    theta* = argmin_theta  sum_k  E(law of X_{t_k} under the reference pushed from snapshot 0,  snapshot k),

where E is the energy distance (Székely & Rizzo 2013; an MMD with the kernel -|x - y|, so it needs no
bandwidth) on standardised coordinates. The law at t_k is represented by ``replicas`` Itô-Heun paths from
every cell of snapshot 0, with the same Brownian increments at every evaluation (common random numbers), so
the objective is a smooth deterministic function of theta and L-BFGS differentiates it through the solver.
This is the objective of SnapMMD (Berlinghieri et al. 2025, arXiv:2505.16082) with another kernel, started
from the MMSB estimate; the best parameters seen are kept, and only if they lower the objective (a trial step
whose paths blow up ends the search there).

Given a ``StageLog`` (``resume.py``; ``MMSB.fit`` with a checkpoint), every objective evaluation records its
parameters, value and gradient there and the checkpoint is written (one save, about 2 ms, per evaluation of
0.3 to 1 s on the shipped LV fit: under 1 % of the stage). A resumed calibration runs L-BFGS again from the same
start and takes the finished evaluations from the log, so the optimiser retraces its iterations, line searches
and best point, bit for bit, in milliseconds, and evaluates from where the interrupted one stopped.
"""
from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from ...core.errors import InputError
from ...core.random import make_generator
from ...core.training import progress
from ...domains.cells.dynamics import NoiseModel
from ...domains.cells.snapshots import Snapshots
from .predict import simulate
from .references import NETWORKS, build_reference

if TYPE_CHECKING:
    from .resume import StageLog

__all__ = ["MAX_CALIBRATED", "calibrate_reference", "check_calibration", "energy_distance"]

#: most parameters the calibration fits (full-batch L-BFGS, differentiated through the solver)
MAX_CALIBRATED = 64


def check_calibration(reference: str | nn.Module, dim: int | None = None,
                      kwargs: dict[str, Any] | None = None) -> None:
    """``InputError`` naming ``calibrate`` unless ``calibrate='energy'`` can fit ``reference`` (a name or a drift
    module): a parametric reference with 1..``MAX_CALIBRATED`` trainable parameters. The zero reference (no
    parameters) and the network references are refused by name; another name is built for ``dim``-dimensional
    data with ``kwargs`` when ``dim`` is given (a linear drift has d^2 + d parameters), else passes. ``MMSB``
    and the workflow check this before any work, so a fit is not refused after its rounds."""
    if isinstance(reference, str) and reference in NETWORKS + ("zero",):
        why = ("the zero reference (vanilla Schrödinger bridge) has no parameters" if reference == "zero" else
               f"{reference} is a network reference")
    else:
        if isinstance(reference, str):
            if dim is None:
                return
            reference = build_reference(reference, dim, **dict(kwargs or {}))
        n = sum(p.numel() for p in reference.parameters() if p.requires_grad)
        if 1 <= n <= MAX_CALIBRATED:
            return
        why = f"the reference has {n or 'no'} trainable parameters"
    raise InputError(f"calibrate: 'energy' fits a parametric reference with 1..{MAX_CALIBRATED} parameters, but "
                     f"{why}; use calibrate 'none' (or 'auto', which calibrates mechanistic references only)")


def energy_distance(x: Tensor, y: Tensor) -> Tensor:
    """Energy distance 2 E|X - Y| - E|X - X'| - E|Y - Y'| between two empirical measures (rows are points);
    >= 0, and 0 only for equal measures (V-statistic form)."""
    return _energy_terms(x, y) - torch.cdist(y, y).mean()


def _energy_terms(x: Tensor, y: Tensor) -> Tensor:
    """The part of the energy distance that depends on x: 2 E|X - Y| - E|X - X'|."""
    return 2 * torch.cdist(x, y).mean() - torch.cdist(x, x).mean()


class _Diverged(Exception):
    """A trial parameter set made the simulated paths non-finite."""


def _objective(drift: nn.Module, noise: NoiseModel, snaps: Snapshots, targets: list[tuple[Tensor, Tensor]],
               scale: Tensor, replicas: int, h: float, seed: int, grad: bool) -> Tensor:
    """Sum over later snapshots of the energy distance; ``targets`` holds each snapshot in scaled units with
    its own E|Y - Y'| (constant in theta, computed once)."""
    x0 = snaps.samples[0].to(torch.float64).repeat(replicas, 1)
    tr = simulate(lambda x, t: drift(x), noise, x0, float(snaps.times[0]), snaps.times[1:], dt=h,
                  generator=make_generator(seed), grad=grad)
    total = torch.zeros((), dtype=torch.float64, device=x0.device)
    for x, (y, yy) in zip(tr.states, targets):
        total = total + _energy_terms(x / scale, y) - yy
    return total


def calibrate_reference(drift: nn.Module, noise: NoiseModel, snaps: Snapshots, *, scale: Tensor | None = None,
                        replicas: int = 4, h: float = 0.01, max_iter: int = 40, seed: int = 0,
                        show_progress: bool = False, log: StageLog | None = None) -> dict[str, Any]:
    """Fit the parameters of ``drift`` in place by the energy distance above; returns the objective before and
    after, whether the new parameters were kept, and the time taken.

    Args:
        drift: a parametric reference (1..64 numbers: full-batch L-BFGS; ``check_calibration``).
        noise: the reference's diffusion g(x) (fixed).
        snaps: training snapshots; paths start from every cell of the first one.
        scale: per-dimension scale of the coordinates the distance is measured in (default: none).
        replicas: paths per starting cell. h: largest Itô-Heun step. seed: seed of the common noise.
        show_progress: a bar over the objective evaluations (L-BFGS makes at most 1.25 ``max_iter``).
        log: where the evaluations are recorded, and replayed from when the calibration resumes (module
            docstring).
    """
    check_calibration(drift)
    params = [p for p in drift.parameters() if p.requires_grad]
    if int(replicas) < 1:
        raise InputError(f"calibrate_replicas: must be >= 1, got {replicas}")
    if snaps.n_snapshots < 2:
        raise InputError("calibrate: needs at least 2 snapshots")
    dev = snaps.samples[0].device
    scale_t = torch.ones(snaps.dim, dtype=torch.float64, device=dev) if scale is None else \
        scale.to(dev, torch.float64)
    start = time.perf_counter()
    targets = []
    for k in range(1, snaps.n_snapshots):
        y = snaps.samples[k].to(torch.float64) / scale_t
        targets.append((y, torch.cdist(y, y).mean()))

    def value(grad: bool) -> Tensor:
        """The objective (with the parameters' gradients when ``grad``), or its value and gradients from ``log``."""
        key = [p.detach().clone() for p in params] if log is not None else []
        saved = log.replay(key) if log is not None else None
        if saved is not None:
            for p, gr in zip(params, saved["grads"]):
                p.grad = gr.to(p.device).clone()
            return torch.tensor(saved["loss"], dtype=torch.float64, device=dev)
        loss = _objective(drift, noise, snaps, targets, scale_t, int(replicas), float(h), int(seed), grad)
        if grad and bool(torch.isfinite(loss)):
            loss.backward()
        if log is not None and bool(torch.isfinite(loss)):
            log.add(key, loss=float(loss.detach()),
                    grads=[torch.zeros_like(p).cpu() if p.grad is None else p.grad.detach().cpu().clone()
                           for p in params] if grad else [])
        return loss

    try:
        before = float(value(False))
    except InputError:                   # the starting parameters already blow up: nothing to calibrate from
        before = float("inf")
    if not math.isfinite(before):
        return {"objective_before": before, "objective_after": before, "kept": False,
                "seconds": time.perf_counter() - start}
    best = {"loss": before, "params": [p.detach().clone() for p in params]}
    opt = torch.optim.LBFGS(params, lr=1.0, max_iter=int(max_iter), line_search_fn="strong_wolfe")
    bar = progress(total=opt.defaults["max_eval"], desc="mmsb calibration", enabled=show_progress, unit="eval")

    def closure() -> Tensor:
        opt.zero_grad()
        bar.update(1)
        loss = value(True)
        if not bool(torch.isfinite(loss)):
            raise _Diverged
        if float(loss.detach()) < best["loss"]:
            best.update(loss=float(loss.detach()), params=[p.detach().clone() for p in params])
        return loss

    try:
        opt.step(closure)
    except (_Diverged, InputError):      # a trial step made the paths blow up: keep the best point seen
        pass
    finally:
        bar.close()
    with torch.no_grad():
        for p, v in zip(params, best["params"]):
            p.copy_(v)
    kept = best["loss"] < before
    return {"objective_before": before, "objective_after": best["loss"], "kept": kept,
            "seconds": time.perf_counter() - start}
