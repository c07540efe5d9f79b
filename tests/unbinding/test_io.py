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
    with pytest.raises(InputError, match="strictly increasing"):       # frame 0 must be the bound pose
        DissociationTrajectory("x", cx.topology, np.zeros((3, cx.topology.n_atoms, 3)), np.array([5.0, 1.0, 3.0]))
    with pytest.raises(InputError, match="topology"):
        read_mdtraj(tmp_path / "missing.pdb")


def test_h5_keeps_the_order_written(tmp_path, make_ring, make_exit):
    """Trajectories come back in the order written (not sorted by name), so 'the first' is the first written."""
    cx = make_ring()
    names = ["traj_2", "traj_10", "b", "a"]
    trajs = [make_exit(cx, direction=(1, k, 0), name=n) for k, n in enumerate(names)]
    write_h5(tmp_path / "x.h5", trajs)
    assert [t.name for t in read_h5(tmp_path / "x.h5")] == names
    np.testing.assert_allclose(load_complex(tmp_path / "x.h5").positions, trajs[0].positions[0], atol=1e-6)


def _two_chain_pdb(path):
    """Chain A: ALA 5 (near the ligand), GLY 6; chain B: ALA 5 again (far away); then the ligand."""
    import mdtraj as md
    top, xyz = md.Topology(), []
    ca, cb, cl = top.add_chain(), top.add_chain(), top.add_chain()
    for chain, name, seq, origin in ((ca, "ALA", 5, (3.0, 0, 0)), (ca, "GLY", 6, (0, 3.0, 0)),
                                     (cb, "ALA", 5, (0, 0, 40.0))):
        res = top.add_residue(name, chain, resSeq=seq)
        for k, (atom, el) in enumerate((("N", "N"), ("CA", "C"), ("O", "O"))):
            top.add_atom(atom, md.element.get_by_symbol(el), res)
            xyz.append(np.add(origin, (0, 0, 0.5 * k)))
    lig = top.add_residue("LIG", cl, resSeq=900)
    for atom, el, pos in (("C1", md.element.carbon, (0, 0, 0)), ("S1", md.element.sulfur, (-1.0, 0, 0))):
        top.add_atom(atom, el, lig)
        xyz.append(np.asarray(pos, dtype=float))
    xyz = np.asarray(xyz)
    md.Trajectory(np.stack([xyz, xyz + 0.1 * np.arange(1, 12)[:, None]]) / 10.0, top).save_pdb(str(path))
    return xyz


def test_residues_with_the_same_number_in_two_chains_stay_apart(tmp_path):
    """The pocket takes whole residues by (chain, number, name): chain B's ALA 5, 40 Å away, stays out; a PDB + DCD
    written from such a complex reads back with every coordinate on its own atom."""
    _two_chain_pdb(tmp_path / "c.pdb")
    near = read_mdtraj(tmp_path / "c.pdb", pocket_cutoff=8.0, frame_spacing_ps=1.0)
    assert near.topology.n_atoms == 2 + 6 and near.positions[:, :, 2].max() < 2.0
    full = read_mdtraj(tmp_path / "c.pdb", pocket_cutoff=100.0, frame_spacing_ps=1.0)
    assert full.topology.n_atoms == 11 and len(set(full.topology.chains)) == 3
    write_mdtraj(full, tmp_path / "o.pdb", tmp_path / "o.dcd")
    back = read_mdtraj(tmp_path / "o.pdb", tmp_path / "o.dcd", pocket_cutoff=100.0, frame_spacing_ps=1.0)
    for key in ("elements", "atom_names", "res_names", "res_ids", "chains"):
        assert getattr(back.topology, key).tolist() == getattr(full.topology, key).tolist(), key
    np.testing.assert_allclose(back.positions, full.positions, atol=2e-3)
    assert read_mdtraj(tmp_path / "o.pdb", tmp_path / "o.dcd", pocket_cutoff=8.0,
                       frame_spacing_ps=1.0).topology.n_atoms == 8


def test_frame_times_come_from_the_file_or_the_user(tmp_path, make_ring, make_exit):
    """DCD and multi-model PDB frames carry no time (mdtraj numbers them 0, 1, 2, ...): without frame_spacing_ps the
    reader refuses instead of taking frame numbers for picoseconds; XTC frames keep their recorded times."""
    cx = make_ring()
    t = make_exit(cx, n_frames=5, dt=0.2)
    write_mdtraj(t, tmp_path / "p.pdb", tmp_path / "p.dcd")
    write_mdtraj(t, tmp_path / "x.pdb", tmp_path / "x.xtc")
    write_mdtraj(t, tmp_path / "multi.pdb")
    for args in ((tmp_path / "p.pdb", tmp_path / "p.dcd"), (tmp_path / "multi.pdb",)):
        with pytest.raises(InputError, match="frame_spacing_ps"):
            read_mdtraj(*args, pocket_cutoff=6.0)
        np.testing.assert_allclose(read_mdtraj(*args, pocket_cutoff=6.0, frame_spacing_ps=0.2).times,
                                   t.times, atol=1e-9)
    np.testing.assert_allclose(read_mdtraj(tmp_path / "x.pdb", tmp_path / "x.xtc", pocket_cutoff=6.0).times,
                               t.times, atol=1e-4)
    assert read_mdtraj(tmp_path / "p.pdb", pocket_cutoff=6.0).times.tolist() == [0.0]     # one frame: the pose
    with pytest.raises(InputError, match="frame_spacing_ps"):
        read_mdtraj(tmp_path / "p.pdb", tmp_path / "p.dcd", pocket_cutoff=6.0, frame_spacing_ps=0.0)
    # a complex is only its first frame: a multi-model PDB loads without a spacing
    c = load_complex(tmp_path / "multi.pdb", pocket_cutoff=6.0)
    np.testing.assert_allclose(c.ligand_positions, t.positions[0, cx.topology.is_ligand], atol=2e-3)


def test_h5_names_units_and_empty_files(tmp_path, make_ring, make_exit):
    import h5py
    cx = make_ring()
    with pytest.raises(InputError, match="'/'"):              # would become nested groups no reader finds
        write_h5(tmp_path / "n.h5", [make_exit(cx, name="run/1")])
    t = make_exit(cx, n_frames=3)
    t.energy = np.array([0.0, 4.184, 8.368])
    write_h5(tmp_path / "u.h5", [t])
    with h5py.File(tmp_path / "u.h5", "r+") as f:             # the same frames stored in nm, ns and kJ/mol
        g = f["trajectories/t0"]
        v = g["particles/all/position/value"]
        v[...] = v[()] / 10.0
        v.attrs["unit"] = "nm"
        tm = g["particles/all/position/time"]
        tm[...] = tm[()] / 1000.0
        tm.attrs["unit"] = "ns"
        g["observables/potential_energy/value"].attrs["unit"] = "kJ/mol"
    back = read_h5(tmp_path / "u.h5")[0]
    np.testing.assert_allclose(back.positions, t.positions, atol=1e-5)
    np.testing.assert_allclose(back.times, t.times, atol=1e-9)
    np.testing.assert_allclose(back.energy, [0.0, 1.0, 2.0])
    with h5py.File(tmp_path / "u.h5", "r+") as f:
        f["trajectories/t0/particles/all/position/value"].attrs["unit"] = "furlong"
    with pytest.raises(InputError, match="position unit.*furlong"):
        read_h5(tmp_path / "u.h5")
    write_h5(tmp_path / "empty.h5", [])
    with pytest.raises(InputError, match="no trajectory"):
        load_complex(tmp_path / "empty.h5")


def test_non_finite_coordinates_are_named_not_called_an_empty_pocket(make_ring):
    from sciflow.domains.molecules.complexes import pocket_indices
    cx = make_ring()
    pos = cx.positions.copy()
    k = int(cx.topology.ligand_index[1])
    pos[k, 0] = np.nan
    with pytest.raises(InputError, match=rf"non-finite.*atoms \[{k}\]"):
        pocket_indices(cx.topology, pos, 8.0)


def test_workflow_refuses_two_complexes_with_one_name(tmp_path, make_ring, make_exit):
    from sciflow.workflows.tasks.unbinding import _inputs
    cx = make_ring()
    t = make_exit(cx, n_frames=2)
    write_mdtraj(t, tmp_path / "X.pdb")
    write_h5(tmp_path / "X.h5", [t])
    with pytest.raises(InputError, match=r"^complexes: .*\['X'\]"):
        _inputs(str(tmp_path))
    (tmp_path / "X.h5").rename(tmp_path / "Y.h5")
    assert [f.name for f in _inputs(str(tmp_path))] == ["X.pdb", "Y.h5"]


def _solvated_pdb(path):
    """A one-residue receptor, a ligand, a water and a sodium ion near the ligand."""
    def atom(i, name, res, rid, ch, x, y, z, el, het=False):
        rec = "HETATM" if het else "ATOM  "
        return f"{rec}{i:5d} {name:<4s} {res:>3s} {ch}{rid:4d}    {x:8.3f}{y:8.3f}{z:8.3f}  1.00  0.00          {el:>2s}"
    rows = [atom(1, "N", "ALA", 1, "A", 0, 0, 0, "N"), atom(2, "CA", "ALA", 1, "A", 1.5, 0, 0, "C"),
            atom(3, "C", "ALA", 1, "A", 2.0, 1.4, 0, "C"),
            atom(4, "C1", "LIG", 2, "B", 1.0, 0.5, 4.0, "C", True), atom(5, "O1", "LIG", 2, "B", 2.2, 0.5, 4.3, "O", True),
            atom(6, "H1", "LIG", 2, "B", 0.5, 1.4, 4.2, "H", True),
            atom(7, "O", "HOH", 3, "C", 1.0, 3.0, 5.0, "O", True), atom(8, "H1", "HOH", 3, "C", 1.5, 3.5, 5.5, "H", True),
            atom(9, "H2", "HOH", 3, "C", 0.4, 3.5, 4.5, "H", True), atom(10, "NA", "NA", 4, "C", 3.5, -1.0, 4.0, "Na", True)]
    path.write_text("\n".join(rows) + "\nEND\n")
    return path


def test_water_and_ions_are_no_pocket_atoms_and_ligand_selections_take_whole_residues(tmp_path):
    """Water and ions near the ligand became fixed pocket atoms (they move in explicit-solvent MD and shifted the
    pocket frame); a selection that split a residue left ligand atoms in the receptor or moved protein atoms."""
    from sciflow.data.dissociation import read_mdtraj
    pdb = _solvated_pdb(tmp_path / "w.pdb")
    t = read_mdtraj(pdb, ligand="resname LIG", pocket_cutoff=8.0, frame_spacing_ps=1.0)
    assert sorted(set(t.topology.res_names[~t.topology.is_ligand].tolist())) == ["ALA"]
    assert t.topology.atom_names[t.topology.is_ligand].tolist() == ["C1", "O1", "H1"]
    for sel in ("resname LIG and not element H", "resname LIG or name CA"):
        with pytest.raises(InputError, match=r"ligand: selection .* covers only part of residue"):
            read_mdtraj(pdb, ligand=sel, pocket_cutoff=8.0, frame_spacing_ps=1.0)
