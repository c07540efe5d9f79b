"""Resuming an output folder: finished items are skipped only while their files exist, a run with other
settings is refused, and --fresh (resume: false) starts over, training checkpoints included."""
import pytest
import torch

from sciflow.core.errors import InputError
from sciflow.core.training import DistInfo
from sciflow.methods.flow import ConditionalFlow
from sciflow.workflows import RunContext
from sciflow.workflows.runner import run_workflow


def tiny(tmp_path, **train):
    return {"version": 1, "task": "flow", "seed": 0, "device": "cpu", "output": str(tmp_path / "out"),
            "flow": {"data": {"kind": "helix", "n": 256}, "model": {"hidden": [16], "steps": 2},
                     "train": {"steps": 20, "batch_size": 64, "warmup_steps": 0, **train},
                     "generate": {"n": 16, "conditions": [1.0], "formats": ["npz"]}}}


def test_a_marker_whose_files_are_gone_is_not_done(tmp_path):
    c = RunContext(output=tmp_path, seed=0, device=torch.device("cpu"), dist=DistInfo(0, 1, 0))
    c.write_text("items/a.txt", "a")
    c.mark_done("a", {"value": 1})
    c.mark_done("b", {"value": 2})                       # wrote nothing since the previous marker
    assert c.is_done("a") and c.is_done("b") and c.done_info("a") == {"key": "a", "value": 1}
    (tmp_path / "items" / "a.txt").unlink()
    assert not c.is_done("a") and c.is_done("b")


def test_a_deleted_output_is_made_again(tmp_path):
    run_workflow(tiny(tmp_path))
    sample = tmp_path / "out" / "samples" / "pitch_1.npz"
    first = sample.read_bytes()
    sample.unlink()
    run_workflow(tiny(tmp_path))
    assert sample.read_bytes() == first                  # the same item generator: the same samples


def test_other_settings_are_refused_and_fresh_starts_over(tmp_path):
    run_workflow(tiny(tmp_path))
    with pytest.raises(InputError, match=r"output: .* other settings \(changed: flow\.train\.lr\).*--fresh"):
        run_workflow(tiny(tmp_path, lr=0.01))
    changed = tiny(tmp_path, lr=0.01)
    changed["seed"] = 1
    with pytest.raises(InputError, match=r"changed: flow\.train\.lr, seed"):
        run_workflow(changed)
    # --fresh with a wider network: its own training (the old checkpoint is gone), not a size mismatch
    wider = tiny(tmp_path)
    wider["flow"]["model"]["hidden"] = [24]
    summary = run_workflow(wider, resume=False)
    assert summary["train"]["steps"] == 20
    model = ConditionalFlow.load(tmp_path / "out" / "model.pt")
    assert any(24 in q.shape for q in model.model.parameters())
    run_workflow(wider)                                  # and the new settings resume


def test_an_interrupted_fresh_run_does_not_resume_the_old_model(tmp_path, monkeypatch):
    """--fresh keeps model.pt until training ends; a run interrupted in training must not pick up the old one."""
    import sciflow.methods.flow as flow_mod
    run_workflow(tiny(tmp_path))
    wider = tiny(tmp_path)
    wider["flow"]["model"]["hidden"] = [24]
    real_fit = flow_mod.ConditionalFlow.fit

    def interrupted(self, *a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(flow_mod.ConditionalFlow, "fit", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_workflow(wider, resume=False)
    monkeypatch.setattr(flow_mod.ConditionalFlow, "fit", real_fit)
    summary = run_workflow(wider)                        # resumes the fresh run: trains, does not reuse [16]
    assert summary["train"]["steps"] == 20
    model = ConditionalFlow.load(tmp_path / "out" / "model.pt")
    assert any(24 in q.shape for q in model.model.parameters())


def test_the_seed_fixes_the_weights_whatever_torch_global_stream(tmp_path):
    """The initial weights came from torch's global stream, so one YAML and seed gave different models."""
    torch.manual_seed(1)
    run_workflow(tiny(tmp_path / "a"))
    torch.manual_seed(2)
    run_workflow(tiny(tmp_path / "b"))
    a = ConditionalFlow.load(tmp_path / "a" / "out" / "model.pt").model.state_dict()
    b = ConditionalFlow.load(tmp_path / "b" / "out" / "model.pt").model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_output_override_is_validated_like_the_file(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(InputError, match="--output: .* is not a folder"):
        run_workflow(tiny(tmp_path), output=tmp_path / "afile")
    with pytest.raises(InputError, match="--output: .* empty string"):
        run_workflow(tiny(tmp_path), output="")


def test_fresh_removes_the_old_runs_recorded_outputs(tmp_path):
    """--fresh forgot the old run's progress but left its files beside the new run's."""
    first = tiny(tmp_path)
    first["flow"]["generate"]["formats"] = ["npz", "xyz"]
    run_workflow(first)
    assert (tmp_path / "out" / "samples" / "pitch_1.xyz").is_file()
    (tmp_path / "out" / "mine.txt").write_text("not the run's")
    run_workflow(tiny(tmp_path), resume=False)                 # npz only
    assert (tmp_path / "out" / "samples" / "pitch_1.npz").is_file()
    assert not (tmp_path / "out" / "samples" / "pitch_1.xyz").exists()
    assert (tmp_path / "out" / "mine.txt").read_text() == "not the run's"     # only recorded files go


def test_an_interrupt_swallowed_on_its_way_ends_the_run_at_the_next_finished_item(tmp_path):
    """A SIGINT raised inside a C library's callback can be swallowed there (seen with tblite); the handler's
    flag makes the next finished item end the run, after its marker is written. SIGTERM is the same interrupt."""
    import os
    import signal

    from sciflow.core import interrupts
    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        interrupts.install_handlers()
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
        assert interrupts.interrupted()
        c = RunContext(output=tmp_path, seed=0, device=torch.device("cpu"), dist=DistInfo(0, 1, 0))
        c.write_text("items/a.txt", "a")
        with pytest.raises(KeyboardInterrupt):
            c.mark_done("a")
        assert c.is_done("a")                                  # the finished item was recorded first
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        interrupts._flag.clear()


def test_importing_sciflow_loads_no_torch_until_a_name_is_used():
    import subprocess
    import sys
    code = "import sys, sciflow; print('torch' in sys.modules); print(sciflow.Trajectory.__name__)"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.split() == ["False", "Trajectory"]      # names load on first use
