"""Workflow and constructor checks of the mmsb task.

* ``heldout: true`` with ``weights:`` scored a saved model trained on every snapshot (or on another file of the
  same dimension) on "held-out" snapshots it had been fitted to, predicting from its own first snapshot: now the
  model must have been trained on exactly the even-indexed snapshots of ``data.path``.
* ``evaluate_heldout`` reported the population sd over seeds: now the sample sd (ddof = 1).
* ``reference: zero`` (vanilla SB) with ``sigma: auto`` / ``noise: auto`` chose its diffusion by simulating the
  zero drift itself, which reproduces no snapshot at any level (it could pick multiplicative noise): now the
  zero reference is Brownian (additive) and needs a number for sigma.
"""
import statistics

import numpy as np
import pytest
import torch

from sciflow.cli import main
from sciflow.core.errors import InputError
from sciflow.data.snapshots import read_snapshots
from sciflow.domains.cells import Snapshots
from sciflow.methods.mmsb import MMSB
from sciflow.methods.mmsb.evaluate import evaluate_heldout, heldout_split
from sciflow.workflows.runner import validate_workflow


def _data(path, seed):
    rng = np.random.default_rng(seed)
    xs = np.stack([rng.normal(size=(30, 2)) * 0.2 + [1.0 + 0.5 * k, 2.0] for k in range(5)])
    np.savez(path, Xs=xs, dts=np.arange(5.0))
    return path


def _saved(tmp_path, name, snaps):
    model = MMSB(reference="linear", sigma=0.1, noise="additive", rounds=0, n_paths=10, calibrate="none")
    model.fit(snaps, seed=0, show_progress=False)
    model.save(tmp_path / name)
    return tmp_path / name


def _workflow(data, weights, heldout=True):
    return {"version": 1, "task": "mmsb", "seed": 0, "output": "unused",
            "mmsb": {"data": {"path": str(data), "heldout": heldout}, "weights": str(weights)}}


def test_heldout_weights_must_be_trained_on_the_even_snapshots_of_the_data(tmp_path):
    data, other = _data(tmp_path / "d.npz", 0), _data(tmp_path / "other.npz", 1)
    snaps = read_snapshots(data)
    train, _ = heldout_split(snaps)
    good = _saved(tmp_path, "even.pt", train)
    validate_workflow(_workflow(data, good))                       # the right split: accepted
    for bad, why in ((_saved(tmp_path, "all.pt", snaps), "every snapshot"),
                     (_saved(tmp_path, "other.pt", heldout_split(read_snapshots(other))[0]), "another file")):
        with pytest.raises(InputError) as e:
            validate_workflow(_workflow(data, bad))
        msg = str(e.value)
        assert "weights" in msg and "data.path" in msg and str(data) in msg, (why, msg)
        validate_workflow(_workflow(data, bad, heldout=False))     # no held-out score: nothing leaks


def test_zero_reference_is_brownian_and_needs_a_sigma(tmp_path, capsys):
    with pytest.raises(InputError, match="sigma: the zero reference"):
        MMSB(reference="zero", sigma="auto")
    with pytest.raises(InputError, match="noise: the zero reference"):
        MMSB(reference="zero", sigma=0.1, noise="multiplicative")
    model = MMSB(reference="zero", sigma=0.1, noise="auto")        # auto: additive, no noise selection
    assert model.noise.name == "additive" and not model.auto_noise and not model.auto_sigma
    assert model.config()["noise"] == "additive"
    data = _data(tmp_path / "d.npz", 0)
    for model_block, match in (({"reference": "zero"}, "sigma: the zero reference"),
                               ({"reference": "zero", "sigma": 0.1, "noise": "multiplicative"},
                                "noise: the zero reference")):
        wf = {"version": 1, "task": "mmsb", "output": "unused", "mmsb": {"data": {"path": str(data)},
                                                                          "model": model_block}}
        with pytest.raises(InputError, match=match):
            validate_workflow(wf)
    # the CLI defaults (--sigma auto --noise auto) are refused with the option to set, before any output
    out = tmp_path / "m.json"
    assert main(["mmsb", "evaluate", "--data", str(data), "--reference", "zero", "--out", str(out)]) == 2
    assert "sigma: the zero reference" in capsys.readouterr().err and not out.exists()


def test_heldout_protocol_reports_the_sample_sd_over_seeds():
    """The sd over seeds was the population sd (ddof = 0) here and in the benchmark, the sample sd in the
    oracle: now the sample sd everywhere."""
    rng = np.random.default_rng(0)
    data = Snapshots.from_arrays([rng.normal(size=(20, 2)) + k for k in range(5)], [0.0, 1.0, 2.0, 3.0, 4.0])
    shifts = [0.1, 0.2, 0.4]                       # a translation by c: W2 = |c| exactly

    def fit_predict(train, seed):
        def predict(times):
            return {t: data.samples[int(t)] + torch.tensor([shifts[seed], 0.0], dtype=torch.float64) for t in times}
        return predict, {}

    res = evaluate_heldout(data, fit_predict, seeds=3)
    assert res["emd_per_seed"] == pytest.approx(shifts)
    assert res["emd_std"] == pytest.approx(statistics.stdev(shifts))        # ddof = 1 (pstdev: 0.125)
    assert "ddof = 1" in res["std"]


def test_a_zero_reference_model_saved_with_automatic_noise_still_loads(tmp_path):
    """Files written before the zero reference needed a given sigma keep the diffusion they were fitted with."""
    from sciflow.core.training.checkpoint import atomic_save, load_checkpoint
    snaps = read_snapshots(_data(tmp_path / "d.npz", 0))
    model = MMSB(reference="zero", sigma=0.3, noise="additive", rounds=0, n_paths=10)
    model.fit(snaps, seed=0, show_progress=False)
    model.save(tmp_path / "zero.pt")
    ck = load_checkpoint(tmp_path / "zero.pt")
    ck["config"].update(sigma="auto", noise="auto")             # what such a file held
    ck["extra"].update(noise="multiplicative", sigma=0.05)
    atomic_save(ck, tmp_path / "old.pt")
    old = MMSB.load(tmp_path / "old.pt")
    assert old.noise.name == "multiplicative" and old.noise.sigma == 0.05
