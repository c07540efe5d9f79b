"""Audit fixes of the dissociation HDF5 / PDB readers and writers and of the RAMD replica records: exact round
trips (residue identity, ``info`` numbers), clear errors naming file, trajectory and dataset, exact complex
names, refused NaN energies, and damaged replica records redone on resume."""
from __future__ import annotations

import json
import re
import warnings

import numpy as np
import pytest

from sciflow.core.errors import InputError
from sciflow.data.dissociation import (
    DissociationTrajectory,
    read_h5,
    read_mdtraj,
    to_mdtraj,
    write_h5,
    write_mdtraj,
)


def _pdb_line(i, name, res, chain, seq, icode, x, y, z, el, het=False):
    rec = "HETATM" if het else "ATOM  "
    return (f"{rec}{i:5d} {name:<4s} {res:>3s} {chain}{seq:4d}{icode}   {x:8.3f}{y:8.3f}{z:8.3f}  1.00  0.00"
            f"          {el:>2s}")


def _insertion_pdb(path):
    """GLY 51 and GLY 51A (an insertion code) next to a 3-atom ligand."""
    lines, k = [], 1
    for icode, off in ((" ", 0.0), ("A", 3.8)):
        for name, el, dx in (("N", "N", 0.0), ("CA", "C", 1.45), ("C", "C", 2.4), ("O", "O", 3.0)):
            lines.append(_pdb_line(k, name, "GLY", "A", 51, icode, dx + off, 0.0, 0.0, el))
            k += 1
    for name, el, dx in (("C1", "C", 0.0), ("C2", "C", 1.5), ("O1", "O", 2.9)):
        lines.append(_pdb_line(k, name, "LIG", "B", 1, " ", dx, 3.5, 0.0, el, het=True))
        k += 1
    path.write_text("\n".join(lines) + "\nEND\n")
    return path


@pytest.fixture
def ins(tmp_path):
    return read_mdtraj(_insertion_pdb(tmp_path / "ins.pdb"), name="ins")


def _n_residues(t):
    return len(set(t.topology.residue_keys()))


def test_h5_round_trip_keeps_res_index_of_insertion_code_residues(tmp_path, ins):
    assert _n_residues(ins) == 3                                   # GLY 51, GLY 51A, LIG
    write_h5(tmp_path / "ins.h5", [ins])
    (back,) = read_h5(tmp_path / "ins.h5")
    np.testing.assert_array_equal(back.topology.res_index, ins.topology.res_index)
    assert to_mdtraj(back.topology, back.positions)[0].topology.n_residues == 3
    # a file written before res_index was stored reads as before (-1: unknown)
    import h5py
    with h5py.File(tmp_path / "ins.h5", "a") as f:
        del f["trajectories/ins/topology/res_index"]
    (old,) = read_h5(tmp_path / "ins.h5")
    assert (old.topology.res_index == -1).all()


def test_pdb_export_keeps_insertion_code_residues_apart(tmp_path, ins):
    for frames in (None, tmp_path / "ins.dcd"):
        pdb, _ = write_mdtraj(ins, tmp_path / "out.pdb", frames)
        back = read_mdtraj(pdb, frames, name="ins", frame_spacing_ps=1.0)
        assert back.n_frames == ins.n_frames and _n_residues(back) == 3
        gly = ~back.topology.is_ligand
        assert len(set(back.topology.res_index[gly].tolist())) == 2


def _damaged(tmp_path, ins, name, change):
    import h5py
    p = tmp_path / name
    write_h5(p, [ins])
    with h5py.File(p, "a") as f:
        change(f["trajectories/ins"])
    return p


def _replace(key, value):
    def change(g):
        del g[key]
        g[key] = value
    return change


@pytest.mark.parametrize("change, what", [
    (lambda g: g.__delitem__("topology"), "group topology is missing"),
    (lambda g: g.__delitem__("topology/res_id"), "dataset topology/res_id is missing"),
    (lambda g: g.__delitem__("particles/all/position/time"), "dataset particles/all/position/time is missing"),
    (lambda g: g.attrs.__setitem__("info", "{bad"), "attribute info is not valid JSON"),
    (_replace("particles/all/position/time", np.array([0.0, 1.0])), r"particles/all/position/time has shape \(2,\)"),
    (_replace("topology/element", np.array([b"N"] * 7)), r"topology/atom_name has shape \(11,\), expected \(7,\)"),
    (_replace("topology/is_ligand", np.array([0, 0, 0, 0, 0, 0, 0, 0, 2, 3, 1])), "topology/is_ligand holds"),
    (_replace("topology/res_id", np.array([b"x"] * 11)), "topology/res_id has dtype"),
    (lambda g: g.create_dataset("observables/potential_energy/value", data=np.array([np.nan])),
     "observables/potential_energy/value holds non-finite"),
])
def test_read_h5_names_file_trajectory_and_dataset(tmp_path, ins, change, what):
    p = _damaged(tmp_path, ins, "bad.h5", change)
    with pytest.raises(InputError, match=f"{re.escape(str(p))}.*trajectory 'ins'.*{what}"):
        read_h5(p)


def test_read_h5_names_a_truncated_or_foreign_file(tmp_path, ins):
    p = tmp_path / "ins.h5"
    write_h5(p, [ins])
    raw = p.read_bytes()
    for name, data in (("cut.h5", raw[: len(raw) // 2]), ("text.h5", b"not hdf5 at all\n")):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(InputError, match=re.escape(str(tmp_path / name))):
            read_h5(tmp_path / name)


def test_complexes_match_exact_names_and_a_single_string(tmp_path, ins):
    other = DissociationTrajectory("x2", type(ins.topology)(**{**ins.topology.to_dict(), "name": "ins_long"}),
                                   ins.positions, ins.times, receptor_heavy=ins.receptor_heavy,
                                   receptor_elements=ins.receptor_elements)
    write_h5(tmp_path / "two.h5", [ins, other])
    assert [t.name for t in read_h5(tmp_path / "two.h5", complexes="ins_long")] == ["x2"]
    assert [t.name for t in read_h5(tmp_path / "two.h5", complexes="ins_longer")] == []
    assert [t.name for t in read_h5(tmp_path / "two.h5", complexes="ins")] == ["ins"]
    assert [t.name for t in read_h5(tmp_path / "two.h5", complexes=["ins", "ins_long"])] == ["ins", "x2"]
    with pytest.raises(InputError, match="complexes"):
        read_h5(tmp_path / "two.h5", complexes=[1])


def test_nan_energy_refused_and_numpy_info_round_trips(tmp_path, ins):
    with pytest.raises(InputError, match="energy: .*non-finite"):
        DissociationTrajectory("e", ins.topology, ins.positions, ins.times, np.array([np.nan]))
    info = {"a": np.float32(1.5), "b": (1, 2), "c": np.arange(3), "d": {"e": np.int64(7), "f": [np.float64(0.25)]},
            "g": None, "h": "text"}
    t = DissociationTrajectory("y", ins.topology, ins.positions, ins.times, info=info,
                               receptor_heavy=ins.receptor_heavy, receptor_elements=ins.receptor_elements)
    write_h5(tmp_path / "info.h5", [t])
    (back,) = read_h5(tmp_path / "info.h5")
    assert back.info == {"a": 1.5, "b": [1, 2], "c": [0, 1, 2], "d": {"e": 7, "f": [0.25]}, "g": None, "h": "text"}
    assert isinstance(back.info["a"], float) and isinstance(back.info["d"]["e"], int)


def test_damaged_ramd_record_is_named_and_redone_on_resume(tmp_path, monkeypatch):
    from sciflow.data import ramd
    from sciflow.domains.molecules.complexes import ComplexTopology

    (tmp_path / "x.prmtop").write_text("x")
    (tmp_path / "x.crd").write_text("x")
    src = ramd.ComplexSource("cx", str(tmp_path / "x.prmtop"), str(tmp_path / "x.crd"), "LIG")
    top = ComplexTopology(["C", "C", "O"], ["C1", "C2", "O"], ["LIG", "REC", "REC"], [1, 2, 2],
                          [True, False, False], "cx")
    runs = []

    class Fake:                                     # stands in for OpenMM: a 2-frame exit per replica
        def __init__(self, source, settings):
            pass

        def run(self, seed):
            runs.append(seed)
            pos = np.zeros((2, 3, 3), np.float32)
            pos[:, 1, 0] = pos[:, 2, 1] = 1.5
            pos[1, 0, 2] = 5.0
            t = DissociationTrajectory(f"cx-r{seed:05d}", top, pos, np.array([0.0, 0.2]), np.array([1.0, 2.0]),
                                       {"settings": {"pocket_cutoff": None}})
            return t, {"seed": seed, "exited": True, "exit_time_ps": 0.2, "simulated_ps": 2.2, "wall_seconds": 1.0}

    monkeypatch.setattr(ramd, "RAMDSimulation", Fake)
    out = tmp_path / "out"
    assert ramd.generate_replicas(src, ramd.RAMDSettings(), 3, out, show_progress=False)["events"] == 3
    rec = out / "cx" / "r00001.json"
    for text in ("{", "[1, 2]", json.dumps({"exited": True})):
        rec.write_text(text)
        for reader in (ramd.summarize, ramd.load_events):
            with pytest.raises(InputError, match="r00001.json"):
                reader(out / "cx")
    rec.write_text("{")
    runs.clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary = ramd.generate_replicas(src, ramd.RAMDSettings(), 3, out, show_progress=False)
    assert runs == [1]                              # only the damaged replica is run again
    assert any("r00001.json" in str(w.message) and "redoing" in str(w.message) for w in caught)
    assert summary["replicas"] == 3 and summary["events"] == 3
    assert json.loads(rec.read_text())["replica"] == 1
    assert len(ramd.load_events(out / "cx")) == 3
    assert not list((out / "cx").glob(".*tmp*"))   # no temporary file left behind
