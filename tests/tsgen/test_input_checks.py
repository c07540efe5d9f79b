"""Molecule, Transition1x and triplets readers refuse what they cannot read faithfully, naming the problem."""
from __future__ import annotations

import h5py
import numpy as np
import pytest

from sciflow.core.errors import InputError
from sciflow.data.reactions import load_triplets, split_indices
from sciflow.data.transition1x import read_transition1x, write_transition1x
from sciflow.domains.molecules.elements import atomic_number
from sciflow.domains.molecules.io import as_molecule, read_molecules, to_rdkit, write_xyz_frames


def test_molecules_without_their_hydrogens_are_refused_but_bond_less_ones_read():
    from rdkit import Chem
    from rdkit.Chem import AllChem
    mol = Chem.MolFromSmiles("CCO")                        # no AddHs: 3 heavy atoms, 6 hydrogens implicit
    AllChem.EmbedMolecule(mol, randomSeed=0)
    with pytest.raises(InputError, match=r"atom\(s\) 0 \(C\), 1 \(C\), 2 \(O\) carry implicit hydrogens"):
        as_molecule(mol)                                    # was read as a 3-atom molecule
    full = Chem.AddHs(Chem.MolFromSmiles("CCO"))
    AllChem.EmbedMolecule(full, randomSeed=0)
    assert len(as_molecule(full)) == 9
    water = to_rdkit(np.array([8, 1, 1]), np.array([[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]]))
    assert len(as_molecule(water)) == 3                    # no bonds: every atom is listed
    assert len(as_molecule(Chem.MolFromXYZBlock("3\n\nO 0 0 0\nH 0.96 0 0\nH -0.24 0.93 0\n"))) == 3


def test_xyz_writer_checks_every_frame_first(tmp_path):
    z, x = np.array([8, 1, 1]), np.array([[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0.0]])
    for frames, msg in (([(z, x[:2], "a")], r"frames\[0\].positions: expected shape \(3, 3\)"),
                        ([(z, x, "a"), (np.array([-1, 1, 1]), x, "b")], r"frames\[1\].numbers\[0\]"),   # was 'I'
                        ([(z, x * np.nan, "a")], "non-finite")):
        with pytest.raises(InputError, match=msg):
            write_xyz_frames(tmp_path / "a.xyz", frames)
    assert not (tmp_path / "a.xyz").exists()
    write_xyz_frames(tmp_path / "ok.xyz", [(z, x, "a")])
    assert read_molecules(tmp_path / "ok.xyz")[0].symbols == ["O", "H", "H"]


def test_atomic_numbers_are_whole_numbers():
    assert atomic_number(6.0) == 6 and atomic_number(np.int64(8)) == 8 and atomic_number("cl") == 17
    for bad in (np.float64(6.7), True, 0):
        with pytest.raises(InputError):
            atomic_number(bad)                              # 6.7 was carbon, True hydrogen


def _t1x(path, reactions):
    with h5py.File(path, "w") as f:
        data = f.create_group("data")
        data.create_dataset("README", data=np.arange(3))   # a dataset beside the formula groups
        for formula, rxn in reactions:
            g = data.require_group(formula).create_group(rxn)
            g.create_dataset("atomic_numbers", data=np.array([6, 1]))
            for k, role in enumerate(("reactant", "transition_state", "product")):
                s = g.create_group(role)
                s.create_dataset("positions", data=np.array([[[0, 0, 0], [1.0 + 0.1 * k, 0, 0]]]))
                s.create_dataset("wB97x_6-31G(d).energy", data=np.array([-1.0 + 0.1 * k]))


def test_transition1x_reader_skips_stray_datasets_qualifies_clashing_ids_and_checks_arguments(tmp_path):
    _t1x(tmp_path / "t.h5", [("CH", "rxn1"), ("HC", "rxn1"), ("CH", "rxn2")])
    data = read_transition1x(tmp_path / "t.h5")            # the README dataset crashed the reader
    assert sorted(data.rxn_id.tolist()) == ["CH_rxn1", "CH_rxn2", "HC_rxn1"]
    write_transition1x(tmp_path / "back.h5", data)         # clashing ids made the set unwritable
    assert len(read_transition1x(tmp_path / "back.h5")) == 3
    assert len(read_transition1x(tmp_path / "t.h5", formulas="CH")) == 2          # a string is one formula
    for limit in (0, -1):
        with pytest.raises(InputError, match="limit"):     # both returned one reaction
            read_transition1x(tmp_path / "t.h5", limit=limit)


def test_triplets_reader_and_splits_refuse_bad_input(tmp_path):
    np.save(tmp_path / "one.npy", np.zeros(3))
    (tmp_path / "one.npy").rename(tmp_path / "one.npz")
    with pytest.raises(InputError, match=r"single array \(.npy\)"):
        load_triplets(tmp_path / "one.npz")
    with pytest.raises(InputError, match=r"sizes\[1\]"):   # (12, -2) gave parts of 10 and 0
        split_indices(10, (12, -2), 0)


def test_geometries_with_atoms_on_top_of_each_other_are_refused_naming_reaction_and_atoms():
    """Coordinates in nm instead of Å, or every atom at one point, used to give TS 'samples' with no error."""
    from pathlib import Path

    from sciflow.data.reactions import ReactionSet
    from sciflow.methods.tsgen import TSGen
    root = Path(__file__).resolve().parents[2]
    frames = read_molecules(root / "datasets" / "reactions" / "examples" / "rxn002918.xyz")
    r, p = frames[0], frames[-1]
    model = TSGen.load(root / "models" / "tsgen")
    assert len(model.generate(r, p, n=1, return_atoms=True)) == 1       # the real reaction passes
    nm = (r.numbers, r.positions * 0.1)                                # Å read as nm: bonds of about 0.1 Å
    with pytest.raises(InputError, match=r"rxn: reactant atoms \d+ and \d+ are 0\.\d+ Å apart .*in Å"):
        model.condition([(nm, p)], names=["rxn"])
    with pytest.raises(InputError, match=r"reaction: reactant atoms"):
        model.generate(nm, p, n=1)
    z = r.numbers
    n = len(z)
    same = np.zeros((n, 3))
    data = ReactionSet(np.array(["pt"]), np.array([0, n]), z, r.positions, same)
    with pytest.raises(InputError, match=r"pt: product atoms 0 and 1 are 0 Å apart"):
        model.predict(data, n=1)
    from ase import Atoms
    charged = Atoms(numbers=r.numbers, positions=r.positions, info={"charge": 1})   # the model names itself
    with pytest.raises(InputError, match=r"net charge \+1; TS-GEN and its xTB checks: neutral closed-shell"):
        model.generate(charged, p, n=1)
    from sciflow.domains.molecules import MoleculesAdapter  # the domain alone names no method
    with pytest.raises(InputError, match=r"net charge \+1; this model: neutral closed-shell"):
        MoleculesAdapter().encode_reactions([(charged, p)])
