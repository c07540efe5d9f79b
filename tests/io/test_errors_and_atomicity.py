"""Writes are atomic; bad input raises InputError naming the field before anything is written."""
import subprocess
import sys

import pytest
import torch

from sciflow.core.errors import InputError
from sciflow.core.trajectory import Trajectory
from sciflow.io import WRITERS, read_trajectory, write_trajectory, writer


def _only(folder):
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture
def failing_format():
    """A '.half' format whose writer writes part of the file, then fails."""
    @writer(".half", keywords=())
    def half(path, traj):
        path.write_text("partial content\n")
        raise RuntimeError("disk full (simulated)")
    yield ".half"
    WRITERS.pop(".half")


def test_a_writer_that_fails_midway_leaves_nothing_behind(tmp_path, molecule, failing_format):
    with pytest.raises(RuntimeError, match="simulated"):
        write_trajectory(tmp_path / "new.half", molecule)
    assert _only(tmp_path) == []
    existing = tmp_path / "old.half"
    existing.write_text("the previous, complete file\n")
    with pytest.raises(RuntimeError):
        write_trajectory(existing, molecule)
    assert existing.read_text() == "the previous, complete file\n" and _only(tmp_path) == ["old.half"]


def test_a_failing_library_call_keeps_the_existing_xyz(tmp_path, molecule, monkeypatch):
    import ase.io
    path = write_trajectory(tmp_path / "m.xyz", molecule)
    before = path.read_bytes()

    def broken(filename, images, **kw):
        with open(filename, "w") as fh:
            fh.write("6\nhalf a frame\nC 0 0 0\n")
        raise OSError("interrupted")
    monkeypatch.setattr(ase.io, "write", broken)
    with pytest.raises(OSError):
        write_trajectory(path, Trajectory(molecule.times, molecule.states * 2, extras=molecule.extras))
    assert path.read_bytes() == before and _only(tmp_path) == ["m.xyz"]


def test_unknown_suffix_lists_the_known_ones(tmp_path, molecule):
    with pytest.raises(InputError, match=r"suffix '\.mol2'.*known: \.csv, \.dcd, \.extxyz, \.npz, \.pdb, \.xyz"):
        write_trajectory(tmp_path / "a.mol2", molecule)
    with pytest.raises(InputError, match="suffix '.foo'"):
        read_trajectory(tmp_path / "a.foo")
    with pytest.raises(InputError, match="(none)"):
        write_trajectory(tmp_path / "noext", molecule)


@pytest.mark.parametrize("suffix", [".npz", ".xyz", ".pdb", ".csv", ".dcd"])
def test_nan_states_are_refused_before_writing(tmp_path, molecule, suffix):
    states = molecule.states.clone()
    states[2, 3, 1] = float("nan")
    with pytest.raises(InputError, match=r"traj\.states: holds 1 non-finite value\(s\), first at index \(2, 3, 1\)"):
        write_trajectory(tmp_path / f"x{suffix}", Trajectory(molecule.times, states, extras=molecule.extras))
    assert _only(tmp_path) == []


@pytest.mark.parametrize("suffix", [".xyz", ".extxyz", ".pdb", ".dcd"])
@pytest.mark.parametrize("shape", [(3, 4), (3, 4, 4), (3, 4, 3, 1)])
def test_molecular_formats_need_atoms_in_two_or_three_dimensions(tmp_path, suffix, shape):
    traj = Trajectory(torch.arange(3.0), torch.zeros(shape), extras={"atomic_numbers": torch.ones(4, dtype=torch.long)})
    with pytest.raises(InputError, match=r"traj\.states: .*\(T, n_atoms, 3\).*got shape"):
        write_trajectory(tmp_path / f"x{suffix}", traj)
    assert _only(tmp_path) == []


def test_xyz_refuses_a_batch_of_several_graphs(tmp_path, graph_batch):
    with pytest.raises(InputError, match=r"extras\['batch'\]: .*3 samples.*traj\.samples\(\[i\]\).*write_samples"):
        write_trajectory(tmp_path / "b.xyz", graph_batch)
    write_trajectory(tmp_path / "one.xyz", graph_batch.samples([1]))   # one graph is fine


@pytest.mark.parametrize("key", ["time", "pbc", "Lattice", "Properties", "stress", "forces"])
def test_xyz_refuses_per_frame_values_named_like_its_own_fields(tmp_path, key):
    """'time' and 'pbc' were dropped, 'Lattice' / 'Properties' gave an unreadable file, 'stress' crashed in ASE."""
    traj = Trajectory(torch.arange(2.0), torch.zeros(2, 1, 3), extras={"atomic_numbers": torch.tensor([1])},
                      step_extras={key: torch.tensor([1.5, 2.5])})
    with pytest.raises(InputError, match=f"step_extras: key '{key}' is a name extended XYZ or ASE uses"):
        write_trajectory(tmp_path / "a.xyz", traj)
    assert _only(tmp_path) == []
    traj = Trajectory(torch.arange(2.0), torch.zeros(2, 1, 3), extras={"atomic_numbers": torch.tensor([1])},
                      step_extras={"energy": torch.tensor([1.5, 2.5]), "rmsd": torch.tensor([0.1, 0.2])})
    back = read_trajectory(write_trajectory(tmp_path / "b.xyz", traj))
    torch.testing.assert_close(back.step_extras["rmsd"], traj.step_extras["rmsd"])


def test_missing_or_bad_atomic_numbers(tmp_path):
    traj = Trajectory(torch.arange(2.0), torch.zeros(2, 3, 3))
    with pytest.raises(InputError, match="atomic_numbers: .xyz files need the element"):
        write_trajectory(tmp_path / "a.xyz", traj)
    with pytest.raises(InputError, match=r"atomic_numbers: expected one entry per atom \(3\)"):
        write_trajectory(tmp_path / "a.pdb", traj, atomic_numbers=[1, 1])
    with pytest.raises(InputError, match="atomic_numbers: expected integers .* symbols="):
        write_trajectory(tmp_path / "a.xyz", traj, atomic_numbers=["O", "H", "H"])
    with pytest.raises(InputError, match="atomic_numbers: entry 1 is 0"):
        write_trajectory(tmp_path / "a.xyz", traj, atomic_numbers=[1, 0, 1])
    with pytest.raises(InputError, match="symbols: entry 2 is 'Qq'"):
        write_trajectory(tmp_path / "a.xyz", traj, symbols=["H", "H", "Qq"])
    assert _only(tmp_path) == []


def test_unknown_meta_and_read_keywords_are_named(tmp_path, molecule):
    with pytest.raises(InputError, match="meta: unknown keyword 'coments' for .xyz files; known: atomic_numbers"):
        write_trajectory(tmp_path / "m.xyz", molecule, coments=["x"] * 5)
    path = write_trajectory(tmp_path / "m.npz", molecule)
    with pytest.raises(InputError, match="read_trajectory: unknown keyword 'topology'"):
        read_trajectory(path, topology="x.pdb")
    csv = write_trajectory(tmp_path / "m.csv", molecule)
    with pytest.raises(InputError, match="dtype: expected a floating torch dtype"):
        read_trajectory(csv, dtype=torch.int64)


def test_comments_must_match_the_frames(tmp_path, molecule):
    with pytest.raises(InputError, match=r"comments: expected one per frame \(5\), got 2"):
        write_trajectory(tmp_path / "m.xyz", molecule, comments=["a", "b"])
    with pytest.raises(InputError, match="single line"):
        write_trajectory(tmp_path / "m.xyz", molecule, comments="two\nlines")


def test_dcd_reading_needs_a_topology(tmp_path, molecule):
    path = write_trajectory(tmp_path / "m.dcd", molecule)
    with pytest.raises(InputError, match="top: reading .*needs a topology.*PDB path"):
        read_trajectory(path)
    with pytest.raises(InputError, match="top: no such file"):
        read_trajectory(path, top=tmp_path / "absent.pdb")
    small = write_trajectory(tmp_path / "small.pdb", molecule.frames(0).rows(slice(0, 3)))
    with pytest.raises(InputError, match="top: has 3 atoms"):
        read_trajectory(path, top=small)
    with pytest.raises(InputError, match="topology: has 3 atoms, the trajectory 6 rows"):
        write_trajectory(tmp_path / "n.dcd", molecule, topology=small)


@pytest.mark.parametrize("suffix", [".npz", ".xyz", ".pdb", ".dcd", ".csv"])
def test_missing_file(tmp_path, suffix):
    with pytest.raises(InputError, match="path: no such file"):
        read_trajectory(tmp_path / f"absent{suffix}", top=tmp_path / "absent.pdb")


def test_malformed_files_raise_input_errors(tmp_path):
    bad = {"a.xyz": "three\nnot a count\n", "a.npz": "not a zip", "a.csv": "x,y\n1,2\n",
           "b.csv": "frame,time,row,x0\n0,0,0,1\n0,0,0,2\n", "c.csv": "frame,time,row,x0\n0,0,0,1\n1,1,1,2\n",
           "d.csv": "frame,time,row,x0\n0,0,0,1\n0,0.5,1,2\n"}
    for name, text in bad.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(InputError, match="path: "):
            read_trajectory(tmp_path / name)
    (tmp_path / "e.xyz").write_text("2\n\nH 0 0 0\nXx 0 0 1\n")
    with pytest.raises(InputError, match="unknown element symbol 'Xx'"):
        read_trajectory(tmp_path / "e.xyz")


def test_pdb_coordinates_out_of_range(tmp_path, molecule):
    with pytest.raises(InputError, match=r"traj\.states: PDB coordinates must lie in"):
        write_trajectory(tmp_path / "far.pdb", Trajectory(molecule.times, molecule.states + 2e4, extras=molecule.extras))


def test_not_a_trajectory(tmp_path):
    with pytest.raises(InputError, match="traj: expected a sciflow Trajectory, got Tensor"):
        write_trajectory(tmp_path / "a.npz", torch.zeros(2, 2, 3))


def test_importing_sciflow_io_loads_neither_ase_nor_mdtraj():
    code = "import sys, sciflow.io; print([m for m in ('ase', 'mdtraj') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_shipped_models_are_found_from_any_working_folder(tmp_path, monkeypatch):
    """The default model paths (``models/<method>``) are relative to the project; run from another folder they
    still find the shipped weights, and a model that is nowhere is a clear error naming both places."""
    from sciflow.methods.base import PROJECT_ROOT, find_model_file
    from sciflow.methods.ditree import DiTree

    monkeypatch.chdir(tmp_path)
    assert find_model_file("models/ditree") == PROJECT_ROOT / "models" / "ditree" / "model.pt"
    found, direct = DiTree.load("models/ditree"), DiTree.load(PROJECT_ROOT / "models" / "ditree")
    a, b = found.model.state_dict(), direct.model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)     # the shipped weights themselves
    (tmp_path / "models" / "ditree").mkdir(parents=True)          # a folder that exists here is never replaced
    with pytest.raises(InputError, match=r"model: no file at models/ditree/model.pt$"):
        DiTree.load("models/ditree")
    with pytest.raises(InputError, match=r"model: no file at nowhere/model.pt \(nor at .*nowhere/model.pt\)"):
        DiTree.load("nowhere")
    with pytest.raises(InputError, match="model: no file at"):
        DiTree.load(tmp_path / "absent")


def test_atomic_writes_get_the_permissions_of_a_plain_write(tmp_path):
    """The temporary file is created 0o600; the renamed result must carry what ``open(path, "w")`` would give."""
    import os

    from sciflow.core.files import atomic_write_json, atomic_write_text

    old = os.umask(0o022)
    try:
        atomic_write_json(tmp_path / "new.json", {"a": 1})
        assert (tmp_path / "new.json").stat().st_mode & 0o777 == 0o644
        kept = tmp_path / "kept.txt"
        kept.write_text("x")
        kept.chmod(0o640)
        atomic_write_text(kept, "y")                        # replacing keeps the existing file's mode
        assert kept.read_text() == "y" and kept.stat().st_mode & 0o777 == 0o640
    finally:
        os.umask(old)


def test_json_outputs_are_standard_json(tmp_path):
    """Metrics with no finite value (a median over no successes) must not write bare NaN/Infinity, which
    JavaScript, jq and most JSON readers refuse; numpy and torch numbers come out as plain numbers."""
    import json
    import math

    import numpy as np
    import torch

    from sciflow.core.files import atomic_write_json, keep_settings

    obj = {"median": float("nan"), "worst": math.inf, "rate": np.float32(0.25), "n": np.int64(3),
           "ok": np.bool_(True), "t": torch.tensor([1.5, float("-inf")]), "pair": (1, 2), 4: "key"}
    atomic_write_json(tmp_path / "m.json", obj)
    text = (tmp_path / "m.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    back = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard token {c}"))
    assert back == {"median": None, "worst": None, "rate": 0.25, "n": 3, "ok": True, "t": [1.5, None],
                    "pair": [1, 2], "4": "key"}
    atomic_write_json(tmp_path / "state.json", {"x": math.nan}, strict=False)   # state files keep NaN
    assert math.isnan(json.loads((tmp_path / "state.json").read_text())["x"])
    # recorded settings holding a non-finite value compare equal to themselves on a re-run
    keep_settings(tmp_path / "settings.json", {"budget": math.inf, "n": np.int64(2)}, "changed: {changed}")
    keep_settings(tmp_path / "settings.json", {"budget": math.inf, "n": 2}, "changed: {changed}")
    with pytest.raises(InputError, match="changed: n"):
        keep_settings(tmp_path / "settings.json", {"budget": math.inf, "n": 3}, "changed: {changed}")


def test_atomic_writes_sync_the_file_before_the_rename_and_the_folder_after(tmp_path, molecule, monkeypatch):
    """Without fsync a power loss after the rename can leave an empty or partial file under the final name."""
    import os
    import stat
    events = []
    fsync, replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append("dir" if stat.S_ISDIR(os.fstat(fd).st_mode)
                                                               else "file"), fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append("rename"), replace(a, b))[1])
    write_trajectory(tmp_path / "a.npz", molecule)
    assert events == ["file", "rename", "dir"]
    events.clear()
    from sciflow.core.training.checkpoint import atomic_save
    atomic_save({"a": torch.zeros(2)}, tmp_path / "c.pt")
    assert events == ["file", "rename", "dir"]

    def no_sync(fd):     # a file system that cannot sync (EINVAL): the write still happens
        raise OSError(22, "Invalid argument")
    monkeypatch.setattr(os, "fsync", no_sync)
    write_trajectory(tmp_path / "b.npz", molecule)
    assert (tmp_path / "b.npz").is_file() and not list(tmp_path.glob("*.tmp*"))

    def failed_sync(fd):  # a disk error (EIO): the old file stays, the temporary one goes
        raise OSError(5, "Input/output error")
    monkeypatch.setattr(os, "fsync", failed_sync)
    before = (tmp_path / "a.npz").read_bytes()
    with pytest.raises(OSError, match="Input/output"):
        write_trajectory(tmp_path / "a.npz", molecule.frames([0]))
    assert (tmp_path / "a.npz").read_bytes() == before and not list(tmp_path.glob("*.tmp*"))
