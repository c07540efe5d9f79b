"""Reader / writer round trips (HDF5, PDB + DCD, multi-model PDB) and bad input."""
from __future__ import annotations

import numpy as np
import pytest

from sciflow.core.errors import InputError
from sciflow.data.dissociation import (
    DissociationTrajectory,
    load_complex,
    read_dataset,
    read_h5,
    read_mdtraj,
    write_h5,
    write_mdtraj,
)


def test_h5_round_trip(tmp_path, make_ring, make_exit):
    cx = make_ring()
    a = make_exit(cx, name="a")
    b = make_exit(cx, direction=(1, 0, 0), name="b", n_frames=5)
    b.energy = np.linspace(-10, 0, 5)
    write_h5(tmp_path / "x.h5", [a, b])
    back = {t.name: t for t in read_h5(tmp_path / "x.h5")}
    assert set(back) == {"a", "b"}
    for t in (a, b):
        r = back[t.name]
        np.testing.assert_allclose(r.positions, t.positions, atol=1e-6)
        np.testing.assert_allclose(r.times, t.times)
        assert list(r.topology.elements) == list(t.topology.elements)
        assert list(r.topology.res_names) == list(t.topology.res_names)
        np.testing.assert_array_equal(r.topology.is_ligand, t.topology.is_ligand)
        assert r.info == t.info and r.complex_name == "ring"
    np.testing.assert_allclose(back["b"].energy, b.energy)
    assert back["a"].energy is None
    assert len(read_dataset(tmp_path)) == 2                       # a folder reads every .h5 below it
    assert read_h5(tmp_path / "x.h5", complexes=["other"]) == []


def test_thin_keeps_the_bound_pose_every_kth_frame_and_the_exit(make_ring, make_exit):
    cx = make_ring()
    t = make_exit(cx, n_frames=8)
    t.energy = np.arange(8.0)
    th = t.thin(3)
    np.testing.assert_array_equal(th.times, t.times[[0, 3, 6, 7]])
    np.testing.assert_array_equal(th.positions, t.positions[[0, 3, 6, 7]])
    np.testing.assert_array_equal(th.energy, [0.0, 3.0, 6.0, 7.0])
    assert th.name == t.name and th.info == t.info
    np.testing.assert_array_equal(t.thin(1).positions, t.positions)
    assert t.thin(100).n_frames == 2                               # bound pose and exit frame
    with pytest.raises(InputError, match="every"):
        t.thin(0)


def test_h5_rejects_duplicates_and_foreign_files(tmp_path, make_ring, make_exit):
    cx = make_ring()
    with pytest.raises(InputError, match="unique"):
        write_h5(tmp_path / "d.h5", [make_exit(cx), make_exit(cx)])
    import h5py
    with h5py.File(tmp_path / "foreign.h5", "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(InputError, match="format"):
        read_h5(tmp_path / "foreign.h5")


def test_pdb_dcd_export_opens_in_mdtraj(tmp_path, make_ring, make_exit):
    import mdtraj as md
    cx = make_ring()
    t = make_exit(cx, n_frames=7)
    pdb, dcd = write_mdtraj(t, tmp_path / "p.pdb", tmp_path / "p.dcd")
    m = md.load(str(dcd), top=str(pdb))
    assert m.n_frames == 7 and m.n_atoms == cx.topology.n_atoms
    assert [r.name for r in m.topology.residues] == ["RNG", "LIG"]
    assert m.topology.select("resname LIG").size == 3
    # receptor first, ligand second; coordinates in nm
    lig = m.xyz[:, m.topology.select("resname LIG")] * 10
    np.testing.assert_allclose(lig, t.positions[:, cx.topology.is_ligand], atol=2e-3)
    multi = write_mdtraj(t, tmp_path / "multi.pdb")[0]
    assert md.load(str(multi)).n_frames == 7


def test_read_mdtraj_round_trip_and_pocket(tmp_path, make_ring, make_exit):
    cx = make_ring()
    t = make_exit(cx, n_frames=4)
    write_mdtraj(t, tmp_path / "p.pdb", tmp_path / "p.dcd")
    back = read_mdtraj(tmp_path / "p.pdb", tmp_path / "p.dcd", ligand="resname LIG", pocket_cutoff=6.0,
                       frame_spacing_ps=0.5)
    assert back.n_frames == 4 and back.topology.is_ligand.sum() == 3
    lig = back.positions[:, back.topology.is_ligand]
    np.testing.assert_allclose(lig, t.positions[:, cx.topology.is_ligand], atol=2e-3)
    np.testing.assert_allclose(back.times, np.arange(4) * 0.5)
    c = load_complex(tmp_path / "p.pdb", ligand="resname LIG", pocket_cutoff=6.0)
    assert c.topology.n_atoms == cx.topology.n_atoms


def test_bad_input_rejected(tmp_path, make_ring, make_exit):
    cx = make_ring()
    t = make_exit(cx, n_frames=3)
    write_mdtraj(t, tmp_path / "p.pdb")
    with pytest.raises(InputError, match="ligand"):
        read_mdtraj(tmp_path / "p.pdb", ligand="resname XYZ")
    with pytest.raises(InputError, match="empty pocket"):
        read_mdtraj(tmp_path / "p.pdb", ligand="resname LIG", pocket_cutoff=0.5)
    with pytest.raises(InputError, match="positions"):       # topology and coordinates disagree
        DissociationTrajectory("x", cx.topology, np.zeros((2, cx.topology.n_atoms + 1, 3)), np.arange(2.0))
    with pytest.raises(InputError, match="times"):
        DissociationTrajectory("x", cx.topology, np.zeros((2, cx.topology.n_atoms, 3)), np.arange(3.0))
    with pytest.raises(InputError, match="topology"):
        read_mdtraj(tmp_path / "missing.pdb")
