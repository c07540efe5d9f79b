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


def test_a_malformed_scenario_stops_the_workflow_before_any_plan(tmp_path, open_scenario):
    from sciflow.core.errors import InputError
    from sciflow.workflows import validate_workflow

    scen = tmp_path / "scenarios"
    save_scenario(scen / "open.yaml", open_scenario)
    (scen / "zz.yaml").write_text("name: broken\nmap: {bounds: [0, 0, 10, 10]}\nstart: [1, 1, 0, 0, 0]\n"
                                  "goal: {x: 20, y: 5, radius: 0.5}\n")
    wf = yaml.safe_load((ROOT / "workflows" / "ditree.yaml").read_text())
    wf["ditree"].update({"model": str(ROOT / "models" / "ditree"), "scenarios": str(scen)})
    wf["output"] = str(tmp_path / "out")
    (tmp_path / "wf.yaml").write_text(yaml.safe_dump(wf))
    with pytest.raises(InputError, match=r"ditree\.scenarios: .*zz\.yaml\.goal: centre \(20\.0, 5\.0\) is outside"):
        validate_workflow(tmp_path / "wf.yaml")
    with pytest.raises(InputError, match="zz.yaml.goal"):
        run_workflow(wf, output=tmp_path / "out")
    assert not (tmp_path / "out" / "plans").exists() and not (tmp_path / "out" / "pictures").exists()


def test_training_in_a_workflow_writes_under_the_output_not_over_the_shipped_weights(tmp_path, open_scenario):
    """With a `train:` block and no `model`, the trained policy goes to OUTPUT/model; the shipped folder is untouched."""
    from sciflow.data.robot_demos import generate_demos, merge_parts

    def planner(scenario, g):      # a raw plan: straight across the empty room
        return torch.cat([torch.tensor([[1.0, 3.0], [4.5, 3.0]]), torch.zeros(2, 3)], dim=1)

    generate_demos(lambda seed: open_scenario, [0, 1], planner, tmp_path / "parts", part_size=2, progress_bar=False,
                   recoveries=0)
    demos = merge_parts(tmp_path / "parts", tmp_path / "demos.npz")
    scen = tmp_path / "scenarios"
    save_scenario(scen / "open.yaml", open_scenario)
    shipped = ROOT / "models" / "ditree" / "model.pt"
    before = shipped.stat().st_mtime_ns if shipped.is_file() else None
    wf = {"version": 1, "task": "ditree", "device": "cpu", "output": str(tmp_path / "out"),
          "ditree": {"scenarios": str(scen), "budget_s": 0.5, "pictures": False, "formats": ["npz"],
                     "train": {"demos": str(demos), "steps": 3, "batch_size": 8, "widths": [8, 16],
                               "checkpoint_every": 0}}}
    summary = run_workflow(wf)
    assert summary["train"]["model"] == str(tmp_path / "out" / "model")
    assert (tmp_path / "out" / "model" / "model.pt").is_file()
    assert (shipped.stat().st_mtime_ns if shipped.is_file() else None) == before
    # a resumed run keeps the trained policy (it retrained, from torch's global stream, between two scenarios'
    # plans); and the same workflow seed gives the same weights whatever that global stream holds
    from sciflow.methods.ditree import DiTree
    first = DiTree.load(tmp_path / "out" / "model").model.state_dict()
    again = run_workflow(wf)
    assert again["train"].get("resumed") is True
    torch.manual_seed(123)
    run_workflow({**wf, "output": str(tmp_path / "other")})
    other = DiTree.load(tmp_path / "other" / "model").model.state_dict()
    assert all(torch.equal(first[k], other[k]) for k in first)
