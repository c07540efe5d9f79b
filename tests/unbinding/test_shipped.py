"""The shipped weights, data and workflow: load, generate for a shipped complex, read the shipped held-out set."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from sciflow.data.dissociation import load_complex, read_h5
from sciflow.workflows import validate_workflow

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "models/unbinding/model.pt"


def test_workflow_file_validates():
    wf = validate_workflow(ROOT / "workflows/unbinding.yaml")
    assert wf.task.name == "unbinding" and wf.config.n_paths == 8


def test_shipped_heldout_set_reads():
    trajs = read_h5(ROOT / "datasets/unbinding/heldout.h5")
    names = {t.complex_name for t in trajs}
    assert names == {"cb7-b2", "benzene-toluene", "cb7-viologen"}
    for t in trajs[:5]:
        assert t.n_frames >= 2 and np.all(np.diff(t.times) > 0)
        assert t.info["stats"]["exited"]


@pytest.mark.skipif(not MODEL.is_file(), reason="shipped weights not present")
def test_shipped_model_generates_clash_free_paths():
    from sciflow.methods.unbinding import UnbindingFlow
    cx = load_complex(ROOT / "datasets/unbinding/complexes/cb7-b2.pdb", ligand="resname LIG")
    model = UnbindingFlow.load(ROOT / "models/unbinding")
    out = model.generate(cx, 4, generator=torch.Generator().manual_seed(0))
    assert out.info["returned_clashing_paths"] == 0
    assert out.states.shape == (model.n_frames + 1, 4 * int(cx.topology.is_ligand.sum()), 3)
    assert bool(torch.isfinite(out.states).all())
