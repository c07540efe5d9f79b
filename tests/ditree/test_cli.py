"""`sciflow ditree plan/evaluate --random-frac`: the mixed-expansion fraction from the command line."""
import json
from pathlib import Path

import pytest

from sciflow.cli import main
from sciflow.domains.robots import save_scenario, verify_plan
from sciflow.io import read_trajectory

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "models" / "ditree"


@pytest.mark.skipif(not (MODEL / "model.pt").is_file(), reason="shipped weights missing")
def test_plan_with_random_frac_writes_a_feasible_plan(tmp_path, open_scenario, capsys, tick_clock):
    # tick_clock: the 3 s budget is 300 iterations on any machine (the search takes a handful)
    save_scenario(tmp_path / "open.yaml", open_scenario)
    rc = main(["ditree", "plan", str(tmp_path / "open.yaml"), "--model", str(MODEL), "--random-frac", "1.0",
               "--budget", "3", "--out", str(tmp_path / "plan.npz")])
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rc == 0 and metrics["success"]
    assert metrics["random_nodes"] == metrics["tree_size"] - 1              # every expansion was random
    traj = read_trajectory(tmp_path / "plan.npz")
    assert verify_plan(open_scenario, traj.states[:, 0].float(), traj.extras["controls"][0].float())["ok"]


def _exit_code(argv):
    """main's return code, or the code of the SystemExit argparse raises for a value its type refuses."""
    try:
        return main(argv)
    except SystemExit as e:
        return e.code


@pytest.mark.parametrize("argv, field", [(["--planner", "sst", "--random-frac", "0.5"], "--random-frac"),
                                          (["--planner", "ditree", "--random-frac", "2"], "--random-frac")])
def test_bad_random_frac_is_rejected_before_planning(tmp_path, open_scenario, capsys, argv, field):
    save_scenario(tmp_path / "sc" / "open.yaml", open_scenario)
    rc = _exit_code(["ditree", "evaluate", "--scenarios", str(tmp_path / "sc"), "--model", str(MODEL),
                     "--out", str(tmp_path / "m.json"), "--seeds", "1", *argv])
    assert rc == 2 and field in capsys.readouterr().err
    assert not (tmp_path / "m.json").exists()


def test_sampler_option_and_distill_command(tmp_path, open_scenario, capsys, tick_clock):
    """`ditree distill` writes a model with a flow map that plans by default; `--sampler` picks the sampler and
    is refused where it cannot apply."""
    from sciflow.methods.ditree import DiTree
    DiTree(widths=(8, 16), map_dim=16, cond_dim=16, batch=16).save(tmp_path / "small")
    rc = main(["ditree", "distill", "--model", str(tmp_path / "small"), "--out", str(tmp_path / "fast"),
               "--maps", "2", "--iterations", "10", "--steps", "30", "--hidden", "16", "--random-frac", "0.25"])
    assert rc == 0
    fast = DiTree.load(tmp_path / "fast")
    assert fast.config()["use_head"] and fast.config()["random_frac"] == 0.25
    assert fast.info["distill"]["maps"] == 2 and fast.info["distill"]["rows"] > 0
    save_scenario(tmp_path / "open.yaml", open_scenario)
    for sampler in ("head", "unet"):
        rc = main(["ditree", "plan", str(tmp_path / "open.yaml"), "--model", str(tmp_path / "fast"),
                   "--sampler", sampler, "--budget", "3"])
        assert rc == 0
    capsys.readouterr()
    rc = main(["ditree", "plan", str(tmp_path / "open.yaml"), "--model", str(tmp_path / "small"),
               "--sampler", "head", "--budget", "3"])
    assert rc == 2 and "no distilled head" in capsys.readouterr().err
    rc = main(["ditree", "plan", str(tmp_path / "open.yaml"), "--planner", "sst", "--sampler", "unet"])
    assert rc == 2 and "--sampler" in capsys.readouterr().err


@pytest.mark.parametrize("argv, field", [(["--maps", "0"], "--maps"), (["--teacher-steps", "0"], "--teacher-steps"),
                                          (["--hidden", "16", "0"], "--hidden"), (["--random-frac", "-1"], "--random-frac")])
def test_bad_distill_options_are_rejected_before_work(tmp_path, capsys, argv, field):
    rc = _exit_code(["ditree", "distill", "--model", str(tmp_path / "missing"), "--out", str(tmp_path / "o"), *argv])
    assert rc == 2 and field in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_evaluate_refuses_two_scenario_files_with_the_same_name(tmp_path, open_scenario, wall_scenario, capsys):
    """Runs are keyed by the scenario's name: two files holding the same name used to be merged silently."""
    import dataclasses
    save_scenario(tmp_path / "sc" / "a.yaml", open_scenario)
    save_scenario(tmp_path / "sc" / "b.yaml", dataclasses.replace(wall_scenario, name="open"))
    save_scenario(tmp_path / "sc" / "c.yaml", wall_scenario)
    rc = main(["ditree", "evaluate", "--scenarios", str(tmp_path / "sc"), "--planner", "rrt", "--seeds", "1",
               "--budget", "0.2", "--out", str(tmp_path / "m.json")])
    err = capsys.readouterr().err
    assert rc == 2 and "a.yaml" in err and "b.yaml" in err and "'open'" in err and "--scenarios" in err
    assert not (tmp_path / "m.json").exists()
