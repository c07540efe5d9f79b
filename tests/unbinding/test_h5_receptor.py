"""The HDF5 layout's optional ``receptor`` field: every receptor heavy atom of frame 0, written whenever the source
had them, read back into ``Complex.receptor_heavy``, and seen by the clash tests as for PDB inputs. Files without
it (the older layout) still read, with a one-time warning, and their clash tests see only the pocket."""
from __future__ import annotations

import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from sciflow.core.errors import InputError
from sciflow.core.fields import BATCH
from sciflow.core.training import TrainConfig
from sciflow.data.dissociation import (
    DissociationTrajectory,
    load_complex,
    paths_to_trajectories,
    read_h5,
    read_mdtraj,
    write_h5,
    write_mdtraj,
)
from sciflow.domains.molecules.complexes import CLASH_DISTANCE, Complex, ComplexTopology
from sciflow.methods.unbinding import UnbindingFlow
from sciflow.methods.unbinding.evaluate import _md_summary
from sciflow.workflows.tasks.unbinding import closest_distances

ROOT = Path(__file__).resolve().parents[2]
BLOCKERS = np.array([[0.0, 0.0, 7.0], [0.0, 0.0, -7.0]])        # on the exit route, outside the 5 Å pocket shell


def blocked_pdb(tmp_path: Path, cx: Complex, blockers: np.ndarray) -> Path:
    """The ring complex plus one receptor carbon per residue at ``blockers`` (m, 3) Å, as a PDB."""
    t, m = cx.topology, len(blockers)
    topo = ComplexTopology(list(t.elements) + ["C"] * m, list(t.atom_names) + ["CB"] * m,
                           list(t.res_names) + ["BLK"] * m, list(t.res_ids) + list(range(10, 10 + m)),
                           list(t.is_ligand) + [False] * m, "blocked")
    pos = np.concatenate([cx.positions, blockers])
    write_mdtraj(DissociationTrajectory("blocked", topo, pos[None], np.zeros(1)), tmp_path / "blocked.pdb")
    return tmp_path / "blocked.pdb"


def h5_pair(tmp_path: Path, cx: Complex, blockers: np.ndarray) -> tuple[Path, Path]:
    """The blocked complex (pocket = the ring) as .h5 with the receptor field and as the older layout without."""
    traj = read_mdtraj(blocked_pdb(tmp_path, cx, blockers), ligand="resname LIG", pocket_cutoff=5.0,
                       frame_spacing_ps=1.0)
    assert traj.topology.n_atoms == cx.topology.n_atoms               # the pocket holds the ring only
    new, old = tmp_path / "with.h5", tmp_path / "old.h5"
    write_h5(new, [traj])
    write_h5(old, [traj])
    with h5py.File(old, "r+") as f:                                   # what a writer before the field left
        f["trajectories/blocked"].pop("receptor", None)
    return new, old


def read_quietly(path: Path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_complex(path)


def test_receptor_field_round_trip(tmp_path, make_ring):
    cx = make_ring()
    pdb = blocked_pdb(tmp_path, cx, BLOCKERS)
    traj = read_mdtraj(pdb, ligand="resname LIG", pocket_cutoff=5.0, frame_spacing_ps=1.0)
    assert traj.receptor_heavy.shape == (8 + 2, 3) and list(traj.receptor_elements) == ["C"] * 10
    write_h5(tmp_path / "r.h5", [traj])
    with warnings.catch_warnings():
        warnings.simplefilter("error")                                # a file with the field does not warn
        (back,) = read_h5(tmp_path / "r.h5")
    with h5py.File(tmp_path / "r.h5", "r") as f:
        r = f["trajectories/blocked/receptor/position"]
        assert r.shape == (10, 3) and r.attrs["unit"] == "angstrom" and r.attrs["frame"] == 0
    np.testing.assert_array_equal(back.receptor_heavy.astype(np.float64), traj.receptor_heavy.astype(np.float64))
    assert list(back.receptor_elements) == list(traj.receptor_elements)
    assert back.thin(2).receptor_heavy is back.receptor_heavy
    from_h5, from_pdb = load_complex(tmp_path / "r.h5"), load_complex(pdb, pocket_cutoff=5.0)
    assert from_h5.clash_atoms().dtype == np.float64
    np.testing.assert_array_equal(from_h5.clash_atoms(), from_pdb.clash_atoms())
    for b in BLOCKERS:
        assert np.linalg.norm(from_h5.clash_atoms() - b, axis=1).min() < 1e-5
    # generated paths written back keep the receptor they were checked against
    lig = from_h5.ligand_positions
    (path,) = paths_to_trajectories(from_h5, np.stack([lig, lig + 1.0])[None], np.array([[0.0, 1.0]]))
    write_h5(tmp_path / "paths.h5", [path])
    (again,) = read_h5(tmp_path / "paths.h5")
    np.testing.assert_allclose(again.bound.clash_atoms(), from_h5.clash_atoms(), atol=1e-5)
    assert list(again.receptor_elements) == ["C"] * 10                 # and their elements, from the PDB too
    assert list(load_complex(pdb, pocket_cutoff=5.0).receptor_elements) == ["C"] * 10
    with pytest.raises(InputError, match="receptor_elements"):
        Complex(from_h5.topology, from_h5.positions, receptor_heavy=from_h5.receptor_heavy, receptor_elements=["C"])


def test_receptor_field_units_and_bad_input(tmp_path, make_ring):
    cx = make_ring()
    traj = read_mdtraj(blocked_pdb(tmp_path, cx, BLOCKERS), ligand="resname LIG", pocket_cutoff=5.0,
                       frame_spacing_ps=1.0)
    write_h5(tmp_path / "nm.h5", [traj])
    with h5py.File(tmp_path / "nm.h5", "r+") as f:                    # a foreign writer storing nm
        r = f["trajectories/blocked/receptor/position"]
        r[...] = r[()] / 10.0
        r.attrs["unit"] = "nm"
    np.testing.assert_allclose(read_h5(tmp_path / "nm.h5")[0].receptor_heavy, traj.receptor_heavy, atol=1e-5)
    with h5py.File(tmp_path / "nm.h5", "r+") as f:                    # not in frame 0's coordinates
        f["trajectories/blocked/receptor/position"].attrs["unit"] = "angstrom"
    with pytest.raises(InputError, match=r"nm\.h5.*receptor/position does not hold the pocket heavy atoms"):
        read_h5(tmp_path / "nm.h5")
    with pytest.raises(InputError, match="receptor_elements.*hydrogen"):
        DissociationTrajectory("x", traj.topology, traj.positions, traj.times, receptor_heavy=traj.receptor_heavy,
                               receptor_elements=["H"] + ["C"] * 9)
    with pytest.raises(InputError, match="receptor_heavy"):
        DissociationTrajectory("x", traj.topology, traj.positions, traj.times, receptor_heavy=np.zeros((3, 2)))


def test_old_layout_reads_with_one_warning(tmp_path, make_ring):
    cx = make_ring()
    _, old = h5_pair(tmp_path, cx, BLOCKERS)
    with pytest.warns(UserWarning, match=r"old\.h5.*no receptor heavy atoms.*Regenerate"):
        (t,) = read_h5(old)
    assert t.receptor_heavy is None and t.receptor_elements is None
    np.testing.assert_array_equal(t.bound.clash_atoms(), t.positions[0][~t.topology.is_ligand].astype(np.float64))
    with warnings.catch_warnings():
        warnings.simplefilter("error")                                # once per file
        read_h5(old)
        load_complex(old)
        # a RAMD file whose pocket is the whole receptor (pocket_cutoff None, the shipped host-guest data) has
        # nothing to miss: no warning
        ramd = DissociationTrajectory("hg", t.topology, t.positions, t.times,
                                      info={"settings": {"pocket_cutoff": None}})
        write_h5(tmp_path / "hg.h5", [ramd])
        assert read_h5(tmp_path / "hg.h5")[0].receptor_heavy is None
        assert len(read_h5(ROOT / "datasets/unbinding/train_sample.h5")) == 12


def test_clash_outside_the_pocket_is_caught_from_h5_with_the_field(tmp_path, make_ring):
    cx = make_ring()
    new, old = h5_pair(tmp_path, cx, BLOCKERS)
    with_field = load_complex(new)
    with pytest.warns(UserWarning, match="old.h5"):
        without = load_complex(old)
    lig = with_field.ligand_positions
    frames = np.stack([lig, lig + [0.0, 0.0, 6.0]])[None]             # the O atom (z 0.7 -> 6.7), 0.3 Å from a blocker
    caught = closest_distances(with_field, frames)[0]
    missed = closest_distances(without, frames)[0]
    assert caught[1] == pytest.approx(0.3, abs=1e-5) and caught[1] < CLASH_DISTANCE
    assert missed[1] > CLASH_DISTANCE                                  # the pocket alone (the ring) is far away
    # the MD clash rate against the fixed receptor (evaluate) sees the blocker too
    md = read_h5(new)[0]
    pos = np.repeat(md.positions, 2, axis=0)
    pos[1, md.topology.is_ligand] += [0.0, 0.0, 6.0]
    path = DissociationTrajectory("md", md.topology, pos, np.arange(2.0), receptor_heavy=md.receptor_heavy)
    eye, zero = torch.eye(3, dtype=torch.float64), torch.zeros(1, 3, dtype=torch.float64)
    assert _md_summary(path, eye, zero, zero, 2)["clash_rigid"]
    path.receptor_heavy = None
    assert not _md_summary(path, eye, zero, zero, 2)["clash_rigid"]


def test_generate_counts_and_avoids_receptor_atoms_from_h5(tmp_path, make_ring, make_exit, make_shell):
    cx = make_ring()
    trajs = [make_exit(cx, (0, 0, s), name=f"t{i}", dt=0.5 + 0.1 * i) for i, s in enumerate([1, -1] * 4)]
    with torch.random.fork_rng():
        torch.manual_seed(0)                                             # the network's initial weights
        model = UnbindingFlow(n_frames=4, hidden=16, n_vectors=4, n_layers=2, n_rbf=6, steps=4, batch_size=4,
                              exit_distance=11.0)
    model.fit(trajs, TrainConfig(steps=30, lr=3e-3, progress=False, ema_decay=None))
    shell = make_shell(300, 7.0)       # closed, 7 Å out, beyond the 5 Å pocket: exit paths cross it
    new, old = h5_pair(tmp_path, cx, shell)
    with_field, without = load_complex(new), read_quietly(old)
    ring, everything = without.clash_atoms(), with_field.clash_atoms()
    assert len(ring) == 8 and len(everything) == 8 + 300
    heavy = torch.as_tensor(with_field.topology.is_heavy[with_field.topology.is_ligand])

    def clashing(out, atoms) -> int:
        """Paths with a frame after the bound one whose heavy atoms come within the clash distance of atoms."""
        return sum(float(torch.cdist(out.states[1:, out.extras[BATCH] == k][:, heavy].double(),
                                     torch.as_tensor(atoms, dtype=torch.float64)).min()) < CLASH_DISTANCE
                   for k in range(out.info["n_paths"]))

    def draw(cx, **kw):
        return model.generate(cx, 6, generator=torch.Generator().manual_seed(0), **kw)

    raw, blind = draw(with_field, project=False, guidance=0.0), draw(without, project=False, guidance=0.0)
    np.testing.assert_array_equal(raw.states.numpy(), blind.states.numpy())   # unguided: the same paths
    assert raw.info["clash_atoms"] == 8 + 300 and blind.info["clash_atoms"] == 8
    assert raw.info["raw_clashing_paths"] == clashing(raw, everything)         # counted against the whole receptor
    assert blind.info["raw_clashing_paths"] == clashing(blind, ring)           # against the pocket only
    out = draw(with_field)
    assert out.info["returned_clashing_paths"] == clashing(out, everything) == 0   # guided + projected clear
    assert out.info["returned_short_paths"] == 0
    # the pocket alone: returned as clean although paths cross the shell (5-6 of 6 for initial seeds 0-7)
    missed = draw(without)
    assert missed.info["returned_clashing_paths"] == clashing(missed, ring) == 0 < clashing(missed, shell)
