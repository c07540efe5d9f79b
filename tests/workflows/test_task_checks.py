"""The validators of the flow, ditree, scattering and unbinding tasks read what the task will read (saved models,
demonstrations, complexes) and check what it will write, so that `validate` refuses, naming the workflow field,
what `run` would otherwise refuse only after claiming the output folder (or not at all)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from sciflow.core.errors import InputError
from sciflow.workflows.runner import run_workflow, validate_workflow
from tests.workflows.helpers import refused_before_work

ROOT = Path(__file__).resolve().parents[2]
TSGEN = ROOT / "models" / "tsgen"
DITREE = ROOT / "models" / "ditree" / "model.pt"
FOREST = ROOT / "datasets" / "ditree" / "scenarios" / "forest"
COMPLEX = ROOT / "datasets" / "unbinding" / "complexes" / "benzene-toluene.pdb"


def flow_wf(tmp_path: Path, **generate) -> dict:
    return {"version": 1, "task": "flow", "seed": 0, "device": "cpu", "output": str(tmp_path / "out"),
            "flow": {"data": {"kind": "helix", "n": 64}, "model": {"hidden": [8], "steps": 2},
                     "train": {"steps": 1, "batch_size": 16, "warmup_steps": 0},
                     "generate": {"n": 16, "conditions": [1.0], "formats": ["npz"], **generate}}}


def ditree_wf(tmp_path: Path, **block) -> dict:
    sc = tmp_path / "sc"
    sc.mkdir(exist_ok=True)
    shutil.copy(FOREST / "forest-10000.yaml", sc / "forest-10000.yaml")
    return {"version": 1, "task": "ditree", "seed": 0, "device": "cpu", "output": str(tmp_path / "out"),
            "ditree": {"scenarios": str(sc), "planner": "policy", "budget_s": 0.5, "pictures": False, **block}}


def write_demos(path: Path, n: int = 8, observation: dict | None = None) -> Path:
    """A demonstrations file as `sciflow ditree demos` writes it (one straight demonstration)."""
    from sciflow.data.robot_demos import DEMO_FORMAT
    obs = observation or {"size": 20, "cell": 0.2, "max_range": 5.0}
    crops = np.packbits(np.zeros((n, obs["size"] ** 2), np.uint8), axis=1)
    np.savez(path, format=np.array(DEMO_FORMAT), meta=np.array(json.dumps({"observation": obs})),
             offsets=np.array([0, n]), states=np.zeros((n, 5), np.float32), controls=np.zeros((n, 2), np.float32),
             crops=crops, goals=np.array([[3.0, 0.0, 0.5]], np.float32), seeds=np.array([0]),
             durations=np.array([1.0]), recovery=np.array([0], np.int8))
    return path


def train_block(demos: Path) -> dict:
    return {"demos": str(demos), "steps": 1, "batch_size": 4, "widths": [8, 16], "checkpoint_every": 0}


# -- 1. training never overwrites a file that is not a model of its own -----------------------------------
def test_ditree_training_refuses_a_model_target_that_is_another_file(tmp_path):
    demos = write_demos(tmp_path / "demos.npz")
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes")
    refused_before_work(ditree_wf(tmp_path, model=str(notes), train=train_block(demos)),
                        r"ditree\.model: training writes a model file; name a folder .* or a \.pt file")
    assert notes.read_text() == "my notes"
    fake = tmp_path / "notes.pt"
    fake.write_text("my notes")
    refused_before_work(ditree_wf(tmp_path, model=str(fake), train=train_block(demos)),
                        r"ditree\.model: training would overwrite .*notes\.pt, which is not a saved 'ditree' model")
    other = tmp_path / "tsgen"
    other.mkdir()
    shutil.copy(TSGEN / "model.pt", other / "model.pt")        # a folder holding another method's model
    refused_before_work(ditree_wf(tmp_path, model=str(other), train=train_block(demos)),
                        r"ditree\.model: training would overwrite .*tsgen/model\.pt.*holds a 'tsgen' model")
    assert (other / "model.pt").read_bytes() == (TSGEN / "model.pt").read_bytes()
    (tmp_path / "afile").write_text("x")
    refused_before_work(ditree_wf(tmp_path, model=str(tmp_path / "afile" / "m"), train=train_block(demos)),
                        r"ditree\.model: .*afile/m/model\.pt: cannot write there, .*afile is a file, not a folder")
    # a new folder or .pt file, and a DiTree model of an earlier run (resumed or retrained), are fine
    for target in (tmp_path / "new" / "folder", tmp_path / "new.pt"):
        validate_workflow(ditree_wf(tmp_path, model=str(target), train=train_block(demos)))
    shutil.copy(DITREE, tmp_path / "mine.pt")
    validate_workflow(ditree_wf(tmp_path, model=str(tmp_path / "mine.pt"), train=train_block(demos)))


# -- 2. saved models and demonstrations are read at validation -------------------------------------------
@pytest.mark.parametrize(("task", "block", "field"), [
    ("flow", {"generate": {"n": 4, "conditions": [1.0], "formats": ["npz"]}}, "weights"),
    ("scattering", {"integrators": ["cvae"], "spp": 1, "width": 4, "height": 4}, "model"),
    ("unbinding", {"complexes": str(COMPLEX), "n_paths": 1}, "model"),
    ("ditree", {"scenarios": str(FOREST), "budget_s": 0.5}, "model"),
])
def test_a_saved_model_of_another_method_is_refused_naming_the_field(tmp_path, task, block, field):
    wf = {"version": 1, "task": task, "device": "cpu", "output": str(tmp_path / "out"),
          task: {**block, field: str(TSGEN)}}
    refused_before_work(wf, rf"workflow: {task}\.{field}: .*tsgen holds a 'tsgen' model, not '{task}'")


def test_ditree_demos_that_are_no_demonstrations_are_refused_naming_the_field(tmp_path):
    lv = ROOT / "datasets" / "mmsb" / "LV_data.npz"
    refused_before_work(ditree_wf(tmp_path, train=train_block(lv)),
                        r"ditree\.train\.demos: .*LV_data\.npz has no 'format' entry")
    refused_before_work(ditree_wf(tmp_path, train=train_block(tmp_path / "sc")),
                        r"ditree\.train\.demos: no file at .*sc")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    refused_before_work(ditree_wf(tmp_path, train=train_block(tmp_path / "bad.npz")),
                        r"ditree\.train\.demos: .*bad\.npz is not a demonstrations \.npz")
    coarse = write_demos(tmp_path / "coarse.npz", observation={"size": 20, "cell": 0.5, "max_range": 5.0})
    refused_before_work(ditree_wf(tmp_path, train=train_block(coarse)),
                        r"ditree\.train\.demos: the crops of .*coarse\.npz were made with")
    empty = write_demos(tmp_path / "empty.npz", n=0)
    refused_before_work(ditree_wf(tmp_path, train=train_block(empty)), r"ditree\.train\.demos: .* no demonstrations")
    wide = {**train_block(write_demos(tmp_path / "demos.npz")), "widths": [8, 16, 32], "horizon": 6, "execute": 2}
    refused_before_work(ditree_wf(tmp_path, train=wide), r"ditree\.train\.horizon: 6 must be divisible by 4")
    validate_workflow(ditree_wf(tmp_path, train=train_block(tmp_path / "demos.npz")))


def test_flow_weights_of_another_data_kind_are_refused_and_the_summary_names_them(tmp_path):
    from sciflow.methods.flow import ConditionalFlow
    run_workflow(flow_wf(tmp_path))                              # a 3-D flow conditioned on the pitch
    helix = tmp_path / "out" / "model.pt"
    moons = ConditionalFlow(2, 0, hidden=[4]).save(tmp_path / "moons.pt")
    wf = flow_wf(tmp_path / "a")
    wf["flow"]["weights"] = str(moons)
    refused_before_work(wf, r"flow\.weights: .*moons\.pt is a 2-D flow with a condition of size 0; data\.kind "
                            r"helix needs a 3-D flow with a condition of size 1")
    wf = flow_wf(tmp_path / "b")
    wf["flow"].update(weights=str(helix), data={"kind": "gaussians_to_moons", "n": 64})
    refused_before_work(wf, r"flow\.weights: .* is a 3-D flow .*gaussians_to_moons needs a 2-D flow")
    wf = flow_wf(tmp_path / "c")
    wf["flow"]["weights"] = str(helix)
    summary = run_workflow(wf)
    assert summary["model"] == str(helix)                        # the model used, not a model.pt never written
    assert Path(summary["plot"]).is_file()


# -- 3. walks beyond the CVAEs' trained range -------------------------------------------------------------
def test_scattering_walks_beyond_the_trained_sigma_r_are_refused_at_validation(tmp_path):
    wf = {"version": 1, "task": "scattering", "device": "cpu", "output": str(tmp_path / "out"),
          "scattering": {"integrators": ["cvae"], "spp": 1, "width": 4, "height": 4, "walks": 10,
                         "sigma_r": 100000.0}}
    refused_before_work(wf, r"scattering\.sigma_r: the CVAEs were trained on sigma_r <= 300 mean free paths, "
                            r"and walks: 10 draws learned walks at sigma_r = 100000")
    wf["scattering"]["walks"] = 0                                # the renderer caps the spheres it jumps
    validate_workflow(wf)
    wf["scattering"]["min_sigma_r"] = 300.0                      # no sphere the tracer may jump is left
    refused_before_work(wf, r"scattering\.min_sigma_r: the learned tracer jumps in spheres of 300 to 256 mean "
                            r"free paths; min_sigma_r must be <= 256")


# -- 4. flow conditions and formats -----------------------------------------------------------------------
@pytest.mark.parametrize(("generate", "match"), [
    ({"conditions": [1.0, 1.0000001]}, (r"flow\.generate\.conditions: 1\.0 and 1\.0000001 would both write "
                                        r"samples/pitch_1\.\*")),
    ({"conditions": [1.0, 1.0]}, r"flow\.generate\.conditions: .*would both write samples/pitch_1"),
    ({"conditions": [-3.0]}, r"flow\.generate\.conditions: pitch -3 is outside data\.pitch_range \[0\.5, 2\.5\]"),
    ({"conditions": [3.0]}, r"flow\.generate\.conditions: pitch 3 is outside data\.pitch_range"),
    ({"conditions": []}, r"flow\.generate\.conditions: name at least one pitch"),
    ({"formats": []}, r"flow\.generate\.formats: name at least one output format"),
])
def test_flow_conditions_and_formats_that_would_lose_or_make_nothing_are_refused(tmp_path, generate, match):
    refused_before_work(flow_wf(tmp_path, **generate), match)


# -- 5. a resumed flow run plots every condition ----------------------------------------------------------
def test_a_resumed_flow_run_plots_every_condition_whatever_the_formats(tmp_path, monkeypatch):
    import sciflow.workflows.tasks.flow as flow_task
    drawn: list[list] = []
    real_plot = flow_task._plot

    def recording(path, panels):
        drawn.append(list(panels))
        real_plot(path, panels)
    monkeypatch.setattr(flow_task, "_plot", recording)
    wf = flow_wf(tmp_path, conditions=[1.0, 2.0], formats=["xyz"])
    run_workflow(wf)
    out = tmp_path / "out"
    (out / "samples" / "pitch_1.xyz").unlink()                 # pitch_2 is resumed, pitch_1 made again
    summary = run_workflow(wf)
    assert set(summary["metrics"]) == {"pitch_1", "pitch_2"}
    assert [p[0] for p in drawn[-1]] == [1.0, 2.0]
    first, again = drawn
    for a, b in zip(first, again):
        assert torch.equal(a[1]["last"], b[1]["last"]) and torch.equal(a[2], b[2])
    # an output folder from before the points were kept: the resumed condition's samples are drawn again
    for f in (out / ".done" / "plot").glob("*.pt"):
        f.unlink()
    (out / "samples" / "pitch_1.xyz").unlink()
    run_workflow(wf)
    assert [p[0] for p in drawn[-1]] == [1.0, 2.0]
    assert all(torch.equal(a[1]["last"], b[1]["last"]) for a, b in zip(first, drawn[-1]))


# -- 6. unbinding errors name the field once --------------------------------------------------------------
def test_unbinding_complexes_errors_name_the_complexes_field_once(tmp_path):
    def wf(**block):
        return {"version": 1, "task": "unbinding", "device": "cpu", "output": str(tmp_path / "out"),
                "unbinding": {"n_paths": 1, **block}}
    with pytest.raises(InputError, match=r"^workflow: unbinding\.complexes: no file or folder at nope$"):
        validate_workflow(wf(complexes="nope"))
    notes = tmp_path / "README.md"
    notes.write_text("# not a complex\n")
    refused_before_work(wf(complexes=str(notes)), r"^workflow: unbinding\.complexes: expected a \.pdb or \.h5 "
                                                  r"file, got .*README\.md$")
    refused_before_work(wf(complexes=str(tmp_path / "out")), r"^workflow: unbinding\.complexes: no file or folder")
    refused_before_work(wf(complexes=str(COMPLEX), ligand="resname XXX"),
                        r"^workflow: unbinding\.ligand: selection 'resname XXX' matches no atom")


def test_the_model_read_at_validation_is_the_one_the_run_uses(tmp_path, monkeypatch):
    """validate read each saved model, and run read it again (1-3 s per workflow): it is now read once, unless the
    file changed in between or the run is on another device."""
    from sciflow.methods.scattering import ScatteringCVAEs
    from sciflow.workflows.checks import loaded_model
    reads = []
    original = ScatteringCVAEs.load.__func__

    def counted(cls, *a, **kw):
        reads.append(a[0] if a else kw.get("path"))
        return original(cls, *a, **kw)
    monkeypatch.setattr(ScatteringCVAEs, "load", classmethod(counted))
    wf = {"version": 1, "task": "scattering", "device": "cpu", "output": str(tmp_path / "out"),
          "scattering": {"integrators": ["cvae"], "spp": 1, "width": 4, "height": 4, "sigma_r": 4.0}}
    run_workflow(wf)
    assert len(reads) == 1
    cfg = validate_workflow(wf).config                    # a second read only if the handed model cannot be used
    first = loaded_model(cfg, ScatteringCVAEs, cfg.model)
    assert len(reads) == 2 and loaded_model(cfg, ScatteringCVAEs, cfg.model) is not first and len(reads) == 3
