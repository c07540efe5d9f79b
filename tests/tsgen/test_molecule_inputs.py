"""Molecule inputs that used to be read wrongly or crash: partial hydrogens, periodic cells, charges and radicals,
empty SDF files, malformed (elements, positions), several conformers, PDB insertion codes."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from sciflow.core.errors import InputError
from sciflow.domains.molecules import MoleculesAdapter, as_molecule, read_molecules
from sciflow.domains.molecules.complexes import ComplexTopology, pocket_indices

WATER = (["O", "H", "H"], [[0.0, 0.0, 0.0], [0.9572, 0.0, 0.0], [-0.24, 0.9266, 0.0]])


def _embedded(smiles: str, *, add_hs: bool = True, seed: int = 1):
    from rdkit import Chem
    from rdkit.Chem import AllChem
    m = Chem.MolFromSmiles(smiles)
    m = Chem.AddHs(m) if add_hs else m
    AllChem.EmbedMolecule(m, randomSeed=seed)
    return m


def test_an_rdkit_mol_with_only_some_hydrogens_is_refused(tmp_path):
    from rdkit import Chem
    from rdkit.Chem import AllChem
    m = _embedded("[2H]C([2H])([2H])CO")
    Chem.MolToMolFile(m, str(tmp_path / "cd3.mol"))
    dropped = Chem.MolFromMolFile(str(tmp_path / "cd3.mol"))          # RDKit default removeHs: D kept, H dropped
    assert dropped.GetNumAtoms() == 6
    with pytest.raises(InputError, match=r"atom\(s\) 4 \(C\), 5 \(O\) carry implicit hydrogens"):
        as_molecule(dropped)                                           # was accepted as 6 atoms
    partial = _embedded("CCO", add_hs=False)
    partial = Chem.AddHs(partial, onlyOnAtoms=(2,), addCoords=True)
    with pytest.raises(InputError, match=r"0 \(C\), 1 \(C\) carry implicit hydrogens"):
        as_molecule(partial)
    nh4 = Chem.MolFromSmiles("[NH4+]")                                 # no bonds, 4 H stated on the N, not as atoms
    AllChem.EmbedMolecule(nh4, randomSeed=1)
    with pytest.raises(InputError, match=r"atom\(s\) 0 \(N\) carry implicit hydrogens"):
        as_molecule(nh4)
    assert len(as_molecule(Chem.MolFromXYZBlock("3\n\nO 0 0 0\nH 0.96 0 0\nH -0.24 0.93 0.3\n"))) == 3
    assert len(as_molecule(tmp_path / "cd3.mol")) == 9                 # the file read here keeps every atom
    # an unsanitised file with all its hydrogens but a radical without an 'M  RAD' line stays readable
    rad = Chem.MolToMolBlock(_embedded("[CH2]C"))
    (tmp_path / "rad.sdf").write_text("\n".join(x for x in rad.splitlines() if not x.startswith("M  RAD")) + "\n$$$$\n")
    assert len(read_molecules(tmp_path / "rad.sdf")[0]) == 7


def test_hydrogens_added_without_coordinates_are_named():
    from rdkit import Chem
    m = Chem.AddHs(_embedded("CCO", add_hs=False))                     # forgot addCoords=True: every H at (0, 0, 0)
    with pytest.raises(InputError, match=r"hydrogen atom\(s\) \[3, 4, 5.*addCoords=True"):
        as_molecule(m)


def test_several_conformers_are_refused():
    from rdkit.Chem import AllChem
    m = _embedded("CCO")
    AllChem.EmbedMultipleConfs(m, 3, randomSeed=1)
    with pytest.raises(InputError, match="has 3 conformers; pass a Mol with a single conformer"):
        as_molecule(m)                                                 # was conformer 0, silently


def _wrapped_water():
    from ase import Atoms
    w = Atoms("OH2", positions=WATER[1], cell=[5, 5, 5], pbc=True)
    w.positions -= [0.1, 0.1, 0.1]
    w.wrap()                                                           # the H atoms now sit across the box edge
    return w


def _oh(mol) -> np.ndarray:
    return np.linalg.norm(mol.positions[1:] - mol.positions[0], axis=1)


def test_a_molecule_wrapped_across_the_cell_is_made_whole(tmp_path):
    import ase.io
    w = _wrapped_water()
    assert np.linalg.norm(w.positions[1:] - w.positions[0], axis=1).max() > 4    # torn apart as stored
    assert np.allclose(_oh(as_molecule(w)), [0.9572, 0.9572], atol=1e-3)
    ase.io.write(tmp_path / "w.extxyz", w, format="extxyz")
    assert np.allclose(_oh(read_molecules(tmp_path / "w.extxyz")[0]), [0.9572, 0.9572], atol=1e-3)
    whole = w.copy()
    whole.positions = np.array(WATER[1]) + 2.0                         # whole, inside a periodic box: unchanged
    assert np.allclose(as_molecule(whole).positions, whole.positions)
    c = MoleculesAdapter().encode_reactions([(WATER, w)])
    x = c["pos_product"].double().numpy()
    assert np.allclose(np.linalg.norm(x[1:] - x[0], axis=1), 0.9572, atol=1e-3)


def test_charged_and_open_shell_molecules_are_refused_for_tsgen(tmp_path):
    import ase.io
    from ase import Atoms
    ad = MoleculesAdapter(scope="TS-GEN and its xTB checks")
    nh4 = _embedded("[NH4+]")
    with pytest.raises(InputError, match=r"reactions\[0\] reactant.*net charge \+1; TS-GEN .*neutral closed-shell"):
        ad.encode_reactions([(nh4, nh4)])
    from rdkit import Chem
    Chem.MolToMolFile(nh4, str(tmp_path / "nh4.mol"))                   # the file's 'M  CHG' line is read too
    with pytest.raises(InputError, match=r"reactions\[0\] reactant: has net charge \+1"):
        ad.encode_reactions([(tmp_path / "nh4.mol", tmp_path / "nh4.mol")])
    ch3 = _embedded("[CH3]")
    with pytest.raises(InputError, match=r"1 unpaired electron\(s\) \(open shell\)"):
        ad.encode_reactions([(ch3, ch3)])
    w = Atoms("OH2", positions=WATER[1])
    w.info["charge"] = -1
    with pytest.raises(InputError, match="net charge -1"):
        ad.encode_reactions([(WATER, w)], names=["anion"])
    ase.io.write(tmp_path / "q.extxyz", w, format="extxyz")            # the comment line says charge=-1
    with pytest.raises(InputError, match="net charge -1"):
        ad.encode_reactions([(tmp_path / "q.extxyz", WATER)])
    w.info["charge"], w.info["multiplicity"] = 0, 3
    with pytest.raises(InputError, match="2 unpaired"):
        ad.encode_reactions([(WATER, w)])
    neutral = _embedded("CCO")
    assert ad.encode_reactions([(neutral, neutral), (WATER, Atoms("OH2", positions=WATER[1]))])["batch"].max() == 1


def test_an_empty_sdf_names_the_file(tmp_path):
    (tmp_path / "empty.sdf").write_text("")
    with pytest.raises(InputError, match=r"sdf: .*empty.sdf"):
        read_molecules(tmp_path / "empty.sdf")                         # was a raw OSError
    with pytest.raises(InputError, match=r"empty.sdf"):
        as_molecule(tmp_path / "empty.sdf")


def test_malformed_elements_positions_name_positions_and_the_shape():
    ad = MoleculesAdapter()
    with pytest.raises(InputError, match=r"positions: expected 2 rows of 3 numbers \(shape \(2, 3\)\)"):
        ad.encode((["O", "H"], [[0, 0, 0], [1, 0]]))                   # was a raw ValueError about a list
    with pytest.raises(InputError, match=r"reactions\[0\].reactant.positions: expected 2 rows"):
        ad.encode_reactions([((["O", "H"], [[0, 0, 0], [1, 0]]), (["O", "H"], [[0, 0, 0], [1, 0, 0]]))])
    with pytest.raises(InputError, match=r"positions: expected shape \(2, 3\)"):
        ad.encode((["O", "H"], [[[0, 0, 0]], [[1, 0, 0]]]))
    h2 = (["H", "H"], [[0, 0, 0], [0.74, 0, 0]])
    assert ad.encode(h2)["batch"].tolist() == [0, 0]
    assert ad.encode([h2, h2])["batch"].tolist() == [0, 0, 1, 1]       # a list of two molecules stays two
    assert ad.encode([torch.tensor([8, 1, 1]), torch.tensor(WATER[1])])["batch"].tolist() == [0, 0, 0]


def test_hydrogen_isotope_symbols_say_use_h(tmp_path):
    (tmp_path / "d.xyz").write_text("3\n\nO 0 0 0\nD 0.96 0 0\nH -0.24 0.93 0\n")
    with pytest.raises(InputError, match=r"unknown element symbol 'D' \(use H"):
        read_molecules(tmp_path / "d.xyz")
    with pytest.raises(InputError, match=r"unknown element symbol 'D' \(use H"):
        as_molecule((["O", "D", "H"], WATER[1]))


def test_residues_that_differ_only_by_insertion_code_stay_apart():
    # ALA 50, GLY 51, GLY 51A (same chain, number and name), ligand near GLY 51 only
    n_res = 3
    names = ["ALA", "GLY", "GLY"]
    pos = np.array([[4.0 * r + dx, dy, 0.0] for r in range(n_res) for dx, dy in ((0, 0), (1.4, 0), (2, 1.4))]
                   + [[5.4, 3.5, 0.0]])
    topo = ComplexTopology(["N", "C", "C"] * n_res + ["C"], ["N", "CA", "C"] * n_res + ["C1"],
                           [names[r] for r in range(n_res) for _ in range(3)] + ["LIG"],
                           [50, 50, 50, 51, 51, 51, 51, 51, 51, 1], [False] * 9 + [True], "ins",
                           ["A"] * 9 + ["B"], [0, 0, 0, 1, 1, 1, 2, 2, 2, 3])
    keep = pocket_indices(topo, pos, 2.2)
    assert keep.tolist() == [9, 3, 4, 5]                               # was GLY 51 and GLY 51A together
    assert topo.subset(keep).res_index.tolist() == [3, 1, 1, 1]
