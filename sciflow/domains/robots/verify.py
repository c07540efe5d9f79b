"""Independent check of a plan: re-simulate its controls from the start and test every integration step."""
from __future__ import annotations

import torch
from torch import Tensor

from ...core.errors import InputError
from .car import CONTROL_DIM, STATE_DIM, wrap_angle
from .scenario import Scenario

__all__ = ["verify_plan"]


def verify_plan(scenario: Scenario, states: Tensor, controls: Tensor) -> dict:
    """states (T + 1, 5), controls (T, 2) (one per integration step) -> a report.

    ``resim_error``: max |re-simulated - stored| state (float64 re-simulation from the scenario's start; the
    heading difference is taken modulo 2 pi, since a heading near +-pi may wrap to either end);
    ``collision_free``: every re-simulated state clear by the world's exact distance (the planners' faster check
    is conservative: it reads a distance field cell by cell, so two states 1e-5 m apart on either side of a cell
    boundary can get bounds a cell apart, and a plan certified free in float32 could be flagged in its float64
    re-simulation although it clears every obstacle); ``reaches_goal``: the last re-simulated state is in the
    goal region; ``ok``: all three (error below 1e-3).
    """
    _check_shapes(states, controls)
    car, checker = scenario.car(), scenario.checker()
    s0 = torch.tensor([scenario.start], dtype=torch.float64)
    sim = car.simulate(s0, controls.to(torch.float64)[None])[0]
    diff = sim - states.to(torch.float64)
    diff[:, 2] = wrap_angle(diff[:, 2])                # headings are equal modulo 2 pi (wrapped in float32 vs 64)
    err = float(diff.abs().max())
    free = bool((checker.exact_clearance(sim) >= 0).all())
    goal = bool(scenario.goal.contains(sim[-1]))
    return {"resim_error": err, "collision_free": free, "reaches_goal": goal,
            "ok": bool(err < 1e-3 and free and goal)}


def _check_shapes(states: Tensor, controls: Tensor) -> None:
    """states (T + 1, 5) and controls (T, 2) tensors: one control per integration step (a held control repeated
    ``control_period`` times), one state more."""
    for name, x, dim in (("states", states, STATE_DIM), ("controls", controls, CONTROL_DIM)):
        if not isinstance(x, Tensor) or x.dim() != 2 or x.shape[1] != dim:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise InputError(f"verify_plan: {name}: expected a ({'T + 1' if dim == STATE_DIM else 'T'}, {dim}) "
                             f"tensor, got {shape}")
    t = controls.shape[0]
    if states.shape[0] != t + 1:
        raise InputError(f"verify_plan: states: expected {t + 1} rows (one more than the {t} rows of controls, one "
                         f"per integration step), got {states.shape[0]}")
