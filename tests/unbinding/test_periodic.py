"""PDB + DCD trajectories with periodic boundaries: wrapped frames are made continuous, ambiguous ones refused."""
from __future__ import annotations

import numpy as np
import pytest

from sciflow.core.errors import InputError
from sciflow.data.dissociation import DissociationTrajectory, read_mdtraj, to_mdtraj

BOX = 30.0          # Å, cubic


def _write(tmp_path, cx, pos, name="w"):
    """A PDB (frame 0) + DCD with a 30 Å cubic cell of raw (possibly wrapped) frames (T, n, 3) Å."""
    t = DissociationTrajectory(name, cx.topology, pos, np.arange(len(pos)) * 1.0)
    mt, _ = to_mdtraj(t.topology, t.positions)
    mt.unitcell_lengths = np.full((len(pos), 3), BOX / 10.0)
    mt.unitcell_angles = np.full((len(pos), 3), 90.0)
    mt[0].save_pdb(str(tmp_path / f"{name}.pdb"))
    mt.save_dcd(str(tmp_path / f"{name}.dcd"))
    return tmp_path / f"{name}.pdb", tmp_path / f"{name}.dcd"


def _frames(cx, shifts):
    """The ring complex centred in the box, the ligand moved along +z by ``shifts`` Å."""
    pos = np.repeat(cx.positions[None] + BOX / 2, len(shifts), 0)
    pos[:, cx.topology.is_ligand, 2] += np.asarray(shifts, dtype=float)[:, None]
    return pos


def test_wrapped_ligand_and_receptor_are_made_continuous(tmp_path, make_ring):
    cx = make_ring()
    true = _frames(cx, [0.0, 1.0, 2.0, 3.0, 4.0])
    raw = true.copy()
    lig = cx.topology.is_ligand
    raw[3:, lig, 2] -= BOX                  # the ligand leaves through the top face and comes back at the bottom
    raw[:, 0, 0] += BOX                     # one receptor atom sits in the next image in every frame
    raw[4, 2] -= BOX                        # and another one jumps in the last frame only
    pdb, dcd = _write(tmp_path, cx, raw)
    back = read_mdtraj(pdb, dcd, ligand="resname LIG", pocket_cutoff=5.0, frame_spacing_ps=1.0)
    assert back.topology.n_atoms == cx.topology.n_atoms     # the far image of atom 0 is still a pocket atom
    blig = back.topology.is_ligand
    np.testing.assert_allclose(back.positions[:, blig], true[:, lig], atol=2e-3)
    np.testing.assert_allclose(np.sort(back.positions[:, ~blig].reshape(-1)), np.sort(true[:, ~lig].reshape(-1)),
                               atol=2e-3)
    step = np.linalg.norm(np.diff(back.positions[:, blig].mean(1), axis=0), axis=1)
    np.testing.assert_allclose(step, 1.0, atol=2e-3)             # 1 Å per frame, no 30 Å jump
    assert "periodic" in back.info


def test_a_ligand_too_far_from_the_pocket_for_its_image_is_refused(tmp_path, make_ring):
    cx = make_ring()
    raw = _frames(cx, [0.0, 10.0, 20.0])        # 20 Å from the pocket in a 30 Å box: nearer the next image
    raw[2, cx.topology.is_ligand, 2] -= BOX
    pdb, dcd = _write(tmp_path, cx, raw, "far")
    with pytest.raises(InputError, match=r"far\.dcd frame 2: the ligand centre steps .* half the periodic box"):
        read_mdtraj(pdb, dcd, ligand="resname LIG", pocket_cutoff=5.0, frame_spacing_ps=1.0)


def test_a_placeholder_cell_is_ignored(tmp_path, make_ring):
    cx = make_ring()
    true = _frames(cx, [0.0, 1.0, 2.0])
    t = DissociationTrajectory("p", cx.topology, true, np.arange(3) * 1.0)
    mt, _ = to_mdtraj(t.topology, t.positions)
    mt.unitcell_lengths = np.full((3, 3), 0.1)                 # CRYST1 1 1 1
    mt.unitcell_angles = np.full((3, 3), 90.0)
    mt[0].save_pdb(str(tmp_path / "p.pdb"))
    mt.save_dcd(str(tmp_path / "p.dcd"))
    back = read_mdtraj(tmp_path / "p.pdb", tmp_path / "p.dcd", ligand="resname LIG", pocket_cutoff=5.0,
                       frame_spacing_ps=1.0)
    np.testing.assert_allclose(back.positions[:, back.topology.is_ligand], true[:, cx.topology.is_ligand], atol=2e-3)
    assert "periodic" not in back.info


def test_frame_times_that_restart_are_refused_with_the_way_out(tmp_path, make_ring):
    """An XTC of runs concatenated into one file restarts its clock; the error names the frame and the option
    (frame_spacing_ps) that numbers the frames evenly instead."""
    cx = make_ring()
    pos = _frames(cx, [0.0, 0.5, 1.0, 1.5])
    t = DissociationTrajectory("c", cx.topology, pos, np.arange(len(pos)) * 1.0)
    mt, _ = to_mdtraj(t.topology, t.positions)
    mt.time = np.array([10.0, 20.0, 5.0, 15.0])
    mt[0].save_pdb(str(tmp_path / "c.pdb"))
    mt.save_xtc(str(tmp_path / "c.xtc"))
    with pytest.raises(InputError, match=r"frame_spacing_ps: the frame times of c\.xtc do not increase \(frame 2"):
        read_mdtraj(tmp_path / "c.pdb", tmp_path / "c.xtc", ligand="resname LIG", pocket_cutoff=5.0)
    back = read_mdtraj(tmp_path / "c.pdb", tmp_path / "c.xtc", ligand="resname LIG", pocket_cutoff=5.0,
                       frame_spacing_ps=2.0)
    assert back.times.tolist() == [0.0, 2.0, 4.0, 6.0]


# ALA 50, GLY 51 and GLY 51A (an insertion code) and a three-atom ligand; GLY 51's O is 2.65 A from the ligand,
# GLY 51A's 3.16 A
CX_PDB = """\
ATOM      1  N   ALA A  50       0.000   0.000   0.000  1.00  0.00           N  
ATOM      2  CA  ALA A  50       1.400   0.000   0.000  1.00  0.00           C  
ATOM      3  C   ALA A  50       2.000   1.400   0.000  1.00  0.00           C  
ATOM      4  O   ALA A  50       1.500   2.400   0.000  1.00  0.00           O  
ATOM      5  N   GLY A  51       4.000   0.000   0.000  1.00  0.00           N  
ATOM      6  CA  GLY A  51       5.400   0.000   0.000  1.00  0.00           C  
ATOM      7  C   GLY A  51       6.000   1.400   0.000  1.00  0.00           C  
ATOM      8  O   GLY A  51       5.500   2.400   0.000  1.00  0.00           O  
ATOM      9  N   GLY A  51A      8.000   0.000   0.000  1.00  0.00           N  
ATOM     10  CA  GLY A  51A      9.400   0.000   0.000  1.00  0.00           C  
ATOM     11  C   GLY A  51A     10.000   1.400   0.000  1.00  0.00           C  
ATOM     12  O   GLY A  51A      9.500   2.400   0.000  1.00  0.00           O  
ATOM     13  N  ASER A  52      12.000   0.000   0.000  1.00  0.00           N  
ATOM     14  CA ASER A  52      13.400   0.000   0.000  1.00  0.00           C  
ATOM     15  C  ASER A  52      14.000   1.400   0.000  1.00  0.00           C  
ATOM     16  O  ASER A  52      13.500   2.400   0.000  1.00  0.00           O  
ATOM     17  N  BSER A  52      12.000   0.000   3.000  1.00  0.00           N  
ATOM     18  CA BSER A  52      13.400   0.000   3.000  1.00  0.00           C  
ATOM     19  C  BSER A  52      14.000   1.400   3.000  1.00  0.00           C  
ATOM     20  O  BSER A  52      13.500   2.400   3.000  1.00  0.00           O  
HETATM   21  C1  LIG B   1       6.000   5.000   0.000  1.00  0.00           C  
HETATM   22 CL1  LIG B   1       7.700   5.000   0.000  1.00  0.00          Cl  
HETATM   23  C2  LIG B   1       5.000   6.000   0.000  1.00  0.00           C  
END
"""


def test_residues_with_insertion_codes_stay_apart_in_the_pocket(tmp_path):
    """GLY 51 and GLY 51A share chain, number and name; mdtraj keeps them as two residues (its residue index),
    and so does the pocket selection (they were merged, so the nearer one pulled the farther one in)."""
    from sciflow.data.dissociation import load_complex
    pdb = tmp_path / "cx.pdb"
    pdb.write_text(CX_PDB)
    cx = load_complex(pdb, ligand="resname LIG", pocket_cutoff=3.0)
    pocket = ~cx.topology.is_ligand
    assert sorted(set(cx.topology.res_names[pocket])) == ["GLY"]
    assert int(pocket.sum()) == 4                  # GLY 51 only (2.65 A away), not GLY 51A (3.16 A)
