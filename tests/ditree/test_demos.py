"""Expert demonstrations: pure-pursuit tracking, preferred clearance, recovery rollouts, the demos files."""
import numpy as np
import pytest
import torch

from sciflow.core.random import make_generator
from sciflow.data.robot_demos import demonstrate, generate_demos, load_demos, merge_parts, recovery_rollouts
from sciflow.domains.robots import track_path


def _route_around_wall():
    # up the left side of the wall, over its top (the gap is y > 4.4), down to the goal
    return torch.tensor([[1.0, 1.5], [2.0, 5.2], [4.0, 5.2], [5.0, 1.5]])


def _check_rollout(sc, res, start):
    """The rollout re-simulates from its controls, never collides before arrival and ends in the goal."""
    car, checker = sc.car(), sc.checker()
    cp = car.p.control_period
    resim = car.rollout(start[None].to(torch.float32), res.controls[None])[0]
    n = res.states.shape[0]
    assert torch.allclose(resim[:n], res.states, atol=1e-5)
    assert bool(checker.states_valid(res.states).all())
    assert bool(sc.goal.contains(res.states[-1:])[0])
    assert res.controls.shape[0] == (n - 1 + cp - 1) // cp
    assert res.margin == pytest.approx(float(checker.clearance(res.states[1:]).min()), abs=1e-6)


def test_tracked_route_is_feasible_and_reaches_the_goal(wall_scenario):
    sc = wall_scenario
    start = torch.tensor(sc.start, dtype=torch.float32)
    res = track_path(sc.car(), sc.checker(), sc.goal, _route_around_wall(), start)
    assert res is not None
    _check_rollout(sc, res, start)
    assert torch.equal(res.route, _route_around_wall())


def test_preferred_clearance_picks_a_safer_rollout(wall_scenario):
    sc = wall_scenario
    start = torch.tensor(sc.start, dtype=torch.float32)
    route = torch.tensor([[1.0, 1.5], [2.6, 4.9], [3.4, 4.9], [5.0, 1.5]])    # close around the wall's top
    fastest = track_path(sc.car(), sc.checker(), sc.goal, route, start)
    assert fastest is not None
    # a slightly wider margin is reachable here: the winner keeps it and is slower than the unconstrained one
    ask = fastest.margin + 0.05
    safer = track_path(sc.car(), sc.checker(), sc.goal, route, start, prefer_clearance=ask)
    _check_rollout(sc, safer, start)
    assert safer.margin >= ask and safer.variant != fastest.variant
    assert safer.duration > fastest.duration
    # a margin no rollout keeps: the fastest overall comes back
    greedy = track_path(sc.car(), sc.checker(), sc.goal, route, start, prefer_clearance=fastest.margin + 0.5)
    assert greedy.variant == fastest.variant and greedy.duration == fastest.duration


def test_recoveries_start_off_the_demonstration_and_rejoin_it(wall_scenario):
    sc = wall_scenario
    start = torch.tensor(sc.start, dtype=torch.float32)
    demo = track_path(sc.car(), sc.checker(), sc.goal, _route_around_wall(), start)
    rec = recovery_rollouts(sc, demo, 5, make_generator(3))
    assert len(rec) >= 3
    for r in rec:
        s0 = r.states[0]
        # the start is a perturbed state: not on the demonstration (distance > 0) but near it
        d = (demo.states[:, :2] - s0[:2]).norm(dim=-1).min()
        assert float(d) < 0.8
        assert not bool((demo.states == s0).all(dim=-1).any())
        _check_rollout(sc, r, s0)
    assert recovery_rollouts(sc, demo, 0, make_generator(3)) == []


def test_generate_demos_writes_recoveries_and_merges(tmp_path, wall_scenario):
    sc = wall_scenario

    def planner(scenario, g):
        return torch.cat([_route_around_wall(), torch.zeros(4, 3)], dim=1)   # a raw "plan": the route's points

    stats = generate_demos(lambda seed: sc, [0, 1], planner, tmp_path / "parts", part_size=1, progress_bar=False,
                           recoveries=2)
    assert stats["kept"] == 2 and stats["recoveries"] >= 2
    out = merge_parts(tmp_path / "parts", tmp_path / "demos.npz")
    d = load_demos(out)
    n_demos = len(d["offsets"]) - 1
    assert n_demos == 2 + stats["recoveries"]
    assert int(d["recovery"].sum()) == stats["recoveries"] and d["recovery"][0] == 0
    assert d["meta"]["options"]["recoveries"] == 2
    assert d["crops"].shape == (int(d["offsets"][-1]), 20, 20)
    assert np.isfinite(d["states"]).all()


def test_demonstrate_keeps_the_old_defaults(wall_scenario):
    """Called without options, ``demonstrate`` does what it did before preferred clearance existed: shortcut the
    raw plan keeping 0.12 m beyond the footprint's disc radius, track the shortcut for at most 60 s and keep the
    fastest rollout (``prefer_clearance`` 0), with a feasible result."""
    import inspect

    from sciflow.domains.robots.tracking import resample_polyline, shortcut_polyline
    params = inspect.signature(demonstrate).parameters
    assert {k: p.default for k, p in params.items() if p.default is not p.empty} == {
        "clearance_extra": 0.12, "prefer_clearance": 0.0, "max_time": 60.0}
    sc = wall_scenario
    car, checker = sc.car(), sc.checker()
    start = torch.tensor(sc.start, dtype=torch.float32)
    plan = torch.cat([_route_around_wall(), torch.zeros(4, 3)], dim=1)
    res = demonstrate(sc, plan)
    assert res is not None and res.route is not None
    _check_rollout(sc, res, start)
    # a dense raw plan, where the shortcut's clearance matters: the route is the shortcut with 0.12 m extra and the
    # rollout the fastest one along it
    dense = resample_polyline(_route_around_wall(), 0.2)
    res = demonstrate(sc, torch.cat([dense, torch.zeros(len(dense), 3)], dim=1))
    assert res is not None
    _check_rollout(sc, res, start)
    route = shortcut_polyline(sc.world, dense, car.p.disc_radius + 0.12)
    assert torch.equal(res.route, route) and len(route) < len(dense)
    assert not torch.equal(route, shortcut_polyline(sc.world, dense, car.p.disc_radius))    # the 0.12 m matters
    fastest = track_path(car, checker, sc.goal, route, start, prefer_clearance=0.0, max_time=60.0)
    assert (res.variant, res.duration, res.margin) == (fastest.variant, fastest.duration, fastest.margin)
    assert torch.equal(res.controls, fastest.controls) and torch.equal(res.states, fastest.states)
    # a preferred clearance would have picked another, slower rollout along the same route
    safer = track_path(car, checker, sc.goal, route, start, prefer_clearance=res.margin + 0.01)
    assert safer.variant != res.variant and safer.duration > res.duration
