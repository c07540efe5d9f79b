from pathlib import Path

import pytest
import yaml

from sciflow.cli import main
from sciflow.core.errors import InputError
from sciflow.workflows import task_names, validate_workflow

LV = Path(__file__).resolve().parents[2] / "datasets" / "mmsb" / "LV_data.npz"
GOOD = {"version": 1, "task": "flow", "seed": 3, "output": "out",
        "flow": {"train": {"steps": 10}, "generate": {"n": 8, "formats": ["npz"]}}}


def write(tmp_path, data, name="wf.yaml"):
    p = tmp_path / name
    p.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return p


def test_valid_workflow_resolves_defaults(tmp_path):
    wf = validate_workflow(write(tmp_path, GOOD))
    r = wf.resolved()
    assert r["seed"] == 3 and r["flow"]["train"]["steps"] == 10 and r["flow"]["model"]["solver"] == "rk4"
    assert "flow" in task_names()


@pytest.mark.parametrize("change,match", [
    ({"version": 2}, "version"),
    ({"colour": "red"}, "colour: unknown top-level key"),
    ({"task": "nosuch"}, "task: unknown task 'nosuch'"),
    ({"device": "tpu"}, "device"),
    ({"seed": "abc"}, "seed"),
    ({"seed": 10**23}, "seed: Input should be less than"),
    ({"seed": -1}, "seed: Input should be greater than or equal to 0"),
    ({"device": "cuda:abc"}, "device: .*cuda:N"),
    ({"output": ""}, "output: .*empty"),
    ({"flow": {"model": {"hidden": [0, -4]}}}, r"flow\.model\.hidden\.0: Input should be greater than or equal to 1"),
    ({"flow": {"train": {"steps": -5}}}, r"flow\.train\.steps"),
    ({"flow": {"train": {"stepz": 5}}}, r"flow\.train\.stepz: Extra inputs"),
    ({"flow": {"model": {"solver": "leapfrog"}}}, r"flow\.model\.solver: Input should be 'euler', .*'leapfrog'"),
    ({"flow": {"model": {"solver": "euler_maruyama"}}}, r"flow\.model\.solver: .*got 'euler_maruyama'"),  # an SDE
    ({"flow": {"model": {"path": "spline"}}}, "path: unknown name 'spline'"),
    ({"flow": {"generate": {"formats": ["mp4"]}}}, r"flow\.generate\.formats\.0"),
    ({"flow": {"weights": "/nonexistent/model.pt"}}, r"flow\.weights"),
    ({"flow": {"data": {"pitch_range": [2.0, 1.0]}}}, r"flow\.data\.pitch_range"),
    ({"flow": [1, 2]}, "flow: expected a mapping"),
    ({"flow": {"generate": {"conditions": [0.75, float("nan")]}}}, r"flow\.generate\.conditions\.1: .*finite"),
    ({"flow": {"model": {"path_kwargs": {"sigma": float("inf")}}}}, r"flow\.model\.path_kwargs\.sigma: .*finite"),
    # the path and coupling are built when validated: missing, unknown or out-of-range arguments are named
    ({"flow": {"model": {"path": "brownian_bridge"}}}, r"flow\.model: .*path_kwargs: .*missing .*'sigma'"),
    ({"flow": {"model": {"path": "brownian_bridge", "path_kwargs": {"sigma": -1.0}}}},
     r"flow\.model: .*path_kwargs: sigma: must be >= 0"),
    ({"flow": {"model": {"coupling": "independent", "coupling_kwargs": {"reg": 0.1}}}},
     r"flow\.model: .*coupling_kwargs: .*'reg'"),
])
def test_bad_workflows_name_the_field(tmp_path, change, match):
    data = {**GOOD, **change}
    with pytest.raises(InputError, match=match):
        validate_workflow(write(tmp_path, data))


def test_a_binary_workflow_file_is_refused_by_name(tmp_path):
    p = tmp_path / "bin.yaml"
    p.write_bytes(b"x: \xff\xfe\x00bad")
    with pytest.raises(InputError, match=r"workflow .*bin\.yaml: not a UTF-8 text file"):
        validate_workflow(p)


def test_output_must_be_a_folder(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(InputError, match="output: .*exists and is not a folder"):
        validate_workflow(write(tmp_path, {**GOOD, "output": str(tmp_path / "afile")}))


def test_missing_task_and_file_and_malformed_yaml(tmp_path):
    with pytest.raises(InputError, match="task: required"):
        validate_workflow(write(tmp_path, {"version": 1, "output": "x"}))
    with pytest.raises(InputError, match="no file"):
        validate_workflow(tmp_path / "missing.yaml")
    with pytest.raises(InputError, match=r"malformed YAML \(line \d+, column"):
        validate_workflow(write(tmp_path, "version: 1\ntask: [flow\n"))
    with pytest.raises(InputError, match="top level"):
        validate_workflow(write(tmp_path, "- 1\n- 2\n"))


def test_cli_validate_reports_errors_with_exit_code(tmp_path, capsys):
    assert main(["validate", str(write(tmp_path, GOOD))]) == 0
    assert "valid (flow task" in capsys.readouterr().out
    assert main(["validate", str(write(tmp_path, {**GOOD, "flow": {"train": {"lr": -1}}}))]) == 2
    assert "flow.train.lr" in capsys.readouterr().err


def test_shipped_mmsb_weights_are_found_from_another_folder(tmp_path, monkeypatch):
    """Shipped weights (models/...) resolve from any working folder, like MMSB.load does."""
    monkeypatch.chdir(tmp_path)
    data = {"version": 1, "task": "mmsb", "output": "out",
            "mmsb": {"data": {"path": str(LV)}, "weights": "models/mmsb/lv.pt"}}
    assert validate_workflow(write(tmp_path, data)).resolved()["mmsb"]["weights"] == "models/mmsb/lv.pt"
    with pytest.raises(InputError, match=r"mmsb\.weights"):
        validate_workflow(write(tmp_path, {**data, "mmsb": {**data["mmsb"], "weights": "models/mmsb/nosuch.pt"}}))


def test_shipped_workflows_validate():
    import pathlib
    root = pathlib.Path(__file__).resolve().parents[2] / "workflows"
    files = sorted(root.glob("*.yaml"))
    assert files, "no workflows shipped"
    for f in files:
        validate_workflow(f)


@pytest.mark.parametrize("sigma, match", [(float("nan"), "finite"), (-5.0, "greater than 0"), ("big", "auto")])
def test_mmsb_noise_level_is_checked_when_the_workflow_is_validated(tmp_path, sigma, match):
    data = {"version": 1, "task": "mmsb", "output": "out",
            "mmsb": {"data": {"path": str(LV)}, "model": {"sigma": sigma}}}
    with pytest.raises(InputError, match=rf"mmsb\.model\.sigma.*{match}"):
        validate_workflow(write(tmp_path, data))


@pytest.mark.parametrize("change,match", [
    ({"model": "/nonexistent/model"}, r"tsgen\.model: .*no file at /nonexistent/model"),
    ({"reactions": "/nonexistent/reactions"}, r"tsgen\.reactions: .*no file or folder"),
    ({"solver": "bogus"}, r"tsgen\.solver: .*got 'bogus'"),
    ({"solver": "euler_maruyama"}, r"tsgen\.solver: .*got 'euler_maruyama'"),   # failed only when sampling
])
def test_tsgen_model_reactions_and_solver_are_checked_when_validated(tmp_path, change, match):
    base = {"reactions": str(Path(__file__).resolve().parents[2] / "datasets" / "reactions" / "examples")}
    validate_workflow(write(tmp_path, {"version": 1, "task": "tsgen", "output": "out", "tsgen": base}))
    with pytest.raises(InputError, match=match):
        validate_workflow(write(tmp_path, {"version": 1, "task": "tsgen", "output": "out",
                                           "tsgen": {**base, **change}}))


def test_task_inputs_are_checked_when_validated_not_after_the_folder_is_claimed(tmp_path, monkeypatch):
    """These passed validation and failed inside `run`, after settings.json locked the output folder."""
    root = Path(__file__).resolve().parents[2]
    scen = str(root / "datasets" / "ditree" / "scenarios" / "bugtrap")
    cases = [
        ("ditree", {"scenarios": scen, "train": {"demos": str(tmp_path / "none.npz")}}, r"train\.demos: .*no file"),
        ("ditree", {"scenarios": scen, "train": {"demos": str(LV), "horizon": 4, "execute": 9}},
         "execute: must be <= horizon"),
        ("ditree", {"scenarios": scen, "model": str(tmp_path / "no_model")}, "model: no file"),
        ("unbinding", {"complexes": str(tmp_path / "none")}, "no file or folder"),
        ("unbinding", {"complexes": str(root / "datasets" / "unbinding" / "complexes" / "cb7-b2.pdb"),
                       "ligand": "resname NOPE"}, "matches no atom"),
        ("tsgen", {"reactions": str(tmp_path)}, "holds no .xyz"),
    ]
    for task, block, match in cases:
        with pytest.raises(InputError, match=match):
            validate_workflow(write(tmp_path, {"version": 1, "task": task, "output": str(tmp_path / "o"),
                                               task: block}))
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "sella" else real(name, *a))
    with pytest.raises(InputError, match=r"refine: needs sella"):
        validate_workflow(write(tmp_path, {"version": 1, "task": "tsgen", "output": str(tmp_path / "o"),
                                           "tsgen": {"reactions": str(root / "datasets" / "reactions" / "examples"),
                                                     "refine": {}}}))
    assert not (tmp_path / "o").exists()
