"""OMPL RRT's specialised Python callbacks (``ompl_rrt.scalar_kernels``) compute what the batched torch dynamics
and collision checker compute, and exactly what the reference scalar code (``Car.step_scalar``,
``CollisionChecker.state_valid_scalar``, the callbacks before) computes. Their speed is measured in the benchmark
(``benchmarks/ditree.py --kernel-cost``), not here."""
import math
import random

import pytest
import torch

from sciflow.data.robot_maps import make_scenario
from sciflow.methods.ditree.ompl_rrt import scalar_kernels

D = torch.float64


def _samples(scenario, n, seed=0):
    """n random (state, control) tuples: positions over the map and a little beyond it, speeds, steering
    angles and controls over their bounds and beyond them (so that every clip is exercised)."""
    p, rng = scenario.car().p, random.Random(seed)
    xmin, ymin, xmax, ymax = scenario.world.bounds
    return [(rng.uniform(xmin - 0.3, xmax + 0.3), rng.uniform(ymin - 0.3, ymax + 0.3), rng.uniform(-math.pi, math.pi),
             rng.uniform(p.min_speed - 0.3, p.max_speed + 0.3), rng.uniform(-p.max_steer - 0.1, p.max_steer + 0.1),
             rng.uniform(-1.5 * p.max_accel, 1.5 * p.max_accel),
             rng.uniform(-1.5 * p.max_steer_rate, 1.5 * p.max_steer_rate)) for _ in range(n)]


@pytest.fixture(scope="module", params=["maze", "bugtrap"])
def scenario(request):
    return make_scenario(request.param, 0, budget_s=5.0)


def test_scalar_step_matches_batched_step_and_the_reference_scalar(scenario):
    car = scenario.car()
    step, _ = scalar_kernels(car, scenario.checker())
    samples = _samples(scenario, 400)
    t = torch.tensor(samples, dtype=D)
    s, u = t[:, :5], t[:, 5:]
    one, two = car.step(s, u), car.step(car.step(s, u), u)            # one integration step, and a control period
    for k, (x, y, th, v, d, a, w) in enumerate(samples):
        new = step(x, y, th, v, d, a, w)
        assert new == car.step_scalar(x, y, th, v, d, a, w)
        new2 = step(*new, a, w)
        for got, ref in ((new, one[k]), (new2, two[k])):
            ref = ref.tolist()
            assert abs(got[0] - ref[0]) < 1e-12 and abs(got[1] - ref[1]) < 1e-12
            assert abs(math.remainder(got[2] - ref[2], 2 * math.pi)) < 1e-12
            assert got[3:] == pytest.approx(ref[3:], abs=1e-14)
            assert -math.pi - 1e-12 <= got[2] <= math.pi + 1e-12


def test_scalar_validity_matches_batched_checker_and_the_reference_scalar(scenario):
    checker = scenario.checker()
    _, valid = scalar_kernels(scenario.car(), checker)
    samples = _samples(scenario, 2000, seed=1)
    states = torch.tensor([s[:5] for s in samples], dtype=D)
    batched = checker.states_valid(states).tolist()
    n_valid = 0
    for k, (x, y, th, *_) in enumerate(samples):
        new = valid(x, y, th)
        assert new == checker.state_valid_scalar(x, y, th)
        if new != batched[k]:        # the torch field is float32: only a state at the threshold may differ
            c, sn = math.cos(th), math.sin(th)
            gap = min(checker.world.clearance_scalar(x + o * c, y + o * sn) for o in checker.car.p.disc_offsets)
            assert abs(gap - checker.radius) < 1e-6, (k, gap, checker.radius)
        n_valid += new
    assert 0.1 * len(samples) < n_valid < 0.9 * len(samples)           # both outcomes well represented
