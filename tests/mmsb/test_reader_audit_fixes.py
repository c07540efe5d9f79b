"""Snapshot readers and the mmsb task/CLI on bad input (audit fixes).

* a ragged npz with fractional ``snapshot`` indices was read with the indices truncated: now refused;
* the mmsb workflow and CLI ignored ``time_key`` / ``use_rep`` for formats that do not use them: now refused
  (``pca`` now applies to every format);
* malformed ``.h5ad`` files raised IndexError / KeyError / AxisError / ValueError: now InputError naming the file
  and the HDF5 path; a ``nullable-string-array`` time column is read;
* a one-time CSV did not name its file; ``write_snapshot_npz(**extra)`` could overwrite the layout's keys; an
  ``N_steps`` disagreeing with K, and a file with both layouts (or differing ``dts`` / ``times``), were read.
"""
from pathlib import Path

import h5py
import numpy as np
import pytest

from sciflow.cli import main
from sciflow.core.errors import InputError
from sciflow.data.snapshots import read_snapshot_csv, read_snapshot_npz, read_snapshots, write_snapshot_npz
from sciflow.domains.cells import Snapshots
from sciflow.workflows.runner import validate_workflow

ROOT = Path(__file__).resolve().parents[2]
#: the benchmark files (N_steps = K): the one the repository ships, and one more where a checkout has it
SHIPPED = [ROOT / "datasets" / "mmsb" / "LV_data.npz", Path("/work/shared/data/snapshots/Repressilatormrna_data.npz")]


def _npz(path, **arrays):
    np.savez(path, **arrays)
    return path


def _dense(path, k=5, n=20, d=2):
    rng = np.random.default_rng(0)
    xs = np.stack([rng.normal(size=(n, d)) * 0.2 + np.array([1.0 + 0.5 * i] + [0.0] * (d - 1)) for i in range(k)])
    return _npz(path, Xs=xs, dts=np.arange(float(k)))


def _workflow(path, **data):
    return {"version": 1, "task": "mmsb", "seed": 0, "output": "unused",
            "mmsb": {"data": {"path": str(path), **data}}}


# -- 1. ragged npz: snapshot indices ---------------------------------------------------------------------------
@pytest.mark.parametrize("idx", [[0, 0.5, 1.7, 1, 1, 0.9], [0, 0, 1, 1, -1, 1], [0, 0, 1, 1, 2, 1],
                                 ["0", "0", "1", "1", "1", "1"], [0, 0, 1, np.nan, 1, 1]])
def test_ragged_npz_refuses_snapshot_indices_that_are_not_whole_numbers_in_range(tmp_path, idx):
    path = _npz(tmp_path / "r.npz", points=np.arange(12.0).reshape(6, 2), snapshot=np.array(idx),
                dts=np.array([0.0, 1.0]))
    with pytest.raises(InputError) as e:
        read_snapshot_npz(path)
    assert str(path) in str(e.value) and "'snapshot'" in str(e.value)


def test_ragged_npz_accepts_whole_float_indices(tmp_path):
    path = _npz(tmp_path / "r.npz", points=np.arange(12.0).reshape(6, 2), snapshot=np.array([0.0, 0, 1, 1, 1, 1]),
                dts=np.array([0.0, 1.0]))
    assert read_snapshot_npz(path).sizes == [2, 4]


# -- 2. settings that do not apply to the format ---------------------------------------------------------------
def test_workflow_refuses_time_key_and_use_rep_where_the_format_does_not_use_them(tmp_path):
    npz = _dense(tmp_path / "d.npz")
    csv = tmp_path / "d.csv"
    csv.write_text("time,x\n" + "".join(f"{t},{x}\n" for t in range(4) for x in (0.1 * t, 0.2 * t + 1)))
    for path, field, value in ((npz, "time_key", "nonexistent"), (npz, "use_rep", "X_pca"), (csv, "use_rep", "X")):
        with pytest.raises(InputError) as e:
            validate_workflow(_workflow(path, **{field: value}))
        msg = str(e.value)
        assert f"{field}:" in msg and str(path) in msg and ".h5ad" in msg, msg
    with pytest.raises(InputError, match="time_key"):                 # the audit's combination
        validate_workflow(_workflow(npz, pca=1, use_rep="X_pca", time_key="nonexistent"))
    validate_workflow(_workflow(npz, time_key="time"))                # the default is no setting


def test_pca_applies_to_npz_and_csv(tmp_path):
    npz = _dense(tmp_path / "d.npz", d=3)
    s = read_snapshots(npz, pca=2)
    assert s.dim == 2 and s.sizes == [20] * 5
    x, _ = s.stacked()
    assert abs(float(x.mean(0).abs().max())) < 1e-9                 # centred scores
    with pytest.raises(InputError, match="pca") as e:
        read_snapshots(npz, pca=4)
    assert str(npz) in str(e.value)
    validate_workflow(_workflow(npz, pca=1))
    csv = tmp_path / "d.csv"
    csv.write_text("time,a,b\n" + "".join(f"{t},{x},{2 * x}\n" for t in range(3) for x in (t, t + 1.0)))
    c = read_snapshots(csv, pca=1)
    assert c.dim == 1 and c.sizes == [2, 2, 2]
    assert np.allclose(np.abs(c.stacked()[0].numpy().ravel()), np.sqrt(5) * np.abs([-1.5, -0.5, -0.5, 0.5, 0.5, 1.5]))


def test_cli_refuses_options_the_format_does_not_use(tmp_path, capsys):
    npz = _dense(tmp_path / "d.npz")
    for opt in (["--use-rep", "X_pca"], ["--time-key", "day"]):
        rc = main(["mmsb", "evaluate", "--data", str(npz), "--out", str(tmp_path / "m.json"), "--reference", "zero",
                   "--sigma", "0.1", "--paths", "5", "--particles", "5", *opt])     # cheap, should it run at all
        err = capsys.readouterr().err
        assert rc == 2 and opt[0] in err and str(npz) in err, err
    assert not (tmp_path / "m.json").exists()


# -- 3. malformed .h5ad -------------------------------------------------------------------------------------------
def _h5ad(path, codes=(0, 0, 1, 1), cats=("day0", "day2"), x=None, sparse=False, mut=None):
    import scipy.sparse as sp
    with h5py.File(path, "w") as f:
        obs = f.create_group("obs")
        obs.attrs["_index"] = "_index"
        obs["_index"] = np.array([f"c{i}".encode() for i in range(len(codes))])
        g = obs.create_group("time")
        g.attrs["encoding-type"] = "categorical"
        g["codes"] = np.array(codes, np.int8)
        g["categories"] = np.array([c.encode() for c in cats])
        x = np.arange(len(codes) * 2, dtype=float).reshape(-1, 2) if x is None else x
        if sparse:
            m = sp.csr_matrix(x)
            grp = f.create_group("X")
            grp.attrs["encoding-type"] = "csr_matrix"
            grp.attrs["shape"] = x.shape
            grp["data"], grp["indices"], grp["indptr"] = m.data, m.indices, m.indptr
        else:
            f["X"] = x
        if mut:
            mut(f)
    return path


def _replace(key, fn):
    def mut(f):
        d = f[key][()]
        del f[key]
        f[key] = fn(d)
    return mut


BAD_H5AD = {
    "code_out_of_range": ({"codes": (0, 0, 1, 5)}, "/obs/time/codes"),
    "sparse_without_indptr": ({"sparse": True, "mut": lambda f: f["X"].__delitem__("indptr")}, "/X"),
    "categorical_without_codes": ({"mut": lambda f: f["obs/time"].__delitem__("codes")}, "/obs/time"),
    "truncated_indptr": ({"sparse": True, "mut": _replace("X/indptr", lambda d: d[:3])}, "/X/indptr"),
    "indices_out_of_range": ({"sparse": True, "mut": _replace("X/indices", lambda d: d + 5)}, "/X/indices"),
    "one_dimensional_x": ({"x": np.arange(4.0)}, "/X"),
}


@pytest.mark.parametrize("case", sorted(BAD_H5AD))
def test_malformed_h5ad_is_an_input_error_naming_file_and_hdf5_path(tmp_path, case):
    kw, where = BAD_H5AD[case]
    path = _h5ad(tmp_path / f"{case}.h5ad", **kw)
    with pytest.raises(InputError) as e:
        read_snapshots(path)
    assert str(path) in str(e.value) and where in str(e.value), str(e.value)


def test_malformed_h5ad_is_refused_by_the_workflow_and_cli(tmp_path, capsys):
    path = _h5ad(tmp_path / "bad.h5ad", codes=(0, 0, 1, 5))
    with pytest.raises(InputError) as e:
        validate_workflow(_workflow(path, heldout=False))
    assert str(path) in str(e.value) and "codes" in str(e.value)
    rc = main(["mmsb", "evaluate", "--data", str(path), "--out", str(tmp_path / "m.json")])
    err = capsys.readouterr().err
    assert rc == 2 and str(path) in err and "Traceback" not in err
    assert not (tmp_path / "m.json").exists()


def test_nullable_string_time_column_is_read_with_its_mask(tmp_path):
    def nullable(f):
        del f["obs/time"]
        g = f["obs"].create_group("time")
        g.attrs["encoding-type"] = "nullable-string-array"
        g["values"] = np.array([b"day0", b"day0", b"day3", b"day3", b"day0"])
        g["mask"] = np.array([False, False, False, False, True])
    path = _h5ad(tmp_path / "n.h5ad", codes=(0,) * 5, mut=nullable)
    s = read_snapshots(path)
    assert s.times.tolist() == [0.0, 3.0] and s.sizes == [2, 2]     # the masked cell has no time: dropped
    assert read_snapshots(path, time_map={"day0": 1.0, "day3": 2.0}).times.tolist() == [1.0, 2.0]


# -- 4. minor --------------------------------------------------------------------------------------------------
def test_one_time_csv_names_its_file(tmp_path):
    path = tmp_path / "one.csv"
    path.write_text("time,x\n0,1\n0,2\n")
    with pytest.raises(InputError, match="at least 2 snapshots") as e:
        read_snapshot_csv(path)
    assert str(path) in str(e.value)


def test_write_snapshot_npz_refuses_the_layout_keys_as_extras(tmp_path):
    s = Snapshots.from_arrays(np.zeros((3, 4, 2)), [0.0, 1.0, 2.0])
    for key in ("dts", "Xs", "N_steps", "points", "snapshot", "times"):
        with pytest.raises(InputError, match=key):
            write_snapshot_npz(tmp_path / "s.npz", s, **{key: np.array([9.0, 8.0])})
    assert not (tmp_path / "s.npz").exists()
    write_snapshot_npz(tmp_path / "s.npz", s, note=np.array(1))
    assert np.load(tmp_path / "s.npz")["note"] == 1 and read_snapshot_npz(tmp_path / "s.npz").sizes == [4, 4, 4]


@pytest.mark.parametrize("arrays, what", [
    ({"Xs": np.zeros((3, 3, 2)), "dts": np.arange(3.0), "N_steps": np.array(5)}, "N_steps"),
    ({"points": np.zeros((4, 2)), "snapshot": np.array([0, 0, 1, 1]), "dts": np.arange(2.0),
      "N_steps": np.array(3)}, "N_steps"),
    ({"Xs": np.zeros((2, 3, 2)), "points": np.ones((4, 2)), "snapshot": np.array([0, 0, 1, 1]),
      "dts": np.arange(2.0)}, "both the dense layout"),
    ({"Xs": np.zeros((2, 3, 2)), "dts": np.arange(2.0), "times": np.array([5.0, 6.0])}, "'times'"),
])
def test_npz_refuses_disagreeing_n_steps_and_ambiguous_layouts(tmp_path, arrays, what):
    path = _npz(tmp_path / "a.npz", **arrays)
    with pytest.raises(InputError, match=what) as e:
        read_snapshot_npz(path)
    assert str(path) in str(e.value)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_benchmark_files_read_unchanged(path):
    if not path.is_file():
        pytest.skip(f"{path} not present")
    z = np.load(path)
    s = read_snapshot_npz(path)
    assert int(z["N_steps"]) == s.n_snapshots
    assert np.array_equal(s.dense().numpy(), z["Xs"].astype(np.float64))
    assert np.array_equal(s.times.numpy(), z["dts"].astype(np.float64))
