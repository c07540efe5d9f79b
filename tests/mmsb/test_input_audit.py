"""Settings and data that cannot work are refused when they are checked, before any work, naming the field and
the file: calibrate='energy' of a reference with nothing to calibrate (it failed after the whole fit and left a
checkpoint that refused the corrected rerun), reference_kwargs a builder or torch rejects (raw tracebacks),
simulate --params with parameters left out (defaults filled in silently), simulation times beyond the step
budget (a hang), snapshots of one sample or no feature, and an h5ad time_key missing from the file."""
import json
import re
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from torch import nn

from sciflow.cli import main
from sciflow.core.errors import InputError
from sciflow.data.snapshots import read_snapshots
from sciflow.domains.cells import LinearDrift, Snapshots, make_noise, simulate_snapshots
from sciflow.methods.mmsb import MMSB
from sciflow.workflows.runner import validate_workflow


def _data(path, k=5, n=30, d=2):
    rng = np.random.default_rng(0)
    xs = np.stack([rng.normal(size=(n, d)) * 0.2 + np.array([1.0 + 0.5 * i] + [2.0] * (d - 1)) for i in range(k)])
    np.savez(path, Xs=xs, dts=np.arange(float(k)))
    return path


def _workflow(data, **model):
    return {"version": 1, "task": "mmsb", "seed": 0, "output": "unused",
            "mmsb": {"data": {"path": str(data)}, "model": {"sigma": 0.1, "noise": "additive", **model}}}


# -- 1. calibrate: energy with nothing to calibrate ------------------------------------------------------------
def test_energy_calibration_of_a_zero_or_network_reference_is_refused_at_construction():
    with pytest.raises(InputError, match="calibrate: .*mlp is a network reference"):
        MMSB(reference="mlp", calibrate="energy")
    with pytest.raises(InputError, match="calibrate: .*zero reference .*has no parameters") as e:
        MMSB(reference="zero", sigma=0.1, calibrate="energy")
    assert "network" not in str(e.value)
    with pytest.raises(InputError, match="calibrate: .*4482 trainable parameters"):
        MMSB(reference=nn.Sequential(nn.Linear(2, 64), nn.Linear(64, 64), nn.Linear(64, 2)).double(),
             calibrate="energy")
    MMSB(reference="lotka_volterra", calibrate="energy")              # a parametric reference: accepted


def test_energy_calibration_of_too_many_parameters_is_refused_before_the_checkpoint(tmp_path):
    """A linear drift in 8-D has 72 parameters: refused when fit starts, not after the rounds, no state left."""
    snaps = read_snapshots(_data(tmp_path / "d.npz", d=8))
    ck = tmp_path / "fit_state.pt"
    model = MMSB(reference="linear", sigma=0.1, noise="additive", rounds=0, n_paths=10, calibrate="energy")
    with pytest.raises(InputError, match="calibrate: .*72 trainable parameters"):
        model.fit(snaps, checkpoint=ck, show_progress=False)
    assert not ck.exists()


def test_energy_calibration_of_a_network_is_refused_by_the_cli_and_the_workflow(tmp_path, capsys):
    data = _data(tmp_path / "d.npz")
    out = tmp_path / "fit"
    assert main(["mmsb", "fit", "--data", str(data), "--reference", "mlp", "--sigma", "0.1", "--noise", "additive",
                 "--rounds", "0", "--paths", "10", "--calibrate", "energy", "--n", "5", "--out", str(out)]) == 2
    assert "calibrate: " in capsys.readouterr().err and not out.exists()
    for ref, why in (("mlp", "network"), ("zero", "no parameters")):
        with pytest.raises(InputError, match=f"model.calibrate: .*{why}"):
            validate_workflow(_workflow(data, reference=ref, calibrate="energy"))


# -- 2. reference_kwargs a builder or torch rejects ------------------------------------------------------------
def test_bad_reference_kwargs_name_the_key_in_the_api_cli_and_workflow(tmp_path, capsys):
    data = _data(tmp_path / "d.npz")
    snaps = read_snapshots(data)
    with pytest.raises(InputError, match=r"reference_kwargs\.A: "):
        MMSB(reference="linear", sigma=0.1, noise="additive", calibrate="none",
             reference_kwargs={"A": [[1, 2], [3]]}).fit(snaps, show_progress=False)
    with pytest.raises(InputError, match=r"reference_kwargs\.hidden: "):
        MMSB(reference="mlp", dim=2, reference_kwargs={"hidden": [-4]})
    out = tmp_path / "fit"
    assert main(["mmsb", "fit", "--data", str(data), "--reference", "mlp", "--sigma", "0.1",
                 "--reference-kwargs", '{"hidden": [-4]}', "--out", str(out)]) == 2
    assert "--reference-kwargs: hidden: " in capsys.readouterr().err and not out.exists()
    with pytest.raises(InputError, match=r"model\.reference_kwargs\.hidden: .*negative dimension"):
        validate_workflow(_workflow(data, reference="mlp", reference_kwargs={"hidden": [-4]}))


# -- 4. simulate --params: every parameter of the truth ---------------------------------------------------------
def test_simulate_refuses_missing_parameters_and_stores_the_ones_used(tmp_path, capsys):
    out = tmp_path / "lv.npz"
    base = ["mmsb", "simulate", "--reference", "lotka_volterra", "--box", "5,4", "5.1,4.1", "--n", "3",
            "--times", "0,1", "--out", str(out)]
    assert main([*base, "--params", '{"alpha": 1, "beta": 0.4, "gamma": 0.4}']) == 2
    assert "--params: " in (err := capsys.readouterr().err) and "missing delta" in err and not out.exists()
    assert main(base) == 2
    assert "missing alpha, beta, gamma, delta" in capsys.readouterr().err and not out.exists()
    assert main([*base, "--params", '{"alpha": 1, "beta": 0.4, "gamma": 0.4, "delta": 0.1}']) == 0
    z = np.load(out)
    assert str(z["reference"]) == "lotka_volterra" and str(z["noise"]) == "multiplicative"
    assert json.loads(str(z["params"])) == {"alpha": 1, "beta": 0.4, "gamma": 0.4, "delta": 0.1}
    assert read_snapshots(out).sizes == [3, 3]                     # still a snapshot file


# -- 5. simulation times beyond the step budget -----------------------------------------------------------------
def test_simulate_snapshots_refuses_times_beyond_the_step_budget_before_any_step():
    def drift(x):
        raise AssertionError("simulated before the times were checked")
    with pytest.raises(InputError, match=r"times: .*more than 1,000,000"):
        simulate_snapshots(drift, make_noise("additive", 0.1), times=[0.0, 1e9], n=3, box=([0.0], [1.0]))
    snaps = simulate_snapshots(LinearDrift(1, A=[[-1.0]]), make_noise("additive", 0.1), times=[0.0, 1.0], n=3,
                               box=([0.0], [1.0]), generator=torch.Generator().manual_seed(0))
    assert snaps.sizes == [3, 3]


# -- 6, 7. one sample per snapshot, no feature -------------------------------------------------------------------
def test_snapshots_need_two_samples_naming_the_snapshot_and_file(tmp_path, capsys):
    with pytest.raises(InputError, match=r"snapshot\[1\]: .*N >= 2.*got shape \(1, 2\)"):
        Snapshots.from_arrays([np.zeros((3, 2)), np.zeros((1, 2))], [0.0, 1.0])
    one = tmp_path / "one.npz"
    np.savez(one, Xs=np.ones((3, 1, 2)), dts=np.arange(3.0))
    with pytest.raises(InputError, match=rf"data {re.escape(str(one))}: snapshot\[0\]: .*N >= 2"):
        read_snapshots(one)
    out = tmp_path / "o1"
    assert main(["mmsb", "fit", "--data", str(one), "--reference", "linear", "--sigma", "0.1", "--noise",
                 "additive", "--rounds", "1", "--paths", "20", "--calibrate", "none", "--n", "5",
                 "--out", str(out)]) == 2
    assert str(one) in capsys.readouterr().err and not out.exists()
    with pytest.raises(InputError, match="n: expected a count >= 2"):
        simulate_snapshots(LinearDrift(1), make_noise("additive", 0.1), times=[0.0, 1.0], n=1, box=([0.0], [1.0]))


def test_snapshots_without_features_are_refused_when_read_naming_the_file(tmp_path):
    d0 = tmp_path / "d0.npz"
    np.savez(d0, Xs=np.zeros((3, 5, 0)), dts=np.arange(3.0))
    with pytest.raises(InputError, match=rf"data {re.escape(str(d0))}: snapshot\[0\]: .*d >= 1 features, got shape "
                                         r"\(5, 0\)"):
        read_snapshots(d0)
    with pytest.raises(InputError, match=re.escape(str(d0))):
        validate_workflow(_workflow(d0, reference="linear"))


# -- 9. h5ad time_key: name the file -------------------------------------------------------------------------------
def test_a_missing_h5ad_time_key_names_the_file(tmp_path):
    path = Path(tmp_path / "cells.h5ad")
    with h5py.File(path, "w") as f:
        obs = f.create_group("obs")
        obs.attrs["_index"] = "_index"
        obs["_index"] = np.array([f"c{i}".encode() for i in range(4)])
        obs["batch"] = np.arange(4.0)
        f["X"] = np.arange(8.0).reshape(4, 2)
    with pytest.raises(InputError, match=rf"time_key: 'day' is not an obs column of {re.escape(str(path))}"):
        read_snapshots(path, time_key="day")
