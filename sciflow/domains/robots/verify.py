"""Independent check of a plan: re-simulate its controls from the start and test every integration step."""
from __future__ import annotations

import torch
from torch import Tensor

from .scenario import Scenario

__all__ = ["verify_plan"]


def verify_plan(scenario: Scenario, states: Tensor, controls: Tensor) -> dict:
    """states (T + 1, 5), controls (T, 2) (one per integration step) -> a report.

    ``resim_error``: max |re-simulated - stored| state (float64 re-simulation from the scenario's start);
    ``collision_free``: every re-simulated state clear; ``reaches_goal``: the last re-simulated state is in the
    goal region; ``ok``: all three (error below 1e-3).
    """
    car, checker = scenario.car(), scenario.checker()
    s0 = torch.tensor([scenario.start], dtype=torch.float64)
    sim = car.simulate(s0, controls.to(torch.float64)[None])[0]
    err = float((sim - states.to(torch.float64)).abs().max()) if sim.shape == states.shape else float("inf")
    free = bool(checker.states_valid(sim.to(torch.float32)).all())
    goal = bool(scenario.goal.contains(sim[-1]))
    return {"resim_error": err, "collision_free": free, "reaches_goal": goal,
            "ok": bool(err < 1e-3 and free and goal)}
