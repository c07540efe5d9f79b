"""Command-line fixes (ditree, mmsb): demos parts from another run are refused, `ditree plan --planner rrt` follows
--seed, train/distill checkpoint by default and only resuming verbs promise to resume, `mmsb simulate` takes only
the references it can simulate and names a divergence as such, `mmsb fit` checks --reference-kwargs before it
makes its folder, --model is refused for planners without a model, and the CSV reader names --time-key."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from sciflow.cli import main

ROOT = Path(__file__).resolve().parents[2]
LV = ROOT / "datasets" / "mmsb" / "LV_data.npz"


def _rc(argv):
    """main's return code, or the code of the SystemExit argparse raises for a value it refuses."""
    try:
        return main([str(a) for a in argv])
    except SystemExit as e:
        return e.code


def _open_scenario():
    from sciflow.domains.robots import Scenario
    return Scenario.from_dict({"name": "open", "budget_s": 5.0, "map": {"bounds": [0, 0, 6, 6]},
                               "start": [1.0, 3.0, 0.0, 0.0, 0.0], "goal": {"x": 4.5, "y": 3.0, "radius": 0.5}})


def _straight(scenario, g):
    """A raw "plan" for the open room: points on the straight line to the goal."""
    xs = torch.linspace(1.0, 4.5, 15)
    return torch.stack([xs, torch.full_like(xs, 3.0), *torch.zeros(3, 15)], dim=1)


# -- ditree demos: parts of another run --------------------------------------------------------------------------
def test_demos_refuse_a_parts_folder_of_another_run(tmp_path, capsys):
    common = ["--plan-budget", "0.2", "--batch", "8", "--parts", tmp_path / "parts"]
    assert _rc(["ditree", "demos", "--family", "forest", "--seed", "0", "--n", "1", *common,
                "--out", tmp_path / "forest.npz"]) == 0
    capsys.readouterr()
    rc = _rc(["ditree", "demos", "--family", "maze", "--seed", "100", "--n", "1", *common,
              "--out", tmp_path / "maze.npz"])
    err = capsys.readouterr().err
    assert rc == 2 and "family" in err and "seeds" in err and "--parts" in err
    assert not (tmp_path / "maze.npz").exists()


def test_demos_refuse_parts_of_other_seeds_without_settings_and_merge_only_the_seeds_asked(tmp_path):
    from sciflow.core.errors import InputError
    from sciflow.data.robot_demos import generate_demos, load_demos, merge_parts
    sc = _open_scenario()
    stats = generate_demos(lambda s: sc, [0, 1], _straight, tmp_path / "parts", part_size=1, progress_bar=False,
                           meta={"family": "open"})
    assert stats["kept"] == 2
    d = load_demos(merge_parts(tmp_path / "parts", tmp_path / "one.npz", seeds=[1]))
    assert d["meta"]["n_demos"] == 1 and len(d["offsets"]) == 2     # part-0001 only (seed 1)
    with pytest.raises(InputError, match="seed"):
        merge_parts(tmp_path / "parts", tmp_path / "none.npz", seeds=[7])
    (tmp_path / "parts" / "settings.json").unlink()          # a folder of an earlier version: parts only
    with pytest.raises(InputError, match="part-0000.npz.*seeds"):
        generate_demos(lambda s: sc, [5, 6], _straight, tmp_path / "parts", part_size=1, progress_bar=False,
                       meta={"family": "open"})
    assert not (tmp_path / "parts" / "settings.json").exists()   # the refused run recorded nothing, so the
    generate_demos(lambda s: sc, [0, 1], _straight, tmp_path / "parts", part_size=1, progress_bar=False,
                   meta={"family": "open"})                      # right command still resumes the old parts
    (tmp_path / "parts" / "settings.json").write_text('{"family": ')     # a damaged record: a named error
    with pytest.raises(InputError, match=r"settings\.json: the record of the settings .* is damaged"):
        generate_demos(lambda s: sc, [0, 1], _straight, tmp_path / "parts", part_size=1, progress_bar=False,
                       meta={"family": "open"})


# -- ditree plan --planner rrt --seed ----------------------------------------------------------------------------
def _rrt_plan(scenario: Path, seed: int, out: Path) -> np.ndarray:
    """`ditree plan --planner rrt` in a process of its own (OMPL is seeded once per process)."""
    subprocess.run([sys.executable, "-m", "sciflow", "ditree", "plan", str(scenario), "--planner", "rrt",
                    "--budget", "5", "--seed", str(seed), "--out", str(out)], check=True, capture_output=True,
                   cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1", "SCIFLOW_PROGRESS": "0",
                                  "PYTHONPATH": str(ROOT)})
    with np.load(out) as z:
        return z["states"].copy()


def test_rrt_plan_follows_the_seed(tmp_path):
    from sciflow.methods.ditree.ompl_rrt import ompl_available
    if not ompl_available():
        pytest.skip("ompl not installed")
    assert main(["ditree", "maps", "--family", "forest", "--n", "1", "--out", str(tmp_path / "maps")]) == 0
    sc = tmp_path / "maps" / "forest-0000.yaml"
    a, b, c = (_rrt_plan(sc, s, tmp_path / f"p{k}.npz") for k, s in enumerate((0, 5, 0)))
    assert a.shape == c.shape and np.array_equal(a, c)
    assert a.shape != b.shape or not np.array_equal(a, b)


# -- ditree train / distill: a default checkpoint; the resume hint only where it is true -----------------------
def _interrupt_save(monkeypatch):
    from sciflow.methods.ditree import DiTree

    def save(self, *a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(DiTree, "save", save)


def test_train_checkpoints_by_default_and_resumes(tmp_path, monkeypatch, capsys):
    from sciflow.data.robot_demos import generate_demos, merge_parts
    sc = _open_scenario()
    generate_demos(lambda s: sc, [0], _straight, tmp_path / "parts", progress_bar=False, meta={"family": "open"})
    merge_parts(tmp_path / "parts", tmp_path / "demos.npz")
    argv = ["ditree", "train", "--demos", tmp_path / "demos.npz", "--out", tmp_path / "model", "--steps", "3",
            "--batch-size", "4", "--widths", "4", "4", "--horizon", "4", "--execute", "2"]
    with monkeypatch.context() as m:
        _interrupt_save(m)                              # interrupted after training, before the model is saved
        assert _rc(argv) == 130
    assert "run the same command again to resume" in capsys.readouterr().err
    ckpt = tmp_path / "model" / "train_checkpoint.pt"
    assert ckpt.is_file()
    # the default checkpoint resumes only the same demos: other demos (the trainer compares settings, not data)
    generate_demos(lambda s: sc, [3], _straight, tmp_path / "parts3", progress_bar=False, meta={"family": "open2"})
    merge_parts(tmp_path / "parts3", tmp_path / "other.npz")
    other = [tmp_path / "other.npz" if a == tmp_path / "demos.npz" else a for a in argv]
    assert _rc(other) == 2
    assert "belongs to a training from other inputs (changed: demos)" in capsys.readouterr().err
    assert _rc(argv) == 0
    assert "resuming from" in capsys.readouterr().out
    assert (tmp_path / "model" / "model.pt").is_file() and not ckpt.exists()
    assert not list((tmp_path / "model").glob("*.inputs.json"))


def test_distill_checkpoints_by_default(tmp_path, monkeypatch, capsys):
    from sciflow.methods.ditree import DiTree
    DiTree(widths=(4, 8), map_dim=8, cond_dim=8, batch=8).save(tmp_path / "small")
    _interrupt_save(monkeypatch)
    rc = _rc(["ditree", "distill", "--model", tmp_path / "small", "--out", tmp_path / "fast", "--maps", "1",
              "--iterations", "5", "--steps", "3", "--hidden", "8"])
    assert rc == 130 and "resume" in capsys.readouterr().err
    assert (tmp_path / "fast" / "distill_checkpoint.pt").is_file()


def test_interrupting_a_verb_that_does_not_resume_promises_no_resume(tmp_path, monkeypatch, capsys):
    from sciflow.data import snapshots

    def interrupted(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(snapshots, "read_snapshots", interrupted)
    assert _rc(["mmsb", "evaluate", "--data", LV, "--out", tmp_path / "m.json"]) == 130
    err = capsys.readouterr().err
    assert "interrupted" in err and "resume" not in err


# -- mmsb simulate / fit / CSV -------------------------------------------------------------------------------
@pytest.mark.parametrize("reference", ["mlp", "zero", "mlp_gradient"])
def test_simulate_refuses_references_without_known_parameters(tmp_path, capsys, reference):
    rc = _rc(["mmsb", "simulate", "--reference", reference, "--box", "5,4", "5.1,4.1", "--n", "3",
              "--out", tmp_path / "s.npz"])
    assert rc == 2 and "--reference" in capsys.readouterr().err
    assert not (tmp_path / "s.npz").exists()


def test_simulate_names_a_divergence_not_x0(tmp_path, capsys):
    rc = _rc(["mmsb", "simulate", "--reference", "lotka_volterra", "--box", "5,4", "5.1,4.1", "--dt", "100",
              "--params", '{"alpha": 1, "beta": 1, "gamma": 1, "delta": 1}', "--n", "3", "--out", tmp_path / "lv.npz"])
    err = capsys.readouterr().err
    assert rc == 2 and "diverged by t=" in err and "--dt" in err and "x0" not in err
    assert not (tmp_path / "lv.npz").exists()


def test_fit_checks_reference_kwargs_before_making_its_folder(tmp_path, capsys):
    rc = _rc(["mmsb", "fit", "--data", LV, "--out", tmp_path / "fit", "--reference-kwargs", '{"bogus": 1}'])
    assert rc == 2 and "--reference-kwargs" in capsys.readouterr().err
    assert not (tmp_path / "fit").exists()


def test_csv_time_key_error_names_the_option(tmp_path, capsys):
    (tmp_path / "s.csv").write_text("t,x\n0,1\n0,2\n1,3\n1,4\n")
    rc = _rc(["mmsb", "evaluate", "--data", tmp_path / "s.csv", "--out", tmp_path / "m.json"])
    err = capsys.readouterr().err
    assert rc == 2 and "--time-key" in err and "'time'" in err
    assert not (tmp_path / "m.json").exists()


# -- ditree --model with planners that use none ----------------------------------------------------------------
@pytest.mark.parametrize("verb", ["plan", "evaluate"])
@pytest.mark.parametrize("planner", ["rrt", "sst", "rrt-torch"])
def test_model_is_refused_for_planners_without_a_model(tmp_path, capsys, verb, planner):
    from sciflow.domains.robots import save_scenario
    save_scenario(tmp_path / "sc" / "open.yaml", _open_scenario())
    where = [tmp_path / "sc" / "open.yaml"] if verb == "plan" else ["--scenarios", tmp_path / "sc", "--out",
                                                                    tmp_path / "m.json", "--seeds", "1"]
    rc = _rc(["ditree", verb, *where, "--planner", planner, "--model", tmp_path / "nomodel", "--budget", "0.5"])
    assert rc == 2 and "--model" in capsys.readouterr().err
    assert not (tmp_path / "m.json").exists()
