import os

import pytest
import torch

os.environ.setdefault("SCIFLOW_PROGRESS", "0")
os.environ.setdefault("MPLBACKEND", "Agg")
torch.set_num_threads(1)


@pytest.fixture
def open_scenario():
    """An empty 6 m x 6 m room: start at the left, goal on the right."""
    from sciflow.domains.robots import Scenario
    return Scenario.from_dict({"name": "open", "budget_s": 5.0, "map": {"bounds": [0, 0, 6, 6]},
                               "start": [1.0, 3.0, 0.0, 0.0, 0.0], "goal": {"x": 4.5, "y": 3.0, "radius": 0.5}})


@pytest.fixture
def wall_scenario():
    """A wall between start and goal with a 1.6 m gap at the top."""
    from sciflow.domains.robots import Scenario
    return Scenario.from_dict({"name": "wall", "budget_s": 8.0,
                               "map": {"bounds": [0, 0, 6, 6], "rectangles": [[2.9, 0.0, 3.1, 4.4]]},
                               "start": [1.0, 1.5, 0.0, 0.0, 0.0], "goal": {"x": 5.0, "y": 1.5, "radius": 0.5}})


@pytest.fixture
def gen() -> torch.Generator:
    return torch.Generator().manual_seed(1234)


#: seconds the planners' clock advances per read under ``tick_clock``
TICK = 0.01


@pytest.fixture
def tick_clock(ticking_clock):
    """The planners' clock (``time.perf_counter`` in the RRT, SST and policy-rollout modules) advances TICK s per
    read instead of with the wall clock: they read it once per iteration, so a budget of B s allows about B / TICK
    iterations on any machine and a seeded search ends the same way however loaded the machine is. Returns TICK."""
    from sciflow.methods.ditree import planners, rollout, sst
    ticking_clock(planners, sst, rollout, dt=TICK)
    return TICK
