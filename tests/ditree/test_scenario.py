"""Scenario files round-trip; malformed scenarios are rejected with the field and value named."""
import copy
import json

import pytest

from sciflow.core.errors import InputError
from sciflow.data.robot_maps import FAMILIES, make_scenario
from sciflow.domains.robots import Scenario, load_scenario, save_scenario, scenario_files

BASE = {"format": "sciflow.ditree.scenario/1", "name": "t", "budget_s": 3.0,
        "map": {"bounds": [0, 0, 8, 6], "rectangles": [[3, 0, 3.2, 4]], "discs": [[6, 4, 0.5]],
                "grid": {"origin": [0, 5], "resolution": 0.25, "cells": ["....##", "......"]}},
        "start": [1.0, 1.0, 0.3, 0.5, -0.1], "goal": {"x": 7.0, "y": 1.0, "radius": 0.6}, "robot": {"max_speed": 1.5}}


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_round_trip(tmp_path, suffix):
    sc = Scenario.from_dict(BASE)
    path = save_scenario(tmp_path / f"t{suffix}", sc)
    back = load_scenario(path)
    assert back.to_dict() == sc.to_dict()
    assert back.robot.max_speed == 1.5 and back.start == tuple(BASE["start"])
    assert bool((back.world.field == sc.world.field).all())
    assert scenario_files(tmp_path) == [path]


def test_generated_families_round_trip_and_are_deterministic(tmp_path):
    for fam in FAMILIES:
        a, b = make_scenario(fam, 3), make_scenario(fam, 3)
        assert a.to_dict() == b.to_dict() and a.family == fam
        back = load_scenario(save_scenario(tmp_path / f"{fam}.yaml", a))
        assert back.to_dict() == a.to_dict()
        assert make_scenario(fam, 4).to_dict() != a.to_dict()
    from sciflow.commands.ditree import _FAMILIES
    assert _FAMILIES == FAMILIES                      # the CLI's choices


def test_the_rooms_family_is_walled_rooms_with_the_goal_in_the_opposite_corner():
    from sciflow.data.robot_maps import connected
    for seed in range(5):
        sc = make_scenario("rooms", seed)
        sx, sy = sc.start[:2]
        assert abs(sc.goal.x - sx) > 3.0 and abs(sc.goal.y - sy) > 3.0          # opposite corner rooms
        assert connected(sc.world, (sx, sy), (sc.goal.x, sc.goal.y), sc.robot.disc_radius + 0.02)
        walls = [r for r in sc.world.rectangles.tolist() if max(r[2] - r[0], r[3] - r[1]) > 1.0]
        assert len(walls) >= 12                       # 12 walls between neighbouring rooms, a door splits one in two


def _bad(mutate):
    d = copy.deepcopy(BASE)
    mutate(d)
    return d


@pytest.mark.parametrize("mutate, pattern", [
    (lambda d: d.update(start=[3.1, 2.0, 0.0, 0.0, 0.0]), r"scenario.start: .* is in collision"),
    (lambda d: d["goal"].update(x=9.5), r"scenario.goal: centre \(9.5, 1.0\) is outside the map bounds"),
    (lambda d: d["goal"].update(x=3.1, y=1.0), r"scenario.goal: .* inside an obstacle"),
    (lambda d: d.update(colour="red"), r"scenario.colour: unknown key"),
    (lambda d: d["map"].update(walls=[]), r"scenario.map.walls: unknown key"),
    (lambda d: d["goal"].update(heading=1.0), r"scenario.goal.heading: unknown key"),
    (lambda d: d["robot"].update(mass=3.0), r"robot.mass: unknown key"),
    (lambda d: d.update(budget_s=0), r"scenario.budget_s: must be > 0, got 0"),
    (lambda d: d.update(start=[1.0, 1.0, 0.0, 5.0, 0.0]), r"scenario.start.speed: 5.0 is outside"),
    (lambda d: d.update(start=[1.0, 1.0]), r"scenario.start: expected \[x, y, heading, speed, steer\]"),
    (lambda d: d["map"].update(bounds=[0, 0, 8]), r"scenario.map.bounds: expected"),
    (lambda d: d["map"]["grid"].update(cells=["..x"]), r"scenario.map.grid.cells\[0\]: unexpected character 'x'"),
    (lambda d: d["goal"].update(radius="big"), r"scenario.goal.radius: expected a number, got 'big'"),
    (lambda d: d.pop("goal"), r"scenario.goal: required"),
    (lambda d: d.update(format="other/1"), r"scenario.format: expected"),
    (lambda d: d["robot"].update(dt=float("inf")), r"robot.dt: must be finite"),
    (lambda d: d["robot"].update(max_speed=float("inf")), r"robot.max_speed: must be finite"),
    (lambda d: d["robot"].update(control_period=2.5), r"robot.control_period: must be an integer >= 1, got 2.5"),
    (lambda d: d.update(seed=1.7), r"scenario.seed: expected an integer, got 1.7"),
    (lambda d: d.update(seed="abc"), r"scenario.seed: expected a number, got 'abc'"),
    (lambda d: d["map"]["grid"].update(cells=[[0, "0", 1]]), r"scenario.map.grid.cells\[0\]: cells must be 0/1"),
])
def test_malformed_scenarios_are_rejected(mutate, pattern):
    with pytest.raises(InputError, match=pattern):
        Scenario.from_dict(_bad(mutate))


def test_whole_numbers_from_yaml_become_counts():
    """control_period 2.0 (a YAML float) is the count 2: rollouts work and hold each control for 2 steps."""
    import torch
    sc = Scenario.from_dict(_bad(lambda d: d["robot"].update(control_period=2.0, n_discs=3.0)))
    assert type(sc.robot.control_period) is int and sc.robot.control_period == 2 and sc.robot.n_discs == 3
    from sciflow.domains.robots import Car
    traj = Car(sc.robot).rollout(torch.tensor([sc.start]), torch.zeros(1, 3, 2))
    assert traj.shape == (1, 7, 5)


def test_bad_files(tmp_path):
    (tmp_path / "a.json").write_text("{not json")
    with pytest.raises(InputError, match="malformed JSON"):
        load_scenario(tmp_path / "a.json")
    (tmp_path / "b.yaml").write_text(json.dumps(_bad(lambda d: d.update(extra=1))))
    with pytest.raises(InputError, match=r"b.yaml.extra: unknown key"):
        load_scenario(tmp_path / "b.yaml")
    with pytest.raises(InputError, match="no file"):
        load_scenario(tmp_path / "missing.yaml")
    with pytest.raises(InputError, match="no .yaml/.yml/.json files"):
        scenario_files(tmp_path / "empty") if (tmp_path / "empty").mkdir() is None else None


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_a_key_given_twice_is_refused_not_the_last_one_kept(tmp_path, suffix):
    path = save_scenario(tmp_path / f"t{suffix}", Scenario.from_dict(BASE))
    text = path.read_text()
    if suffix == ".yaml":           # a second budget_s at the top level, and a second radius inside goal
        top = text.replace("budget_s: 3.0\n", "budget_s: 3.0\nbudget_s: 9.0\n")
        nested = text.replace("radius: 0.6", "radius: 0.6, radius: 2.0")
        line = next(i for i, s in enumerate(top.splitlines(), 1) if s.startswith("budget_s: 9.0"))
        expect = [rf"duplicate key 'budget_s' \(lines {line - 1} and {line}\)", "duplicate key 'radius'"]
    else:
        top = text.replace('"budget_s": 3.0', '"budget_s": 3.0, "budget_s": 9.0')
        nested = text.replace('"radius": 0.6', '"radius": 0.6, "radius": 2.0')
        expect = ["duplicate key 'budget_s'", "duplicate key 'radius'"]
    for bad, pattern in zip((top, nested), expect):
        assert bad != text
        path.write_text(bad)
        with pytest.raises(InputError, match=rf"scenario .*t{suffix}: malformed .*{pattern}"):
            load_scenario(path)


def test_a_binary_scenario_file_is_refused_by_name(tmp_path):
    p = tmp_path / "bin.yaml"
    p.write_bytes(b"name: \xff\xfe")
    with pytest.raises(InputError, match=r"scenario .*bin\.yaml: not a UTF-8 text file"):
        load_scenario(p)
