"""A growing kinodynamic search tree on tensors, and the result every planner returns.

Each node owns the edge that reached it from its parent: the integration-step states of the edge (its first
state is the parent's state) and the control applied at each integration step. A plan is the chain of edges
from the root to a goal-reaching node, so re-simulating its controls from the start reproduces its states.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence

from ...core.fields import CONTROLS
from ...core.trajectory import Trajectory

__all__ = ["PlanResult", "Tree", "mark_overrun", "plan_trajectory"]


class Tree:
    """Nodes (N, 5) with parents, arrival times and the edge (states, step controls) that made each node.

    Edges are kept as the blocks they were added in (one tensor per batch of edges, padded to the batch's
    longest edge, with each edge's end index), so that adding a batch costs a few tensor operations and no
    per-edge slicing; ``edge(i)`` cuts node ``i``'s edge out of its block when it is needed (plans, pictures).
    """

    def __init__(self, root: Tensor, capacity: int = 1024) -> None:
        self.dim = root.shape[-1]
        self.states = root.new_zeros((capacity, self.dim))
        self.states[0] = root
        self.parent = torch.full((capacity,), -1, dtype=torch.long, device=root.device)
        self.time = root.new_zeros(capacity)            # arrival time from the root, s
        self.n = 1
        # (states (K, T, d), controls (K, T - 1, c), ends): ends stay a (K,) tensor on the tree's device until an
        # edge of the block is cut out (a list of ints then), so growing the tree never waits for the device
        self._blocks: list[tuple[Tensor, Tensor, Tensor | list[int]]] = []
        self._ref: list[tuple[int, int]] = [(-1, -1)]               # per node: (block, row); the root has no edge

    def _grow(self, need: int) -> None:
        cap = self.states.shape[0]
        if need <= cap:
            return
        new = max(need, 2 * cap)
        self.states = torch.cat([self.states, self.states.new_zeros((new - cap, self.dim))])
        self.parent = torch.cat([self.parent, self.parent.new_full((new - cap,), -1)])
        self.time = torch.cat([self.time, self.time.new_zeros(new - cap)])

    def add_batch(self, parents: Tensor, edge_states: Tensor, edge_controls: Tensor, ends: Tensor,
                  dt: float) -> Tensor:
        """Add one node per edge: edge k is ``edge_states[k, : ends[k] + 1]`` (its first state is the parent's)
        driven by ``edge_controls[k, : ends[k]]``; the node is its last state. Returns the new indices (K,)."""
        k = int(parents.shape[0])
        self._grow(self.n + k)
        idx = torch.arange(self.n, self.n + k, device=self.states.device)
        if k:
            if ends.dtype != torch.long or ends.device != self.states.device:
                ends = ends.to(device=self.states.device, dtype=torch.long)
            new = slice(self.n, self.n + k)          # the rows of idx: slice copies instead of index_put
            self.states[new] = edge_states[torch.arange(k, device=ends.device), ends]
            self.parent[new] = parents
            self.time[new] = self.time[parents] + ends.to(self.time.dtype) * dt
            self._blocks.append((edge_states, edge_controls, ends.clone()))   # the caller's tensor may change
            self._ref.extend(zip(itertools.repeat(len(self._blocks) - 1, k), range(k)))
        self.n += k
        return idx

    def add(self, parents: Tensor, edge_states: list[Tensor], edge_controls: list[Tensor], dt: float) -> Tensor:
        """``add_batch`` for edges given one by one (states (T_k + 1, d), controls (T_k, c))."""
        if not edge_states:
            return self.add_batch(parents, self.states.new_zeros((0, 1, self.dim)), self.states.new_zeros((0, 0, 2)),
                                  torch.zeros(0, dtype=torch.long), dt)
        ends = torch.tensor([e.shape[0] - 1 for e in edge_states], dtype=torch.long)
        return self.add_batch(parents, pad_sequence(edge_states, batch_first=True),
                              pad_sequence(list(edge_controls), batch_first=True), ends, dt)

    def edge(self, node: int) -> tuple[Tensor, Tensor] | None:
        """(states (T + 1, d), step controls (T, c)) of the edge that made ``node`` (None for the root)."""
        b, r = self._ref[int(node)]
        if b < 0:
            return None
        states, controls, ends = self._blocks[b]
        if isinstance(ends, Tensor):
            ends = ends.tolist()
            self._blocks[b] = (states, controls, ends)
        return states[r, : ends[r] + 1], controls[r, : ends[r]]

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
        edges = [self.edge(c) for c in chain]
        states = [edges[0][0]] + [e[0][1:] for e in edges[1:]]
        return torch.cat(states), torch.cat([e[1] for e in edges])

    def edge_polylines(self, max_edges: int | None = None) -> list[Tensor]:
        """(x, y) polylines of the edges, for pictures."""
        last = self.n if not max_edges else min(self.n, int(max_edges) + 1)
        return [self.edge(i)[0][:, :2] for i in range(1, last)]


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


def mark_overrun(result: PlanResult, budget_s: float) -> PlanResult:
    """A plan found after the budget is not a plan within it: planners check the budget between iterations, so
    the last one can end past it. Sets ``success`` False and ``info["overrun"]``; returns ``result``. Every
    planner's ``solve`` ends with it, so the API, the CLI and the benchmark all see the same rule."""
    if result.success and result.time_s > budget_s:
        result.success = False
        result.info["overrun"] = True
    return result


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
