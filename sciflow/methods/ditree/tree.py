"""A growing kinodynamic search tree on tensors, and the result every planner returns.

Each node owns the edge that reached it from its parent: the integration-step states of the edge (its first
state is the parent's state) and the control applied at each integration step. A plan is the chain of edges
from the root to a goal-reaching node, so re-simulating its controls from the start reproduces its states.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from ...core.fields import CONTROLS
from ...core.trajectory import Trajectory

__all__ = ["PlanResult", "Tree", "plan_trajectory"]


class Tree:
    """Nodes (N, 5) with parents, arrival times and the edge (states, step controls) that made each node."""

    def __init__(self, root: Tensor, capacity: int = 1024) -> None:
        self.dim = root.shape[-1]
        self.states = root.new_zeros((capacity, self.dim))
        self.states[0] = root
        self.parent = torch.full((capacity,), -1, dtype=torch.long, device=root.device)
        self.time = root.new_zeros(capacity)            # arrival time from the root, s
        self.n = 1
        self.edges: list[tuple[Tensor, Tensor] | None] = [None]

    def _grow(self, need: int) -> None:
        cap = self.states.shape[0]
        if need <= cap:
            return
        new = max(need, 2 * cap)
        self.states = torch.cat([self.states, self.states.new_zeros((new - cap, self.dim))])
        self.parent = torch.cat([self.parent, self.parent.new_full((new - cap,), -1)])
        self.time = torch.cat([self.time, self.time.new_zeros(new - cap)])

    def add(self, parents: Tensor, edge_states: list[Tensor], edge_controls: list[Tensor], dt: float) -> Tensor:
        """Add one node per edge (its last state); returns the new node indices (K,)."""
        k = len(edge_states)
        self._grow(self.n + k)
        idx = torch.arange(self.n, self.n + k, device=self.states.device)
        if k:
            self.states[idx] = torch.stack([e[-1] for e in edge_states])
            self.parent[idx] = parents
            steps = torch.tensor([e.shape[0] - 1 for e in edge_states], dtype=self.time.dtype,
                                 device=self.time.device)
            self.time[idx] = self.time[parents] + steps * dt
            self.edges.extend(zip(edge_states, edge_controls))
        self.n += k
        return idx

    @property
    def nodes(self) -> Tensor:
        return self.states[: self.n]

    def chain(self, node: int) -> list[int]:
        """Node indices from the root's first child to ``node`` (empty for the root)."""
        chain = []
        i = int(node)
        while i > 0:
            chain.append(i)
            i = int(self.parent[i])
        chain.reverse()
        return chain

    def path_to(self, node: int) -> tuple[Tensor, Tensor]:
        """(T + 1, 5) states and (T, 2) step controls from the root to ``node``."""
        chain = self.chain(node)
        if not chain:
            return self.states[:1].clone(), self.states.new_zeros((0, 2))
        states = [self.edges[chain[0]][0]] + [self.edges[c][0][1:] for c in chain[1:]]
        controls = [self.edges[c][1] for c in chain]
        return torch.cat(states), torch.cat(controls)

    def edge_polylines(self, max_edges: int | None = None) -> list[Tensor]:
        """(x, y) polylines of the edges, for pictures."""
        edges = [e[0][:, :2] for e in self.edges[1:] if e is not None]
        return edges[:max_edges] if max_edges else edges


@dataclass
class PlanResult:
    """What a planner returns for one scenario.

    ``states`` (T + 1, 5) and ``controls`` (T, 2) (one per integration step of ``dt`` s) hold the plan when
    ``success``; ``time_s`` is the wall-clock time to the first solution (or the time used when it failed).
    """

    planner: str
    success: bool
    time_s: float
    dt: float
    states: Tensor | None = None
    controls: Tensor | None = None
    tree_size: int = 0
    expansions: int = 0
    edges: list[Tensor] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        """Duration of the plan (robot time), s."""
        return float(self.controls.shape[0] * self.dt) if self.success and self.controls is not None else float("nan")

    @property
    def length_m(self) -> float:
        """Length travelled by the rear-axle point, m."""
        if not self.success or self.states is None:
            return float("nan")
        return float((self.states[1:, :2] - self.states[:-1, :2]).norm(dim=-1).sum())

    def metrics(self) -> dict[str, Any]:
        return {"planner": self.planner, "success": bool(self.success), "time_s": float(self.time_s),
                "duration_s": self.duration_s, "length_m": self.length_m, "tree_size": int(self.tree_size),
                "expansions": int(self.expansions), **{k: v for k, v in self.info.items()
                                                        if isinstance(v, (int, float, str, bool))}}


def plan_trajectory(result: PlanResult, *, scenario: str | None = None) -> Trajectory:
    """A successful plan as a Trajectory: times (T + 1,) s, states (T + 1, 1, 5), extras["controls"] (1, T, 2)."""
    if not result.success or result.states is None or result.controls is None:
        raise ValueError("plan_trajectory: the planner found no plan")
    t = torch.arange(result.states.shape[0], dtype=torch.float64) * result.dt
    info = {"planner": result.planner, "time_s": result.time_s, "tree_size": result.tree_size,
            "units": {"times": "s", "states": "x m, y m, heading rad, speed m/s, steer rad",
                      "controls": "accel m/s^2, steer_rate rad/s"}}
    if scenario is not None:
        info["scenario"] = scenario
    return Trajectory(times=t, states=result.states.detach().cpu().unsqueeze(1),
                      extras={CONTROLS: result.controls.detach().cpu().unsqueeze(0)}, info=info)
