"""Every format writes and reads back what it can hold, to the precision of the format, and the files open in
the native libraries."""
import numpy as np
import pytest
import torch

from sciflow.core.errors import InputError
from sciflow.core.trajectory import Trajectory
from sciflow.io import formats, read_trajectory, write_samples, write_trajectory

# precision of each format's coordinates in Å: XYZ 8 decimals, PDB 3 decimals, DCD float32
ATOL = {".xyz": 1e-7, ".extxyz": 1e-7, ".pdb": 5.1e-4, ".dcd": 1e-5}


def test_every_format_has_a_writer_and_a_reader():
    table = formats()
    assert set(table) == {".npz", ".xyz", ".extxyz", ".pdb", ".dcd", ".csv"}
    assert all({"write", "read"} <= set(v) for v in table.values())


def test_npz_is_exact(tmp_path, molecule):
    traj = Trajectory(molecule.times.double(), molecule.states, extras={**molecule.extras, "flag": torch.tensor(
        [True, False])}, step_extras={**molecule.step_extras, "e2": torch.randn(5, 2)},
        info={**molecule.info, "solver": "euler", "nfe": 20, "nested": {"a": [1, 2.5]}})
    back = read_trajectory(write_trajectory(tmp_path / "t.npz", traj, note="kept"))
    assert torch.equal(back.times, traj.times) and back.times.dtype == torch.float64
    assert torch.equal(back.states, traj.states) and back.states.dtype == torch.float32
    assert set(back.extras) == set(traj.extras) and set(back.step_extras) == set(traj.step_extras)
    for k, v in traj.extras.items():
        assert torch.equal(back.extras[k], v) and back.extras[k].dtype == v.dtype
    for k, v in traj.step_extras.items():
        assert torch.equal(back.step_extras[k], v)
    assert back.info == {**traj.info, "note": "kept"}
    with np.load(tmp_path / "t.npz", allow_pickle=False) as d:   # a plain archive, no pickles
        assert str(d["format"]) == "sciflow.trajectory/1"


@pytest.mark.parametrize("suffix", [".xyz", ".extxyz", ".pdb"])
def test_molecular_round_trip_keeps_positions_times_energies(tmp_path, molecule, suffix):
    back = read_trajectory(write_trajectory(tmp_path / f"m{suffix}", molecule))
    assert back.states.shape == molecule.states.shape
    torch.testing.assert_close(back.states, molecule.states, atol=ATOL[suffix], rtol=0)
    torch.testing.assert_close(back.times, molecule.times, atol=1e-7, rtol=0)
    torch.testing.assert_close(back.step_extras["energy"], molecule.step_extras["energy"], atol=1e-6, rtol=0)
    assert torch.equal(back.extras["atomic_numbers"], molecule.extras["atomic_numbers"])
    if suffix != ".pdb":
        assert back.info["comments"] == molecule.info["comments"]


def test_xyz_opens_in_ase_with_energies_and_comments(tmp_path, molecule):
    import ase.io
    path = write_trajectory(tmp_path / "m.xyz", molecule, comments="same note")
    frames = ase.io.read(path, index=":")
    assert len(frames) == 5 and all(len(a) == 6 for a in frames)
    assert frames[0].get_chemical_symbols() == ["C", "C", "O", "H", "H", "N"]
    np.testing.assert_allclose([a.get_potential_energy() for a in frames], molecule.step_extras["energy"].numpy(),
                               atol=1e-6)
    np.testing.assert_allclose(frames[3].positions, molecule.states[3].numpy(), atol=1e-6)
    assert read_trajectory(path).info["comments"] == ["same note"] * 5


def test_xyz_comments_and_scalars_come_back_as_written(tmp_path):
    """Comments come back as the text written (ASE's reader alone would turn '42' into an int, 'T' into True,
    '1 2 3' into an array and drop backslashes), tabs as spaces; per-frame scalars named like ASE calculator
    properties (free_energy, magmom) come back too."""
    notes = ["42", "3.5", "T", "C:\\data\\run1", "1 2 3", " ", 'say "hi" \\o/', "a=b c", "tab\there", "it's"]
    t = len(notes)
    traj = Trajectory(times=torch.arange(t, dtype=torch.float32), states=torch.zeros(t, 1, 3),
                      extras={"atomic_numbers": torch.tensor([1])},
                      step_extras={"free_energy": torch.arange(t) + 0.5, "magmom": torch.arange(t) * 2.0,
                                   "step": torch.arange(t) * 1.0})
    back = read_trajectory(write_trajectory(tmp_path / "c.xyz", traj, comments=notes))
    assert back.info["comments"] == [n.replace("\t", " ") for n in notes]
    for key in ("free_energy", "magmom", "step"):
        torch.testing.assert_close(back.step_extras[key], traj.step_extras[key].float())


def test_plain_xyz_from_elsewhere_reads_with_its_comment_lines(tmp_path):
    path = tmp_path / "plain.xyz"
    path.write_text("2\nwater-ish frame one\nO 0 0 0\nH 0 0 0.96\n2\nframe two\nO 0 0 0\nH 0 0 0.97\n")
    back = read_trajectory(path)
    assert back.states.shape == (2, 2, 3) and back.extras["atomic_numbers"].tolist() == [8, 1]
    assert back.info["comments"] == ["water-ish frame one", "frame two"]
    assert back.times.tolist() == [0.0, 1.0]
    assert float(back.states[1, 1, 2]) == pytest.approx(0.97)


def test_two_dimensional_states_are_padded_and_restored(tmp_path):
    traj = Trajectory(torch.linspace(0, 1, 3), torch.randn(3, 4, 2), extras={"atomic_numbers": torch.full((4,), 6)})
    import ase.io
    for suffix in (".xyz", ".pdb"):
        path = write_trajectory(tmp_path / f"flat{suffix}", traj)
        back = read_trajectory(path)
        assert back.states.shape == (3, 4, 2)
        torch.testing.assert_close(back.states, traj.states, atol=ATOL[suffix], rtol=0)
    assert np.all(ase.io.read(tmp_path / "flat.xyz").positions[:, 2] == 0.0)


def test_pdb_opens_in_mdtraj_in_nanometres(tmp_path, molecule):
    import mdtraj as md
    path = write_trajectory(tmp_path / "m.pdb", molecule)
    t = md.load(str(path))
    assert t.n_frames == 5 and t.n_atoms == 6 and t.n_residues == 1
    np.testing.assert_allclose(t.xyz[2] * 10.0, molecule.states[2].numpy(), atol=6e-4)
    assert [a.name for a in t.topology.atoms] == ["C1", "C2", "O1", "H1", "H2", "N1"]


def test_pdb_of_a_graph_batch_has_one_residue_per_sample(tmp_path, graph_batch):
    import mdtraj as md
    path = write_trajectory(tmp_path / "batch.pdb", graph_batch.frames(slice(0, 4)).samples([0, 1, 2]))
    t = md.load(str(path))
    assert t.n_residues == 3 and [r.n_atoms for r in t.topology.residues] == [2, 3, 2]
    back = read_trajectory(path)
    assert torch.equal(back.extras["batch"], graph_batch.extras["batch"])
    torch.testing.assert_close(back.states, graph_batch.states, atol=ATOL[".pdb"], rtol=0)
    torch.testing.assert_close(back.step_extras["energy"], graph_batch.step_extras["energy"], atol=1e-6, rtol=0)


def test_dcd_round_trip_with_a_pdb_topology(tmp_path, graph_batch):
    import mdtraj as md
    top = write_trajectory(tmp_path / "top.pdb", graph_batch.frames(0))
    path = write_trajectory(tmp_path / "t.dcd", graph_batch, topology=top)
    t = md.load(str(path), top=str(top))
    assert t.n_frames == 4 and t.n_atoms == 7
    np.testing.assert_allclose(t.xyz * 10.0, graph_batch.states.numpy(), atol=1e-5)
    back = read_trajectory(path, top=top)
    torch.testing.assert_close(back.states, graph_batch.states, atol=ATOL[".dcd"], rtol=0)
    assert torch.equal(back.extras["atomic_numbers"], graph_batch.extras["atomic_numbers"])
    assert torch.equal(back.extras["batch"], graph_batch.extras["batch"])   # from the sciflow PDB's remarks
    assert back.times.tolist() == [0.0, 1.0, 2.0, 3.0]                       # DCD holds no times
    back2 = read_trajectory(path, top=md.load_topology(str(top)))
    torch.testing.assert_close(back2.states, back.states)


def test_given_topology_is_used_for_pdb_and_xyz(tmp_path, molecule):
    top = write_trajectory(tmp_path / "top.pdb", molecule.frames(0))
    bare = Trajectory(molecule.times, molecule.states)       # no atomic numbers of its own
    back = read_trajectory(write_trajectory(tmp_path / "again.pdb", bare, topology=top))
    assert torch.equal(back.extras["atomic_numbers"], molecule.extras["atomic_numbers"])
    back = read_trajectory(write_trajectory(tmp_path / "again.xyz", bare, topology=str(top)))
    assert torch.equal(back.extras["atomic_numbers"], molecule.extras["atomic_numbers"])


def test_symbols_meta_names_the_elements(tmp_path):
    traj = Trajectory(torch.zeros(2), torch.randn(2, 3, 3))
    back = read_trajectory(write_trajectory(tmp_path / "s.xyz", traj, symbols=["o", "H", "H"]))
    assert back.extras["atomic_numbers"].tolist() == [8, 1, 1]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_csv_round_trip_is_exact_for_its_dtype(tmp_path, dtype):
    g = torch.Generator().manual_seed(3)
    traj = Trajectory(torch.linspace(0, 10, 7, dtype=dtype), torch.randn(7, 5, 2, generator=g, dtype=dtype) * 1e3)
    path = write_trajectory(tmp_path / "pop.csv", traj)
    assert path.read_text().splitlines()[0] == "frame,time,row,x0,x1"
    back = read_trajectory(path, dtype=dtype)
    assert torch.equal(back.states, traj.states) and torch.equal(back.times, traj.times)
    flat = Trajectory(torch.arange(3.0), torch.randn(3, 4, generator=g))
    back = read_trajectory(write_trajectory(tmp_path / "flat.csv", flat))
    assert back.states.shape == (3, 4) and torch.equal(back.states, flat.states)


def test_csv_rows_in_any_order(tmp_path):
    path = tmp_path / "shuffled.csv"
    path.write_text("frame,time,row,x0\n1,0.5,1,4\n0,0,1,2\n1,0.5,0,3\n0,0,0,1\n")
    back = read_trajectory(path)
    assert back.states[..., 0].tolist() == [[1, 2], [3, 4]] and back.times.tolist() == [0.0, 0.5]


def test_write_samples_writes_one_file_per_graph(tmp_path, graph_batch):
    paths = write_samples(str(tmp_path / "s_{i:02d}.xyz"), graph_batch, comments="generated")
    assert [p.name for p in paths] == ["s_00.xyz", "s_01.xyz", "s_02.xyz"]
    for i, p in enumerate(paths):
        back = read_trajectory(p)
        one = graph_batch.samples([i])
        torch.testing.assert_close(back.states, one.states, atol=1e-7, rtol=0)
        assert torch.equal(back.extras["atomic_numbers"], one.extras["atomic_numbers"])
        torch.testing.assert_close(back.step_extras["energy"], graph_batch.step_extras["energy"][:, i], atol=1e-6,
                                   rtol=0)
    z = graph_batch.extras["atomic_numbers"].tolist()
    bare = Trajectory(graph_batch.times, graph_batch.states, extras={"batch": graph_batch.extras["batch"]})
    paths = write_samples(str(tmp_path / "b_{i}.pdb"), bare, atomic_numbers=z)
    assert read_trajectory(paths[1]).extras["atomic_numbers"].tolist() == z[2:5]


def test_write_samples_is_all_or_nothing_and_names_the_bad_sample(tmp_path, graph_batch):
    z = graph_batch.extras["atomic_numbers"].clone()
    rows = (graph_batch.extras["batch"] == 1).nonzero().squeeze(1)
    z[rows[0]] = 200                                                # sample 1 holds an impossible element
    bad = Trajectory(graph_batch.times, graph_batch.states, extras={**graph_batch.extras, "atomic_numbers": z})
    (tmp_path / "s_0.xyz").write_text("kept\n")
    with pytest.raises(InputError, match=r"sample 1 \(s_1.xyz\): .*200"):
        write_samples(str(tmp_path / "s_{i}.xyz"), bad)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s_0.xyz"]   # nothing new, no temporary left
    assert (tmp_path / "s_0.xyz").read_text() == "kept\n"              # and nothing replaced
