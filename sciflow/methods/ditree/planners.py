"""Batched kinodynamic RRT with a pluggable action sampler (DiTree when the sampler is the policy).

Each iteration draws ``batch`` targets (the goal centre with probability ``goal_bias``, else uniform over the
map), picks the tree node nearest to each target, asks the sampler for held controls, propagates them through
the true dynamics, collision-checks every integration step and keeps each edge's collision-free prefix (when it
lasts at least ``min_steps`` steps). The first edge whose rear-axle point enters the goal region ends the
search, so every returned plan is dynamically feasible and collision-free by construction.
"""
from __future__ import annotations

import time

import torch

from ...core.errors import check_count, check_in_range
from ...domains.robots import Scenario
from .nearest import NearestNodes
from .problem import ActionSampler, Problem, RandomControls, sample_targets, start_solve
from .tree import PlanResult, Tree, mark_overrun

__all__ = ["CLEARANCE_MARGIN", "GOAL_MARGIN", "TreePlanner", "add_edges", "grow_edges", "propagate_edges"]

#: a planned state counts as in the goal only this far inside it (m): plans are integrated in float32, and the
#: float64 re-simulation that verifies them (``verify_plan``, tolerance 1e-3) may land ~1e-5 m elsewhere, so a
#: state just inside the boundary could be re-simulated just outside it.
GOAL_MARGIN = 1e-3
#: and a new state counts as collision-free only with this much clearance (m), for the same reason: a state that
#: grazes an obstacle in float32 may touch it in the float64 re-simulation (seen: 3 of 2,800 benchmark runs).
CLEARANCE_MARGIN = 1e-3


def propagate_edges(problem: Problem, parent_states: torch.Tensor, controls: torch.Tensor, n_ctrl: torch.Tensor,
                    min_steps: int) -> dict[str, torch.Tensor]:
    """Propagate held ``controls`` (B, K, 2) from ``parent_states`` (B, 5) and check every integration step.

    Returns ``edge`` (B, T, 5) states, ``steps`` (B, T - 1, 2) step controls, ``end`` (B,) index of the last
    kept state (the valid prefix, cut at the first goal-reaching state), ``keep`` (B,) and ``reached`` (B,).
    """
    car, checker, goal = problem.car, problem.checker, problem.goal
    cp = car.p.control_period
    steps = car.expand_controls(controls)                              # (B, K cp, 2)
    edge = car.simulate(parent_states, steps)                          # (B, K cp + 1, 5), as car.rollout
    planned = n_ctrl * cp
    # index in the edge of the first colliding state, less one (state 0 is the parent, in the tree)
    last_free = checker.first_collision(edge[:, 1:], CLEARANCE_MARGIN)
    # last valid state index, cut back to a whole number of control periods: a node ends where a held control
    # ends, so its children start a new control there and a plan is a zero-order hold at the control rate
    # (cut at any step, 45 of 122 control switches fell in the middle of a period); the goal cut below is exact
    end = torch.minimum(planned, torch.div(last_free, cp, rounding_mode="floor") * cp)
    t = edge.shape[1]
    # the first goal-reaching state among states 1 .. end (t when none)
    idx = torch.arange(1, t, device=edge.device)
    in_goal = goal.contains(edge[:, 1:], GOAL_MARGIN) & (idx <= end[:, None])
    g_first = torch.where(in_goal, idx, t).min(dim=1).values
    reached = g_first < t
    end = torch.where(reached, g_first, end)
    keep = (end >= min_steps) | reached
    return {"edge": edge, "steps": steps, "end": end, "keep": keep, "reached": reached}


def add_edges(problem: Problem, tree: Tree, parents: torch.Tensor, prop: dict[str, torch.Tensor],
              rows: list[int] | torch.Tensor) -> tuple[torch.Tensor, int | None]:
    """Add the candidate edges ``rows`` (indices into ``prop``'s batch) as new nodes; returns their indices and
    the earliest goal-reaching new node (or None)."""
    rows = torch.as_tensor(rows, dtype=torch.long, device=parents.device)
    new = tree.add_batch(parents[rows], prop["edge"][rows], prop["steps"][rows], prop["end"][rows], problem.car.p.dt)
    hit = prop["reached"][rows]
    if not bool(hit.any()):
        return new, None
    cand = new[hit]
    return new, int(cand[int(tree.time[cand].argmin())])


def grow_edges(problem: Problem, tree: Tree, parents: torch.Tensor, controls: torch.Tensor, n_ctrl: torch.Tensor,
               min_steps: int) -> tuple[torch.Tensor, int | None]:
    """Propagate from tree nodes ``parents`` (B,), keep the valid prefixes, add them to the tree."""
    prop = propagate_edges(problem, tree.nodes[parents], controls, n_ctrl, min_steps)
    return add_edges(problem, tree, parents, prop, prop["keep"].nonzero().flatten())


class TreePlanner:
    """RRT over the true dynamics with an injected ``ActionSampler``.

    ``info`` counts the nodes made by random-control rows (``random_nodes``, when the sampler marks them with
    ``last_random`` like ``MixedSampler``) and, on success, the plan's edges and how many of them are random.

    Args:
        sampler: proposes held controls (random controls: kinodynamic RRT; the policy: DiTree; a mix).
        goal_bias: probability that a target is the goal centre.
        batch: expansions per iteration (all propagated and checked together).
        min_steps: shortest valid prefix kept, in integration steps (default: one control period).
        name: label in results.
    """

    def __init__(self, sampler: ActionSampler | None = None, *, goal_bias: float = 0.05, batch: int = 32,
                 min_steps: int | None = None, name: str = "rrt-torch") -> None:
        self.sampler = sampler if sampler is not None else RandomControls()
        goal_bias, batch = check_in_range("goal_bias", goal_bias, 0.0, 1.0), check_count("batch", batch)
        min_steps = None if min_steps is None else check_count("min_steps", min_steps)
        self.goal_bias, self.batch, self.min_steps, self.name = goal_bias, batch, min_steps, name

    def solve(self, scenario: Scenario | Problem, *, budget_s: float | None = None,
              generator: torch.Generator | None = None, device: str | torch.device = "cpu",
              keep_tree: bool = False, max_nodes: int = 200_000, max_iterations: int | None = None) -> PlanResult:
        problem, budget, g = start_solve(scenario, budget_s, generator, device)
        min_steps = self.min_steps if self.min_steps is not None else problem.car.p.control_period
        t0 = time.perf_counter()
        tree = Tree(problem.start)
        nearest = NearestNodes()
        goal_node, iters = None, 0
        # per node: made by a random-control expansion (MixedSampler rows); kept as one (K,) bool tensor per
        # iteration, on the planning device, and read back once after the search
        origin_parts = [torch.zeros(1, dtype=torch.bool, device=tree.states.device)]
        # inference mode (no autograd bookkeeping at all) saves ~8 % of an iteration on the CPU; the plan and
        # the edges are read off the tree after the block, so the returned tensors are ordinary ones
        with torch.inference_mode():
            # the budget is checked between iterations, so the first one always runs (a setup that outlasted a
            # tiny budget on a busy machine ended the search before any iteration)
            while ((iters == 0 or time.perf_counter() - t0 < budget) and tree.n < max_nodes
                   and (max_iterations is None or iters < max_iterations)):
                targets = sample_targets(problem, self.batch, self.goal_bias, g)
                near = nearest.index(targets, tree.states[: tree.n, :2])     # tree.nodes[:, :2]
                states = tree.states[near]                                  # tree.nodes[near] (near < tree.n)
                controls, n_ctrl = self.sampler.sample(problem, states, targets, g, nodes=near)
                prop = propagate_edges(problem, states, controls, n_ctrl, min_steps)
                rows = prop["keep"].nonzero().flatten()
                _, goal_node = add_edges(problem, tree, near, prop, rows)
                is_rand = getattr(self.sampler, "last_random", None)
                origin_parts.append(is_rand[rows] if is_rand is not None
                                    else torch.zeros(len(rows), dtype=torch.bool, device=rows.device))
                iters += 1
                if goal_node is not None:
                    break
        elapsed = time.perf_counter() - t0
        origin = torch.cat(origin_parts).tolist()
        info = {"iterations": iters, "random_nodes": sum(origin)}
        res = PlanResult(self.name, goal_node is not None, elapsed, problem.dt, tree_size=tree.n,
                         expansions=iters * self.batch, info=info)
        if goal_node is not None:
            res.states, res.controls = tree.path_to(goal_node)
            chain = tree.chain(goal_node)
            info.update(plan_edges=len(chain), plan_random_edges=sum(origin[c] for c in chain))
        if keep_tree:
            res.edges = tree.edge_polylines()
        return mark_overrun(res, budget)
