"""Inputs refused before planning, each with an InputError naming the file and the field."""
import json
import math
import re

import numpy as np
import pytest
import torch
import yaml

import sciflow.domains.robots.world as world_mod
from sciflow.cli import main
from sciflow.core.errors import InputError
from sciflow.domains import robots
from sciflow.domains.robots import CarParams, Scenario, World, grid_to_rectangles, save_scenario, verify_plan
from sciflow.workflows.runner import run_workflow


def scenario(**kw):
    d = {"name": "s", "budget_s": 5.0, "map": {"bounds": [0, 0, 10, 10]}, "start": [1.0, 5.0, 0.0, 0.0, 0.0],
         "goal": {"x": 8.0, "y": 5.0, "radius": 0.5}}
    d.update(kw)
    return d


# -- 1. occupancy grids with many occupied cells ------------------------------------------------------------------
def test_exact_distance_matrices_stay_small_with_many_obstacles(monkeypatch):
    sizes = []
    box_distance = world_mod._box_distance

    def spy(px, py, boxes):
        sizes.append(px.shape[0] * boxes.shape[0])
        return box_distance(px, py, boxes)

    monkeypatch.setattr(world_mod, "_box_distance", spy)
    lo = np.random.default_rng(0).uniform(0, 9.5, (1000, 2))
    w = World([0, 0, 10, 10], rectangles=np.concatenate([lo, lo + 0.05], 1).tolist())
    assert max(sizes) <= 4_000_000                      # (the old chunks were 8192 points x 1000 boxes)
    pts = torch.tensor([[0.3, 0.3], [5.0, 5.0], [9.9, 0.1]], dtype=torch.float64)
    one = [float(w.exact_distance(p[None])[0]) for p in pts]
    assert w.exact_distance(pts).tolist() == one


def test_grid_runs_of_the_same_columns_in_consecutive_rows_become_one_box():
    cells = np.array([[0, 1, 1, 0], [0, 1, 1, 0], [0, 1, 1, 1], [1, 0, 0, 0]], dtype=bool)
    boxes = grid_to_rectangles(cells, (0.0, 0.0), 0.5)
    assert boxes.tolist() == [[0.5, 0.0, 1.5, 1.0], [0.5, 1.0, 2.0, 1.5], [0.0, 1.5, 0.5, 2.0]]
    per_cell = [[c * 0.5, r * 0.5, c * 0.5 + 0.5, r * 0.5 + 0.5] for r, c in zip(*np.nonzero(cells))]
    g = World([0, 0, 2, 2], grid={"origin": [0, 0], "resolution": 0.5, "cells": cells})
    assert torch.equal(g.field, World([0, 0, 2, 2], rectangles=per_cell).field)     # the same distances


def test_a_grid_with_too_many_obstacles_is_refused_before_the_field(monkeypatch):
    monkeypatch.setattr(world_mod, "MAX_OBSTACLES", 150)
    cells = ["".join("#" if (r + c) % 2 else "." for c in range(20)) for r in range(20)]     # 200 single cells
    d = scenario(map={"bounds": [0, 0, 10, 10], "grid": {"origin": [0, 0], "resolution": 0.1, "cells": cells}})
    d["start"] = [5.0, 5.0, 0.0]
    with pytest.raises(InputError, match=r"g\.yaml\.map\.grid\.cells: .*200 obstacles, more than the 150"):
        Scenario.from_dict(d, source="g.yaml")


# -- 2. a scenario for another car than the policy's ----------------------------------------------------------------
@pytest.fixture
def small_model(tmp_path):
    from sciflow.methods.ditree import DiTree
    DiTree(widths=(8, 16), map_dim=16, cond_dim=16, batch=16).save(tmp_path / "small")
    return tmp_path / "small"


@pytest.fixture
def fast_car_folder(tmp_path):
    folder = tmp_path / "sc"
    save_scenario(folder / "a.yaml", Scenario.from_dict(scenario(name="a")))
    save_scenario(folder / "fast.yaml", Scenario.from_dict(scenario(name="fast", robot={"max_speed": 1.5})))
    return folder


def test_the_workflow_refuses_another_car_when_validated(tmp_path, small_model, fast_car_folder):
    wf = {"version": 1, "task": "ditree", "device": "cpu", "output": str(tmp_path / "out"),
          "ditree": {"model": str(small_model), "scenarios": str(fast_car_folder), "budget_s": 0.2,
                     "pictures": False}}
    with pytest.raises(InputError, match=r"ditree\.scenarios: .*fast\.yaml: .*robot\.max_speed: 1\.5 here, 2\.0 in "
                                         r"the policy"):
        run_workflow(wf)
    assert not (tmp_path / "out" / "plans").exists()


@pytest.mark.parametrize("verb", ["evaluate", "plan"])
def test_the_commands_refuse_another_car_before_planning(tmp_path, small_model, fast_car_folder, capsys, verb):
    where = (["--scenarios", str(fast_car_folder), "--planner", "ditree", "--seeds", "1"] if verb == "evaluate"
             else [str(fast_car_folder / "fast.yaml")])
    rc = main(["ditree", verb, *where, "--model", str(small_model), "--budget", "0.2",
               "--out", str(tmp_path / ("m.json" if verb == "evaluate" else "p.npz"))])
    err = capsys.readouterr().err
    assert rc == 2 and "fast.yaml" in err and "robot.max_speed: 1.5 here, 2.0 in the policy" in err
    assert not (tmp_path / "m.json").exists() and not (tmp_path / "p.npz").exists()


def test_the_workflow_reads_each_scenario_file_once(tmp_path, monkeypatch):
    calls = []
    load = robots.load_scenario
    monkeypatch.setattr(robots, "load_scenario", lambda f, **kw: calls.append(f) or load(f, **kw))
    save_scenario(tmp_path / "sc" / "a.yaml", Scenario.from_dict(scenario(name="a")))
    wf = {"version": 1, "task": "ditree", "device": "cpu", "output": str(tmp_path / "out"),
          "ditree": {"planner": "sst", "scenarios": str(tmp_path / "sc"), "budget_s": 0.1, "pictures": False}}
    assert run_workflow(wf)["n_runs"] == 1
    assert len(calls) == 1


# -- 3. map lists of the wrong type -------------------------------------------------------------------------------
@pytest.mark.parametrize("key, value", [("rectangles", 5), ("discs", True), ("rectangles", {"a": 1})])
def test_map_rectangles_and_discs_must_be_lists(key, value):
    d = scenario(map={"bounds": [0, 0, 10, 10], key: value})
    with pytest.raises(InputError, match=rf"s\.yaml\.map\.{key}: expected a list"):
        Scenario.from_dict(d, source="s.yaml")


# -- 4. names that cannot name files --------------------------------------------------------------------------------
@pytest.mark.parametrize("name, why", [("x" * 260, "260 characters"), ("a:b", "character ':'"),
                                       (" a", "leading or trailing space"), ("a\tb", "character '\\\\t'")])
def test_names_that_cannot_name_output_files_are_refused(name, why):
    with pytest.raises(InputError, match=rf"s\.yaml\.name: .*{why}"):
        Scenario.from_dict(scenario(name=name), source="s.yaml")
    assert Scenario.from_dict(scenario(name="x" * 100)).name == "x" * 100


# -- 5. huge start headings; a plan that does not verify is not exported --------------------------------------------
@pytest.mark.parametrize("heading", [1e30, 3000.0, -3000.0, 3.5, math.pi, -math.pi, 1.0])
def test_start_headings_are_wrapped_so_float32_plans_verify(heading):
    sc = Scenario.from_dict(scenario(start=[1.0, 5.0, heading, 1.0, 0.0]))
    controls = torch.zeros(20, 2)
    states = sc.car().simulate(sc.start_tensor()[None], controls[None])[0]          # the planners' float32
    assert verify_plan(sc, states, controls)["resim_error"] < 1e-3
    assert -math.pi <= sc.start[2] <= math.pi
    if abs(heading) <= math.pi:                     # kept as written (shipped scenarios start at exactly pi)
        assert sc.start[2] == heading
    else:
        assert sc.start[2] == pytest.approx(math.remainder(heading, 2 * math.pi)) and sc.start[2] < math.pi


def test_plan_does_not_export_a_plan_that_fails_verification(tmp_path, capsys, monkeypatch, tick_clock):
    save_scenario(tmp_path / "s.yaml", Scenario.from_dict(scenario(goal={"x": 3.0, "y": 5.0, "radius": 1.0})))
    monkeypatch.setattr(robots, "verify_plan", lambda sc, s, c: {"ok": False, "resim_error": 1.0})
    rc = main(["ditree", "plan", str(tmp_path / "s.yaml"), "--planner", "rrt-torch", "--budget", "3",
               "--out", str(tmp_path / "p.npz")])
    out = capsys.readouterr()
    assert json.loads(out.out.strip().splitlines()[-1])["success"]          # planned, but not verified
    assert rc == 1 and "verify_plan" in out.err and not (tmp_path / "p.npz").exists()


# -- 6. a workflow that writes no plan ------------------------------------------------------------------------------
def test_a_workflow_without_formats_is_refused(tmp_path):
    save_scenario(tmp_path / "sc" / "a.yaml", Scenario.from_dict(scenario(name="a")))
    wf = {"version": 1, "task": "ditree", "device": "cpu", "output": str(tmp_path / "out"),
          "ditree": {"planner": "sst", "scenarios": str(tmp_path / "sc"), "formats": []}}
    with pytest.raises(InputError, match=r"ditree\.formats: name at least one output format"):
        run_workflow(wf)


# -- 7. verify_plan's shapes ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("states, controls, field", [((3, 5), (2, 3), r"controls: expected a \(T, 2\)"),
                                                     ((3, 4), (2, 2), r"states: expected a \(T \+ 1, 5\)"),
                                                     ((5,), (2, 2), "states"),
                                                     ((4, 5), (2, 2), "states: expected 3 rows")])
def test_verify_plan_checks_the_shapes(states, controls, field):
    sc = Scenario.from_dict(scenario())
    with pytest.raises(InputError, match=f"verify_plan: {field}"):
        verify_plan(sc, torch.zeros(states), torch.zeros(controls))


# -- 8. a goal where the car cannot stand ---------------------------------------------------------------------------
@pytest.mark.parametrize("goal, rects", [({"x": 0.03, "y": 5.0, "radius": 0.02}, []),          # at the wall
                                         ({"x": 4.97, "y": 5.0, "radius": 0.02}, [[5, 4, 6, 6]])])   # at a box
def test_a_goal_that_cannot_hold_the_car_is_refused(goal, rects):
    d = scenario(goal=goal, map={"bounds": [0, 0, 10, 10], "rectangles": rects})
    with pytest.raises(InputError, match=r"s\.yaml\.goal: no point of the goal disc can hold the car: .* at most "
                                         r"0\.0[0-9]+ m"):
        Scenario.from_dict(d, source="s.yaml")
    d["goal"] = {**goal, "radius": 0.2}                 # a larger disc reaches far enough from the obstacle
    Scenario.from_dict(d)
    d["goal"] = {**goal, "x": goal["x"] - 0.1 if rects else 0.1}      # the body's edge just fits: allowed
    Scenario.from_dict(d)


# -- 9. extreme robot settings --------------------------------------------------------------------------------------
@pytest.mark.parametrize("kw, field, step", [({"dt": 10}, "robot.dt / robot.max_speed", "20"),
                                             ({"max_speed": 1e30}, "robot.dt / robot.max_speed", "5e+28"),
                                             ({"min_speed": -100.0}, "robot.dt / robot.min_speed", "5")])
def test_robot_settings_that_move_too_far_per_step_are_refused(kw, field, step):
    with pytest.raises(InputError, match=rf"{re.escape(field)}: the car moves up to {re.escape(step)} m per integration step"):
        CarParams(**kw)
    with pytest.raises(InputError, match=rf"s\.yaml\.{re.escape(field)}"):
        Scenario.from_dict(yaml.safe_load(yaml.safe_dump(scenario(robot=kw))), source="s.yaml")
    CarParams(dt=0.1, max_speed=3.0)                    # a coarser step that still fits

