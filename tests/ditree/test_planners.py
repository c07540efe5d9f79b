"""Every returned plan, re-simulated from its controls, reaches the goal without collision."""
import math

import pytest
import torch

from sciflow.core.errors import InputError
from sciflow.core.fields import CONTROLS
from sciflow.core.random import make_generator
from sciflow.domains.robots import Scenario, save_scenario, verify_plan
from sciflow.methods.ditree import DiTree, RandomControls, SSTPlanner, TreePlanner, plan_trajectory
from sciflow.methods.ditree.ompl_rrt import OMPLRRT, ompl_available
from sciflow.methods.ditree.planners import GOAL_MARGIN
from sciflow.methods.ditree.problem import Problem
from sciflow.methods.ditree.tree import Tree


def _check(sc, res):
    assert res.success, f"{res.planner} found no plan"
    rep = verify_plan(sc, res.states, res.controls)
    assert rep["ok"], rep
    assert bool(sc.goal.contains(res.states[-1], GOAL_MARGIN))     # every planner, OMPL too: one goal test
    # the trajectory view keeps states and controls consistent
    traj = plan_trajectory(res, scenario=sc.name)
    assert traj.states.shape == (res.states.shape[0], 1, 5)
    assert traj.extras[CONTROLS].shape == (1, res.states.shape[0] - 1, 2)
    assert torch.allclose(traj.times[1:] - traj.times[:-1], torch.full((traj.n_frames - 1,), sc.robot.dt,
                                                                       dtype=torch.float64))


#: OMPL keeps its own (wall) clock and its RRT returns at the first exact solution (well under a second here): a
#: generous budget so that a loaded machine cannot turn a found plan into a timeout
OMPL_BUDGET_S = 60.0


def test_tree_paths_chain_their_edges():
    root = torch.zeros(5)
    tree = Tree(root, capacity=2)
    e1 = torch.stack([root, torch.ones(5), 2 * torch.ones(5)])
    tree.add(torch.tensor([0]), [e1], [torch.ones(2, 2)], 0.05)
    e2 = torch.stack([2 * torch.ones(5), 3 * torch.ones(5)])
    tree.add(torch.tensor([1]), [e2], [2 * torch.ones(1, 2)], 0.05)
    states, controls = tree.path_to(2)
    assert states[:, 0].tolist() == [0, 1, 2, 3] and controls[:, 0].tolist() == [1, 1, 2]
    assert abs(float(tree.time[2]) - 0.15) < 1e-6 and tree.n == 3
    # a padded batch: two edges from node 2 that end after 1 and 3 steps; the padding never shows
    batch = 3 + torch.arange(4.0)[None, :, None].expand(2, 4, 5).clone()
    batch[1] += 10.0
    batch[1, 0] = 3.0
    new = tree.add_batch(torch.tensor([2, 2]), batch, torch.arange(3.0)[None, :, None].expand(2, 3, 2),
                         torch.tensor([1, 3]), 0.05)
    assert new.tolist() == [3, 4] and tree.nodes[3, 0] == 4 and tree.nodes[4, 0] == 16
    assert torch.allclose(tree.time[3:5], torch.tensor([0.2, 0.3]))
    s4, c4 = tree.path_to(4)
    assert s4[:, 0].tolist() == [0, 1, 2, 3, 14, 15, 16] and c4[:, 0].tolist() == [1, 1, 2, 0, 1, 2]
    assert tree.edge(3)[0].shape == (2, 5) and tree.edge(3)[1].shape == (1, 2) and tree.edge(0) is None
    assert [e.shape[0] for e in tree.edge_polylines()] == [3, 2, 2, 4] and len(tree.edge_polylines(2)) == 2


def test_batched_rrt_plans_are_feasible(wall_scenario, tick_clock):
    res = TreePlanner(RandomControls(), batch=64).solve(wall_scenario, generator=make_generator(0))
    _check(wall_scenario, res)


def test_sst_plans_are_feasible(open_scenario, tick_clock):
    res = SSTPlanner(batch=32).solve(open_scenario, generator=make_generator(1))
    _check(open_scenario, res)


def test_tree_searches_stop_at_the_budget(wall_scenario, tick_clock):
    """The budget is checked between iterations, the clock read once per iteration (here it ticks per read): a
    budget of 10.5 ticks ends the RRT after 11 iterations (its first one runs unchecked) and SST after 10, both
    without a plan, and neither reports more than two ticks past the budget."""
    budget = 10.5 * tick_clock
    for planner, iters in ((TreePlanner(RandomControls(), batch=4), 11), (SSTPlanner(batch=4), 10)):
        res = planner.solve(wall_scenario, budget_s=budget, generator=make_generator(0))
        assert not res.success and res.states is None and res.info["iterations"] == iters, res.info
        assert budget <= res.time_s <= budget + 2 * tick_clock


def test_edges_stop_at_the_first_collision(wall_scenario):
    prob = Problem.from_scenario(wall_scenario)
    tree = Tree(torch.tensor([2.0, 1.5, 0.0, 1.5, 0.0]))       # 0.9 m before the wall, driving at it
    from sciflow.methods.ditree.planners import grow_edges
    new, goal = grow_edges(prob, tree, torch.tensor([0]), torch.zeros(1, 10, 2), torch.tensor([10]), min_steps=1)
    assert goal is None and len(new) == 1
    edge = tree.edge(1)[0]
    assert bool(prob.checker.states_valid(edge).all())
    cp = prob.car.p.control_period
    assert (len(edge) - 1) % cp == 0                                # whole control periods only
    nxt = prob.car.rollout(edge[-1:], torch.zeros(1, 1, 2))[0, 1:]  # one more held control
    assert not bool(prob.checker.states_valid(nxt).all())         # the next control period would collide


@pytest.mark.skipif(not ompl_available(), reason="ompl not installed")
def test_ompl_rrt_plans_are_feasible(open_scenario):
    res = OMPLRRT().solve(open_scenario, budget_s=OMPL_BUDGET_S)
    _check(open_scenario, res)


def test_ompl_rrt_accepts_a_start_heading_of_pi(open_scenario):
    # OMPL's SO2 bounds are [-pi, pi): a heading of exactly pi (a valid scenario heading) must be wrapped.
    from sciflow.methods.ditree.ompl_rrt import ompl_yaw
    assert ompl_yaw(math.pi) == -math.pi and ompl_yaw(-math.pi) == -math.pi
    assert abs(ompl_yaw(3 * math.pi / 2) + math.pi / 2) < 1e-12 and ompl_yaw(0.3) == 0.3
    d = open_scenario.to_dict()
    d["start"], d["goal"] = [4.5, 3.0, math.pi, 0.0, 0.0], {"x": 1.0, "y": 3.0, "radius": 0.5}
    sc = Scenario.from_dict(d)
    res = OMPLRRT().solve(sc, budget_s=OMPL_BUDGET_S)
    assert res.tree_size > 1
    _check(sc, res)


def test_ditree_and_policy_plans_are_feasible(open_scenario, tmp_path, tick_clock):
    torch.manual_seed(0)
    model = DiTree(widths=(8, 16), map_dim=16, cond_dim=16, batch=16)     # untrained: chunks are near-random
    res = model.solve(open_scenario, generator=make_generator(2))
    _check(open_scenario, res)
    # the search runs in inference mode; what it returns is ordinary tensors (usable as training data)
    assert not res.states.is_inference() and not res.controls.is_inference()
    traj = model.plan(open_scenario, generator=make_generator(2))
    assert traj.info["planner"] == "ditree"
    save_scenario(tmp_path / "open.yaml", open_scenario)                  # a scenario file works the same way
    again = model.plan(tmp_path / "open.yaml", generator=make_generator(2))
    assert again.states.shape == traj.states.shape
    for bad, match in [(tmp_path / "none.yaml", "scenario: no file"), (42, "expected a Scenario or the path")]:
        with pytest.raises(InputError, match=match):
            model.plan(bad)
    # the policy alone (no tree), with the shipped weights: in the open room it drives to the goal (seeded, and
    # the budget counts clock ticks, so this does not depend on the machine)
    shipped = DiTree.load("models/ditree")
    pol = shipped.solve(open_scenario, planner="policy", generator=make_generator(3))
    assert pol.planner == "policy" and pol.info["stop"] == "goal"
    _check(open_scenario, pol)
    assert pol.tree_size >= 2 and pol.expansions == pol.tree_size - 1        # one chain of chunks, no branching
    traj = shipped.plan(open_scenario, planner="policy", generator=make_generator(3))
    assert torch.equal(traj.states[:, 0], pol.states) and traj.info["planner"] == "policy"


class _Hold(RandomControls):
    """A stand-in policy for the rollout: one held control (accel, steer rate), ``k`` control periods a chunk."""

    def __init__(self, accel, k=4):
        super().__init__()
        self.accel, self.k, self.calls = accel, k, 0

    def sample(self, problem, states, targets, generator, nodes=None):
        self.calls += 1
        u = torch.tensor([self.accel, 0.0], dtype=states.dtype, device=states.device)
        return u.expand(states.shape[0], self.k, 2).clone(), torch.full((states.shape[0],), self.k)


def test_policy_rollout_drives_a_straight_policy_to_the_goal(open_scenario, wall_scenario, tick_clock):
    """The policy-alone planner with a stand-in policy that accelerates straight ahead: in the open room the
    rollout reaches the goal with a feasible plan made of the chunks in order; with a wall ahead it stops at the
    collision and returns no plan."""
    from sciflow.methods.ditree.rollout import PolicyRollout
    straight = _Hold(accel=1.0)
    res = PolicyRollout(straight).solve(open_scenario, generator=make_generator(0))
    assert res.success and res.info["stop"] == "goal"
    _check(open_scenario, res)
    cp = open_scenario.robot.control_period
    assert straight.calls == res.tree_size - 1                          # one chunk per call, each one a new node
    assert (res.controls[:, 0] == 1.0).all() and (res.controls[:, 1] == 0).all()
    # every chunk but the last is executed whole; the last one stops at the first state in the goal
    assert (straight.calls - 1) * straight.k * cp < res.controls.shape[0] <= straight.calls * straight.k * cp
    assert not bool(open_scenario.goal.contains(res.states[:-1], GOAL_MARGIN).any())
    # the start is 1.9 m before the wall (x = 2.9) and heads at it: a straight run collides and the rollout stops
    crash = _Hold(accel=1.0)
    res = PolicyRollout(crash).solve(wall_scenario, generator=make_generator(0), keep_tree=True)
    assert not res.success and res.info["stop"] == "collision" and res.states is None
    assert crash.calls == res.tree_size              # 4 whole chunks; the 5th collides in its first control period
    p = wall_scenario.robot
    front = float(torch.cat(res.edges)[:, 0].max()) + p.length - p.rear_overhang     # the rear axle drove along y = 1.5
    assert 2.9 - 1.0 < front < 2.9                             # it stopped within a chunk of the wall, short of it


def test_policy_rollout_stops_at_the_budget_and_the_plan_duration(open_scenario, tick_clock):
    """A stand-in policy that never moves neither reaches the goal nor collides: the rollout ends when its budget
    (in ticks of the fake clock: one read per chunk) or the plan's maximum duration runs out."""
    from sciflow.methods.ditree.rollout import PolicyRollout
    still = _Hold(accel=0.0)
    res = PolicyRollout(still).solve(open_scenario, budget_s=20.5 * tick_clock, generator=make_generator(0))
    assert not res.success and res.info["stop"] == "budget" and still.calls == 20
    still = _Hold(accel=0.0, k=5)                             # 5 control periods of 0.1 s: 0.5 s per chunk
    res = PolicyRollout(still, max_duration_s=3.0).solve(open_scenario, budget_s=1e6, generator=make_generator(0))
    assert not res.success and res.info["stop"] == "max_duration" and still.calls == 6


def test_mixed_sampler_splits_rows_and_pads_chunks(open_scenario, gen):
    from sciflow.methods.ditree import MixedSampler

    class Straight(RandomControls):                     # a stand-in "policy": zero controls, 4 executed
        def sample(self, problem, states, targets, generator, nodes=None):
            return torch.zeros(states.shape[0], 3, 2), torch.full((states.shape[0],), 3)

    prob = Problem.from_scenario(open_scenario)
    mixed = MixedSampler(Straight(), 0.25, RandomControls(min_controls=2, max_controls=10))
    states = prob.start.expand(8, 5)
    controls, n = mixed.sample(prob, states, torch.zeros(8, 2), gen)
    assert controls.shape == (8, 10, 2) and mixed.last_random.tolist() == [True] * 2 + [False] * 6
    assert bool((controls[2:] == 0).all()) and n[2:].tolist() == [3] * 6        # policy rows, padded
    assert bool((controls[:2] != 0).any()) and all(2 <= int(k) <= 10 for k in n[:2])
    assert bool((controls[:2] == controls[:2, :1]).all())                       # random rows: one held control
    lo, hi = prob.car.control_bounds("cpu", torch.float32)
    assert bool(((controls[:2] >= lo) & (controls[:2] <= hi)).all())
    assert MixedSampler(Straight(), 0.0).sample(prob, states, torch.zeros(8, 2), gen)[0].shape == (8, 3, 2)


def test_ditree_mixed_expansion_grows_both_kinds_of_edges(open_scenario, tick_clock):
    torch.manual_seed(0)
    model = DiTree(widths=(8, 16), map_dim=16, cond_dim=16, batch=16, random_frac=0.5)
    res = model.solve(open_scenario, generator=make_generator(4))
    _check(open_scenario, res)
    assert 0 < res.info["random_nodes"] < res.tree_size - 1                    # random and policy edges
    assert 0 <= res.info["plan_random_edges"] <= res.info["plan_edges"]
    pure = model.planner("ditree", random_frac=0.0).solve(Problem.from_scenario(open_scenario),
                                                           generator=make_generator(4), budget_s=0.5)
    assert pure.info["random_nodes"] == 0


@pytest.mark.parametrize("frac", [-0.1, 1.5])
def test_random_frac_out_of_range_is_rejected(frac):
    from sciflow.core.errors import InputError
    with pytest.raises(InputError, match="random_frac"):
        DiTree(widths=(8, 16), map_dim=16, cond_dim=16, random_frac=frac)
    with pytest.raises(InputError, match="random_frac"):
        DiTree(widths=(8, 16), map_dim=16, cond_dim=16).planner("ditree", random_frac=frac)


def test_verify_plan_compares_headings_modulo_two_pi():
    # driving a circle past heading pi: a stored heading of +pi - e and a re-simulated -pi + e are the same pose
    sc = Scenario.from_dict({"name": "turn", "budget_s": 5.0, "map": {"bounds": [-5, -5, 5, 5]},
                             "start": [0.0, -1.0, 0.0, 1.0, 0.5], "goal": {"x": 0.0, "y": 1.0, "radius": 3.0}})
    car = sc.car()
    controls = torch.zeros(60, 2, dtype=torch.float64)
    states = car.simulate(torch.tensor([sc.start], dtype=torch.float64), controls[None])[0]
    assert bool((states[:, 2].abs() > 3.0).any())                 # the heading passes through +-pi
    shifted = states.clone()
    near_pi = shifted[:, 2].abs() > 3.0
    shifted[near_pi, 2] -= torch.sign(shifted[near_pi, 2]) * 2 * math.pi      # the other end of the wrap
    rep = verify_plan(sc, shifted, controls)
    assert rep["ok"] and rep["resim_error"] < 1e-9, rep
    moved = states.clone()
    moved[30, 0] += 0.01                                           # a real 1 cm discrepancy is still caught
    assert not verify_plan(sc, moved, controls)["ok"]


def test_verify_plan_judges_collisions_by_exact_distance():
    """A plan that clears a wall by 1 cm (less than the fast check's conservative margin) verifies; one that
    grazes it by 1 cm does not."""
    def wall_plan(gap):
        sc = Scenario.from_dict({"name": "wall", "budget_s": 5.0, "map": {"bounds": [0, 0, 10, 6]},
                                 "start": [1.0, 3.0, 0.0, 1.0, 0.0], "goal": {"x": 6.0, "y": 3.0, "radius": 0.5}})
        car = sc.car()
        controls = torch.zeros(100, 2, dtype=torch.float64)                 # 5 s straight at 1 m/s
        states = car.simulate(torch.tensor([sc.start], dtype=torch.float64), controls[None])[0]
        # a box just below the path: its top face `gap` below the lowest point of the checked discs (the covering
        # discs widened by the sweep margin)
        top = 3.0 - sc.checker().radius - gap
        sc = Scenario.from_dict({**sc.to_dict(), "map": {"bounds": [0, 0, 10, 6],
                                                         "rectangles": [[3.0, 0.5, 5.0, top]]}})
        return sc, states, controls
    sc, states, controls = wall_plan(0.01)
    rep = verify_plan(sc, states.float(), controls)
    assert rep["collision_free"] and rep["ok"]
    assert not bool(sc.checker().states_valid(states.float()).all())      # the fast check would have refused it
    sc, states, controls = wall_plan(-0.01)
    assert not verify_plan(sc, states.float(), controls)["collision_free"]


def test_goal_margin_shrinks_the_goal_disc():
    from sciflow.domains.robots.scenario import GoalRegion
    goal = GoalRegion(1.0, 2.0, 0.5)
    pts = torch.tensor([[1.0, 2.498], [1.0, 2.4995], [1.0, 2.5], [1.0, 2.501]], dtype=torch.float64)
    assert goal.contains(pts).tolist() == [True, True, True, False]
    assert goal.contains(pts, 1e-3).tolist() == [True, False, False, False]
    assert goal.contains(pts, 10.0).tolist() == [False] * 4            # a margin beyond the radius: nothing inside


def test_success_curve_and_summary_count_only_verified_plans():
    from sciflow.methods.ditree.evaluate import success_curve, summarize
    base = {"budget_s": 5.0, "duration_s": 1.0, "length_m": 1.0, "tree_size": 10}
    runs = [{**base, "success": True, "verified": True, "time_s": 0.3},
            {**base, "success": True, "verified": True, "time_s": 1.5},
            {**base, "success": True, "verified": False, "time_s": 0.2},      # a plan that failed verification
            {**base, "success": False, "time_s": 5.0}]
    assert success_curve(runs, [0.1, 0.3, 1.0, 5.0]) == [0.0, 0.25, 0.25, 0.5]
    s = summarize(runs)
    assert s["n_success"] == 2 and s["success_rate"] == 0.5 and not s["all_verified"]
    assert s["median_time_s"] == pytest.approx(0.9) and math.isinf(s["median_time_all_s"])     # half failed
    with pytest.raises(ValueError, match="budget"):
        success_curve(runs, [6.0])


@pytest.mark.parametrize("kind", ["ditree", "policy"])
def test_policy_planners_refuse_another_car_however_they_are_called(open_scenario, kind, tick_clock):
    """The CLI, evaluate and the workflow call model.planner(...).solve directly: the policy's sampler itself
    refuses a scenario whose car differs from the one it was trained for."""
    from sciflow.domains.robots import CarParams
    model = DiTree(widths=(8, 16), map_dim=16, cond_dim=16, batch=16)
    other = Scenario.from_dict({**open_scenario.to_dict(), "robot": {"max_speed": 1.0}})
    assert other.robot != model.robot and isinstance(other.robot, CarParams)
    with pytest.raises(InputError, match="robot parameters differ"):
        model.planner(kind).solve(Problem.from_scenario(other), budget_s=0.5, generator=make_generator(0))
    res = model.planner(kind).solve(Problem.from_scenario(open_scenario), budget_s=0.5, generator=make_generator(0))
    assert res.planner == kind and res.tree_size > 1                 # the trained-for car is planned for
    # and within the budget: the clock is read between iterations, so the search ends at most two ticks past it
    assert res.time_s <= 0.5 + 2 * tick_clock


def test_clear_discs_at_every_step_mean_a_clear_body_between_the_steps():
    """The checks look at the covering discs at integration steps only; while turning at full speed the body
    leaves those discs by about 1 cm between two steps. The checker's radius includes that sweep, so a state pair
    it calls clear has every body point, at 50 times between the steps, outside an obstacle that touches the
    widened discs."""
    from sciflow.domains.robots import Car, CarParams
    p = CarParams()
    car = Car(p)
    assert 0.0 < p.sweep_margin < 0.05
    worst = 0.0
    for v, d, w in ((p.max_speed, p.max_steer, p.max_steer_rate), (p.max_speed, -p.max_steer, 0.0),
                    (p.min_speed, p.max_steer, -p.max_steer_rate)):
        s0 = torch.tensor([[0.0, 0.0, 0.3, v, d]], dtype=torch.float64)
        u = torch.tensor([[p.max_accel, w]], dtype=torch.float64)
        fine = [s0]
        for _ in range(50):
            fine.append(car.step(fine[-1], u, dt=p.dt / 50))
        fine = torch.cat(fine)
        ends = car.disc_centres(fine[[0, -1]]).reshape(-1, 2)
        # body rectangle points (dense) at the times between the steps
        gx = torch.linspace(-p.rear_overhang, p.length - p.rear_overhang, 61, dtype=torch.float64)
        gy = torch.linspace(-p.width / 2, p.width / 2, 31, dtype=torch.float64)
        bx, by = torch.meshgrid(gx, gy, indexing="ij")
        th = fine[1:-1, 2:3]
        px = fine[1:-1, 0:1] + bx.reshape(1, -1) * torch.cos(th) - by.reshape(1, -1) * torch.sin(th)
        py = fine[1:-1, 1:2] + bx.reshape(1, -1) * torch.sin(th) + by.reshape(1, -1) * torch.cos(th)
        pts = torch.stack([px, py], -1).reshape(-1, 2)
        worst = max(worst, float(torch.cdist(pts, ends).min(-1).values.max()) - p.disc_radius)
    assert worst > 0.005                                   # the plain discs miss part of the swept body ...
    assert worst <= p.sweep_margin                         # ... the widened ones do not


def test_a_plan_found_after_the_budget_is_not_returned_as_one(tick_clock):
    """The budget is checked between iterations, so the last one can end past it; plan() then raises
    PlanningFailed instead of returning the late plan (run_once already counted it as a failure). The planners'
    clock ticks per read (``tick_clock``), so "easy within 5 s" and "past a 1e-9 s budget" hold on any machine."""
    from sciflow.domains.robots import Scenario
    from sciflow.methods.ditree import DiTree
    from sciflow.methods.ditree.method import PlanningFailed
    model = DiTree.load("models/ditree")                      # the shipped weights, found from anywhere
    sc = Scenario.from_dict({"name": "near", "budget_s": 5.0, "map": {"bounds": [0, 0, 10, 10]},
                             "start": [2, 5, 0, 1, 0], "goal": {"x": 3.3, "y": 5, "radius": 0.5}})
    assert model.solve(sc, generator=make_generator(0)).success               # easy within 5 s
    late = model.solve(sc, budget_s=1e-9, generator=make_generator(0))        # the first iteration runs anyway
    assert not late.success and late.info["overrun"]
    with pytest.raises(PlanningFailed):
        model.plan(sc, budget_s=1e-9, generator=make_generator(0))
    from sciflow.methods.ditree.evaluate import run_once
    m, _ = run_once(model.planner("ditree"), sc, seed=0, budget_s=1e-9)       # the benchmark's path: the same rule
    assert not m["success"] and m["overrun"]
    for kind in ("ditree", "rrt-torch"):                                       # the CLI's path: planner.solve itself
        pl = model.planner("ditree") if kind == "ditree" else TreePlanner(RandomControls())
        assert not pl.solve(sc, budget_s=1e-9, generator=make_generator(0)).success


def test_sst_takes_a_batch_of_new_nodes_one_after_another():
    """Within a batch, a node replaces its witness's representative only if cheaper than the one the batch's
    earlier rows left there, and sees the witnesses earlier rows made (before: every row was compared with the
    batch's start, so the last of several rows near one witness won whatever its cost)."""
    from math import inf

    from sciflow.methods.ditree.sst import assign_rows
    # rows 0-2 near existing witness 0 (representative cost 5.0); rows 3 and 4 far from it but close together
    costs = [4.0, 4.5, 3.0, 2.0, 1.0]
    dmin, wnear = [0.1, 0.1, 0.1, 1.0, 1.0], [0, 0, 0, 0, 0]
    pair = [[0.0] * 5 for _ in range(5)]
    for a, b in ((3, 4), (4, 3)):
        pair[a][b] = 0.05
    for a in range(3):
        for b in (3, 4):
            pair[a][b] = pair[b][a] = 1.0
    kept, witness, made = assign_rows(costs, [False] * 5, dmin, wnear, pair, lambda w: 5.0, 1, 0.3)
    # row 1 (4.5) is costlier than row 0 (4.0), which now holds witness 0: not kept; row 2 (3.0) replaces it;
    # row 3 makes witness 1, row 4 (cheaper, 0.05 away) replaces row 3 there instead of making another witness
    assert kept == [0, 2, 3, 4] and witness == [0, 0, 1, 1] and made == [3]
    # a goal-reaching row is always kept; an unreached witness has no representative (infinite cost)
    kept, witness, made = assign_rows([9.0, 9.0], [True, False], [0.1, 0.1], [0, 0], [[0, 1], [1, 0]],
                                      lambda w: inf, 1, 0.3)
    assert kept == [0, 1] and witness == [-2, 0] and made == []
