"""The "policy alone" ablation: roll the policy out from the start towards the goal with no tree.

Receding horizon: sample one chunk conditioned on the goal, execute its first ``execute`` controls through the
true dynamics, repeat. The run fails at the first colliding integration step (no backtracking) or when the
budget or the maximum plan duration runs out; it succeeds when the rear-axle point enters the goal region.
"""
from __future__ import annotations

import time

import torch

from ...domains.robots import Scenario
from .planners import grow_edges
from .policy import PolicySampler
from .problem import Problem, start_solve
from .tree import PlanResult, Tree, mark_overrun

__all__ = ["PolicyRollout"]


class PolicyRollout:
    name = "policy"

    def __init__(self, sampler: PolicySampler, *, max_duration_s: float = 60.0) -> None:
        self.sampler, self.max_duration_s = sampler, float(max_duration_s)

    def solve(self, scenario: Scenario | Problem, *, budget_s: float | None = None,
              generator: torch.Generator | None = None, device: str | torch.device = "cpu",
              keep_tree: bool = False, **_: object) -> PlanResult:
        problem, budget, g = start_solve(scenario, budget_s, generator, device)
        goal = torch.tensor([[problem.goal.x, problem.goal.y]], device=problem.device)
        t0 = time.perf_counter()
        tree = Tree(problem.start)
        node, goal_node, reason = 0, None, "budget"
        with torch.inference_mode():           # the plan is read off the tree after the block
            while time.perf_counter() - t0 < budget:
                if float(tree.time[node]) >= self.max_duration_s:
                    reason = "max_duration"
                    break
                parents = torch.tensor([node], device=problem.device)
                controls, n = self.sampler.sample(problem, tree.nodes[parents], goal, g)
                full = n * problem.car.p.control_period
                new, goal_node = grow_edges(problem, tree, parents, controls, n, min_steps=1)
                if goal_node is not None:
                    break
                if len(new) == 0 or tree.edge(int(new[0]))[1].shape[0] < int(full[0]):
                    reason = "collision"
                    break
                node = int(new[0])
        res = PlanResult(self.name, goal_node is not None, time.perf_counter() - t0, problem.dt, tree_size=tree.n,
                         expansions=tree.n - 1, info={"stop": "goal" if goal_node is not None else reason})
        if goal_node is not None:
            res.states, res.controls = tree.path_to(goal_node)
        if keep_tree:
            res.edges = tree.edge_polylines()
        return mark_overrun(res, budget)
