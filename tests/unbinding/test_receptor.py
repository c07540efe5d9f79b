"""Clash tests see the whole receptor, not only the pocket the network is given: receptor atoms outside the
pocket shell, on the exit route, are avoided and counted."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from sciflow.core.fields import BATCH
from sciflow.core.training import TrainConfig
from sciflow.data.dissociation import DissociationTrajectory, load_complex, write_mdtraj
from sciflow.domains.molecules.complexes import CLASH_DISTANCE, Complex, ComplexTopology
from sciflow.methods.unbinding import UnbindingFlow


@pytest.fixture(scope="module")
def exits_along_z(make_ring, make_exit):
    cx = make_ring()
    trajs = [make_exit(cx, (0, 0, s), name=f"t{i}", dt=0.5 + 0.1 * i) for i, s in enumerate([1, -1] * 4)]
    model = UnbindingFlow(n_frames=4, hidden=16, n_vectors=4, n_layers=2, n_rbf=6, steps=4, batch_size=4,
                          exit_distance=11.0)
    model.fit(trajs, TrainConfig(steps=30, lr=3e-3, progress=False, ema_decay=None))
    return model, cx


def blocked_pdb(tmp_path, cx: Complex, blockers: np.ndarray):
    """The ring complex plus receptor carbons at ``blockers`` (m, 3) (one residue each), written as a PDB."""
    t = cx.topology
    m = len(blockers)
    pos = np.concatenate([cx.positions, blockers])
    topo = ComplexTopology(list(t.elements) + ["C"] * m, list(t.atom_names) + ["CB"] * m,
                           list(t.res_names) + ["BLK"] * m, list(t.res_ids) + list(range(10, 10 + m)),
                           list(t.is_ligand) + [False] * m, "blocked")
    traj = DissociationTrajectory("blocked", topo, pos[None], np.zeros(1))
    write_mdtraj(traj, tmp_path / "blocked.pdb")
    return tmp_path / "blocked.pdb"


def test_load_complex_keeps_receptor_atoms_outside_the_pocket(tmp_path, make_ring):
    cx = make_ring()
    blockers = np.array([[0.0, 0.0, 7.0], [0.0, 0.0, -7.0]])        # on the exit route, outside the 5 Å shell
    loaded = load_complex(blocked_pdb(tmp_path, cx, blockers), ligand="resname LIG", pocket_cutoff=5.0)
    assert loaded.topology.n_atoms == cx.topology.n_atoms                       # the pocket: ring + ligand
    assert loaded.receptor_heavy.shape == (cx.topology.n_atoms - 3 + 2, 3)       # ring + the two blockers
    for b in blockers:
        assert np.linalg.norm(loaded.clash_atoms() - b, axis=1).min() < 1e-3
    r = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    moved = loaded.transformed(r, np.array([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(moved.clash_atoms(), loaded.clash_atoms() @ r.T + [1.0, 2.0, 3.0])
    assert make_ring().clash_atoms().shape == (8, 3)                             # no receptor given: the pocket


def test_generated_paths_avoid_and_count_receptor_atoms_outside_the_pocket(tmp_path, exits_along_z, make_shell):
    model, cx = exits_along_z
    # a closed shell of receptor atoms 7 Å out, beyond the 5 Å pocket: every path to the 11 Å exit crosses it
    shell = make_shell(300, 7.0)
    loaded = load_complex(blocked_pdb(tmp_path, cx, shell), ligand="resname LIG", pocket_cutoff=5.0)
    assert loaded.topology.n_atoms == cx.topology.n_atoms                       # the network sees the ring only
    heavy = torch.as_tensor(loaded.topology.is_heavy[loaded.topology.is_ligand])

    def closest_to_shell(out) -> np.ndarray:
        return np.array([float(torch.cdist(out.states[:, out.extras[BATCH] == k][:, heavy].double(),
                                           torch.as_tensor(shell)).min()) for k in range(out.info["n_paths"])])

    raw = model.generate(loaded, 6, generator=torch.Generator().manual_seed(0), project=False, guidance=0.0)
    assert (closest_to_shell(raw) < CLASH_DISTANCE).all()
    assert raw.info["raw_clashing_paths"] == 6 and raw.info["returned_clashing_paths"] == 6    # counted
    out = model.generate(loaded, 6, generator=torch.Generator().manual_seed(0))
    assert (closest_to_shell(out) >= CLASH_DISTANCE - 1e-3).all()          # guidance + projection avoid the shell
    assert out.info["returned_clashing_paths"] == 0 and out.info["returned_short_paths"] == 0
    assert out.info["clash_atoms"] == 8 + 300


def test_workflow_distance_profile_sees_receptor_atoms_outside_the_pocket(tmp_path, make_ring):
    from sciflow.workflows.tasks.unbinding import closest_distances
    cx = make_ring()
    blockers = np.array([[0.0, 0.0, 7.0], [0.0, 0.0, -7.0]])
    loaded = load_complex(blocked_pdb(tmp_path, cx, blockers), ligand="resname LIG", pocket_cutoff=5.0)
    lig = loaded.positions[loaded.topology.is_ligand]
    frames = np.stack([lig, lig + [0.0, 0.0, 6.0]])[None]        # one path: bound, then moved 6 Å up z
    d = closest_distances(loaded, frames)[0]
    assert d[1] == pytest.approx(0.3, abs=1e-3)                  # the O atom (z 0.7 -> 6.7) 0.3 Å from the blocker
    heavy = loaded.topology.is_heavy[loaded.topology.is_ligand]
    assert d[0] == pytest.approx(np.linalg.norm(loaded.clash_atoms()[:, None] - lig[heavy][None], axis=-1).min())
