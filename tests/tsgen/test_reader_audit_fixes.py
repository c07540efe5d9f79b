"""Reaction readers and the xTB generator refuse what would become wrong ground truth: failed or unconverged NEB
results, empty XYZ files, damaged Transition1x files, a disordered index.csv, elements beyond the element table
and NaN extra geometries, each with an error naming the file and the field."""
from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from sciflow.core.errors import InputError
from sciflow.data.reactions import ReactionSet, load_triplets, read_reaction_sdfs, save_triplets
from sciflow.data.transition1x import T1X_ENERGY, read_transition1x, write_transition1x
from sciflow.domains.molecules.io import as_molecule, read_molecules, read_xyz, to_rdkit

# --- 1. failed / unconverged NEB results ------------------------------------------------------------------------


def _fake_xtb(outcomes):
    """A stand-in for xtb_reaction: item k has outcome outcomes[k] ('ok', 'error' or 'unconverged')."""
    calls = []

    def fake(numbers, reactant, product, **kw):
        kind = outcomes[len(calls)]
        calls.append(kind)
        ts = (reactant + product) / 2
        return {"pos_reactant": reactant, "pos_product": product, "pos_ts": ts, "energy_reactant": -1.0,
                "energy_product": -2.0, "energy_ts": np.nan if kind == "error" else 0.5,
                "neb_converged": kind == "ok", "neb_steps": 3, "force_calls": 10, "seconds": 0.1,
                "path": np.stack([reactant, ts, product]), "path_energies": np.array([-1.0, 0.5, -2.0]),
                "error": "SCFError: boom" if kind == "error" else ""}
    return fake


def test_failed_and_unconverged_neb_results_are_not_written_as_transition_states(tmp_path, example_reactions,
                                                                                   monkeypatch, capsys):
    import sciflow.data.xtb_reactions as xr
    monkeypatch.setattr(xr, "xtb_reaction", _fake_xtb(["ok", "error", "unconverged"]))
    pairs = example_reactions.subset([0, 1, 2])
    out = xr.generate_xtb_reactions(pairs, tmp_path / "run", hdf5=True, show_progress=False)
    ok_id = str(pairs.rxn_id[0])
    assert out.rxn_id.tolist() == [ok_id]
    trip = load_triplets(tmp_path / "run")
    assert trip.rxn_id.tolist() == [ok_id] and np.isfinite(trip.extra["energy_ts"]).all()
    assert trip.extra["neb_converged"].tolist() == [True]
    cost = json.loads((tmp_path / "run" / "cost.json").read_text())
    assert cost["reactions"] == 1 and cost["items"] == 3
    assert cost["left_out"]["count"] == 2
    assert cost["left_out"]["reasons"] == {"error": 1, "neb_unconverged": 1}
    assert [it["rxn_id"] for it in cost["left_out"]["items"]] == [str(pairs.rxn_id[1]), str(pairs.rxn_id[2])]
    assert "2 of 3 left out" in capsys.readouterr().err
    # the HDF5 keeps the flags, and the reader gives them back
    h5 = read_transition1x(tmp_path / "run" / "transition1x.h5")
    assert h5.rxn_id.tolist() == [ok_id]
    assert h5.extra["neb_converged"].tolist() == [True] and h5.extra["error"].tolist() == [""]
    # asked for, unconverged results are written (resumed: no new xTB run), flagged; errors never are
    again = xr.generate_xtb_reactions(pairs, tmp_path / "run", hdf5=True, keep_unconverged=True,
                                      show_progress=False)
    assert again.rxn_id.tolist() == [ok_id, str(pairs.rxn_id[2])]
    assert again.extra["neb_converged"].tolist() == [True, False]
    with h5py.File(tmp_path / "run" / "transition1x.h5") as f:
        grp = f[f"data/{next(iter(f['data']))}"]
        assert any(k.endswith("neb_converged") for g in grp.values() for k in g.attrs)
    assert read_transition1x(tmp_path / "run" / "transition1x.h5").extra["neb_converged"].tolist() == [True, False]
    # a run without hdf5 removes the older .h5, which would not match its triplets.npz
    again = xr.generate_xtb_reactions(pairs, tmp_path / "run", show_progress=False)
    assert not (tmp_path / "run" / "transition1x.h5").exists()
    assert again.rxn_id.tolist() == [ok_id]


def test_a_run_where_every_neb_failed_writes_no_triplets(tmp_path, example_reactions, monkeypatch):
    import sciflow.data.xtb_reactions as xr
    monkeypatch.setattr(xr, "xtb_reaction", _fake_xtb(["error", "unconverged"]))
    with pytest.raises(InputError, match=r"none of the 2 reactions.*error: 1, neb_unconverged: 1"):
        xr.generate_xtb_reactions(example_reactions.subset([0, 1]), tmp_path / "run", show_progress=False)
    assert not (tmp_path / "run" / "triplets.npz").exists()
    assert json.loads((tmp_path / "run" / "cost.json").read_text())["left_out"]["count"] == 2


# --- 2. an empty XYZ file ---------------------------------------------------------------------------------------


def test_an_empty_xyz_file_is_refused_naming_it(tmp_path):
    for name, text in (("empty.xyz", ""), ("blank.xyz", "\n\n  \n")):
        (tmp_path / name).write_text(text)
        for reader in (read_xyz, read_molecules, as_molecule):
            with pytest.raises(InputError, match=rf"{name}.*no structure"):
                reader(tmp_path / name)


def test_the_tsgen_workflow_names_an_empty_reactant_file(tmp_path):
    from sciflow.workflows.tasks.tsgen import _read_reactions
    (tmp_path / "a_reactant.xyz").write_text("")
    (tmp_path / "a_product.xyz").write_text("2\n\nH 0 0 0\nH 0.74 0 0\n")
    with pytest.raises(InputError, match="a_reactant.xyz"):
        _read_reactions(tmp_path, None)                                 # was an IndexError


# --- 3. damaged Transition1x files ------------------------------------------------------------------------------


def _t1x(path, mutate=None):
    with h5py.File(path, "w") as f:
        g = f.create_group("data/CH4/rxn1")
        g["atomic_numbers"] = np.array([6, 1, 1, 1, 1], np.int8)
        for k, role in enumerate(("reactant", "transition_state", "product")):
            s = g.create_group(role)
            s["positions"] = np.eye(5, 3)[None] + 0.1 * k
            s[T1X_ENERGY] = np.array([-1.0 + 0.1 * k])
        if mutate:
            mutate(g["product"])


def _replace(name, value):
    def mutate(sub):
        if name in sub:
            del sub[name]
        sub[name] = value
    return mutate


@pytest.mark.parametrize("mutate, message", [
    (_replace("positions", np.zeros((0, 5, 3))), r"product/positions holds no frame"),
    (_replace("positions", np.array([b"x"])), r"product/positions: expected numbers"),
    (_replace(T1X_ENERGY, np.array([b"abc"])), r"product/wB97x_6-31G\(d\).energy: expected numbers"),
    (_replace(T1X_ENERGY, np.array([np.nan])), r"product/wB97x_6-31G\(d\).energy: energy is nan.*energy_product"),
    (_replace("positions", np.full((1, 5, 3), np.nan)), r"product/positions: non-finite coordinate of atom 0"),
    (_replace("atomic_numbers", np.array([60, 1, 1, 1, 1])), r"atoms differ"),
])
def test_a_bad_transition1x_dataset_is_named_with_its_file(tmp_path, mutate, message):
    _t1x(tmp_path / "t.h5", mutate)
    with pytest.raises(InputError, match=rf"t\.h5.*{message}"):
        read_transition1x(tmp_path / "t.h5")


def test_a_transition1x_file_that_is_not_hdf5_is_named(tmp_path):
    _t1x(tmp_path / "ok.h5")
    raw = (tmp_path / "ok.h5").read_bytes()
    (tmp_path / "trunc.h5").write_bytes(raw[: len(raw) // 2])
    (tmp_path / "empty.h5").write_bytes(b"")
    np.savez(tmp_path / "other.npz", a=1)
    for name in ("trunc.h5", "empty.h5", "other.npz"):
        with pytest.raises(InputError, match=rf"transition1x: .*{name} is not a readable HDF5 file"):
            read_transition1x(tmp_path / name)
    assert len(read_transition1x(tmp_path / "ok.h5")) == 1


def test_a_reaction_set_error_names_the_transition1x_file(tmp_path):
    with h5py.File(tmp_path / "z.h5", "w") as f:                 # every subgroup agrees on Z = 0
        g = f.create_group("data/X/rxn1")
        for role in ("reactant", "transition_state", "product"):
            s = g.create_group(role)
            s["atomic_numbers"] = np.array([0, 1])
            s["positions"] = np.eye(2, 3)[None]
            s[T1X_ENERGY] = np.array([-1.0])
    with pytest.raises(InputError, match=r"z\.h5.*atomic_numbers: 0 is no element"):
        read_transition1x(tmp_path / "z.h5")


def test_energies_written_as_unknown_read_back_as_unknown(tmp_path, example_reactions):
    """The writer writes an energy it does not know as NaN; that one is not refused (but a NaN energy in a file
    written elsewhere is), and an energy unknown for every reaction is left out."""
    data = example_reactions.subset([0, 1])
    data.extra = {"energy_ts": np.array([1.5, np.nan])}       # (other tests add extras to the shared fixture)
    write_transition1x(tmp_path / "w.h5", data)
    back = read_transition1x(tmp_path / "w.h5")
    assert back.extra["energy_ts"][0] == 1.5 and np.isnan(back.extra["energy_ts"][1])
    assert "energy_reactant" not in back.extra and "energy_product" not in back.extra


# --- 4. index.csv of the SDF folder -----------------------------------------------------------------------------


@pytest.fixture
def sdf_folder(tmp_path, example_reactions):
    from rdkit import Chem
    data = example_reactions
    for name, key in (("reactants.sdf", "pos_reactant"), ("ts.sdf", "pos_ts"), ("products.sdf", "pos_product")):
        w = Chem.SDWriter(str(tmp_path / name))
        for i in range(len(data)):
            s = data.rows(i)
            w.write(to_rdkit(data.atomic_numbers[s], getattr(data, key)[s]))
        w.close()
    return tmp_path


def test_index_csv_rows_are_placed_by_their_idx_column(sdf_folder, example_reactions):
    n = example_reactions.n_atoms
    (sdf_folder / "index.csv").write_text(f"idx,rxn_id,n_atoms\n2,c,{n[2]}\n0,a,{n[0]}\n1,b,{n[1]}\n")
    assert read_reaction_sdfs(sdf_folder).rxn_id.tolist() == ["a", "b", "c"]
    (sdf_folder / "index.csv").write_text("rxn_id\nx\ny\nz\n")                   # no idx: file order
    assert read_reaction_sdfs(sdf_folder).rxn_id.tolist() == ["x", "y", "z"]


@pytest.mark.parametrize("text, message", [
    ("idx,name\n0,a\n1,b\n2,c\n", r"no 'rxn_id' column \(columns: \['idx', 'name'\]\)"),
    ("idx,rxn_id\n0,a\n1,b\n", r"lists 2 reaction\(s\), the SDF files hold 3 records"),
    ("", r"no 'rxn_id' column"),
    ("idx,rxn_id\n0,a\n0,b\n1,c\n", r"lines 2 and 3: column 'idx' repeats 0"),
    ("idx,rxn_id\n0,a\n1,b\n3,c\n", r"line 4: column 'idx' is 3, expected a record index in 0..2"),
    ("idx,rxn_id\n0,a\none,b\n2,c\n", r"line 3: column 'idx' expected a whole number, got 'one'"),
    ("idx,rxn_id\n0,a\n1,\n2,c\n", r"line 3: column 'rxn_id' is empty"),
    ("idx,rxn_id,n_atoms\n0,a,1\n1,b,1\n2,c,1\n", r"line 2: column 'n_atoms' is 1 for 'a' \(idx 0\)"),
])
def test_a_bad_index_csv_is_named_with_its_column(sdf_folder, text, message):
    (sdf_folder / "index.csv").write_text(text)
    with pytest.raises(InputError, match=rf"index.csv: .*index.csv.*{message}"):
        read_reaction_sdfs(sdf_folder)


# --- 5. elements beyond the element table -----------------------------------------------------------------------


def test_elements_beyond_the_element_table_are_refused_before_writing(tmp_path):
    from sciflow.domains.molecules.elements import SYMBOLS
    from sciflow.domains.molecules.features import ElementEmbedding
    z_max = len(SYMBOLS) - 1
    ElementEmbedding([1, z_max], 4)                       # the model's embedding takes the same range
    with pytest.raises(InputError, match=rf"atomic_numbers: 60 is no element sciflow supports \(1..{z_max}"
                                         r".*reaction 0 \(r0\), atom 1"):
        ReactionSet(["r0"], [0, 2], [6, 60], np.zeros((2, 3)), np.ones((2, 3)), np.ones((2, 3)) / 2)
    ok = ReactionSet(["r0"], [0, 2], [6, z_max], np.zeros((2, 3)), np.ones((2, 3)), np.ones((2, 3)) / 2)
    write_transition1x(tmp_path / "ok.h5", ok)
    assert read_transition1x(tmp_path / "ok.h5").atomic_numbers.tolist() == [6, z_max]


# --- 6. NaN in an extra geometry --------------------------------------------------------------------------------


def test_nan_in_an_extra_geometry_is_refused(tmp_path, example_reactions):
    core = ("rxn_id", "offsets", "atomic_numbers", "pos_reactant", "pos_product", "pos_ts")
    arrays = {k: v for k, v in example_reactions.to_arrays().items() if k in core}
    g2c = arrays["pos_ts"].copy()
    g2c[4, 1] = np.nan
    np.savez(tmp_path / "g.npz", **arrays, pos_ts_g2c_model=g2c)
    with pytest.raises(InputError, match=r"pos_ts_g2c_model: non-finite coordinate in reaction 0 .*atom 4.*g\.npz"):
        load_triplets(tmp_path / "g.npz")
    np.savez(tmp_path / "s.npz", **arrays, pos_ts_g2c_model=arrays["pos_ts"][:, :2])
    with pytest.raises(InputError, match=r"pos_ts_g2c_model: an extra geometry needs real coordinates"):
        load_triplets(tmp_path / "s.npz")
    good = ReactionSet(**arrays, extra={"pos_ts_g2c_model": arrays["pos_ts"] + 0.01, "energy_ts": [1.0, np.nan, 2.0]})
    save_triplets(tmp_path / "ok.npz", good)
    back = load_triplets(tmp_path / "ok.npz")
    assert back.subset([1]).extra["energy_ts"].shape == (1,)     # a list extra works like an array
