"""Choosing the reference's noise model and level from the training snapshots.

A Schrödinger bridge takes the reference's diffusion as given. When the user does not know it
(``sigma="auto"`` / ``noise="auto"``), MMSB fits the drift once with a first guess, then scores candidate
diffusions g by how well the fitted reference SDE, simulated forward from the first training snapshot,
reproduces the later training snapshots (mean exact W2 over those snapshots), keeps the best, and refits the
drift under it. Only training snapshots are used, so held-out evaluations stay honest.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ...domains.cells.dynamics import NoiseModel, make_noise
from ...domains.cells.snapshots import Snapshots
from .evaluate import w2_distance
from .predict import SimulationDiverged, simulate

__all__ = ["candidate_noises", "first_guess", "score_noise", "select_noise"]

#: Relative factors of the first guess tried for each noise model.
FACTORS = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0)


def first_guess(noise: str, snapshots: Snapshots) -> float:
    """A starting noise level: 5 % per unit time (multiplicative) or 5 % of the pooled spread (additive)."""
    if noise == "multiplicative":
        return 0.05
    x, _ = snapshots.stacked()
    return float(0.05 * x.std(0).mean())


def candidate_noises(noises: Sequence[str], snapshots: Snapshots, factors: Sequence[float] = FACTORS) -> list[NoiseModel]:
    out = []
    for name in noises:
        base = first_guess(name, snapshots)
        out.extend(make_noise(name, base * f) for f in factors)
    return out


def score_noise(drift: nn.Module, noise: NoiseModel, snapshots: Snapshots, *, n: int = 400, dt: float = 0.005,
                generator: torch.Generator | None = None) -> float:
    """Mean W2 between the reference SDE simulated from snapshot 0 and each later training snapshot."""
    first = snapshots.samples[0]
    x0 = first.repeat(math.ceil(n / first.shape[0]), 1)[:n]
    t0 = float(snapshots.times[0])
    try:
        traj = simulate(lambda x, t: drift(x), noise, x0, t0, snapshots.times[1:].tolist(), dt=dt,
                        generator=generator)
    except SimulationDiverged:          # paths that blow up before the last snapshot: the worst score, as below
        return float("inf")
    states: Tensor = traj.states
    if not bool(torch.isfinite(states).all()):
        return float("inf")
    return float(sum(w2_distance(states[k], snapshots.samples[k + 1]) for k in range(states.shape[0]))
                 / states.shape[0])


def select_noise(drift: nn.Module, snapshots: Snapshots, candidates: Sequence[NoiseModel], *, n: int = 400,
                 dt: float = 0.005, seed: int = 0) -> tuple[NoiseModel, list[dict[str, float | str]]]:
    """The candidate with the smallest ``score_noise`` (common random numbers across candidates)."""
    scores = []
    for c in candidates:
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            s = score_noise(drift, c, snapshots, n=n, dt=dt, generator=g)
        scores.append({"noise": c.name, "sigma": c.sigma, "train_w2": s})
    best = min(range(len(candidates)), key=lambda i: scores[i]["train_w2"])
    return candidates[best], scores
