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


@pytest.mark.skipif(not MODEL.is_file(), reason="shipped weights not present")
def test_shipped_model_itself_moves_the_ligand_out():
    """Clash projection and enforce_exit make every returned path clash-free and outside whatever the network says;
    the network's own paths (no guidance, no projection) must carry the ligand most of the way out. Measured on
    cb7-b2 (exit 12 Å), seeds 0 and 1: median centre-of-mass shift 10.9 and 10.7 Å; with the network's
    displacement zeroed (the prior alone) 2.0 Å. With the default settings raw_short_paths is 8 of 8 here: the
    network's paths stop short of 12 Å and enforce_exit does the last Å or two."""
    from sciflow.core.fields import BATCH
    from sciflow.methods.unbinding import UnbindingFlow
    cx = load_complex(ROOT / "datasets/unbinding/complexes/cb7-b2.pdb", ligand="resname LIG")
    model = UnbindingFlow.load(ROOT / "models/unbinding")
    out = model.generate(cx, 8, generator=torch.Generator().manual_seed(0), project=False, guidance=0.0)
    assert out.info["returned_clashing_paths"] == out.info["raw_clashing_paths"]          # nothing was projected
    m = torch.as_tensor(cx.topology.masses[cx.topology.is_ligand])
    shift = [float(((out.states[-1, out.extras[BATCH] == k].double() * m[:, None]).sum(0) / m.sum()
                    - torch.as_tensor(cx.ligand_com())).norm()) for k in range(8)]
    assert np.median(shift) > 0.6 * out.info["exit_distance"], shift


@pytest.mark.skipif(not MODEL.is_file(), reason="shipped weights not present")
def test_shipped_workflow_runs_end_to_end(tmp_path):
    """workflows/unbinding.yaml as shipped (model, ligand selection, pocket cutoff, formats), shrunk to one complex
    and two paths: PDB and DCD open in mdtraj with the complex's topology, the PNG is written, no clashes."""
    import shutil

    import mdtraj as md
    import yaml

    from sciflow.workflows import run_workflow
    wf = yaml.safe_load((ROOT / "workflows/unbinding.yaml").read_text())
    cdir = tmp_path / "complexes"
    cdir.mkdir()
    shutil.copy(ROOT / wf["unbinding"]["complexes"] / "cb7-b2.pdb", cdir / "cb7-b2.pdb")
    wf["unbinding"].update(model=str(ROOT / wf["unbinding"]["model"]), complexes=str(cdir), n_paths=2)
    wf.update(output=str(tmp_path / "out"), device="cpu")
    summary = run_workflow(wf)
    assert summary["complexes"] == 1 and summary["paths"] == 2 and summary["returned_clashing_paths"] == 0
    assert summary["returned_short_paths"] == 0
    out = tmp_path / "out/cb7-b2"
    n_atoms = md.load(str(cdir / "cb7-b2.pdb")).n_atoms
    for k in range(2):
        d = md.load(str(out / f"path_{k:03d}.dcd"), top=str(out / "topology.pdb"))
        p = md.load(str(out / f"path_{k:03d}.pdb"))
        assert d.n_atoms == p.n_atoms == n_atoms
        assert d.n_frames == p.n_frames >= 2
    assert (out / "paths.png").stat().st_size > 1000
