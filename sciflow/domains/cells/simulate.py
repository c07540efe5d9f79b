"""Snapshot data with a known truth: simulate a population SDE dX = f(X) dt + g(X) dW and observe a fresh,
independent group of particles at each time (no individual is followed, as in the benchmark files).

    snaps = simulate_snapshots(LotkaVolterra(1.0, 0.4, 0.4, 0.1), make_noise("multiplicative", 0.02),
                               box=([5, 4], [5.1, 4.1]), times=range(11), n=200, generator=g)
    write_snapshot_npz("lv.npz", snaps)      # the (Xs, dts) layout of sciflow.data.snapshots
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from ...core.errors import InputError, check_in_range
from ...core.random import rand
from ...core.solvers.sde_heun import ItoHeun
from .snapshots import MIN_SAMPLES, Snapshots

__all__ = ["MAX_STEPS", "check_steps", "simulate_snapshots", "uniform_box"]

#: most solver steps a simulation may take (a time typed in the wrong unit would otherwise run for hours)
MAX_STEPS = 1_000_000


def check_steps(t0: float, t1: float, dt: float) -> None:
    """``InputError`` naming ``times`` when simulating from ``t0`` to ``t1`` with steps of ``dt`` takes more than
    ``MAX_STEPS`` steps: refused before any step is taken."""
    steps = (float(t1) - float(t0)) / float(dt)
    if steps > MAX_STEPS:
        raise InputError(f"times: reaching t={float(t1):g} from t={float(t0):g} takes {steps:.3g} steps of {dt:g} "
                         f"(more than {MAX_STEPS:,}); check the times' unit, or simulate with a longer step")


def uniform_box(low: Sequence[float], high: Sequence[float], n: int, *,
                generator: torch.Generator | None = None) -> Tensor:
    """(n, d) float64 points uniform in the box [low, high]."""
    lo = torch.as_tensor(low, dtype=torch.float64).reshape(-1)
    hi = torch.as_tensor(high, dtype=torch.float64).reshape(-1)
    if lo.shape != hi.shape:
        raise InputError(f"box: low and high must have the same length, got {lo.numel()} and {hi.numel()}")
    if not bool((hi >= lo).all()):
        raise InputError(f"box: high must be >= low, got low={lo.tolist()} high={hi.tolist()}")
    return lo + (hi - lo) * rand((int(n), lo.numel()), generator=generator, dtype=torch.float64)


def simulate_snapshots(drift: Callable[[Tensor], Tensor], diffusion: Callable[[Tensor], Tensor], *,
                       times: Sequence[float] | Tensor, n: int | Sequence[int],
                       box: tuple[Sequence[float], Sequence[float]] | None = None,
                       x0: Callable[[int, torch.Generator | None], Tensor] | None = None, dt: float = 0.01,
                       generator: torch.Generator | None = None) -> Snapshots:
    """Snapshots at ``times`` (the first is the start time), each from its own fresh draw of initial states.

    Args:
        drift / diffusion: f and the diagonal g of the SDE, row-wise on (B, d) tensors (data units).
        n: particles per snapshot, at least 2 (an int, or one per time for ragged snapshots).
        box: initial states uniform in [low, high]; or ``x0(n, generator) -> (n, d)``.
        dt: largest Itô-Heun step.

    Raises ``InputError`` before any step when the times need more than ``MAX_STEPS`` steps of ``dt``
    (``check_steps``, as ``MMSB.predict``), and one naming the time by which the states became non-finite (too
    large a ``dt`` for the drift, or parameters that blow up).
    """
    t = torch.as_tensor(times, dtype=torch.float64).reshape(-1)
    if t.numel() < 2 or not bool((t[1:] > t[:-1]).all()):
        raise InputError(f"times: need >= 2 strictly increasing times, got {t.tolist()}")
    sizes = [int(n)] * t.numel() if isinstance(n, int) else [int(v) for v in n]
    if len(sizes) != t.numel() or min(sizes) < MIN_SAMPLES:
        raise InputError(f"n: expected a count >= {MIN_SAMPLES} (particles per snapshot), or one per time "
                         f"({t.numel()}), got {n}")
    check_in_range("dt", dt, 0.0, low_open=True)
    check_steps(float(t[0]), float(t[-1]), float(dt))
    if (box is None) == (x0 is None):
        raise InputError("box/x0: give exactly one way to draw the initial states")
    draw = x0 if x0 is not None else (lambda m, g: uniform_box(box[0], box[1], m, generator=g))
    start = draw(sum(sizes), generator).to(torch.float64)
    if not bool(torch.isfinite(start).all()):
        raise InputError(f"{'box' if x0 is None else 'x0'}: the initial states hold "
                         f"{int((~torch.isfinite(start)).sum())} non-finite value(s)")
    # one population of sum(sizes) particles; block k of it is observed (only) at time k
    blocks = torch.split(torch.arange(start.shape[0]), sizes)
    solver = ItoHeun(lambda x, tt: diffusion(x))
    out, x, cur = [], start, float(t[0])
    with torch.no_grad():
        for k, tk in enumerate(t.tolist()):
            if tk > cur:
                solver.substeps = max(1, int(math.ceil((tk - cur) / dt - 1e-9)))
                grid = torch.tensor([cur, tk], dtype=torch.float64)
                x = solver.solve(lambda z, tt: drift(z), x, grid, generator=generator, keep="last").states[0]
                if not bool(torch.isfinite(x).all()):
                    # say so here: the solver would blame its starting state ("x0") on the next interval
                    bad = int((~torch.isfinite(x)).sum())
                    raise InputError(f"simulate: the simulation diverged by t={tk:g} ({bad} state value(s) "
                                     f"non-finite; finite at t={cur:g}); lower dt (command line: --dt) or check "
                                     "the drift's parameters (--params)")
                cur = tk
            out.append(x[blocks[k]])
    return Snapshots.from_arrays(out, t)
