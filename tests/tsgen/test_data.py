"""Triplets layout, the fixed split, and the Transition1x reader on a small file written in the public layout."""
from __future__ import annotations

import numpy as np
import pytest

from sciflow.core.errors import InputError
from sciflow.data.reactions import GRAMBOW_SPLIT, load_triplets, save_triplets, split_indices
from sciflow.data.transition1x import T1X_ENERGY, T1X_FORCES, read_transition1x, write_transition1x


def test_triplets_round_trip_and_subset(tmp_path, example_reactions):
    data = example_reactions
    data.extra["pos_ts_g2c_model"] = data.pos_ts + 0.01
    save_triplets(tmp_path / "t.npz", data)
    back = load_triplets(tmp_path / "t.npz")
    assert back.rxn_id.tolist() == data.rxn_id.tolist()
    np.testing.assert_array_equal(back.offsets, data.offsets)
    np.testing.assert_allclose(back.pos_ts, data.pos_ts)
    np.testing.assert_allclose(back.extra["pos_ts_g2c_model"], data.pos_ts + 0.01, atol=1e-6)
    sub = back.subset([2, 0])
    assert sub.rxn_id.tolist() == [data.rxn_id[2], data.rxn_id[0]]
    np.testing.assert_allclose(sub.pos_reactant[: sub.n_atoms[0]], data.pos_reactant[data.rows(2)])
    np.testing.assert_allclose(sub.extra["pos_ts_g2c_model"][: sub.n_atoms[0]], data.pos_ts[data.rows(2)] + 0.01,
                               atol=1e-6)


def test_missing_arrays_and_nan_are_rejected(tmp_path, example_reactions):
    arrays = example_reactions.to_arrays()
    del arrays["pos_product"]
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(InputError, match="pos_product"):
        load_triplets(tmp_path / "bad.npz")
    arrays = example_reactions.to_arrays()
    arrays["pos_reactant"] = arrays["pos_reactant"].copy()
    arrays["pos_reactant"][5, 0] = np.nan
    np.savez(tmp_path / "nan.npz", **arrays)
    with pytest.raises(InputError, match="pos_reactant: non-finite"):
        load_triplets(tmp_path / "nan.npz")


def test_fixed_split_is_a_deterministic_partition():
    parts = split_indices(700, GRAMBOW_SPLIT["sizes"], GRAMBOW_SPLIT["seed"])
    assert [len(p) for p in parts] == [560, 70, 70]
    allidx = np.concatenate(parts)
    assert sorted(allidx.tolist()) == list(range(700))
    again = split_indices(700, GRAMBOW_SPLIT["sizes"], GRAMBOW_SPLIT["seed"])
    assert all(np.array_equal(a, b) for a, b in zip(parts, again))
    with pytest.raises(InputError, match="sizes"):
        split_indices(10, (5, 4), 0)


def _write_t1x_by_hand(path, data):
    """The public layout written directly with h5py (independent of sciflow's writer)."""
    import h5py

    with h5py.File(path, "w") as f:
        for split in ("data", "test"):
            for i in range(len(data)):
                s = data.rows(i)
                z = data.atomic_numbers[s]
                grp = f.create_group(f"{split}/C{i}H/rxn{i:04d}")
                path_frames = np.stack([data.pos_reactant[s], data.pos_ts[s], data.pos_product[s]])
                grp["atomic_numbers"] = z.astype(np.int8)
                grp["positions"] = path_frames
                grp[T1X_ENERGY] = np.array([-100.0 - i, -99.0 - i, -100.5 - i])
                grp[T1X_FORCES] = np.zeros_like(path_frames)
                for k, role in enumerate(("reactant", "transition_state", "product")):
                    sub = grp.create_group(role)
                    sub["atomic_numbers"] = z.astype(np.int8)
                    sub["positions"] = path_frames[k][None]
                    sub[T1X_ENERGY] = np.array([[-100.0, -99.0, -100.5][k] - i])
                    sub[T1X_FORCES] = np.zeros((1, len(z), 3))


def test_transition1x_reader_on_a_file_in_the_public_layout(tmp_path, example_reactions):
    data = example_reactions
    _write_t1x_by_hand(tmp_path / "t1x.h5", data)
    back = read_transition1x(tmp_path / "t1x.h5", "test")
    assert len(back) == len(data)
    assert back.rxn_id.tolist() == [f"rxn{i:04d}" for i in range(len(data))]
    np.testing.assert_allclose(back.pos_ts, data.pos_ts, atol=1e-6)
    np.testing.assert_allclose(back.pos_product, data.pos_product, atol=1e-6)
    np.testing.assert_allclose(back.extra["energy_ts"] - back.extra["energy_reactant"], 1.0)
    assert back.extra["formula"].tolist() == [f"C{i}H" for i in range(len(data))]
    assert len(read_transition1x(tmp_path / "t1x.h5", "data", limit=2)) == 2
    with pytest.raises(InputError, match="split"):
        read_transition1x(tmp_path / "t1x.h5", "train")
    # sciflow's writer produces the same layout
    data.extra.update(energy_reactant=np.zeros(3), energy_ts=np.ones(3), energy_product=np.full(3, 0.5))
    write_transition1x(tmp_path / "w.h5", data, split="val")
    again = read_transition1x(tmp_path / "w.h5", "val")
    np.testing.assert_allclose(again.pos_reactant, data.pos_reactant, atol=1e-6)
    np.testing.assert_allclose(again.extra["energy_ts"], 1.0)


def test_transition1x_writer_keeps_the_order_and_triplets_check_their_arrays(tmp_path, example_reactions):
    """Reactions come back in the order written (HDF5 alone would list rxn10 before rxn2 and group formulas);
    a triplets file whose n_atoms disagrees with its offsets, or an extra of the wrong length, is refused."""
    data = example_reactions.subset([2, 0, 1])
    data.rxn_id = np.array(["rxn2", "rxn10", "rxn1"])
    data.extra.update(energy_reactant=np.zeros(3), energy_ts=np.array([4.0, 5.0, 6.0]), energy_product=np.zeros(3))
    write_transition1x(tmp_path / "w.h5", data)
    back = read_transition1x(tmp_path / "w.h5")
    assert back.rxn_id.tolist() == ["rxn2", "rxn10", "rxn1"] and back.extra["energy_ts"].tolist() == [4.0, 5.0, 6.0]
    np.testing.assert_allclose(back.pos_ts, data.pos_ts, atol=1e-6)
    assert read_transition1x(tmp_path / "w.h5", limit=1).rxn_id.tolist() == ["rxn2"]
    arrays = example_reactions.to_arrays()
    arrays["n_atoms"] = arrays["n_atoms"][::-1].copy() + 1
    np.savez(tmp_path / "n.npz", **arrays)
    with pytest.raises(InputError, match="n_atoms: disagrees with offsets"):
        load_triplets(tmp_path / "n.npz")
    arrays = example_reactions.to_arrays()
    arrays["pos_ts_other"] = arrays["pos_ts"][:-2]
    np.savez(tmp_path / "e.npz", **arrays)
    with pytest.raises(InputError, match="pos_ts_other: an extra array needs one entry per reaction"):
        load_triplets(tmp_path / "e.npz")


def test_reaction_sdfs_read_and_a_mismatched_g2c_file_is_refused(tmp_path, example_reactions):
    from rdkit import Chem

    from sciflow.data.reactions import read_reaction_sdfs
    from sciflow.domains.molecules import to_rdkit

    data = example_reactions

    def sdf(name, key, order=None):
        w = Chem.SDWriter(str(tmp_path / name))
        for i in order or range(len(data)):
            r = data.reaction(i)
            w.write(to_rdkit(r["atomic_numbers"], r[key].astype(np.float64)))
        w.close()

    for name, key in (("reactants.sdf", "pos_reactant"), ("ts.sdf", "pos_ts"), ("products.sdf", "pos_product")):
        sdf(name, key)
    back = read_reaction_sdfs(tmp_path)
    np.testing.assert_allclose(back.pos_ts, data.pos_ts, atol=1e-4)
    sdf("g2c_model_predicted_ts.sdf", "pos_ts", order=[1, 0, 2])      # records out of order: atoms differ
    with pytest.raises(InputError, match="g2c_model_predicted_ts.sdf: expected 3 records"):
        read_reaction_sdfs(tmp_path)


def test_bad_element_numbers_and_unwritable_reaction_ids_are_refused(tmp_path, example_reactions):
    """Atomic number 200 was accepted and saved as int8 -56; an id with '/' wrote nested HDF5 groups that the
    reader could not find again, and a repeated id failed inside h5py."""
    from sciflow.data.reactions import ReactionSet
    for z in (200, 0):
        with pytest.raises(InputError, match=rf"atomic_numbers: {z} is no element.*reaction 0 \(r0\), atom 1"):
            ReactionSet(["r0"], [0, 2], [6, z], np.zeros((2, 3)), np.ones((2, 3)))
    data = example_reactions.subset([0, 1])
    for ids, what in ((["a/b", "c"], "without '/'"), (["x", "x"], "unique")):
        data.rxn_id = np.array(ids)
        with pytest.raises(InputError, match=f"rxn_id: .*{what}"):
            write_transition1x(tmp_path / "t.h5", data)
    assert not (tmp_path / "t.h5").exists()


def test_summaries_say_how_many_values_failed():
    from sciflow.methods.tsgen.evaluate import summarize
    assert summarize(np.array([0.5, np.nan, np.nan, 1.5]), "e") == {"e_mean": 1.0, "e_median": 1.0, "e_failed": 2}
    out = summarize(np.array([np.nan]), "e")
    assert np.isnan(out["e_mean"]) and out["e_failed"] == 1


def test_xtb_generator_resumes_only_results_of_the_same_inputs(tmp_path, example_reactions, monkeypatch):
    """A finished item is reused only for the reaction it was computed from; another molecule under the same
    index and id is refused (its old geometries were paired with the new elements before)."""
    import sciflow.data.xtb_reactions as xr
    calls = []

    def fake(numbers, reactant, product, **kw):
        calls.append(len(numbers))
        return {"pos_reactant": reactant, "pos_product": product, "pos_ts": (reactant + product) / 2,
                "energy_reactant": 0.0, "energy_product": 0.0, "energy_ts": 1.0, "neb_converged": True,
                "neb_steps": 1, "force_calls": 1, "seconds": 0.1, "path": np.stack([reactant, product]),
                "path_energies": np.zeros(2), "error": ""}

    monkeypatch.setattr(xr, "xtb_reaction", fake)
    pairs = example_reactions.subset([0])
    first = xr.generate_xtb_reactions(pairs, tmp_path / "run", show_progress=False)
    again = xr.generate_xtb_reactions(pairs, tmp_path / "run", show_progress=False)
    assert len(calls) == 1 and np.array_equal(again.pos_ts, first.pos_ts)      # resumed, not recomputed
    assert "input_digest" not in again.extra
    other = example_reactions.subset([1])
    other.rxn_id = pairs.rxn_id.copy()
    with pytest.raises(InputError, match="holds a result for other inputs"):
        xr.generate_xtb_reactions(other, tmp_path / "run", show_progress=False)
