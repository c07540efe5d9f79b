"""A scenario turned into the tensors and callables that every planner shares."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ...core.errors import InputError, check_in_range
from ...core.random import make_generator, rand, randint
from ...core.training.device import check_device
from ...domains.robots import Car, CollisionChecker, GoalRegion, Scenario, World

__all__ = ["ActionSampler", "MixedSampler", "Problem", "RandomControls", "check_budget", "check_scenario",
           "sample_targets", "start_solve"]


def check_budget(budget_s: object) -> float | None:
    """None (the scenario's budget) or a finite number of seconds > 0; anything else is an ``InputError``."""
    if budget_s is None:
        return None
    if isinstance(budget_s, bool) or not isinstance(budget_s, (int, float, np.integer, np.floating)):
        raise InputError(f"budget_s: expected a number of seconds > 0, got {budget_s!r}")
    return check_in_range("budget_s", budget_s, 0.0, low_open=True)


def check_scenario(sc: Scenario) -> Scenario:
    """A Scenario object re-checked before planning (``Scenario.check``): one changed since it was made, with a
    non-finite or colliding start, a goal inside an obstacle or a budget <= 0, is an ``InputError`` naming the
    field, not a search that spends its whole budget and then reports no plan."""
    if not isinstance(sc, Scenario):
        raise InputError(f"scenario: expected a Scenario, got {type(sc).__name__}")
    return sc.check()


@dataclass
class Problem:
    """Dynamics, world, collision checker and goal region of one scenario, on one device."""

    scenario: Scenario
    car: Car
    world: World
    checker: CollisionChecker
    goal: GoalRegion
    start: Tensor
    device: torch.device

    @classmethod
    def from_scenario(cls, sc: Scenario, device: torch.device | str = "cpu") -> Problem:
        dev = check_device(device)
        car = sc.car()
        world = sc.world.to(dev)
        return cls(sc, car, world, CollisionChecker(car, world), sc.goal, sc.start_tensor(dev), dev)

    @property
    def dt(self) -> float:
        return self.car.p.dt


def start_solve(scenario: Scenario | Problem, budget_s: float | None, generator: torch.Generator | None,
                device: torch.device | str) -> tuple[Problem, float, torch.Generator]:
    """What every planner's ``solve`` starts from: the problem on ``device``, the time budget (the scenario's
    unless given) and the generator (seed 0 unless given)."""
    budget_s = check_budget(budget_s)
    problem = scenario if isinstance(scenario, Problem) else Problem.from_scenario(check_scenario(scenario), device)
    budget = float(problem.scenario.budget_s if budget_s is None else budget_s)
    return problem, budget, generator if generator is not None else make_generator(0)


def sample_targets(problem: Problem, n: int, goal_bias: float, generator: torch.Generator | None) -> Tensor:
    """(n, 2) targets: the goal centre with probability ``goal_bias``, else uniform over the map."""
    u = rand((n, 3), generator=generator, device=problem.device)
    # (low corner, extent, goal centre) as (2,) tensors, made once per problem: xmin + (xmax - xmin) u with the
    # Python numbers rounds each to the tensor's dtype first, so the tensors give the same values in one call each
    key = (problem.world.bounds, problem.goal.x, problem.goal.y, u.device, u.dtype)
    consts = problem.__dict__.get("_target_consts")
    if consts is None or consts[0] != key:
        xmin, ymin, xmax, ymax = problem.world.bounds
        f = {"device": u.device, "dtype": u.dtype}
        consts = (key, torch.tensor([xmin, ymin], **f), torch.tensor([xmax - xmin, ymax - ymin], **f),
                  torch.tensor([problem.goal.x, problem.goal.y], **f))
        problem.__dict__["_target_consts"] = consts
    _, low, extent, goal = consts
    pts = low + extent * u[:, :2]
    return torch.where((u[:, 2] < goal_bias)[:, None], goal, pts)


class ActionSampler(ABC):
    """Proposes held controls for tree expansions from ``states`` towards ``targets``."""

    @abstractmethod
    def sample(self, problem: Problem, states: Tensor, targets: Tensor,
               generator: torch.Generator | None, nodes: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """states (B, 5), targets (B, 2) -> held controls (B, K, 2) and the number to execute (B,) in [1, K].

        ``nodes`` (B,), optional: the states' indices in the caller's tree, for samplers that cache per node."""


class RandomControls(ActionSampler):
    """The classical kinodynamic RRT/SST expansion: one control drawn uniformly within the bounds, held for a
    uniformly drawn number of control periods in [min_controls, max_controls]. With ``k`` > 1 the best of k
    candidates (closest end point to the target) is kept, like OMPL's directed control sampler."""

    def __init__(self, min_controls: int = 2, max_controls: int = 10, k: int = 1) -> None:
        self.min_controls, self.max_controls, self.k = int(min_controls), int(max_controls), int(k)

    def sample(self, problem: Problem, states: Tensor, targets: Tensor,
               generator: torch.Generator | None, nodes: Tensor | None = None) -> tuple[Tensor, Tensor]:
        b, dev = states.shape[0], states.device
        lo, span = problem.car.control_box(dev, states.dtype)
        u = lo + span * rand((b, self.k, 2), generator=generator, device=dev, dtype=states.dtype)
        n = self.min_controls + randint(self.max_controls - self.min_controls + 1, (b, self.k), generator=generator,
                                        device=dev)
        if self.k > 1:
            flat_s = states.repeat_interleave(self.k, 0)
            held = u.reshape(b * self.k, 1, 2).expand(-1, self.max_controls, -1)
            traj = problem.car.rollout(flat_s, held)                           # (b k, T, 5)
            end = traj[torch.arange(b * self.k, device=dev), (n.reshape(-1) * problem.car.p.control_period)]
            d = (end[:, :2] - targets.repeat_interleave(self.k, 0)).norm(dim=-1).reshape(b, self.k)
            best = d.argmin(dim=1)
            u = u[torch.arange(b, device=dev), best]
            n = n[torch.arange(b, device=dev), best]
        else:
            u, n = u[:, 0], n[:, 0]
        return u[:, None, :].expand(b, self.max_controls, 2).contiguous(), n


class MixedSampler(ActionSampler):
    """Mixed expansion: a fixed fraction ``random_frac`` of each batch's rows (rounded to a whole number of rows)
    uses ``random`` (uniformly drawn held controls, the classical kinodynamic RRT expansion), the rest use
    ``primary`` (the policy). Keeping some random expansions keeps the tree's ability to explore where the
    primary sampler is misled (e.g. a goal-seeking policy in a bug trap), while the primary sampler speeds up
    the easy parts. Which rows are random is fixed (the first ones); the targets are i.i.d., so this is the
    same as drawing them. Results carry per-row ``n`` to execute; chunks of different lengths are padded by
    holding their last control (never executed). ``last_random`` (B,) bool marks the random rows of the last call.
    """

    def __init__(self, primary: ActionSampler, random_frac: float, random: ActionSampler | None = None) -> None:
        self.primary, self.random = primary, random if random is not None else RandomControls()
        self.random_frac = float(random_frac)
        self.last_random: Tensor | None = None

    def sample(self, problem: Problem, states: Tensor, targets: Tensor,
               generator: torch.Generator | None, nodes: Tensor | None = None) -> tuple[Tensor, Tensor]:
        b = states.shape[0]
        n_rand = min(b, round(self.random_frac * b))
        key = (b, n_rand, states.device)
        if getattr(self, "_rand_mask", (None,))[0] != key:     # the same mask every iteration: made once
            is_rand = torch.zeros(b, dtype=torch.bool, device=states.device)
            is_rand[:n_rand] = True
            self._rand_mask = (key, is_rand)
        self.last_random = self._rand_mask[1]
        parts = []
        if n_rand:
            parts.append(self.random.sample(problem, states[:n_rand], targets[:n_rand], generator))
        if n_rand < b:
            parts.append(self.primary.sample(problem, states[n_rand:], targets[n_rand:], generator,
                                             None if nodes is None else nodes[n_rand:]))
        if len(parts) == 1:
            return parts[0]
        k = max(c.shape[1] for c, _ in parts)
        # one buffer, each part copied in and padded by holding its last control (the same values as padding
        # each part and concatenating, with fewer calls)
        (c0, n0), (c1, n1) = parts
        controls = c0.new_empty((b, k, c0.shape[2]), dtype=torch.result_type(c0, c1))
        for rows, c in ((slice(0, n_rand), c0), (slice(n_rand, b), c1)):
            controls[rows, : c.shape[1]] = c
            if c.shape[1] < k:
                controls[rows, c.shape[1]:] = c[:, -1:]
        return controls, torch.cat([n0, n1])
