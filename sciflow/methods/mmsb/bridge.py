"""Bridge step: a piecewise Schrödinger bridge through every pair of adjacent snapshots under the current
reference, chained into whole trajectories.

For one interval [t_k, t_{k+1}] the Schrödinger bridge w.r.t. the reference R (the path measure closest to R
in KL with the two snapshot marginals) factorises (Föllmer 1988; Léonard 2014) as

    P* = pi*(x, y) R(. | X_{t_k} = x, X_{t_{k+1}} = y),

where pi* is the static bridge: argmin KL(pi | R_{k,k+1}) over couplings of the two snapshots, i.e. entropic
OT with cost c(x, y) = -log p_R(y | x) at temperature 1. Here p_R is the reference's Gaussian (linear-noise)
transition density and pi* is solved by ``EntropicOT(eps=1)``; the bridges R(. | x, y) are drawn by
``gaussian.sample_bridges``. The K-1 pieces are chained as a Markov chain of their plans through the shared
snapshots (the core's ``MultiMarginalCoupling``), which is the multi-marginal bridge of the paper (one
Schrödinger bridge per interval, glued at the observed marginals).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from ...core.couplings import MultiMarginalCoupling
from ...core.couplings.entropic import EntropicOT
from ...core.trajectory import Trajectory
from ...domains.cells.snapshots import Snapshots
from .gaussian import grid_steps, linearize, sample_bridges, transition_cost

__all__ = ["BridgeSample", "BridgeStep", "TransitionCost"]

#: (B, K) int64 extras key: row of each snapshot that a chained path passes through.
SNAPSHOT_ROWS = "snapshot_rows"


class TransitionCost:
    """Cost c(x, y) = -log p_ref(y | x) of one interval under the Gaussian approximation of the reference."""

    def __init__(self, drift: Callable[[Tensor], Tensor], diffusion: Callable[[Tensor], Tensor], duration: float,
                 h: float) -> None:
        self.drift, self.diffusion, self.duration, self.h = drift, diffusion, float(duration), float(h)

    def __call__(self, x0: Tensor, x1: Tensor) -> Tensor:
        lin = linearize(self.drift, self.diffusion, x0, self.duration, self.h)
        return transition_cost(lin, x1)


@dataclass
class BridgeSample:
    """Chained bridge paths: ``pieces[k]`` is (n, S_k + 1, d) on [t_k, t_{k+1}] with step ``steps[k]``;
    ``rows`` (K, n) the snapshot rows each path passes through; ``plans`` the K-1 static couplings."""

    times: Tensor
    pieces: list[Tensor]
    steps: list[float]
    rows: Tensor
    plans: list[Tensor] = field(default_factory=list)

    def trajectory(self) -> Trajectory:
        """The whole paths as one ``Trajectory`` (T frames on the fine grid through every snapshot)."""
        states = [self.pieces[0][:, 0]]
        times = [self.times[0:1].to(self.pieces[0].dtype)]
        for k, p in enumerate(self.pieces):
            s = p.shape[1] - 1
            states.extend(p[:, i] for i in range(1, s + 1))
            t0 = float(self.times[k])
            times.append(torch.tensor([t0 + i * self.steps[k] for i in range(1, s + 1)], dtype=p.dtype))
        t = torch.cat(times)
        return Trajectory(times=t, states=torch.stack(states), extras={SNAPSHOT_ROWS: self.rows.T.contiguous()},
                          info={"kind": "mmsb bridges", "snapshot_times": self.times.tolist()})


class BridgeStep:
    """Bridges through snapshots under ``drift`` with diffusion ``diffusion`` (both in data units).

    Args:
        eps: temperature of the static bridge (1 for the Schrödinger bridge of -log p_ref).
        h: largest fine step of the bridge paths and of the RK4 linearisation.
        h_lna: largest RK4 step of the Gaussian approximation (costs and bridge gains).
        max_iter: cap on Sinkhorn sweeps (see ``EntropicOT``).
        chunk: rows of bridges drawn at once (bounds the (rows, S, d, d) gain memory).
    """

    def __init__(self, drift: nn.Module | Callable[[Tensor], Tensor], diffusion: Callable[[Tensor], Tensor], *,
                 eps: float = 1.0, h: float = 0.01, h_lna: float = 0.05, max_iter: int = 300,
                 chunk: int = 512) -> None:
        self.drift, self.diffusion = drift, diffusion
        self.eps, self.h, self.h_lna, self.max_iter, self.chunk = float(eps), float(h), float(h_lna), int(max_iter), \
            int(chunk)

    def couplings(self, snapshots: Snapshots) -> MultiMarginalCoupling:
        costs = [TransitionCost(self.drift, self.diffusion, float(snapshots.times[k + 1] - snapshots.times[k]),
                                self.h_lna) for k in range(snapshots.n_snapshots - 1)]
        return MultiMarginalCoupling([EntropicOT(self.eps, c, max_iter=self.max_iter, tol=1e-5) for c in costs])

    def plans(self, snapshots: Snapshots) -> list[Tensor]:
        """The K-1 static Schrödinger-bridge couplings (N_k, N_{k+1})."""
        return self.couplings(snapshots).plans(list(snapshots.samples))

    def sample(self, snapshots: Snapshots, n: int, *, plans: list[Tensor] | None = None,
               generator: torch.Generator | None = None) -> BridgeSample:
        """n chained bridge paths through every snapshot."""
        mm = self.couplings(snapshots)
        plans = plans if plans is not None else mm.plans(list(snapshots.samples))
        rows = mm.sample_indices(plans, int(n), generator=generator)
        pieces, steps = [], []
        for k in range(snapshots.n_snapshots - 1):
            dur = float(snapshots.times[k + 1] - snapshots.times[k])
            x0 = snapshots.samples[k][rows[k]]
            y = snapshots.samples[k + 1][rows[k + 1]]
            parts = [sample_bridges(self.drift, self.diffusion, x0[i:i + self.chunk], y[i:i + self.chunk], dur,
                                    self.h, h_lna=self.h_lna, generator=generator)
                     for i in range(0, int(n), self.chunk)]
            pieces.append(torch.cat(parts))
            steps.append(grid_steps(dur, self.h)[1])
        return BridgeSample(times=snapshots.times, pieces=pieces, steps=steps, rows=rows, plans=plans)
