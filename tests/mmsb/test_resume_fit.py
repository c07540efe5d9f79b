"""Resume of an MMSB fit (``MMSB.fit(checkpoint=...)``, ``methods/mmsb/resume.py``) and of the mmsb workflow: an
interrupted fit goes on from its last saved round (or step of the shooting init or calibration) and ends bit for
bit where an uninterrupted one does; a checkpoint of another fit or an unreadable one is refused, naming the file
and what differs.

Interrupts are a KeyboardInterrupt raised from a patched round (what SIGINT / SIGTERM become under the command
line, see ``sciflow.core.interrupts`` and tests/workflows/test_resume.py)."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import sciflow.methods.mmsb.calibrate as mmsb_calibrate
import sciflow.methods.mmsb.init as mmsb_init
import sciflow.methods.mmsb.model as mmsb_model
from sciflow.cli import main
from sciflow.core.errors import InputError
from sciflow.domains.cells.snapshots import Snapshots
from sciflow.methods.mmsb import MMSB
from sciflow.methods.mmsb.export import read_trajectories

ROOT = Path(__file__).resolve().parents[2]
# the shipped Lotka-Volterra data, shrunk: shooting init, a SQUAREM cycle, a plain round and the calibration
LV = {"reference": "lotka_volterra", "sigma": 0.02, "noise": "multiplicative", "rounds": 4, "n_paths": 30, "h": 0.1,
      "calibrate": "energy", "calibrate_replicas": 1, "shooting_starts": 2}
# a linear reference with an automatic sigma: noise selection, then refit rounds (a SQUAREM cycle)
AUTO = {"reference": "linear", "sigma": "auto", "noise": "additive", "rounds": 0, "refit_rounds": 3, "n_paths": 40,
        "h": 0.05}
SMALL = {"reference": "linear", "sigma": 0.1, "noise": "additive", "rounds": 2, "n_paths": 20, "h": 0.05,
         "accelerate": "none"}


def _lv() -> Snapshots:
    z = np.load(ROOT / "datasets" / "mmsb" / "LV_data.npz")
    return Snapshots.from_arrays([z["Xs"][k][:40] for k in (0, 2, 4)], z["dts"][[0, 2, 4]])


def _ou(n: int = 50, seed: int = 0) -> list[np.ndarray]:
    """Three snapshots (t = 0, 0.25, 0.5) of a rotating Ornstein-Uhlenbeck population."""
    rng = np.random.default_rng(seed)
    a = np.array([[-0.5, 1.0], [-1.0, -0.5]])
    xs = [rng.normal(size=(n, 2))]
    for _ in range(2):
        x = xs[-1]
        for _ in range(25):
            x = x + 0.01 * x @ a.T + 0.01 * rng.normal(size=x.shape)
        xs.append(x)
    return xs


def _snaps(**kw) -> Snapshots:
    return Snapshots.from_arrays(_ou(**kw), [0.0, 0.25, 0.5])


def _interrupt_from_round(monkeypatch, seed: int, k: int) -> None:
    """Rounds after the k-th raise KeyboardInterrupt (``_em_step`` gets ``seed + rounds done``)."""
    real = MMSB._em_step

    def em(self, g, parametric, s):
        if s - seed >= k:
            raise KeyboardInterrupt
        return real(self, g, parametric, s)
    monkeypatch.setattr(MMSB, "_em_step", em)


def _untimed(history):
    return [{k: v for k, v in h.items() if k != "seconds"} for h in history]


def _assert_same_fit(a: MMSB, b: MMSB) -> None:
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert list(sa) == list(sb)
    for name in sa:       # bit for bit: the same draws, the same float64 arithmetic
        assert torch.equal(sa[name], sb[name]), name
    assert (a.noise.name, a.noise.sigma) == (b.noise.name, b.noise.sigma)
    assert _untimed(a.history) == _untimed(b.history)
    assert a.reference_params == b.reference_params


@pytest.fixture
def counted(monkeypatch):
    """Counts the real rounds, shooting inits, noise selections and calibrations, and the first round each
    progress bar shows."""
    calls = {"rounds": 0, "shooting": 0, "select": 0, "calibrate": 0, "bar": []}
    real_em = MMSB._em_step

    def em(self, *a, **k):
        out = real_em(self, *a, **k)
        calls["rounds"] += 1
        return out
    monkeypatch.setattr(MMSB, "_em_step", em)

    def counting(real, key):
        def wrapped(*a, **k):
            calls[key] += 1
            return real(*a, **k)
        return wrapped
    for name, key in (("shooting_init", "shooting"), ("select_noise", "select"),
                      ("calibrate_reference", "calibrate")):
        monkeypatch.setattr(mmsb_model, name, counting(getattr(mmsb_model, name), key))
    real_bar = mmsb_model.progress

    def bar(*a, **k):
        calls["bar"].append(k.get("initial", 0))
        return real_bar(*a, **k)
    monkeypatch.setattr(mmsb_model, "progress", bar)
    return calls


def test_a_fit_interrupted_in_any_round_or_stage_ends_as_an_uninterrupted_one(tmp_path, monkeypatch, counted):
    snaps, ck = _lv(), tmp_path / "fit.pt"
    plain = MMSB(**LV)
    plain.fit(snaps, seed=3, show_progress=False)
    counted.update(rounds=0, shooting=0, calibrate=0, bar=[])
    real_calibrate = mmsb_model.calibrate_reference

    def interrupted(*a, **k):
        raise KeyboardInterrupt
    # inside a SQUAREM cycle after its first and second step, after the cycle, in the calibration
    for k in (1, 2, 3, None):
        with monkeypatch.context() as m:
            if k is None:
                m.setattr(mmsb_model, "calibrate_reference", interrupted)
            else:
                _interrupt_from_round(m, 3, k)
            with pytest.raises(KeyboardInterrupt):
                MMSB(**LV).fit(snaps, seed=3, show_progress=False, checkpoint=ck)
        assert ck.is_file() and not list(tmp_path.glob(".*.tmp*"))
    assert mmsb_model.calibrate_reference is real_calibrate
    resumed = MMSB(**LV)
    summary = resumed.fit(snaps, seed=3, show_progress=False, checkpoint=ck)
    _assert_same_fit(plain, resumed)
    assert summary["resumed_from"] == 4 and summary["rounds"] == 4
    # no round, init or calibration was done twice; each bar started at the round its fit went on from
    assert counted["rounds"] == 4 and counted["shooting"] == 1 and counted["calibrate"] == 1
    assert counted["bar"] == [0, 1, 2, 3, 4]
    # a finished fit's checkpoint gives the finished model without any work
    again = MMSB(**LV)
    again.fit(snaps, seed=3, show_progress=False, checkpoint=ck)
    _assert_same_fit(plain, again)
    assert counted["rounds"] == 4 and counted["calibrate"] == 1


def test_the_noise_selection_is_kept_and_the_refit_rounds_resume(tmp_path, monkeypatch, counted):
    snaps, ck = _snaps(), tmp_path / "fit.pt"
    plain = MMSB(**AUTO)
    plain.fit(snaps, seed=0, show_progress=False)
    with monkeypatch.context() as m:
        _interrupt_from_round(m, 0, 2)        # in the refit rounds' SQUAREM cycle, after its second step
        with pytest.raises(KeyboardInterrupt):
            MMSB(**AUTO).fit(snaps, seed=0, show_progress=False, checkpoint=ck)
    resumed = MMSB(**AUTO)
    assert resumed.fit(snaps, seed=0, show_progress=False, checkpoint=ck)["resumed_from"] == 2
    _assert_same_fit(plain, resumed)
    assert [h["round"] for h in resumed.history if h.get("step") == "noise selection"] == [0]
    assert counted["select"] == 2 and counted["rounds"] == 3 + 3      # plain fit, then 2 rounds + 1 resumed


def test_a_checkpoint_of_another_fit_is_refused_before_any_work(tmp_path, monkeypatch):
    snaps, ck = _snaps(n=30), tmp_path / "fit.pt"
    MMSB(**SMALL).fit(snaps, seed=0, show_progress=False, checkpoint=ck)
    saved = ck.read_bytes()
    monkeypatch.setattr(MMSB, "_em_step", lambda *a, **k: pytest.fail("a round ran before the refusal"))
    for kw, fit_kw, changed in (
            ({"rounds": 3}, {}, "config.rounds"),
            ({"sigma": 0.2}, {}, "config.sigma"),
            ({}, {"seed": 1}, "seed"),
            ({}, {"generator": torch.Generator().manual_seed(5)}, "generator"),
            ({}, {"snapshots": _snaps(n=30, seed=1)}, "data")):
        with pytest.raises(InputError, match=rf"checkpoint: .*fit\.pt was saved by another fit \(changed: .*{changed}"):
            MMSB(**{**SMALL, **kw}).fit(fit_kw.pop("snapshots", snaps), **{"seed": 0, **fit_kw},
                                        show_progress=False, checkpoint=ck)
    assert ck.read_bytes() == saved          # refused, not overwritten
    # the device is where a fit runs, not what it computes, and predict_dt is used only after the fit: both may change
    MMSB(**SMALL, device="cpu:0").fit(snaps, seed=0, show_progress=False, checkpoint=ck)
    MMSB(**SMALL, predict_dt=0.002).fit(snaps, seed=0, show_progress=False, checkpoint=ck)
    # an "auto" setting counts as what it resolves to (a linear reference: no calibration, given init)
    MMSB(**SMALL, calibrate="none", init="given").fit(snaps, seed=0, show_progress=False, checkpoint=ck)
    # nor do they count when the saved fingerprint holds them (as checkpoints written before predict_dt was left out)
    state = torch.load(ck, weights_only=False)
    state["fingerprint"]["config"]["predict_dt"] = 0.5
    torch.save(state, ck)
    MMSB(**SMALL).fit(snaps, seed=0, show_progress=False, checkpoint=ck)


def test_an_unreadable_or_foreign_checkpoint_is_refused_naming_the_remedy(tmp_path):
    snaps, ck = _snaps(n=30), tmp_path / "fit.pt"
    model = MMSB(**SMALL)
    model.fit(snaps, seed=0, show_progress=False, checkpoint=ck)
    ck.write_bytes(ck.read_bytes()[: ck.stat().st_size // 2])     # atomic saves never leave this; a disk might
    with pytest.raises(InputError, match=r"checkpoint: .*fit\.pt is not a readable .*remove it \(or run the "
                                         r"workflow or `sciflow mmsb fit` again with --fresh\)"):
        MMSB(**SMALL).fit(snaps, seed=0, show_progress=False, checkpoint=ck)
    model.save(ck)                            # a saved model is not a fit checkpoint
    with pytest.raises(InputError, match=r"not an MMSB fit checkpoint .*remove it"):
        MMSB(**SMALL).fit(snaps, seed=0, show_progress=False, checkpoint=ck)
    with pytest.raises(InputError, match=r"checkpoint: .* is an existing folder"):     # refused before any round
        MMSB(**SMALL).fit(snaps, seed=0, show_progress=False, checkpoint=tmp_path)


def test_an_interrupt_while_a_checkpoint_is_written_keeps_the_previous_one(tmp_path, monkeypatch):
    snaps, ck = _snaps(n=30), tmp_path / "fit.pt"
    plain = MMSB(**SMALL)
    plain.fit(snaps, seed=0, show_progress=False)
    real_save, saves = torch.save, []

    def save(obj, f, *a, **k):          # the second checkpoint (after round 2) is cut off half-way
        saves.append(1)
        if len(saves) == 2:
            Path(f).write_bytes(b"PK\x03\x04 half")
            raise KeyboardInterrupt
        return real_save(obj, f, *a, **k)
    with monkeypatch.context() as m:
        m.setattr(torch, "save", save)
        with pytest.raises(KeyboardInterrupt):
            MMSB(**SMALL).fit(snaps, seed=0, show_progress=False, checkpoint=ck)
    assert [p.name for p in tmp_path.iterdir()] == ["fit.pt"]       # no temporary left behind
    resumed = MMSB(**SMALL)
    assert resumed.fit(snaps, seed=0, show_progress=False, checkpoint=ck)["resumed_from"] == 1
    _assert_same_fit(plain, resumed)


def test_an_interrupted_workflow_fit_resumes_to_the_uninterrupted_outputs(tmp_path, monkeypatch, capsys):
    data = tmp_path / "ou.npz"
    np.savez(data, Xs=np.stack(_ou(n=40)), dts=np.array([0.0, 0.25, 0.5]))
    cfg = {"version": 1, "task": "mmsb", "seed": 0, "device": "cpu", "output": str(tmp_path / "unused"), "mmsb": {
        "data": {"path": str(data), "heldout": False},
        "model": {"reference": "linear", "sigma": 0.1, "noise": "additive", "rounds": 3, "n_paths": 30},
        "output": {"n_trajectories": 20, "formats": ["npz"]}}}
    wf = tmp_path / "mmsb.yaml"
    wf.write_text(yaml.safe_dump(cfg))
    plain, out = tmp_path / "plain", tmp_path / "out"
    assert main(["run", str(wf), "--output", str(plain)]) == 0
    with monkeypatch.context() as m:
        _interrupt_from_round(m, 0, 2)
        assert main(["run", str(wf), "--output", str(out)]) == 130
    assert (out / ".done" / "fit.pt").is_file() and not (out / "model.pt").exists()
    capsys.readouterr()
    assert main(["run", str(wf), "--output", str(out)]) == 0
    err = capsys.readouterr().err
    assert "the fit goes on from its checkpoint" in err and "resumed after round 2" in err
    a, b = read_trajectories(plain / "trajectories.npz"), read_trajectories(out / "trajectories.npz")
    assert torch.equal(a.states, b.states) and torch.equal(a.times, b.times)
    ma, mb = (json.loads((p / "metrics.json").read_text()) for p in (plain, out))
    assert ma["params"] == mb["params"] and ma["sigma"] == mb["sigma"]
    _assert_same_fit(MMSB.load(plain / "model.pt"), MMSB.load(out / "model.pt"))
    # --fresh removes the checkpoint with the rest of the resume state
    with monkeypatch.context() as m:
        _interrupt_from_round(m, 0, 0)
        assert main(["run", str(wf), "--output", str(out), "--fresh"]) == 130
    assert not (out / ".done" / "fit.pt").exists()


def test_the_fit_command_resumes_an_interrupted_fit_and_fresh_starts_over(tmp_path, monkeypatch, capsys):
    data = tmp_path / "ou.npz"
    xs = _ou(n=30)
    np.savez(data, Xs=np.stack(xs), dts=np.array([0.0, 0.25, 0.5]))
    args = ["mmsb", "fit", "--data", str(data), "--reference", "linear", "--sigma", "0.1", "--noise", "additive",
            "--rounds", "2", "--paths", "20", "--n", "10", "--seed", "1"]
    assert main([*args, "--out", str(tmp_path / "plain")]) == 0
    assert not (tmp_path / "plain" / "fit_state.pt").exists()          # the model file holds the finished fit
    with monkeypatch.context() as m:
        _interrupt_from_round(m, 1, 1)
        assert main([*args, "--out", str(tmp_path / "cut")]) == 130      # "run the same command again to resume"
    assert (tmp_path / "cut" / "fit_state.pt").is_file()
    capsys.readouterr()
    assert main([*args, "--out", str(tmp_path / "cut")]) == 0
    assert "resuming the fit from" in capsys.readouterr().out
    a, b = (json.loads((tmp_path / d / "fit.json").read_text()) for d in ("plain", "cut"))
    assert a["params"] == b["params"] and b["resumed_from"] == 1
    # another fit's state is refused naming --fresh; --fresh discards it and fits from the start
    with monkeypatch.context() as m:
        _interrupt_from_round(m, 1, 1)
        assert main([*args, "--out", str(tmp_path / "cut")]) == 130      # "run the same command again to resume"
    assert main([*args[:-1], "2", "--out", str(tmp_path / "cut")]) == 2
    assert "--fresh" in capsys.readouterr().err
    assert main([*args[:-1], "2", "--out", str(tmp_path / "cut"), "--fresh"]) == 0
    assert json.loads((tmp_path / "cut" / "fit.json").read_text())["resumed_from"] is None


def test_an_interrupt_inside_the_shooting_init_or_the_calibration_resumes_inside_it(tmp_path, monkeypatch):
    """The finished starts of the shooting init and the finished evaluations of the calibration are taken from
    the checkpoint (``StageLog``), not computed again, and the fit still ends bit for bit as an uninterrupted one."""
    snaps, ck = _lv(), tmp_path / "fit.pt"
    calls = {"lbfgs": 0, "objective": 0}
    cut = {"lbfgs": None, "objective": None}          # the call that raises KeyboardInterrupt (1-based)

    def counting(module, name, key):
        real = getattr(module, name)

        def wrapped(*a, **k):
            calls[key] += 1
            if calls[key] == cut[key]:
                raise KeyboardInterrupt
            return real(*a, **k)
        monkeypatch.setattr(module, name, wrapped)
    counting(mmsb_init, "_lbfgs", "lbfgs")              # one per start's screening or refinement, and the polish
    counting(mmsb_calibrate, "_objective", "objective")  # one per evaluation of the energy objective
    plain = MMSB(**LV)
    plain.fit(snaps, seed=3, show_progress=False)
    runs, evals = calls["lbfgs"], calls["objective"]
    assert runs >= 4 and evals >= 6
    # cut inside the shooting init, after its first start was screened
    calls.update(lbfgs=0, objective=0)
    cut["lbfgs"] = 2
    with pytest.raises(KeyboardInterrupt):
        MMSB(**LV).fit(snaps, seed=3, show_progress=False, checkpoint=ck)
    saved = torch.load(ck, weights_only=True)
    assert saved["stage"] == "init" and len(saved["partial"]) == 1 and calls["objective"] == 0
    # resumed: the first start is not screened again; cut inside the calibration after 3 evaluations
    calls.update(lbfgs=0, objective=0)
    cut.update(lbfgs=None, objective=4)
    with pytest.raises(KeyboardInterrupt):
        MMSB(**LV).fit(snaps, seed=3, show_progress=False, checkpoint=ck)
    assert calls["lbfgs"] == runs - 1
    saved = torch.load(ck, weights_only=True)
    assert saved["stage"] == "calibrate" and saved["done"] == LV["rounds"] and len(saved["partial"]) == 3
    # resumed: no round, start or finished evaluation is done again
    calls.update(lbfgs=0, objective=0)
    cut["objective"] = None
    resumed = MMSB(**LV)
    counted = {"rounds": 0}
    real_em = MMSB._em_step

    def em(self, *a, **k):
        counted["rounds"] += 1
        return real_em(self, *a, **k)
    monkeypatch.setattr(MMSB, "_em_step", em)
    summary = resumed.fit(snaps, seed=3, show_progress=False, checkpoint=ck)
    assert calls == {"lbfgs": 0, "objective": evals - 3} and counted["rounds"] == 0
    assert summary["resumed_from"] == LV["rounds"]
    _assert_same_fit(plain, resumed)
    assert torch.load(ck, weights_only=True)["stage"] == "done"
