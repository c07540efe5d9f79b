"""Bad workflow input is refused by `validate`, naming the field or file, before the output folder is claimed;
a resume whose input files changed is refused like one whose settings changed."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from sciflow.core.errors import InputError
from sciflow.workflows.runner import run_workflow, validate_workflow
from tests.workflows.helpers import refused_before_work

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "datasets" / "reactions" / "examples"
TSGEN = ROOT / "models" / "tsgen"
MMSB_MODEL = ROOT / "models" / "mmsb" / "lv.pt"
LV = ROOT / "datasets" / "mmsb" / "LV_data.npz"
FOREST = ROOT / "datasets" / "ditree" / "scenarios" / "forest"


def tsgen_wf(tmp_path: Path, reactions: Path, **block) -> dict:
    return {"version": 1, "task": "tsgen", "seed": 0, "device": "cpu", "output": str(tmp_path / "out"),
            "tsgen": {"model": str(TSGEN), "reactions": str(reactions), "n_samples": 2, **block}}


def mmsb_wf(tmp_path: Path, data: Path, **block) -> dict:
    return {"version": 1, "task": "mmsb", "seed": 0, "device": "cpu", "output": str(tmp_path / "out"),
            "mmsb": {"data": {"path": str(data)}, "weights": str(MMSB_MODEL),
                     "output": {"n_trajectories": 10, "n_predict": 20}, **block}}


# -- 1. duplicate keys ------------------------------------------------------------------------------------
def test_a_key_given_twice_is_refused_at_any_depth_naming_key_and_line(tmp_path):
    f = tmp_path / "wf.yaml"
    f.write_text(f"version: 1\ntask: tsgen\nseed: 0\nseed: 7\noutput: {tmp_path / 'out'}\n"
                 f"tsgen:\n  reactions: {EXAMPLES}\n")
    with pytest.raises(InputError, match=r"line 4.*duplicate key 'seed' \(lines 3 and 4\)"):
        validate_workflow(f)
    f.write_text(f"version: 1\ntask: tsgen\noutput: {tmp_path / 'out'}\n"
                 f"tsgen:\n  reactions: {EXAMPLES}\n  n_samples: 2\n  n_samples: 9\n")
    with pytest.raises(InputError, match=r"duplicate key 'n_samples' \(lines 6 and 7\)"):
        validate_workflow(f)
    # a YAML merge key may still be overridden, and different keys are fine
    from sciflow.workflows.schema import load_yaml
    f.write_text("base: &b {x: 1, y: 2}\nd:\n  <<: *b\n  x: 3\n")
    assert load_yaml(f)["d"] == {"x": 3, "y": 2}


# -- 2. output under a file -------------------------------------------------------------------------------
def test_an_output_folder_under_a_file_is_refused(tmp_path):
    (tmp_path / "afile").write_text("x")
    wf = tsgen_wf(tmp_path, EXAMPLES)
    wf["output"] = str(tmp_path / "afile" / "sub" / "deeper")
    with pytest.raises(InputError, match=r"output: .*afile/sub/deeper is inside .*afile, which is a file"):
        validate_workflow(wf)
    with pytest.raises(InputError, match=r"--output: .*which is a file"):
        run_workflow(tsgen_wf(tmp_path, EXAMPLES), output=tmp_path / "afile" / "o")


# -- 3. booleans are not numbers --------------------------------------------------------------------------
@pytest.mark.parametrize(("where", "value"), [("n_samples", True), ("limit", False), ("seed", True)])
def test_a_boolean_is_not_read_as_a_number(tmp_path, where, value):
    wf = tsgen_wf(tmp_path, EXAMPLES)
    if where == "seed":
        wf["seed"] = value
        match = r"seed: expected a number, got the boolean true"
    else:
        wf["tsgen"][where] = value
        match = rf"tsgen\.{where}: expected a number, got the boolean {str(value).lower()}"
    with pytest.raises(InputError, match=match):
        validate_workflow(wf)


def test_numbers_lists_and_booleans_where_booleans_belong_still_validate():
    from sciflow.workflows.tasks.ditree import DiTreeTrain
    from sciflow.workflows.tasks.tsgen import RefineBlock
    t = DiTreeTrain(demos=str(FOREST / "forest-10000.yaml"), lr=1, widths=[8, 16])   # an int for a float
    assert t.lr == 1.0 and t.widths == [8, 16]
    with pytest.raises(ValueError, match="widths\n.*expected numbers, got a boolean"):
        DiTreeTrain(demos=str(FOREST / "forest-10000.yaml"), widths=[8, True])
    with pytest.raises(ValueError, match="expected a number, got the boolean"):
        DiTreeTrain(demos=str(FOREST / "forest-10000.yaml"), lr=True)
    assert RefineBlock(internal=False, steps=3).internal is False
    from sciflow.workflows.tasks.flow import ModelSettings
    with pytest.raises(ValueError, match="path_kwargs\n.*expected numbers, got a boolean"):
        ModelSettings(path="linear", path_kwargs={"sigma": True})


# -- 4. DiTree scenarios sharing a name -------------------------------------------------------------------
def test_two_ditree_scenarios_with_one_name_are_refused_naming_both_files(tmp_path):
    sc = tmp_path / "sc"
    sc.mkdir()
    for f in ("forest-10000.yaml", "forest-10001.yaml"):
        d = yaml.safe_load((FOREST / f).read_text())
        d["name"] = "same"
        (sc / f).write_text(yaml.safe_dump(d))
    wf = {"version": 1, "task": "ditree", "seed": 0, "device": "cpu", "output": str(tmp_path / "out"),
          "ditree": {"scenarios": str(sc), "budget_s": 0.5, "pictures": False}}
    refused_before_work(wf, r"ditree\.scenarios: .*forest-10000\.yaml and .*forest-10001\.yaml are both "
                            r"scenario 'same'")


# -- 5. a resume whose inputs changed ---------------------------------------------------------------------
def test_a_resume_with_changed_input_files_is_refused_and_fresh_starts_over(tmp_path):
    rx = tmp_path / "rx"
    rx.mkdir()
    shutil.copy(EXAMPLES / "rxn002918.xyz", rx / "rxn.xyz")
    wf = tsgen_wf(tmp_path, rx)
    assert run_workflow(wf)["written"] == 1
    out = tmp_path / "out"
    recorded = json.loads((out / ".done" / "inputs.json").read_text())
    assert set(recorded) == {"tsgen.model", "tsgen.reactions"}
    assert run_workflow(wf)["written"] == 1                 # same inputs: resumes
    (rx / ".hidden.swp").write_text("editor state")          # hidden files are not inputs
    assert run_workflow(wf)["written"] == 1
    shutil.copy(EXAMPLES / "rxn009328.xyz", rx / "rxn.xyz")  # another reaction under the same name
    with pytest.raises(InputError, match=r"output: .* other input files \(changed: tsgen\.reactions: rxn\.xyz "
                                         r"changed in .*rx\).*--fresh"):
        run_workflow(wf)
    with pytest.raises(InputError, match=r"tsgen\.reactions: rxn\.xyz changed"):
        run_workflow(wf, output=out)
    run_workflow(wf, resume=False)                           # --fresh: made from the new file
    n_atoms = int((rx / "rxn.xyz").read_text().split()[0])
    assert int((out / "xyz" / "rxn.xyz").read_text().split()[0]) == n_atoms
    assert run_workflow(wf)["written"] == 1                  # and the new inputs resume
    shutil.copy(EXAMPLES / "rxn002918.xyz", rx / "other.xyz")
    with pytest.raises(InputError, match=r"tsgen\.reactions: other\.xyz added"):
        run_workflow(wf)


def test_an_output_folder_from_before_fingerprints_resumes_and_records_them(tmp_path):
    rx = tmp_path / "rx"
    rx.mkdir()
    shutil.copy(EXAMPLES / "rxn002918.xyz", rx / "rxn.xyz")
    wf = tsgen_wf(tmp_path, rx)
    run_workflow(wf)
    inputs = tmp_path / "out" / ".done" / "inputs.json"
    inputs.unlink()                                           # as an older version left it
    assert run_workflow(wf)["written"] == 1
    assert inputs.is_file()


def test_input_paths_cover_path_fields_models_and_string_inputs(tmp_path):
    from sciflow.workflows.runner import input_fingerprints
    wf = validate_workflow(mmsb_wf(tmp_path, LV))
    assert wf.config.input_paths() == {"data.path": LV, "weights": MMSB_MODEL}
    prints = input_fingerprints(wf)
    assert prints["mmsb.weights"]["files"]["lv.pt"].startswith("sha256 ")
    sc = tmp_path / "sc"
    sc.mkdir()
    for f in ("forest-10000.yaml", "forest-10001.yaml"):
        shutil.copy(FOREST / f, sc / f)
    ditree = validate_workflow({"version": 1, "task": "ditree", "output": str(tmp_path / "o"),
                                "ditree": {"scenarios": str(sc)}})
    paths = ditree.config.input_paths()
    assert paths["scenarios"] == sc and paths["model"].resolve() == ROOT / "models" / "ditree" / "model.pt"
    # an output folder inside an input folder is not part of the input
    wf2 = validate_workflow({"version": 1, "task": "ditree", "output": str(sc / "out"),
                             "ditree": {"scenarios": str(sc), "planner": "rrt"}})
    before = input_fingerprints(wf2, sc / "out")
    (sc / "out").mkdir()
    (sc / "out" / "metrics.json").write_text("{}")
    assert input_fingerprints(wf2, sc / "out") == before
    assert "ditree.model" not in before                      # rrt reads no model


# -- 6. file contents checked at validation ---------------------------------------------------------------
def test_bad_reaction_file_contents_and_a_non_tsgen_model_are_refused_before_work(tmp_path):
    lines = (EXAMPLES / "rxn002918.xyz").read_text().splitlines()
    coords = lines[2].split()
    nan = tmp_path / "nan.xyz"
    nan.write_text("\n".join([*lines[:2], " ".join([coords[0], "nan", *coords[2:]]), *lines[3:]]) + "\n")
    refused_before_work(tsgen_wf(tmp_path, nan), r"tsgen\.reactions: nan\.xyz\[0\]\.positions: .*non-finite")
    fluoro = tmp_path / "fluoro.xyz"
    fluoro.write_text("2\nr\nC 0 0 0\nF 1.4 0 0\n2\np\nC 0 0 0\nF 1.5 0 0\n")      # F: unknown to the model
    refused_before_work(tsgen_wf(tmp_path, fluoro), r"tsgen\.reactions: .*fluoro\.xyz\).*atom 1 is F")
    cut = tmp_path / "cut.xyz"
    cut.write_text("\n".join(lines[:5]) + "\n")
    refused_before_work(tsgen_wf(tmp_path, cut), r"tsgen\.reactions: .*cut\.xyz")
    wrong = tsgen_wf(tmp_path, EXAMPLES / "rxn002918.xyz")
    wrong["tsgen"]["model"] = str(ROOT / "models" / "ditree")
    refused_before_work(wrong, r"tsgen\.model: .*holds a 'ditree' model, not 'tsgen'")


def test_mmsb_weights_of_another_dimension_or_time_range_are_refused_before_work(tmp_path):
    d = np.load(LV)
    x, dts = d["Xs"], d["dts"]
    np.savez(tmp_path / "d3.npz", Xs=np.concatenate([x, x[:, :, :1]], 2), dts=dts)
    refused_before_work(mmsb_wf(tmp_path, tmp_path / "d3.npz"), r"mmsb\.weights: model is 2-D, data is 3-D")
    np.savez(tmp_path / "early.npz", Xs=x, dts=dts - 100)
    refused_before_work(mmsb_wf(tmp_path, tmp_path / "early.npz"),
                        r"mmsb\.weights: with heldout: true the saved model must have been trained on the "
                        r"even-indexed snapshots of data\.path")
    late = mmsb_wf(tmp_path, LV)
    late["mmsb"]["output"]["predict_times"] = [-1.0]
    refused_before_work(late, r"output\.predict_times: predictions start from the first snapshot at t=0; got -1")
    wrong = mmsb_wf(tmp_path, LV)
    wrong["mmsb"]["weights"] = str(TSGEN)
    refused_before_work(wrong, r"mmsb\.weights: .*holds a 'tsgen' model, not 'mmsb'")
    (tmp_path / "bad.npz").write_bytes(b"not a zip file")
    refused_before_work(mmsb_wf(tmp_path, tmp_path / "bad.npz"), r"mmsb\.data: ")


def test_mmsb_settings_that_only_failed_after_the_fit_are_refused_before_work(tmp_path):
    """Without `weights:` a negative prediction time, unknown or NaN reference arguments, a time in the wrong unit
    (hours of simulation) and a step longer than the snapshots' spacing all passed `validate`; the first two
    failed only after a 20 s fit, the third ran for hours, the fourth gave a held-out W2 of 5 instead of 0.16."""
    def fit(**over):
        wf = mmsb_wf(tmp_path, LV)
        del wf["mmsb"]["weights"]
        wf["mmsb"]["model"] = {"reference": "lotka_volterra", "rounds": 1, "n_paths": 20}
        for k, v in over.items():
            wf["mmsb"][k].update(v)
        return wf
    refused_before_work(fit(output={"predict_times": [-5.0]}),
                        r"output\.predict_times: predictions start from the first snapshot at t=0; got -5")
    refused_before_work(fit(model={"reference_kwargs": {"bogus": 1}}), r"model\.reference_kwargs: .*bogus")
    refused_before_work(fit(model={"reference_kwargs": {"alpha": float("nan")}}),
                        r"model\.reference_kwargs\.alpha: must be finite")
    refused_before_work(fit(output={"predict_times": [1.0e9]}),
                        r"output\.predict_times: reaching t=1e\+09 from t=0 takes .* steps")
    refused_before_work(fit(output={"predict_dt": 1.0e6}),
                        r"output\.predict_dt: 1e\+06 is longer than the smallest spacing of the training snapshots \(2\)")
    ok = fit(model={"reference_kwargs": {"alpha": 0.9}}, output={"predict_times": [0.5, 12.0], "predict_dt": 0.01})
    assert validate_workflow(ok).task.name == "mmsb"      # a valid setting passes


def test_hidden_files_are_not_read_and_a_killed_runs_temporaries_are_removed(tmp_path):
    """A hidden file in an input folder is neither read nor fingerprinted (it was read but not fingerprinted,
    so replacing it resumed silently with stale results); the temporary files a killed run's unfinished writes
    left in the output folder are removed when a run starts (they tripped readers of the outputs)."""
    rx = tmp_path / "rx"
    rx.mkdir()
    shutil.copy(EXAMPLES / "rxn002918.xyz", rx / "rxn.xyz")
    shutil.copy(EXAMPLES / "rxn009328.xyz", rx / ".hid.xyz")
    wf = tsgen_wf(tmp_path, rx)
    assert run_workflow(wf)["written"] == 1
    out = tmp_path / "out"
    assert not (out / "xyz" / ".hid.xyz").exists()
    stale = out / "xyz" / ".rxn.k2x9_a0q.tmp.xyz"              # the name atomic_path gives its temporary
    stale.write_text("")
    keep = out / "xyz" / ".notes.tmp"                          # a hidden file of another kind stays
    keep.write_text("mine")
    assert run_workflow(wf)["written"] == 1
    assert not stale.exists() and keep.read_text() == "mine"


def test_listed_files_leave_out_hidden_names_at_any_depth(tmp_path):
    from sciflow.core.files import listed_files
    from sciflow.domains.robots import scenario_files
    (tmp_path / "a.YAML").write_text("x")
    (tmp_path / ".b.yaml").write_text("x")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "c.yaml").write_text("x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "d.yaml").write_text("x")
    assert [p.name for p in listed_files(tmp_path, (".yaml",))] == ["a.YAML"]
    assert [p.name for p in listed_files(tmp_path, (".yaml",), recursive=True)] == ["a.YAML", "d.yaml"]
    assert [p.name for p in scenario_files(tmp_path)] == ["a.YAML"]
