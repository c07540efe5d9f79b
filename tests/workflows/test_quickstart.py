"""The quickstart workflow end to end (shrunk): train, generate, export, plot, resume."""
from pathlib import Path

import torch
import yaml

from sciflow.cli import main
from sciflow.io import read_trajectory

ROOT = Path(__file__).resolve().parents[2]


def shrunk(tmp_path):
    data = yaml.safe_load((ROOT / "workflows" / "quickstart.yaml").read_text())
    data["output"] = str(tmp_path / "out")
    flow = data["flow"]
    flow["data"]["n"] = 2000
    flow["model"]["hidden"] = [64, 64]
    flow["train"].update(steps=2000, batch_size=256, warmup_steps=50)
    flow["generate"].update(n=300, conditions=[1.0, 2.0])
    p = tmp_path / "quickstart.yaml"
    p.write_text(yaml.safe_dump(data))
    return p, Path(data["output"])


def test_quickstart_trains_generates_exports_and_resumes(tmp_path, capsys):
    wf, out = shrunk(tmp_path)
    assert main(["run", str(wf)]) in (0, None)
    summary = yaml.safe_load((out / "summary.json").read_text())
    for key in ("pitch_1", "pitch_2"):
        m = summary["metrics"][key]
        # a trained flow lands far closer to the target than its Gaussian prior does
        assert m["w2_generated"] < 0.5 * m["w2_prior"], m
        xyz = read_trajectory(out / "samples" / f"{key}.xyz")
        npz = read_trajectory(out / "samples" / f"{key}.npz")
        pdb = read_trajectory(out / "samples" / f"{key}.pdb")
        assert npz.states.shape[1:] == (300, 3)
        assert torch.allclose(xyz.states, npz.states.float(), atol=1e-4)
        assert torch.allclose(pdb.states, npz.states.float(), atol=2e-3)  # PDB keeps 3 decimals
    assert (out / "quickstart.png").stat().st_size > 10_000
    assert (out / "resolved_config.yaml").is_file() and (out / "run.json").is_file()
    # a second run finds every item done and does not train again
    stamp = (out / "model.pt").stat().st_mtime_ns
    capsys.readouterr()
    assert main(["run", str(wf)]) in (0, None)
    assert (out / "model.pt").stat().st_mtime_ns == stamp
    said = capsys.readouterr()
    assert "done in an earlier run" in said.err + said.out
