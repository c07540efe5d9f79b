"""Calibration of a parametric reference against all snapshots at once (energy distance)."""
import math

import pytest
import torch

from sciflow.core.errors import InputError
from sciflow.core.random import make_generator
from sciflow.domains.cells import LotkaVolterra, MultiplicativeNoise, simulate_snapshots
from sciflow.methods.mmsb import MMSB
from sciflow.methods.mmsb.calibrate import calibrate_reference, energy_distance

TRUTH = {"alpha": 1.0, "beta": 0.4, "gamma": 0.4, "delta": 0.1}


def test_energy_distance_closed_forms():
    x = torch.zeros(1, 2, dtype=torch.float64)
    y = torch.tensor([[3.0, 4.0]], dtype=torch.float64)
    assert float(energy_distance(x, y)) == pytest.approx(10.0)          # 2 |x - y| for two point masses
    pts = torch.randn(50, 3, dtype=torch.float64, generator=make_generator(0))
    assert float(energy_distance(pts, pts)) == pytest.approx(0.0, abs=1e-12)
    # two-point measures {0, 1} and {0, a}: E|X-Y| = (a + 1 + |1 - a|) / 4, E|X-X'| = 1/2, E|Y-Y'| = a/2
    a = 2.5
    u = torch.tensor([[0.0], [1.0]], dtype=torch.float64)
    v = torch.tensor([[0.0], [a]], dtype=torch.float64)
    expected = (2 * (0 + a + 1 + abs(1 - a)) / 4) - 0.5 - a / 2
    assert float(energy_distance(u, v)) == pytest.approx(expected)
    assert float(energy_distance(u, v)) > 0


def _lv_snapshots(n=150, seed=0):
    return simulate_snapshots(LotkaVolterra(**TRUTH).double(), MultiplicativeNoise(0.02), times=[0, 1, 2, 3, 4, 5],
                              n=n, box=([5.0, 4.0], [5.1, 4.1]), dt=0.01, generator=make_generator(seed))


def test_calibration_recovers_rates_from_a_perturbed_start():
    snaps = _lv_snapshots()
    start = {"alpha": 1.08, "beta": 0.37, "gamma": 0.43, "delta": 0.093}     # every rate 7-8 % off
    drift = LotkaVolterra(**start).double()
    info = calibrate_reference(drift, MultiplicativeNoise(0.02), snaps, replicas=2, h=0.02, seed=1)
    assert info["kept"] and info["objective_after"] < info["objective_before"]
    got = drift.params()
    for name, true in TRUTH.items():
        assert abs(got[name] - true) / true < 0.03, (name, got[name])


def test_calibration_keeps_old_parameters_when_it_cannot_improve(monkeypatch):
    """An optimiser step that only finds a worse point (every rate 1.5x the truth) must leave the starting
    parameters in place, bit for bit, and report the starting objective (a plain L-BFGS step from the truth may
    leave the parameters where they were, which never exercises the restore)."""
    snaps = _lv_snapshots(n=60)
    drift = LotkaVolterra(**TRUTH).double()
    before = dict(drift.params())
    raw = [p.detach().clone() for p in drift.parameters()]
    trial = {}

    def worse_step(self, closure):
        with torch.no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    p.add_(math.log(1.5))                     # the rates are stored as logs
        assert all(drift.params()[k] == pytest.approx(1.5 * v) for k, v in TRUTH.items())
        trial["loss"] = float(closure())
        return trial["loss"]

    monkeypatch.setattr(torch.optim.LBFGS, "step", worse_step)
    info = calibrate_reference(drift, MultiplicativeNoise(0.02), snaps, replicas=1, h=0.05, max_iter=1, seed=0)
    assert trial["loss"] > info["objective_before"]             # the trial point really was worse
    assert not info["kept"]
    assert info["objective_after"] == info["objective_before"]
    assert drift.params() == before
    assert all(torch.equal(p, q) for p, q in zip(drift.parameters(), raw))


def test_calibration_leaves_a_diverging_reference_unchanged():
    snaps = _lv_snapshots(n=30)
    drift = LotkaVolterra(alpha=80.0, beta=1e-6, gamma=0.4, delta=1e-6).double()    # prey grows like e^(80 t)
    before = dict(drift.params())
    info = calibrate_reference(drift, MultiplicativeNoise(0.02), snaps, replicas=1, h=0.05, seed=0)
    assert not info["kept"] and not math.isfinite(info["objective_before"])   # paths overflow from the start
    assert drift.params() == before


def test_calibration_rejects_network_references_and_bad_options():
    snaps = _lv_snapshots(n=20)
    net = torch.nn.Sequential(torch.nn.Linear(2, 32), torch.nn.Tanh(), torch.nn.Linear(32, 2)).double()
    with pytest.raises(InputError, match="calibrate"):
        calibrate_reference(net, MultiplicativeNoise(0.02), snaps)
    with pytest.raises(InputError, match="calibrate_replicas"):
        calibrate_reference(LotkaVolterra(**TRUTH).double(), MultiplicativeNoise(0.02), snaps, replicas=0)
    with pytest.raises(InputError, match="calibrate"):
        MMSB(reference="lotka_volterra", calibrate="sometimes")
    with pytest.raises(InputError, match="calibrate_replicas"):
        MMSB(reference="lotka_volterra", calibrate_replicas=0)


def test_fit_records_the_calibration_step_on_ragged_snapshots():
    snaps = _lv_snapshots(n=[80, 50, 70, 60, 90, 40])
    model = MMSB(reference="lotka_volterra", sigma=0.02, noise="multiplicative", rounds=1, n_paths=80,
                 calibrate_replicas=1, h=0.05)
    summary = model.fit(snaps, seed=0, show_progress=False)
    steps = [h.get("step") for h in summary["history"]]
    assert steps[-1] == "calibration"
    assert summary["params"] == model.reference_params == summary["history"][-1]["params"]
    plain = MMSB(reference="lotka_volterra", sigma=0.02, noise="multiplicative", rounds=1, n_paths=80, h=0.05,
                 calibrate="none")
    assert "calibration" not in [h.get("step") for h in plain.fit(snaps, seed=0, show_progress=False)["history"]]
