"""Malformed input files (found by fuzzing) raise InputError naming the file and the field, never a raw traceback
and never a silent misreading."""
import numpy as np
import pytest

from sciflow.core.errors import InputError

GARBAGE = bytes(range(128, 256)) * 16          # neither UTF-8 text nor any archive format


def _triplets(**over):
    """Two 2-atom reactions in the triplets layout, with ``over`` replacing arrays."""
    g = np.random.default_rng(0)
    arrays = {"rxn_id": np.array(["r0", "r1"]), "offsets": np.array([0, 2, 4]),
              "atomic_numbers": np.array([1, 1, 8, 1]), "pos_reactant": g.normal(size=(4, 3)),
              "pos_product": g.normal(size=(4, 3)), "pos_ts": g.normal(size=(4, 3))}
    arrays.update(over)
    return arrays


def _save(path, **arrays):
    np.savez(path, **arrays)
    return path


# -- reactions (triplets.npz) ---------------------------------------------------------------------
@pytest.mark.parametrize("ids", [["../../../evil", "ok"], ["", "b"], ["a/b", "c"], ["a\\b", "c"], ["..", "c"],
                                 [".", "c"], ["a\0b", "c"]])
def test_reaction_ids_that_are_no_plain_file_name_are_refused(tmp_path, ids):
    """rxn_id names the output file <id>.xyz: '../../../evil' wrote outside the output folder, '' a hidden .xyz."""
    from sciflow.data.reactions import load_triplets
    f = _save(tmp_path / "t.npz", **_triplets(rxn_id=np.array(ids)))
    with pytest.raises(InputError, match=r"rxn_id: must be non-empty.*t\.npz") as e:
        load_triplets(f)
    assert repr(ids[0])[1:-1] in str(e.value)


def test_duplicate_reaction_ids_are_refused(tmp_path):
    """Two reactions with one id overwrote each other's output file."""
    from sciflow.data.reactions import ReactionSet, load_triplets
    f = _save(tmp_path / "t.npz", **_triplets(rxn_id=np.array(["same", "same"])))
    with pytest.raises(InputError, match=r"rxn_id: must be unique, got duplicates \['same'\].*t\.npz"):
        load_triplets(f)
    with pytest.raises(InputError, match="rxn_id: must be unique"):
        ReactionSet(**{k: v for k, v in _triplets(rxn_id=["x", "x"]).items() if k != "pos_ts"})


def test_fractional_atomic_numbers_and_complex_positions_are_refused(tmp_path):
    """8.7 was read as oxygen (8); complex positions lost their imaginary part."""
    from sciflow.data.reactions import load_triplets
    f = _save(tmp_path / "z.npz", **_triplets(atomic_numbers=np.array([1.0, 1.0, 8.7, 1.0])))
    with pytest.raises(InputError, match=r"atomic_numbers.*reaction 1 \(r1\), atom 0.*whole numbers.*8\.7.*z\.npz"):
        load_triplets(f)
    assert len(load_triplets(_save(tmp_path / "ok.npz", **_triplets(atomic_numbers=np.array([1.0, 1, 8, 1]))))) == 2
    pos = _triplets()["pos_product"] + 1j
    f = _save(tmp_path / "c.npz", **_triplets(pos_product=pos))
    with pytest.raises(InputError, match=r"pos_product: expected real coordinates, got complex.*c\.npz"):
        load_triplets(f)


def test_object_arrays_and_scalar_offsets_in_triplets_are_refused(tmp_path):
    from sciflow.data.reactions import load_triplets
    f = _save(tmp_path / "obj.npz", **_triplets(pos_product=np.array([None] * 4, dtype=object)))
    with pytest.raises(InputError, match=r"data .*obj\.npz: array 'pos_product' is an object array"):
        load_triplets(f)
    f = _save(tmp_path / "off.npz", **_triplets(offsets=np.array(5)))
    with pytest.raises(InputError, match=r"offsets: in .*off\.npz expected a 1-D array"):
        load_triplets(f)


# -- demonstrations, walks ------------------------------------------------------------------------
def test_demos_file_without_format_or_not_npz_is_refused(tmp_path):
    from sciflow.data.robot_demos import DEMO_FORMAT, DEMO_KEYS, load_demos
    f = _save(tmp_path / "notdemos.npz", a=np.zeros(3))
    with pytest.raises(InputError, match=rf"demos: .*notdemos\.npz has no 'format' entry.*{DEMO_FORMAT}"):
        load_demos(f)
    (tmp_path / "garbage.bin").write_bytes(GARBAGE)
    with pytest.raises(InputError, match=r"demos: .*garbage\.bin is not a demonstrations \.npz"):
        load_demos(tmp_path / "garbage.bin")


def test_a_walk_chunk_that_is_not_npz_is_refused(tmp_path):
    from sciflow.data.scattering import load_walk_dataset
    (tmp_path / "chunk_00000.npz").write_bytes(GARBAGE)
    with pytest.raises(InputError, match=r"walks: .*chunk_00000\.npz is not a walk \.npz"):
        load_walk_dataset(tmp_path)


# -- dissociation trajectories --------------------------------------------------------------------
def test_a_file_that_is_not_hdf5_is_refused(tmp_path):
    pytest.importorskip("h5py")
    from sciflow.data.dissociation import read_dataset
    (tmp_path / "a.h5").write_bytes(GARBAGE)
    with pytest.raises(InputError, match=r"data: .*a\.h5 is not an HDF5 file"):
        read_dataset(tmp_path)


@pytest.mark.parametrize("content", [b"", GARBAGE, b"hello\nnot a pdb\n"])
def test_empty_or_garbage_pdb_is_refused_naming_the_file(tmp_path, content):
    pytest.importorskip("mdtraj")
    from sciflow.data.dissociation import read_mdtraj
    (tmp_path / "a.pdb").write_bytes(content)
    with pytest.raises(InputError, match=r"topology: .*a\.pdb could not be read"):
        read_mdtraj(tmp_path / "a.pdb")


# -- XYZ, snapshot CSV ----------------------------------------------------------------------------
def test_a_binary_xyz_file_is_refused(tmp_path):
    from sciflow.io import read_trajectory
    (tmp_path / "g.xyz").write_bytes(GARBAGE)
    with pytest.raises(InputError, match=r"path: .*g\.xyz.* is not an XYZ text file"):
        read_trajectory(tmp_path / "g.xyz")



def test_a_dummy_atom_in_an_xyz_file_is_refused_naming_file_line_and_symbol(tmp_path):
    from sciflow.io import read_trajectory
    frame = "4\n{}\nO 0 0 0\nH 0.96 0 0\nH -0.24 0.93 0\n{} 0 0 1\n"
    (tmp_path / "x.xyz").write_text(frame.format("", "X"))
    with pytest.raises(InputError, match=r"x\.xyz.*line 6: symbol 'X' is a dummy atom"):
        read_trajectory(tmp_path / "x.xyz")
    (tmp_path / "y.xyz").write_text(frame.format("a", "C") + frame.format("b", "x"))     # in frame 1
    with pytest.raises(InputError, match=r"y\.xyz.*line 12: symbol 'x' is a dummy atom"):
        read_trajectory(tmp_path / "y.xyz")


def test_a_blank_line_between_xyz_frames_is_refused_not_a_silent_truncation(tmp_path):
    from sciflow.io import read_trajectory
    frame = "3\n{}\nO 0 0 0\nH 0.96 0 0\nH -0.24 0.93 0\n"
    (tmp_path / "b.xyz").write_text(frame.format("a") + "\n" + frame.format("b") + frame.format("c") + "\n\n")
    with pytest.raises(InputError, match=r"b\.xyz.* has 3 frames .* stops after 1: frame 1 \(atom count on line 7\)"):
        read_trajectory(tmp_path / "b.xyz")
    (tmp_path / "c.xyz").write_text(frame.format("a") + frame.format("b") + "\n\n")            # trailing blanks: fine
    assert read_trajectory(tmp_path / "c.xyz").states.shape == (2, 3, 3)
    (tmp_path / "d.xyz").write_text("\n" + frame.format("a") + frame.format("b"))             # a leading blank
    with pytest.raises(InputError, match=r"d\.xyz.* has 2 frames .* stops after 0: frame 0 \(atom count on line 2\)"):
        read_trajectory(tmp_path / "d.xyz")

@pytest.mark.parametrize("text, msg", [
    ("time,x,y\n0,1,2,999\n0,1,3\n1,2,3\n", r"line 2 has 4 fields, the header 3"),
    ("time,x,y\n0,1\n1,2,3\n", r"line 2 has 2 fields, the header 3"),
    ("time,x,x\n0,1,2\n1,2,3\n", r"column\(s\) \['x'\] appear more than once"),
    ("time,x,y\n0,1,2\n1,nan,3\n", r"line 3 has a non-finite value .* \['x'\]"),
    ("time,x,y\n0,1,2\ninf,1,3\n", r"line 3 has a non-finite value .* \['time'\]"),
])
def test_ragged_duplicate_or_non_finite_csv_is_refused(tmp_path, text, msg):
    """A row longer than the header was cut silently; 'time,x,x' was accepted; NaN errors named no file."""
    from sciflow.data.snapshots import read_snapshot_csv
    (tmp_path / "s.csv").write_text(text)
    with pytest.raises(InputError, match=r"data .*s\.csv: " + msg):
        read_snapshot_csv(tmp_path / "s.csv")


def test_a_csv_that_is_not_utf8_is_refused(tmp_path):
    from sciflow.data.snapshots import read_snapshot_csv
    (tmp_path / "g.csv").write_bytes(b"time,x\n0,1\n" + GARBAGE)
    with pytest.raises(InputError, match=r"data .*g\.csv: not UTF-8 text"):
        read_snapshot_csv(tmp_path / "g.csv")


# -- robot parameters in a scenario ---------------------------------------------------------------
@pytest.mark.parametrize("robot", [[1, 2], "fast", 0])
def test_robot_entry_that_is_no_mapping_is_refused(robot):
    from sciflow.domains.robots.car import CarParams
    with pytest.raises(InputError, match="robot: expected a mapping"):
        CarParams.from_dict(robot)


def test_a_triplets_file_without_reactions_is_refused(tmp_path):
    """It gave a ZeroDivisionError in tsgen evaluate and an empty 'successful' workflow run."""
    from sciflow.data.reactions import load_triplets
    f = tmp_path / "zero.npz"
    np.savez(f, offsets=np.array([0]), atomic_numbers=np.zeros(0, int), pos_reactant=np.zeros((0, 3)),
             pos_product=np.zeros((0, 3)), pos_ts=np.zeros((0, 3)), rxn_id=np.array([], dtype=str))
    with pytest.raises(InputError, match=r"data: .*zero\.npz holds no reactions"):
        load_triplets(f)


def test_object_arrays_in_any_npz_input_are_refused_naming_file_and_array(tmp_path):
    """A ragged list saved with dtype=object (the natural way to store ragged snapshots in the Xs layout) gave numpy's
    raw 'Object arrays cannot be loaded when allow_pickle=False' from the snapshot, walk, demo and trajectory
    readers; every npz reader now names the file and the array (and still refuses the pickle)."""
    from sciflow.data.robot_demos import DEMO_FORMAT, DEMO_KEYS, load_demos
    from sciflow.data.scattering import _KEYS, load_walks
    from sciflow.data.snapshots import read_snapshots
    from sciflow.io import read_trajectory
    ragged = np.empty(2, dtype=object)
    ragged[0], ragged[1] = np.zeros((3, 2)), np.zeros((4, 2))
    cases = {
        "snap.npz": (read_snapshots, {"Xs": ragged, "dts": np.array([0.0, 1.0])}, "Xs"),
        "walks.npz": (load_walks, {**{k: np.zeros(2) for k in _KEYS}, "g": ragged}, "g"),
        "demos.npz": (load_demos, {"format": np.array(DEMO_FORMAT), **{k: np.zeros(2) for k in DEMO_KEYS},
                                   "meta": ragged}, "meta"),
        "traj.npz": (read_trajectory, {"times": np.zeros(2), "states": ragged}, "states"),
    }
    for name, (reader, arrays, bad) in cases.items():
        f = _save(tmp_path / name, **arrays)
        with pytest.raises(InputError, match=rf"{name}: array '{bad}' is an object array \(pickled"):
            reader(f)
