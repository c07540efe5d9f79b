"""OMPL RRT's specialised Python callbacks (``ompl_rrt.scalar_kernels``) compute what the batched torch dynamics
and collision checker compute, and exactly what the previous scalar implementation computed, only faster."""
import math
import random
import timeit

import pytest
import torch

from sciflow.data.robot_maps import make_scenario
from sciflow.methods.ditree.ompl_rrt import scalar_kernels

D = torch.float64


def _previous_step(p, x, y, th, v, d, a, w):
    """``Car.step_scalar`` as it was before ``scalar_kernels`` (verbatim arithmetic, default ``dt``)."""
    h = p.dt
    a = min(max(a, -p.max_accel), p.max_accel)
    w = min(max(w, -p.max_steer_rate), p.max_steer_rate)
    v1 = min(max(v + a * h, p.min_speed), p.max_speed)
    d1 = min(max(d + w * h, -p.max_steer), p.max_steer)
    dv, dd, inv_l = v1 - v, d1 - d, 1.0 / p.wheelbase
    cos, sin, tan = math.cos, math.sin, math.tan
    vm, dm = v + 0.5 * dv, d + 0.5 * dd
    k1t = v * tan(d) * inv_l
    t2 = th + 0.5 * h * k1t
    k2t = vm * tan(dm) * inv_l
    t3 = th + 0.5 * h * k2t
    k3t = k2t
    t4 = th + h * k3t
    k4t = v1 * tan(d1) * inv_l
    x1 = x + h / 6 * (v * cos(th) + 2 * vm * cos(t2) + 2 * vm * cos(t3) + v1 * cos(t4))
    y1 = y + h / 6 * (v * sin(th) + 2 * vm * sin(t2) + 2 * vm * sin(t3) + v1 * sin(t4))
    th1 = th + h / 6 * (k1t + 2 * k2t + 2 * k3t + k4t)
    th1 = th1 - 2 * math.pi * math.floor((th1 + math.pi) / (2 * math.pi))
    return x1, y1, th1, v1, d1


def _previous_clearance(world, x, y):
    j = math.floor((x - world.bounds[0]) / world.resolution)
    i = math.floor((y - world.bounds[1]) / world.resolution)
    if i < 0 or j < 0 or i >= world.rows or j >= world.cols:
        return -world.margin
    return float(world.field_np[i, j]) - world.margin


def _previous_valid(checker, x, y, heading):
    """``CollisionChecker.state_valid_scalar`` (with ``World.clearance_scalar``) as it was."""
    c, s = math.cos(heading), math.sin(heading)
    for off in checker.car.p.disc_offsets:
        if _previous_clearance(checker.world, x + off * c, y + off * s) < checker.radius:
            return False
    return True


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


def test_scalar_step_matches_batched_step_and_previous_scalar(scenario):
    car = scenario.car()
    step, _ = scalar_kernels(car, scenario.checker())
    samples = _samples(scenario, 400)
    t = torch.tensor(samples, dtype=D)
    s, u = t[:, :5], t[:, 5:]
    one, two = car.step(s, u), car.step(car.step(s, u), u)            # one integration step, and a control period
    for k, (x, y, th, v, d, a, w) in enumerate(samples):
        new = step(x, y, th, v, d, a, w)
        assert new == _previous_step(car.p, x, y, th, v, d, a, w) == car.step_scalar(x, y, th, v, d, a, w)
        new2 = step(*new, a, w)
        for got, ref in ((new, one[k]), (new2, two[k])):
            ref = ref.tolist()
            assert abs(got[0] - ref[0]) < 1e-12 and abs(got[1] - ref[1]) < 1e-12
            assert abs(math.remainder(got[2] - ref[2], 2 * math.pi)) < 1e-12
            assert got[3:] == pytest.approx(ref[3:], abs=1e-14)
            assert -math.pi - 1e-12 <= got[2] <= math.pi + 1e-12


def test_scalar_validity_matches_batched_checker_and_previous_scalar(scenario):
    checker = scenario.checker()
    _, valid = scalar_kernels(scenario.car(), checker)
    samples = _samples(scenario, 2000, seed=1)
    states = torch.tensor([s[:5] for s in samples], dtype=D)
    batched = checker.states_valid(states).tolist()
    n_valid = 0
    for k, (x, y, th, *_) in enumerate(samples):
        new = valid(x, y, th)
        assert new == _previous_valid(checker, x, y, th) == checker.state_valid_scalar(x, y, th)
        if new != batched[k]:        # the torch field is float32: only a state at the threshold may differ
            c, sn = math.cos(th), math.sin(th)
            gap = min(_previous_clearance(checker.world, x + o * c, y + o * sn) for o in checker.car.p.disc_offsets)
            assert abs(gap - checker.radius) < 1e-6, (k, gap, checker.radius)
        n_valid += new
    assert 0.1 * len(samples) < n_valid < 0.9 * len(samples)           # both outcomes well represented


def test_scalar_kernels_are_faster_than_the_previous_scalar_code(scenario):
    car, checker = scenario.car(), scenario.checker()
    step, valid = scalar_kernels(car, checker)
    samples = _samples(scenario, 300, seed=2)

    def run(f, g):
        for x, y, th, v, d, a, w in samples:
            f(x, y, th, v, d, a, w)
            g(x, y, th)

    old = lambda: run(car.step_scalar, checker.state_valid_scalar)
    new = lambda: run(step, valid)
    t_old, t_new = [], []
    for _ in range(7):                                                 # interleaved, best of 7 (shared machine)
        t_old.append(timeit.timeit(old, number=3))
        t_new.append(timeit.timeit(new, number=3))
    assert min(t_new) < 0.9 * min(t_old), (min(t_new), min(t_old))    # measured about 0.5
