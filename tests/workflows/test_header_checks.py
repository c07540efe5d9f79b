"""The workflow header and the run's own records: what `validate` refuses (keys that are not names, a device
this machine lacks, an output folder that cannot be written or that is an input folder, `version: true`), `~`
in the output, and a damaged progress record in OUTPUT/.done refused on resume, naming the field."""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from sciflow.cli import main
from sciflow.core.errors import InputError
from sciflow.core.training import DistInfo
from sciflow.workflows import RunContext, Workflow
from sciflow.workflows.runner import resolve_device, run_workflow, validate_workflow

ROOT = Path(__file__).resolve().parents[2]
FOREST = ROOT / "datasets" / "ditree" / "scenarios" / "forest"


def tiny(tmp_path: Path, **header) -> dict:
    return {"version": 1, "task": "flow", "seed": 0, "device": "cpu", "output": str(tmp_path / "out"),
            "flow": {"data": {"kind": "helix", "n": 64}, "model": {"hidden": [8], "steps": 2},
                     "train": {"steps": 2, "batch_size": 32, "warmup_steps": 0},
                     "generate": {"n": 4, "conditions": [1.0], "formats": ["npz"]}}, **header}


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "wf.yaml"
    p.write_text(text)
    return p


@pytest.mark.parametrize("text, match", [
    ("version: 1\ntask: flow\noutput: out\n1: 2\n", r"workflow: top-level key 1 is not a name"),
    ("version: 1\ntask: flow\noutput: out\nnull: 2\n", r"workflow: top-level key None is not a name"),
    ("version: 1\ntask: flow\noutput: out\nflow:\n  1: 2\n", r"flow: key 1 is not a name"),
    ("version: 1\ntask: flow\noutput: out\nflow:\n  ~: 2\n", r"flow: key None is not a name"),
])
def test_keys_that_are_not_names_are_refused_naming_the_key(tmp_path, text, match, capsys):
    with pytest.raises(InputError, match=match):
        validate_workflow(write(tmp_path, text))
    assert main(["validate", str(tmp_path / "wf.yaml")]) == 2          # an error line, not a traceback
    assert "is not a name" in capsys.readouterr().err


def test_version_true_is_not_version_1(tmp_path):
    with pytest.raises(InputError, match=r"version: expected a number, got the boolean true"):
        validate_workflow(tiny(tmp_path, version=True))
    assert validate_workflow(tiny(tmp_path)).header.version == 1


def test_a_device_this_machine_lacks_is_refused_when_validated(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for name in ("cuda", "cuda:0"):
        with pytest.raises(InputError, match=rf"device: '{name}' asked for, but no CUDA device"):
            validate_workflow(tiny(tmp_path, device=name))
        with pytest.raises(InputError, match="device: .*no CUDA device"):
            resolve_device(name)
    assert validate_workflow(tiny(tmp_path, device="auto")).header.device == "auto"
    assert resolve_device("auto").type == "cpu"
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc (not writable even by root)")
def test_an_output_folder_that_cannot_be_made_is_refused_when_validated(tmp_path):
    with pytest.raises(InputError, match=r"output: /proc/sciflow_out: cannot make this folder, /proc is not "
                                         "writable"):
        validate_workflow(tiny(tmp_path, output="/proc/sciflow_out"))
    with pytest.raises(InputError, match=r"--output: /proc/sciflow_out/x: cannot make"):
        run_workflow(tiny(tmp_path), output="/proc/sciflow_out/x")
    assert not (tmp_path / "out").exists()
    (tmp_path / "out").mkdir()                      # checking a writable one leaves nothing behind
    validate_workflow(tiny(tmp_path))
    validate_workflow(tiny(tmp_path, output=str(tmp_path / "new" / "deeper")))
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["out"]


def test_output_overrides_a_file_output_that_cannot_be_written_here(tmp_path):
    """`sciflow run WF --output DIR` was refused when WF's own output: could not be written on this machine
    (the file's header was checked before the override was applied)."""
    wf = tiny(tmp_path, output="/proc/sciflow_out")
    assert validate_workflow(wf, output=tmp_path / "elsewhere").header.output == tmp_path / "elsewhere"
    with pytest.raises(InputError, match=r"^--output: /proc/sciflow_out/x: cannot make"):
        validate_workflow(tiny(tmp_path), output="/proc/sciflow_out/x")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes into a read-only folder")
def test_an_output_in_a_read_only_folder_is_refused_when_validated(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(InputError, match=r"output: .*ro/out: cannot make this folder, .*ro is not writable"):
            validate_workflow(tiny(tmp_path, output=str(ro / "out")))
        with pytest.raises(InputError, match=r"output: .*ro: cannot write there"):
            validate_workflow(tiny(tmp_path, output=str(ro)))
    finally:
        ro.chmod(0o755)


def test_tilde_in_the_output_is_the_home_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    wf = validate_workflow(tiny(tmp_path, output="~/runs/a"))
    assert wf.header.output == tmp_path / "home" / "runs" / "a"
    assert wf.resolved()["output"] == str(tmp_path / "home" / "runs" / "a")


def test_fresh_help_says_what_it_removes(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "ignore finished items" not in text
    assert "--fresh start over: first delete the earlier run's progress record (OUTPUT/.done) and the output " \
           "files it recorded" in text


def test_a_damaged_settings_record_is_refused_and_fresh_starts_over(tmp_path):
    wf = tiny(tmp_path)
    done = tmp_path / "out" / ".done"
    done.mkdir(parents=True)
    (done / "settings.json").write_text('{"version": 1, "ta')          # cut short
    with pytest.raises(InputError, match=r"output: .*out: the record of the earlier run's progress in .*\.done is "
                                         r"damaged \(settings\.json: JSONDecodeError.*--fresh"):
        run_workflow(wf)
    assert not (tmp_path / "out" / "run.json").exists()                 # refused before any work
    valid = validate_workflow(wf)                 # --fresh removes it and starts over (the task itself stubbed)
    stub = Workflow(valid.header, dataclasses.replace(valid.task, run=lambda cfg, ctx: {"ran": True}), valid.config,
                    None)
    assert run_workflow(stub, resume=False)["ran"]
    assert json.loads((done / "settings.json").read_text())["seed"] == 0
    assert run_workflow(stub)["ran"]                                     # and the new record resumes


@pytest.mark.parametrize("text", ['{"flow.weights": {"pa', "[1, 2]", "\xff\xfe"])
def test_a_damaged_inputs_record_is_refused_not_overwritten(tmp_path, text):
    done = tmp_path / "out" / ".done"
    done.mkdir(parents=True)
    (done / "inputs.json").write_bytes(text.encode("latin-1"))
    with pytest.raises(InputError, match=r"output: .*the record of the earlier run's progress .* is damaged "
                                         r"\(inputs\.json: .*--fresh"):
        run_workflow(tiny(tmp_path))
    assert (done / "inputs.json").read_bytes() == text.encode("latin-1")
    assert not (tmp_path / "out" / "run.json").exists()


def test_a_damaged_item_marker_makes_the_item_be_done_again(tmp_path):
    c = RunContext(output=tmp_path, seed=0, device=torch.device("cpu"), dist=DistInfo(0, 1, 0))
    c.write_text("items/a.txt", "a")
    c.mark_done("a", {"value": 1})
    assert c.is_done("a")
    c._marker("a").write_text('{"key": "a", "val')                      # cut short
    assert not c.is_done("a") and c.done_info("a") == {}
    c.write_text("items/a.txt", "a")
    c.mark_done("a", {"value": 1})
    assert c.is_done("a") and c.done_info("a") == {"key": "a", "value": 1}


def scenarios(tmp_path: Path) -> Path:
    sc = tmp_path / "sc"
    sc.mkdir()
    shutil.copy(FOREST / "forest-10000.yaml", sc / "forest-10000.yaml")
    return sc


def test_an_output_folder_that_is_an_input_folder_is_refused_when_validated(tmp_path):
    sc = scenarios(tmp_path)
    wf = {"version": 1, "task": "ditree", "device": "cpu", "output": str(sc),
          "ditree": {"scenarios": str(sc), "planner": "rrt", "budget_s": 0.1, "pictures": False}}
    match = r"output: .* is the folder of the input ditree\.scenarios \(.*sc\)"
    with pytest.raises(InputError, match=match):
        validate_workflow(wf)
    (tmp_path / "link").symlink_to(sc)                                   # the same folder by another name
    with pytest.raises(InputError, match=match):
        validate_workflow({**wf, "output": str(tmp_path / "link")})
    with pytest.raises(InputError, match=match):                       # --output too
        run_workflow({**wf, "output": str(tmp_path / "o")}, output=str(sc))
    assert sorted(p.name for p in sc.iterdir()) == ["forest-10000.yaml"]
    # a folder inside the input folder, or an input folder inside the output folder, is not the same folder
    validate_workflow({**wf, "output": str(sc / "out")})
    validate_workflow({**wf, "output": str(tmp_path)})
