"""Molecules adapter: file/object round trips, the reaction frame, and bad inputs rejected before any work."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from sciflow.core.errors import InputError
from sciflow.domains.molecules import MoleculesAdapter, as_molecule, read_molecules, to_atoms, to_rdkit
from sciflow.domains.molecules.features import ElementEmbedding
from sciflow.domains.molecules.geometry import centroid, kabsch_rmsd
from sciflow.nn.symmetry import random_rotation


def _mol(example_reactions, i=0, key="pos_reactant"):
    r = example_reactions.reaction(i)
    return r["atomic_numbers"], r[key].astype(np.float64)


def test_round_trips_xyz_sdf_ase_rdkit(tmp_path, example_reactions):
    from rdkit import Chem

    z, x = _mol(example_reactions)
    atoms = to_atoms(z, x)
    ad = MoleculesAdapter()
    # ase -> graph -> ase
    g = ad.encode(atoms)
    assert torch.equal(g["atomic_numbers"], torch.as_tensor(z)) and g["batch"].max() == 0
    np.testing.assert_allclose(g["pos"].numpy(), x, atol=1e-5)
    from sciflow.core.trajectory import Trajectory
    back = ad.decode(Trajectory(torch.zeros(1), g["pos"][None], extras={k: g[k] for k in ("atomic_numbers", "batch")}))
    assert len(back) == 1 and np.array_equal(back[0].numbers, z)
    np.testing.assert_allclose(back[0].positions, x, atol=1e-5)             # encode keeps the frame: no centring
    # XYZ file
    atoms.write(tmp_path / "m.xyz")
    np.testing.assert_allclose(ad.encode(str(tmp_path / "m.xyz"))["pos"].numpy(), x, atol=1e-5)
    # RDKit Mol and SDF file
    mol = to_rdkit(z, x)
    np.testing.assert_allclose(as_molecule(mol).positions, x, atol=1e-9)
    w = Chem.SDWriter(str(tmp_path / "m.sdf"))
    w.write(mol)
    w.close()
    m2 = read_molecules(tmp_path / "m.sdf")[0]
    assert np.array_equal(m2.numbers, z)
    np.testing.assert_allclose(m2.positions, x, atol=1e-4)   # SDF keeps 4 decimals
    # a list of molecules -> one ragged batch; decode gives ase.Atoms back
    b = ad.encode([atoms, (z.tolist(), x + 1.0)])
    assert b["batch"].tolist() == [0] * len(z) + [1] * len(z)
    two = ad.decode(Trajectory(torch.zeros(1), b["pos"][None], extras={k: b[k] for k in ("atomic_numbers", "batch")}))
    assert [len(a) for a in two] == [len(z)] * 2 and all(np.array_equal(a.numbers, z) for a in two)
    np.testing.assert_allclose(two[0].positions, x, atol=1e-5)
    np.testing.assert_allclose(two[1].positions, x + 1.0, atol=1e-5)


def test_reaction_frame_is_equivariant_in_the_reactant_and_invariant_in_the_product(example_reactions):
    ad = MoleculesAdapter(dtype=torch.float64)
    z, r = _mol(example_reactions)
    _, p = _mol(example_reactions, key="pos_product")
    c = ad.encode_reactions([((z, r), (z, p))])
    g = torch.Generator().manual_seed(0)
    q = random_rotation(g).numpy()
    moved = ad.encode_reactions([((z, r @ q.T + 3.0), (z, p @ random_rotation(g).numpy().T - 1.0))])
    qt = torch.as_tensor(q)
    for key in ("pos_reactant", "pos_product", "pos_midpoint"):
        torch.testing.assert_close(moved[key], c[key] @ qt.T, atol=1e-9, rtol=0)
    assert float(centroid(c["pos_reactant"]).abs().max()) < 1e-12
    # P is the Kabsch-best copy of the product onto R
    assert abs(float(kabsch_rmsd(c["pos_product"], c["pos_reactant"])[0])
               - float(((c["pos_product"] - c["pos_reactant"]) ** 2).sum(-1).mean().sqrt())) < 1e-9


def test_prior_is_centred_around_the_midpoint_with_the_right_width(example_reactions):
    ad = MoleculesAdapter(prior_std=0.2, dtype=torch.float64)
    z, r = _mol(example_reactions)
    _, p = _mol(example_reactions, key="pos_product")
    c = ad.encode_reactions([((z, r), (z, p))] * 200)
    x0 = ad.prior(c, 200, generator=torch.Generator().manual_seed(0))
    d = x0 - c["pos_midpoint"]
    assert float(centroid(d, c["batch"]).abs().max()) < 1e-12
    n = len(z)
    # centred noise keeps (n-1)/n of the variance per coordinate
    assert abs(float(d.var()) - 0.04 * (n - 1) / n) < 0.004


@pytest.mark.parametrize("bad, field", [
    ("count", "reactant has"), ("order", "atom order differs"), ("element", "unknown element symbol"),
    ("nan", "non-finite"), ("znum", "unknown atomic number")])
def test_bad_reactions_are_rejected_naming_the_problem(example_reactions, bad, field):
    ad = MoleculesAdapter()
    z, r = _mol(example_reactions)
    _, p = _mol(example_reactions, key="pos_product")
    sym = [["X", "H", "He", "Li", "Be", "B", "C", "N", "O"][int(v)] for v in z]
    rz, pz, rx, px = list(sym), list(sym), r.copy(), p.copy()
    if bad == "count":
        pz, px = pz[:-1], px[:-1]
    elif bad == "order":
        i = next(k for k in range(len(pz)) if pz[k] != pz[0])
        pz[0], pz[i] = pz[i], pz[0]
    elif bad == "element":
        rz[2] = "Xx"
    elif bad == "nan":
        px[3, 1] = np.nan
    elif bad == "znum":
        rz = list(z)
        rz[1] = 150
    with pytest.raises(InputError, match=field):
        ad.encode_reactions([((rz, rx), (pz, px))])


def test_element_outside_the_model_vocabulary_is_rejected():
    emb = ElementEmbedding([1, 6, 7, 8], 8)
    with pytest.raises(InputError, match="S not supported"):
        emb(torch.tensor([6, 16, 1]))


def test_a_2d_depiction_is_not_taken_for_a_3d_geometry(tmp_path):
    from rdkit import Chem
    from rdkit.Chem import AllChem

    mol = Chem.AddHs(Chem.MolFromSmiles("CCO"))
    AllChem.Compute2DCoords(mol)
    Chem.MolToMolFile(mol, str(tmp_path / "flat.mol"))
    with pytest.raises(InputError, match="2D"):
        read_molecules(tmp_path / "flat.mol")
    AllChem.EmbedMolecule(mol, randomSeed=0)
    Chem.MolToMolFile(mol, str(tmp_path / "ethanol.mol"))
    assert np.ptp(read_molecules(tmp_path / "ethanol.mol")[0].positions[:, 2]) > 0.5
