"""Stable Sparse RRT (SST; Li, Littlefield & Bekris, IJRR 2016) over the car's true dynamics, batched.

Selection: for each random state (the goal with probability ``goal_bias``), the lowest-cost active node within
``delta_bn`` of it, else the nearest active node. Expansion: random controls (the same sampler as the RRT).
Sparsification: every kept node is compared with the nearest witness; within ``delta_s`` only the cheaper of
the witness's representative and the new node survives (the loser turns inactive and is pruned while it is a
leaf). Distances use position and heading, d = sqrt(dx^2 + dy^2 + (w dtheta)^2). The search stops at the first
solution (time to first solution is what the benchmark measures).
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np
import torch

from ...core.errors import check_count, check_in_range
from ...core.random import rand
from ...domains.robots import Scenario
from .planners import add_edges, propagate_edges
from .problem import ActionSampler, Problem, RandomControls, sample_targets, start_solve
from .tree import PlanResult, Tree, mark_overrun

__all__ = ["SSTPlanner", "assign_rows"]


def _metric(a: torch.Tensor, b: torch.Tensor, w: float) -> torch.Tensor:
    """(A, 3) x (B, 3) [x, y, theta] -> (A, B)."""
    dxy = torch.cdist(a[:, :2], b[:, :2]) ** 2
    dth = torch.remainder(a[:, None, 2] - b[None, :, 2] + math.pi, 2 * math.pi) - math.pi
    return torch.sqrt(dxy + (w * dth) ** 2)


def assign_rows(costs: list[float], reached: list[bool], dmin: list[float], wnear: list[int], pair: list[list[float]],
                rep_cost: Callable[[int], float], n_wit: int, delta_s: float) -> tuple[list[int], list[int], list[int]]:
    """SST's acceptance of one batch of new nodes, taken one after another as sequential SST would.

    Row k (cost ``costs[k]``; nearest existing witness ``wnear[k]`` at ``dmin[k]``; ``pair`` the rows' distances
    to each other) is kept if it reached the goal, or if no witness (the batch's earlier new ones included) lies
    within ``delta_s`` (it becomes a new witness, numbered after the ``n_wit`` existing ones), or if it is cheaper
    than its witness's representative as it stands after the earlier rows (``rep_cost(w)`` at the start).
    Returns (kept row positions, the witness each replaces or makes, -2 for goal rows; rows that made witnesses).
    """
    held: dict[int, float] = {}                    # witness -> cost of the representative this batch gave it
    made: list[int] = []
    kept, witness = [], []
    for k, c in enumerate(costs):
        if reached[k]:
            kept.append(k)
            witness.append(-2)
            continue
        d, w = dmin[k], wnear[k]
        for i, j in enumerate(made):
            if pair[k][j] < d:
                d, w = pair[k][j], n_wit + i
        if d > delta_s:
            kept.append(k)
            witness.append(n_wit + len(made))
            held[n_wit + len(made)] = c
            made.append(k)
        elif c < (held[w] if w in held else rep_cost(w)):
            kept.append(k)
            witness.append(w)
            held[w] = c
    return kept, witness, made


def _candidates(prop: dict[str, torch.Tensor], rows: torch.Tensor, parent_time: torch.Tensor,
                dt: float) -> tuple[torch.Tensor, list[float], list[bool]]:
    """The kept rows' end poses (K, 3), arrival times (float64 arithmetic, as ``par_time + end * dt`` in Python
    floats) and goal flags, gathered in one indexing each instead of per row."""
    end = prop["end"][rows]
    pose = prop["edge"][rows, end, :3]
    cost = parent_time[rows].to(torch.float64) + end.to(torch.float64) * float(dt)
    return pose, cost.tolist(), prop["reached"][rows].tolist()


class _Witnesses:
    """SST's witnesses: poses in a preallocated float32 (W, 3) buffer that grows by doubling (no rebuild per
    iteration), and per witness its representative node (-1: none) and that node's arrival time (inf: none),
    kept up to date as representatives change so that ``rep_cost`` reads an array instead of the tree."""

    def __init__(self, start_pose: torch.Tensor, capacity: int = 256) -> None:
        self._poses = torch.empty((capacity, 3), dtype=torch.float32, device=start_pose.device)
        self._poses[0] = start_pose
        self.rep = np.full(capacity, -1, dtype=np.int64)
        self.rep_time = np.full(capacity, math.inf)
        self.rep[0], self.rep_time[0] = 0, 0.0          # the root, at time 0
        self.n = 1

    def __len__(self) -> int:
        return self.n

    @property
    def poses(self) -> torch.Tensor:
        return self._poses[: self.n]

    def add(self, poses: torch.Tensor) -> None:
        """New witnesses at ``poses`` (K, 3), without representatives yet."""
        k = int(poses.shape[0])
        if not k:
            return
        need = self.n + k
        if need > self._poses.shape[0]:
            cap = max(need, 2 * self._poses.shape[0])
            grow = cap - self._poses.shape[0]
            self._poses = torch.cat([self._poses, self._poses.new_empty((grow, 3))])
            self.rep = np.concatenate([self.rep, np.full(grow, -1, dtype=np.int64)])
            self.rep_time = np.concatenate([self.rep_time, np.full(grow, math.inf)])
        self._poses[self.n: need] = poses
        self.n = need

    def set_rep(self, w: int, node: int, node_time: float) -> int:
        """Make ``node`` (arrival time ``node_time``) witness w's representative; returns the previous one."""
        old = int(self.rep[w])
        self.rep[w], self.rep_time[w] = node, node_time
        return old

    def rep_cost(self, w: int) -> float:
        """Arrival time of witness w's representative (inf without one): ``assign_rows``'s ``rep_cost``."""
        return float(self.rep_time[w])


class SSTPlanner:
    name = "sst"

    def __init__(self, sampler: ActionSampler | None = None, *, delta_bn: float = 0.6, delta_s: float = 0.3,
                 heading_weight: float = 0.3, goal_bias: float = 0.05, batch: int = 64,
                 min_steps: int | None = None) -> None:
        self.sampler = sampler if sampler is not None else RandomControls()
        self.delta_bn = check_in_range("delta_bn", delta_bn, 0.0, low_open=True)
        self.delta_s = check_in_range("delta_s", delta_s, 0.0, low_open=True)
        self.w = check_in_range("heading_weight", heading_weight, 0.0)
        self.goal_bias, self.batch = check_in_range("goal_bias", goal_bias, 0.0, 1.0), check_count("batch", batch)
        self.min_steps = None if min_steps is None else check_count("min_steps", min_steps)

    def solve(self, scenario: Scenario | Problem, *, budget_s: float | None = None,
              generator: torch.Generator | None = None, device: str | torch.device = "cpu",
              keep_tree: bool = False, **_: object) -> PlanResult:
        problem, budget, g = start_solve(scenario, budget_s, generator, device)
        min_steps = self.min_steps if self.min_steps is not None else problem.car.p.control_period
        t0 = time.perf_counter()
        tree = Tree(problem.start)
        active = np.zeros(1024, dtype=bool)
        active[0] = True
        children = np.zeros(1024, dtype=np.int64)
        witnesses = _Witnesses(problem.start[:3])    # witness poses and the representative node of each
        goal_node, iters = None, 0
        with torch.no_grad():
            while time.perf_counter() - t0 < budget:
                iters += 1
                xy = sample_targets(problem, self.batch, self.goal_bias, g)
                th = (rand((self.batch, 1), generator=g, device=problem.device) * 2 - 1) * math.pi
                targets = torch.cat([xy, th], dim=1)
                act = torch.as_tensor(np.nonzero(active[: tree.n])[0], device=problem.device)
                d = _metric(targets, tree.nodes[act, :3], self.w)                       # (B, A)
                cost = tree.time[act].expand_as(d)
                near_cost = torch.where(d <= self.delta_bn, cost, torch.full_like(cost, math.inf))
                near_min, best = near_cost.min(dim=1)         # min(dim).indices: the first minimum, as argmin,
                none_near = torch.isinf(near_min)              # but several times faster on the CPU
                best = torch.where(none_near, d.min(dim=1).indices, best)
                parents = act[best]
                controls, n_ctrl = self.sampler.sample(problem, tree.nodes[parents], targets[:, :2], g)
                prop = propagate_edges(problem, tree.nodes[parents], controls, n_ctrl, min_steps)
                rows_t = prop["keep"].nonzero().flatten()
                if not rows_t.numel():
                    continue
                rows = rows_t.tolist()
                new_pose, costs, reached = _candidates(prop, rows_t, tree.time[parents], problem.dt)
                dw = _metric(new_pose, witnesses.poses, self.w)
                dmin, wnear = dw.min(dim=1)
                dmin, wnear = dmin.tolist(), wnear.tolist()
                pair = _metric(new_pose, new_pose, self.w).tolist()
                pos, replaced, made = assign_rows(costs, reached, dmin, wnear, pair, witnesses.rep_cost,
                                                  len(witnesses), self.delta_s)
                witnesses.add(new_pose[torch.as_tensor(made, dtype=torch.long, device=new_pose.device)])
                accepted = [rows[k] for k in pos]
                if not accepted:
                    continue
                new, goal_node = add_edges(problem, tree, parents, prop, accepted)
                if tree.n > active.shape[0]:
                    grow = tree.n * 2
                    active = np.concatenate([active, np.zeros(grow - active.shape[0], bool)])
                    children = np.concatenate([children, np.zeros(grow - children.shape[0], np.int64)])
                par = parents.tolist()
                for node, t_node, b, w in zip(new.tolist(), tree.time[new].tolist(), accepted, replaced):
                    active[node] = True
                    children[par[b]] += 1
                    if w < 0:
                        continue
                    old = witnesses.set_rep(w, node, t_node)
                    if old >= 0 and old != node:
                        self._prune(tree, active, children, old)
                if goal_node is not None:
                    break
        res = PlanResult(self.name, goal_node is not None, time.perf_counter() - t0, problem.dt,
                         tree_size=int(active[: tree.n].sum()), expansions=iters * self.batch,
                         info={"iterations": iters, "witnesses": len(witnesses), "nodes_created": tree.n})
        if goal_node is not None:
            res.states, res.controls = tree.path_to(goal_node)
        if keep_tree:
            res.edges = [tree.edge(i)[0][:, :2] for i in range(1, tree.n) if active[i] or children[i] > 0]
        return mark_overrun(res, budget)

    @staticmethod
    def _prune(tree: Tree, active: np.ndarray, children: np.ndarray, node: int) -> None:
        """Deactivate ``node``; remove it and its inactive ancestors while they are leaves."""
        active[node] = False
        while node > 0 and not active[node] and children[node] == 0:
            parent = int(tree.parent[node])
            children[parent] -= 1
            children[node] = -1                      # removed
            node = parent
