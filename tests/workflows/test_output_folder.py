"""The output folder: inputs kept inside it are still fingerprinted, one run at a time writes there, and a
dangling link among the inputs is named instead of skipped."""
from __future__ import annotations

import json
import os
import shutil

import pytest
import torch

from sciflow.core.errors import InputError
from sciflow.core.files import listed_files, output_lock
from sciflow.core.trajectory import Trajectory
from sciflow.workflows.runner import check_resumable, run_workflow, validate_workflow
from tests.workflows.test_input_checks import EXAMPLES, tsgen_wf


def test_inputs_inside_the_output_folder_are_fingerprinted(tmp_path):
    out = tmp_path / "out"
    rx = out / "rx"                                # the user keeps the reactions inside the output folder
    rx.mkdir(parents=True)
    shutil.copy(EXAMPLES / "rxn002918.xyz", rx / "rxn.xyz")
    wf = tsgen_wf(tmp_path, rx)
    assert run_workflow(wf)["written"] == 1
    assert run_workflow(wf)["written"] == 1        # the run's own files (xyz/, summary, ...) are not inputs
    shutil.copy(EXAMPLES / "rxn009328.xyz", rx / "rxn.xyz")
    with pytest.raises(InputError, match=r"other input files \(changed: tsgen\.reactions: rxn\.xyz changed"):
        run_workflow(wf)
    # a record of an earlier version, which listed no files of an input folder inside the output: recorded now
    rec = out / ".done" / "inputs.json"
    shutil.copy(EXAMPLES / "rxn002918.xyz", rx / "rxn.xyz")
    rec.write_text(json.dumps({**json.loads(rec.read_text()), "tsgen.reactions": {"path": str(rx), "files": {}}}))
    assert run_workflow(wf)["written"] == 1
    assert json.loads(rec.read_text())["tsgen.reactions"]["files"]


def test_a_second_run_on_a_folder_in_use_is_refused_before_it_touches_it(tmp_path):
    rx = tmp_path / "rx"
    rx.mkdir()
    shutil.copy(EXAMPLES / "rxn002918.xyz", rx / "rxn.xyz")
    wf = tsgen_wf(tmp_path, rx)
    out = tmp_path / "out"
    with output_lock(out):                         # a run in progress holds the folder
        stale = out / ".x.abcdefgh.tmp.xyz"          # what looks like its unfinished write
        stale.write_text("in flight")
        with pytest.raises(InputError, match=r"output: .*out is in use by another run \(pid \d+\)"):
            run_workflow(wf)
        with pytest.raises(InputError, match=r"in use by another run"):
            check_resumable(validate_workflow(wf))     # `sciflow validate`: a workflow that validates also starts
        assert stale.is_file() and not (out / "run.json").exists()
    assert run_workflow(wf)["written"] == 1        # free again (and the stale write is cleaned up)
    assert not stale.exists()


def test_a_dangling_link_among_the_inputs_is_named(tmp_path):
    rx = tmp_path / "rx"
    rx.mkdir()
    shutil.copy(EXAMPLES / "rxn002918.xyz", rx / "rxn.xyz")
    os.symlink(tmp_path / "gone.xyz", rx / "broken.xyz")
    with pytest.raises(InputError, match=r"broken\.xyz: a link to .*gone\.xyz, which does not exist"):
        listed_files(rx, (".xyz",))
    with pytest.raises(InputError, match=r"broken\.xyz"):
        validate_workflow(tsgen_wf(tmp_path, rx))


def test_trajectory_cat_and_from_state_dict_name_what_is_wrong():
    t = torch.linspace(0, 1, 5)
    a, b = Trajectory(t, torch.zeros(5, 3, 2)), Trajectory(t, torch.zeros(5, 3, 3))
    with pytest.raises(InputError, match=r"Trajectory\.cat: states of trajectory 1 are \(5, 3, 3\)"):
        Trajectory.cat([a, b])
    assert Trajectory.cat([a, Trajectory(t, torch.ones(5, 4, 2))]).states.shape == (5, 7, 2)
    assert Trajectory.cat([a, Trajectory(t, torch.ones(5, 1, 2, dtype=torch.float64))]).states.dtype == torch.float64
    with pytest.raises(InputError, match=r"from_state_dict: expected a mapping with 'times' and 'states'.*\['a'\]"):
        Trajectory.from_state_dict({"a": 1})
    back = Trajectory.from_state_dict(a.state_dict())
    assert torch.equal(back.states, a.states) and torch.equal(back.times, a.times)


def test_a_file_system_without_locks_runs_with_a_warning(tmp_path, monkeypatch):
    import errno
    import fcntl

    def no_flock(*a):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_flock)
    rx = tmp_path / "rx"
    rx.mkdir()
    shutil.copy(EXAMPLES / "rxn002918.xyz", rx / "rxn.xyz")
    with pytest.warns(UserWarning, match=r"cannot lock it \(No locks available\); running without the lock"):
        assert run_workflow(tsgen_wf(tmp_path, rx))["written"] == 1


def test_json_lines_drop_a_torn_last_line_and_refuse_a_damaged_one(tmp_path):
    from sciflow.core.files import read_json_lines
    p = tmp_path / "runs.jsonl"
    assert read_json_lines(p) == []
    p.write_text('{"a": 1}\n\n{"a": 2}\n{"a": 3, "b"')                   # the last append was cut short
    with pytest.warns(UserWarning, match=r"runs\.jsonl: its last line was cut short"):
        assert read_json_lines(p, "--runs") == [{"a": 1}, {"a": 2}]
    with open(p, "a") as f:                                             # the next append starts a line of its own
        f.write('{"a": 4}\n')
    assert read_json_lines(p) == [{"a": 1}, {"a": 2}, {"a": 4}]
    p.write_text('{"a": 1}\n{"a": \n{"a": 3}\n')
    with pytest.raises(InputError, match=r"--runs: .*runs\.jsonl: line 2 is not JSON"):
        read_json_lines(p, "--runs")
