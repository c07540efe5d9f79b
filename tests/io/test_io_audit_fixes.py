"""Fixes from the trajectory I/O audit: precision of text formats, graph index and elements with a topology,
empty trajectories, reserved XYZ names, frame comments, periodic cells, bad values in files."""
import gzip
import warnings

import numpy as np
import pytest
import torch

from sciflow.cli import main
from sciflow.core.errors import InputError
from sciflow.core.trajectory import Trajectory
from sciflow.io import read_trajectory, write_samples, write_trajectory

WATER = {"atomic_numbers": torch.tensor([8, 1, 1])}


def _water64() -> Trajectory:
    return Trajectory(times=torch.tensor([1e8, 1e8 + 1, 1e8 + 2], dtype=torch.float64),
                      states=torch.full((3, 3, 3), 1.23456789, dtype=torch.float64), extras=WATER,
                      step_extras={"energy": torch.tensor([-76.4012345678, -76.4012345679, -76.401234568],
                                                          dtype=torch.float64)})


# -- 1. text formats read back float64 data without loss; a dtype that merges times is refused -------------------
@pytest.mark.parametrize("suffix", [".xyz", ".pdb", ".csv"])
def test_text_formats_give_float64_data_back_exactly(tmp_path, suffix):
    traj = _water64()
    back = read_trajectory(write_trajectory(tmp_path / f"w{suffix}", traj))
    assert back.times.dtype == torch.float64 and back.states.dtype == torch.float64
    assert back.times.tolist() == traj.times.tolist()
    if suffix == ".xyz":
        assert back.step_extras["energy"].tolist() == traj.step_extras["energy"].tolist()
        torch.testing.assert_close(back.states, traj.states, atol=1e-9, rtol=0)
    if suffix == ".pdb":                                # the 3 decimals in the file, exactly
        assert torch.equal(back.states, torch.full((3, 3, 3), 1.235, dtype=torch.float64))


def test_export_keeps_float64_energies_and_times(tmp_path):
    src = write_trajectory(tmp_path / "in.xyz", _water64())
    assert main(["export", str(src), str(tmp_path / "out.xyz")]) == 0
    assert main(["export", str(tmp_path / "out.xyz"), str(tmp_path / "out.npz")]) == 0
    back = read_trajectory(tmp_path / "out.npz")
    assert back.step_extras["energy"].tolist() == [-76.4012345678, -76.4012345679, -76.401234568]
    assert back.times.tolist() == [1e8, 1e8 + 1, 1e8 + 2]


def test_files_from_elsewhere_are_read_as_float64(tmp_path):
    (tmp_path / "f.xyz").write_text("1\ntime=100000001 energy=-76.4012345678\nH 0 0 0.123456789\n")
    back = read_trajectory(tmp_path / "f.xyz")
    assert back.states.dtype == torch.float64 and back.times.tolist() == [100000001.0]
    assert back.step_extras["energy"].tolist() == [-76.4012345678]
    (tmp_path / "f.csv").write_text("frame,time,row,x0\n0,0,0,0.1\n1,1,0,0.2\n")
    assert read_trajectory(tmp_path / "f.csv").states[:, 0, 0].tolist() == [0.1, 0.2]


@pytest.mark.parametrize("suffix", [".xyz", ".pdb", ".csv"])
@pytest.mark.parametrize("times", [[1e8, 1e8 + 1, 1e8 + 2], [1e8, 1e8 + 1, 1e8 + 16]])
def test_a_dtype_that_merges_distinct_times_is_refused_naming_the_file(tmp_path, suffix, times):
    traj = Trajectory(times=torch.tensor(times, dtype=torch.float64), states=torch.zeros(3, 3, 3), extras=WATER)
    path = write_trajectory(tmp_path / f"t{suffix}", traj)
    with pytest.raises(InputError, match=rf"dtype: torch.float32 cannot tell the times of .*t\{suffix}' apart: "
                                         r"frames 0 and 1"):
        read_trajectory(path, dtype=torch.float32)


# -- 2. a topology keeps the graph index in PDB output ---------------------------------------------------------------
def test_pdb_with_a_topology_keeps_the_graph_index(tmp_path, graph_batch):
    top = write_trajectory(tmp_path / "top.pdb", graph_batch.frames(0))
    back = read_trajectory(write_trajectory(tmp_path / "b.pdb", graph_batch, topology=str(top)))
    assert torch.equal(back.extras["batch"], graph_batch.extras["batch"])
    dcd = write_trajectory(tmp_path / "b.dcd", graph_batch, topology=str(top))
    again = read_trajectory(write_trajectory(tmp_path / "c.pdb", read_trajectory(dcd, top=str(top)),
                                             topology=str(top)))
    assert torch.equal(again.extras["batch"], graph_batch.extras["batch"])


# -- 3. / 8. a topology must match the trajectory's elements, and XYZ needs real elements ---------------------------
@pytest.mark.parametrize("suffix", [".xyz", ".pdb"])
def test_a_topology_with_other_elements_is_refused(tmp_path, suffix):
    hho = write_trajectory(tmp_path / "hho.pdb", Trajectory(torch.zeros(1), torch.zeros(1, 3, 3),
                                                             extras={"atomic_numbers": torch.tensor([1, 1, 8])}))
    water = Trajectory(torch.arange(2.0), torch.rand(2, 3, 3), extras=WATER)
    with pytest.raises(InputError, match=r"topology: atom 0 is H \(Z=1\) but traj.extras\['atomic_numbers'\] gives "
                                         r"O \(Z=8\)"):
        write_trajectory(tmp_path / f"w{suffix}", water, topology=str(hho))
    assert not (tmp_path / f"w{suffix}").exists()
    bare = Trajectory(torch.arange(2.0), torch.rand(2, 3, 3))       # no elements of its own: the topology's
    assert read_trajectory(write_trajectory(tmp_path / f"b{suffix}", bare, topology=str(hho))
                           ).extras["atomic_numbers"].tolist() == [1, 1, 8]


def test_xyz_refuses_a_topology_with_a_virtual_site(tmp_path):
    import mdtraj as md
    top = md.Topology()
    res = top.add_residue("HOH", top.add_chain())
    for name, el in (("O", md.element.oxygen), ("H1", md.element.hydrogen), ("M", md.element.virtual)):
        top.add_atom(name, el, res)
    with pytest.raises(InputError, match=r"topology: atom 2 has no chemical element .*\.xyz files hold elements"):
        write_trajectory(tmp_path / "v.xyz", Trajectory(torch.arange(2.0), torch.rand(2, 3, 3)), topology=top)
    assert not (tmp_path / "v.xyz").exists()


# -- 4. empty trajectories ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".xyz", ".pdb", ".dcd", ".csv"])
@pytest.mark.parametrize("shape", [(0, 3, 3), (2, 0, 3)])
def test_an_empty_trajectory_is_refused_where_the_format_cannot_hold_it(tmp_path, suffix, shape):
    z = WATER if shape[1] else {"atomic_numbers": torch.zeros(0, dtype=torch.long)}
    traj = Trajectory(torch.arange(float(shape[0])), torch.zeros(shape), extras=z)
    with pytest.raises(InputError, match=rf"traj.states: the trajectory is empty .*a \{suffix} file cannot hold"):
        write_trajectory(tmp_path / f"e{suffix}", traj)
    assert list(tmp_path.iterdir()) == []
    assert read_trajectory(write_trajectory(tmp_path / "e.npz", traj)).states.shape == shape


# -- 5. virial ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("key", ["virial", "Virial"])
def test_xyz_refuses_a_per_frame_value_named_virial(tmp_path, key):
    traj = Trajectory(torch.arange(2.0), torch.zeros(2, 1, 3), extras={"atomic_numbers": torch.tensor([1])},
                      step_extras={key: torch.tensor([1.5, 2.5])})
    with pytest.raises(InputError, match=f"step_extras: key '{key}' is a name extended XYZ or ASE uses"):
        write_trajectory(tmp_path / "v.xyz", traj)


# -- 6. Trajectory.frames keeps the comments of the frames it keeps -------------------------------------------------
def test_frames_keeps_the_comments_of_its_frames(tmp_path, molecule):
    notes = molecule.info["comments"]
    assert molecule.frames(slice(1, 3)).info["comments"] == notes[1:3]
    assert molecule.frames([4, 0]).info["comments"] == [notes[4], notes[0]]
    assert molecule.frames(torch.tensor([2])).info["comments"] == [notes[2]]
    assert molecule.frames(-1).info["comments"] == [notes[4]]
    back = read_trajectory(write_trajectory(tmp_path / "two.xyz", molecule.frames(slice(0, 2))))
    assert back.info["comments"] == notes[:2]


# -- 7. extended-XYZ cell and pbc; dropped per-atom arrays are named --------------------------------------------------
def test_extxyz_cell_and_pbc_round_trip_and_dropped_arrays_warn(tmp_path):
    src = tmp_path / "cell.extxyz"
    src.write_text('2\nLattice="5.0 0.0 0.0 0.0 5.0 0.0 0.0 0.0 5.0" Properties=species:S:1:pos:R:3:forces:R:3 '
                   'energy=-10.5 pbc="T T F"\nSi 0.0 0.0 0.0 0.1 0.2 0.3\nSi 1.3 1.3 1.3 -0.1 -0.2 -0.3\n')
    with pytest.warns(UserWarning, match=r"cell\.extxyz.*forces are not read"):
        traj = read_trajectory(src)
    assert traj.info["cell"] == [[5.0, 0, 0], [0, 5.0, 0], [0, 0, 5.0]] and traj.info["pbc"] == [True, True, False]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        back = read_trajectory(write_trajectory(tmp_path / "out.extxyz", traj))
    assert back.info["cell"] == traj.info["cell"] and back.info["pbc"] == [True, True, False]
    moving = Trajectory(torch.arange(2.0), torch.zeros(2, 1, 3), extras={"atomic_numbers": torch.tensor([1])},
                        step_extras={"cell": torch.stack([torch.eye(3) * 4, torch.eye(3) * 5])})
    back = read_trajectory(write_trajectory(tmp_path / "npt.xyz", moving))
    assert torch.equal(back.step_extras["cell"], moving.step_extras["cell"]) and back.info["pbc"] == [True] * 3


# -- 9. PDB and superheavy elements ---------------------------------------------------------------------------------
def test_pdb_refuses_elements_it_cannot_write(tmp_path):
    traj = Trajectory(torch.zeros(1), torch.zeros(1, 2, 3), extras={"atomic_numbers": torch.tensor([1, 112])})
    with pytest.raises(InputError, match=r"atomic_numbers: atom 1 is element 112; PDB files .* 1\.\.111"):
        write_trajectory(tmp_path / "z.pdb", traj)
    assert not (tmp_path / "z.pdb").exists()


# -- 10. write_samples of one molecule ------------------------------------------------------------------------------
def test_write_samples_of_a_molecule_without_graph_index_writes_one_file(tmp_path, molecule):
    paths = write_samples(str(tmp_path / "m_{i}.xyz"), molecule)
    assert [p.name for p in paths] == ["m_0.xyz"]
    assert read_trajectory(paths[0]).states.shape == molecule.states.shape


# -- 11. a gzipped PDB as DCD topology ------------------------------------------------------------------------------
def test_dcd_reads_with_a_gzipped_pdb_topology(tmp_path, graph_batch):
    top = write_trajectory(tmp_path / "top.pdb", graph_batch.frames(0))
    gz = tmp_path / "top.pdb.gz"
    gz.write_bytes(gzip.compress(top.read_bytes()))
    dcd = write_trajectory(tmp_path / "g.dcd", graph_batch)
    back = read_trajectory(dcd, top=str(gz))
    assert back.states.shape == graph_batch.states.shape
    assert torch.equal(back.extras["batch"], graph_batch.extras["batch"])


# -- 12. XYZ time= and energy= that are not numbers ----------------------------------------------------------------
@pytest.mark.parametrize(("text", "msg"), [
    ("1\ntime=start\nH 0 0 0\n1\ntime=end\nH 0 0 1\n", r"frame 0 \(comment line 2\): time='start' is not a number"),
    ("1\ntime=0\nH 0 0 0\n1\ntime=T\nH 0 0 1\n", r"frame 1 \(comment line 5\): time=True is not a number"),
    ("1\nenergy=high\nH 0 0 0\n", r"frame 0 \(comment line 2\): energy='high' is not a number"),
    ("1\ntime=0.0\nH 0 0 0\n1\ntime=1.0\nH 0 0 1\n1\ntime=0.0\nH 0 0 0\n", r"times must be strictly increasing"),
    ("1\ntime=0.0\nH 0 0 0\n1\nlast\nH 0 0 1\n", r"frame 1 .*has no time= while frame 0 has one"),
])
def test_xyz_values_that_are_not_numbers_are_refused_naming_file_and_frame(tmp_path, text, msg):
    (tmp_path / "v.xyz").write_text(text)
    with pytest.raises(InputError, match=r"path: '.*v\.xyz'.*" + msg):
        read_trajectory(tmp_path / "v.xyz")


# -- 13. DCD coordinates beyond float32 -----------------------------------------------------------------------------
def test_dcd_refuses_coordinates_beyond_float32(tmp_path):
    traj = Trajectory(torch.zeros(1), torch.full((1, 1, 3), 1e39, dtype=torch.float64))
    with pytest.raises(InputError, match=r"traj.states: DCD files hold float32 coordinates"):
        write_trajectory(tmp_path / "big.dcd", traj)
    assert not (tmp_path / "big.dcd").exists()


# -- 15. npz files with text arrays or bad info; comments of the wrong type -----------------------------------------
def test_npz_with_text_arrays_or_bad_info_is_refused_naming_file_and_array(tmp_path):
    base = {"times": np.arange(2.0), "states": np.zeros((2, 1, 3))}
    cases = {"str.npz": ({**base, "states": np.full((2, 1, 3), "a")}, r"array 'states' holds <U1 values \(text\)"),
             "strx.npz": ({**base, "extras/name": np.asarray(["x"])}, r"array 'extras/name' holds <U1 values"),
             "json.npz": ({**base, "info": np.asarray("{bad")}, r"'info' is not valid JSON"),
             "list.npz": ({**base, "info": np.asarray("[1, 2]")}, r"'info' must be a JSON object .*got list"),
             "t2d.npz": ({**base, "times": np.zeros((2, 1))}, r"Trajectory.times: expected a 1-D tensor")}
    for name, (arrays, msg) in cases.items():
        np.savez(tmp_path / name, **arrays)
        with pytest.raises(InputError, match=rf"path: '.*{name}': " + msg):
            read_trajectory(tmp_path / name)


@pytest.mark.parametrize("comments", [5, ["a", 5]])
def test_comments_that_are_not_strings_are_refused(tmp_path, comments):
    traj = Trajectory(torch.arange(2.0), torch.zeros(2, 1, 3), extras={"atomic_numbers": torch.tensor([1])})
    with pytest.raises(InputError, match=r"comments: expected one string for every frame or a list of 2 strings"):
        write_trajectory(tmp_path / "c.xyz", traj, comments=comments)


def test_csv_float32_detection_agrees_with_formatting_each_value():
    """The vectorised check (``_float32_text``) gives the same answer as printing every distinct value with
    ``%.9g``, across float32's exponent range, ties, zeros, denormals and values with too many digits."""
    from sciflow.io.table import _float32_text

    def printed_one_by_one(values: np.ndarray) -> bool:
        return all(float(f"{np.float32(v):.9g}") == v for v in np.unique(values))

    rng = np.random.default_rng(1)
    for trial in range(120):
        f32 = (rng.standard_normal(40) * 10.0 ** rng.integers(-44, 38)).astype(np.float32)
        text = np.array([float(f"{v:.9g}") for v in f32])
        for values in (text, text * (1 + 1e-12), f32.astype(np.float64), np.round(text, 3),
                       np.array([0.0, -0.0, 1e8, 123456789.0, 0.5, 2.5, 1e-45, 3.4028235e38])):
            values = values[np.isfinite(values)]
            assert _float32_text(values) == printed_one_by_one(values), (trial, values)
    assert _float32_text(np.array([0.100000001, 1.0, 0.5]))           # float32 0.1 prints as 0.100000001
    assert not _float32_text(np.array([0.1, 1.0]))                        # ... so "0.1" needs float64
