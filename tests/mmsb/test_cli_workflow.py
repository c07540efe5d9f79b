"""End to end: ``sciflow mmsb simulate`` + ``sciflow mmsb evaluate`` on a tiny problem, and the shipped
workflow (shrunk) on the shipped fitted model: files, metrics, save/load round trip."""
import json
from pathlib import Path

import numpy as np
import torch
import yaml

from sciflow.cli import main
from sciflow.methods.mmsb import MMSB
from sciflow.methods.mmsb.export import read_trajectories

ROOT = Path(__file__).resolve().parents[2]


def test_simulate_then_evaluate_writes_metrics(tmp_path):
    data = tmp_path / "ou.npz"
    assert main(["mmsb", "simulate", "--reference", "linear",
                 "--params", '{"A": [[-0.5, 1.0], [-1.0, -0.5]], "b": [0, 0]}',
                 "--box", "1,-0.5", "2,0.5", "--sigma", "0.1", "--noise", "additive", "--times", "0,0.5,1,1.5,2",
                 "--n", "80", "--out", str(data)]) == 0
    z = np.load(data)
    assert z["Xs"].shape == (5, 80, 2) and z["dts"].tolist() == [0.0, 0.5, 1.0, 1.5, 2.0]
    out = tmp_path / "metrics.json"
    assert main(["mmsb", "evaluate", "--data", str(data), "--reference", "linear", "--sigma", "0.1", "--noise",
                 "additive", "--rounds", "2", "--paths", "100", "--particles", "80", "--seeds", "2",
                 "--out", str(out)]) == 0
    m = json.loads(out.read_text())
    for key in ("emd_mean", "emd_std", "seconds", "w1_mean", "emd_per_seed"):
        assert key in m
    assert m["heldout_times"] == [0.5, 1.5] and len(m["emd_per_seed"]) == 2
    # a fitted reference lands far closer to the held-out populations than the first snapshot does
    spread = float(np.mean([np.linalg.norm(z["Xs"][k].mean(0) - z["Xs"][0].mean(0)) for k in (1, 3)]))
    assert m["emd_mean"] < 0.5 * spread, (m["emd_mean"], spread)
    # bad input is refused with the field named, before any fit
    assert main(["mmsb", "evaluate", "--data", str(tmp_path / "none.npz"), "--out", str(out)]) == 2


def test_shipped_workflow_runs_on_the_shipped_model(tmp_path):
    cfg = yaml.safe_load((ROOT / "workflows" / "mmsb.yaml").read_text())
    cfg["output"] = str(tmp_path / "out")
    cfg["mmsb"]["data"]["path"] = str(ROOT / cfg["mmsb"]["data"]["path"])
    cfg["mmsb"]["weights"] = str(ROOT / cfg["mmsb"]["weights"])
    cfg["mmsb"]["output"].update(n_trajectories=40, n_predict=150, predict_times=[1.0, 12.0],
                                     predict_dt=0.01)
    wf = tmp_path / "mmsb.yaml"
    wf.write_text(yaml.safe_dump(cfg))
    assert main(["run", str(wf)]) == 0
    out = tmp_path / "out"
    metrics = json.loads((out / "metrics.json").read_text())
    p = metrics["params"]   # the simulator's rates: alpha 1.0, beta 0.4, gamma 0.4, delta 0.1
    for name, truth in {"alpha": 1.0, "beta": 0.4, "gamma": 0.4, "delta": 0.1}.items():
        assert abs(p[name] - truth) < 0.1 * truth, (name, p[name])
    assert metrics["heldout_w2_mean"] < 0.25, metrics["heldout_w2"]
    npz, csv = read_trajectories(out / "trajectories.npz"), read_trajectories(out / "trajectories.csv")
    assert npz.states.shape[1:] == (40, 2)
    torch.testing.assert_close(npz.states, csv.states, rtol=1e-8, atol=1e-8)
    # the paths pass through the training snapshots at their times
    model = MMSB.load(ROOT / "models" / "mmsb" / "lv.pt")
    rows = npz.extras["snapshot_rows"]
    for k, t in enumerate(model.snapshots.times.tolist()):
        i = int(torch.argmin((npz.times - t).abs()))
        torch.testing.assert_close(npz.states[i], model.snapshots.samples[k][rows[:, k]])
    pred = read_trajectories(out / "predictions.npz")
    assert pred.times.tolist() == [1.0, 12.0] and pred.states.shape[1:] == (150, 2)
    assert (out / "mmsb.png").stat().st_size > 20_000
    # run again: the finished outputs are kept, not made again; a deleted one is made again
    stamp = (out / "trajectories.npz").stat().st_mtime_ns
    assert main(["run", str(wf)]) == 0
    assert (out / "trajectories.npz").stat().st_mtime_ns == stamp
    (out / "mmsb.png").unlink()
    assert main(["run", str(wf)]) == 0
    assert (out / "mmsb.png").is_file() and json.loads((out / "metrics.json").read_text())["params"] == p


def test_cli_refuses_bad_json_and_numbers_before_any_work(tmp_path, capsys):
    for argv, msg in (
            (["simulate", "--reference", "linear", "--params", "[1, 2]", "--box", "0,0", "1,1", "--out", "a.npz"],
             "--params: expected a JSON object"),
            (["simulate", "--reference", "linear", "--box", "a,b", "1,1", "--out", "a.npz"],
             "--box: expected comma-separated numbers"),
            (["simulate", "--reference", "linear", "--box", "0,0", "1,1", "--times", "0,x", "--out", "a.npz"],
             "--times: expected comma-separated numbers"),
            (["fit", "--data", str(ROOT / "models" / "mmsb" / "nothing.npz"), "--reference", "linear",
              "--reference-kwargs", "[1]", "--out", str(tmp_path / "fit")], "--reference-kwargs: expected a JSON"),
            (["fit", "--data", str(ROOT / "models" / "mmsb" / "nothing.npz"), "--reference", "linear",
              "--sigma", "-1", "--out", str(tmp_path / "fit")], "sigma: must be > 0")):
        assert main(["mmsb", *argv]) == 2
        assert msg in capsys.readouterr().err
    assert not (tmp_path / "fit").exists()                  # no empty output folder left behind


def test_vanilla_sb_workflow_predicts_with_its_bridge_drift(tmp_path):
    """The zero reference has no drift of its own: the workflow predicted by spreading the first snapshot."""
    rng = np.random.default_rng(0)
    xs = np.stack([rng.normal(size=(40, 2)) * 0.2 + [2.0 * k, 0.0] for k in range(5)])
    np.savez(tmp_path / "d.npz", Xs=xs, dts=np.arange(5.0))
    cfg = {"version": 1, "task": "mmsb", "seed": 0, "device": "cpu", "output": str(tmp_path / "out"),
           "mmsb": {"data": {"path": str(tmp_path / "d.npz"), "heldout": True},
                    "model": {"reference": "zero", "sigma": 0.1, "noise": "additive", "n_paths": 40},
                    "output": {"n_trajectories": 5, "n_predict": 40, "formats": ["npz"],
                               "predict_times": [1.0, 9.0]}}}
    wf = tmp_path / "w.yaml"
    wf.write_text(yaml.safe_dump(cfg))
    assert main(["run", str(wf)]) == 2                       # t = 9 lies past the last training snapshot (t = 4)
    cfg["mmsb"]["output"]["predict_times"] = [1.0, 3.0]
    wf.write_text(yaml.safe_dump(cfg))
    assert main(["run", str(wf), "--fresh"]) == 0
    m = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert m["heldout_w2"]["1"] < 1.0 and m["heldout_w2"]["3"] < 1.0      # the first snapshot is 2 and 6 away
    pred = read_trajectories(tmp_path / "out" / "predictions.npz")
    assert abs(float(pred.states[0, :, 0].mean()) - 2.0) < 0.6
