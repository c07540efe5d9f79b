"""The shipped workflow, shrunk to two scenarios, end to end on the shipped weights."""
import json
from pathlib import Path

import pytest
import torch
import yaml

from sciflow.data.robot_maps import make_scenario
from sciflow.domains.robots import load_scenario, save_scenario, verify_plan
from sciflow.io import read_trajectory
from sciflow.workflows.runner import run_workflow

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(not (ROOT / "models" / "ditree" / "model.pt").is_file(), reason="shipped weights missing")
def test_shipped_workflow_plans_exports_and_draws(tmp_path, open_scenario):
    scen = tmp_path / "scenarios"
    save_scenario(scen / "open.yaml", open_scenario)
    maze = make_scenario("maze", 0)
    save_scenario(scen / f"{maze.name}.yaml", maze)             # files named by the scenario name
    wf = yaml.safe_load((ROOT / "workflows" / "ditree.yaml").read_text())
    wf["ditree"].update({"model": str(ROOT / "models" / "ditree"), "scenarios": str(scen), "budget_s": 3.0,
                         "batch": 1})
    summary = run_workflow(wf, output=tmp_path / "out")
    out = tmp_path / "out"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_runs"] == summary["n_runs"] == 2
    assert len(list((out / "pictures").glob("*.png"))) == 2
    ok = [r for r in metrics["runs"] if r["success"]]
    assert any(r["scenario"] == "open" for r in ok)            # the empty room is always solved in 3 s
    for r in ok:                                                # every exported plan is feasible and reaches the goal
        assert r["verified"]
        stem = f"{r['scenario']}-ditree-s0"
        traj = read_trajectory(out / "plans" / f"{stem}.npz")
        states = traj.states[:, 0].to(torch.float32)
        controls = traj.extras["controls"][0].to(torch.float32)
        sc = load_scenario(scen / f"{r['scenario']}.yaml")
        rep = verify_plan(sc, states, controls)
        assert rep["ok"], rep
        assert (out / "plans" / f"{stem}.csv").is_file()
