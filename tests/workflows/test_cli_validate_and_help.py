"""`sciflow validate` refuses what `run` would refuse before any work (an output folder holding a run with
other settings), takes `--output` like `run`, says where relative paths are read from, and `--help` states each
option's default."""
import os
from pathlib import Path

import yaml

from sciflow.cli import main
from sciflow.workflows.runner import run_workflow
from tests.workflows.test_resume import tiny

ROOT = Path(__file__).resolve().parents[2]


def test_validate_refuses_an_output_folder_holding_a_run_with_other_settings(tmp_path, capsys):
    run_workflow(tiny(tmp_path))
    path = tmp_path / "wf.yaml"
    path.write_text(yaml.safe_dump(tiny(tmp_path, lr=0.01)))
    assert main(["validate", str(path)]) == 2
    assert "other settings (changed: flow.train.lr)" in capsys.readouterr().err
    assert main(["validate", str(path), "--output", str(tmp_path / "elsewhere")]) == 0   # as `run --output`
    assert "output " + str(tmp_path / "elsewhere") in capsys.readouterr().out
    assert not (tmp_path / "elsewhere").exists()                                        # validate writes nothing


def test_a_missing_relative_input_names_the_folder_it_was_read_from(tmp_path, capsys, monkeypatch):
    wf = yaml.safe_load((ROOT / "workflows" / "tsgen.yaml").read_text())
    wf["output"] = str(tmp_path / "out")
    wf["tsgen"]["reactions"] = "data/reactions"
    path = tmp_path / "wf.yaml"
    path.write_text(yaml.safe_dump(wf))
    monkeypatch.chdir(tmp_path)
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "data/reactions" in err and f"read from the current folder, {os.getcwd()}" in err


def test_help_states_the_defaults_of_options_without_help_text(capsys):
    try:
        main(["tsgen", "train", "--help"])
    except SystemExit:
        pass
    out = " ".join(capsys.readouterr().out.split())
    assert "--seed SEED (default: 0)" in out and "--sample-steps SAMPLE_STEPS (default: 8)" in out


def test_a_mistyped_key_gets_the_closest_setting_names():
    import pytest

    from sciflow.core.errors import InputError
    from sciflow.workflows import validate_workflow
    wf = yaml.safe_load((ROOT / "workflows" / "tsgen.yaml").read_text())
    wf["tsgen"]["n_sample"] = 4
    with pytest.raises(InputError, match=r"tsgen\.n_sample: Extra inputs are not permitted; did you mean n_samples\?"):
        validate_workflow(wf)
    wf = yaml.safe_load((ROOT / "workflows" / "tsgen.yaml").read_text())
    wf["seeed"] = 1
    with pytest.raises(InputError, match=r"seeed: unknown top-level key\(s\) \(did you mean seed\?\)"):
        validate_workflow(wf)


def test_a_folder_given_as_the_workflow_is_named_as_a_folder(capsys):
    assert main(["validate", str(ROOT / "workflows")]) == 2
    assert "is a folder; give a file in it" in capsys.readouterr().err
