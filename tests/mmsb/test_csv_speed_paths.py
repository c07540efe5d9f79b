"""The block-wise CSV writers and readers (snapshot CSV, MMSB trajectory CSV): the text is what the former
row-by-row writers wrote (``repr(float)``, CRLF, same header), values read back bit for bit (float64 with 17
significant digits, float32), and bad rows are refused naming the file, the line (blank lines counted) and the
column, the first problem in file order winning."""
from __future__ import annotations

import csv
import io

import numpy as np
import pytest
import torch

from sciflow.core.errors import InputError
from sciflow.core.trajectory import Trajectory
from sciflow.data.snapshots import read_snapshot_csv, write_snapshot_csv
from sciflow.domains.cells.snapshots import Snapshots
from sciflow.methods.mmsb.export import read_trajectories, write_trajectories


def _hard_values(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """float64 values that need all 17 significant digits, over many magnitudes, plus awkward ones."""
    x = rng.standard_normal(shape) * 10.0 ** rng.integers(-12, 20, shape)
    flat = x.reshape(-1)
    flat[:6] = [0.1 + 0.2, -0.0, 1e16, 1e-5, 5e-324, np.nextafter(1.0, 2.0)]
    return x


def _snapshots(dtype: torch.dtype, seed: int = 0) -> Snapshots:
    rng = np.random.default_rng(seed)
    xs = [torch.as_tensor(_hard_values(rng, (n, 3))).to(dtype) for n in (40, 25, 33)]
    return Snapshots.from_arrays(xs, [0.1, 1 / 3, 2.0 / 3 + 1e-9], dtype=dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_snapshot_csv_round_trip_is_exact(tmp_path, dtype):
    snaps = _snapshots(dtype)
    back = read_snapshot_csv(write_snapshot_csv(tmp_path / "s.csv", snaps))
    assert back.times.tolist() == snaps.times.double().tolist()
    for a, b in zip(snaps.samples, back.samples):
        assert torch.equal(a.double(), b)
        assert torch.equal(b.to(dtype), a)


def test_snapshot_csv_text_is_what_the_row_writer_wrote(tmp_path):
    snaps = _snapshots(torch.float64, seed=1)
    path = write_snapshot_csv(tmp_path / "s.csv", snaps, columns=["a", "b,c", 'say "x"'], time_column="t")
    ref = io.StringIO(newline="")
    w = csv.writer(ref)
    w.writerow(["t", "a", "b,c", 'say "x"'])
    for t, s in zip(snaps.times.tolist(), snaps.samples):
        for row in s.numpy():
            w.writerow([repr(t), *(repr(float(v)) for v in row)])
    assert path.read_bytes().decode() == ref.getvalue()


def _trajectory(dtype: torch.dtype) -> Trajectory:
    rng = np.random.default_rng(2)
    states = torch.as_tensor(_hard_values(rng, (7, 4, 2))).to(dtype)
    return Trajectory(times=torch.linspace(0, 1, 7, dtype=torch.float64).to(dtype) / 3, states=states)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_trajectory_csv_round_trip_is_exact_and_text_unchanged(tmp_path, dtype):
    traj = _trajectory(dtype)
    path = write_trajectories(tmp_path / "t.csv", traj, columns=["u", "v"])
    back = read_trajectories(path)
    assert torch.equal(back.times, traj.times.double()) and torch.equal(back.states, traj.states.double())
    assert torch.equal(back.states.to(dtype), traj.states)
    ref = io.StringIO(newline="")
    w = csv.writer(ref)
    w.writerow(["path", "time", "u", "v"])
    times, states = traj.times.numpy(), traj.states.numpy()
    for b in range(states.shape[1]):
        for t in range(states.shape[0]):
            w.writerow([b, repr(float(times[t])), *(repr(float(v)) for v in states[t, b])])
    assert path.read_bytes().decode() == ref.getvalue()


def test_empty_trajectory_writes_the_header_only(tmp_path):
    traj = Trajectory(times=torch.zeros(0, dtype=torch.float64), states=torch.zeros(0, 3, 2, dtype=torch.float64))
    path = write_trajectories(tmp_path / "e.csv", traj)
    assert path.read_text() == "path,time,x0,x1\n"


# -- errors: the line counts blank lines; the first problem in the file is the one reported -----------------
GOOD = ["0,1,2", "0,2,3", "1,3,4", "1,4,5"]


@pytest.mark.parametrize("body, msg", [
    (["", "0,1,2", "   ", "0,x,3", "1,3,4", "1,4,5"], r"line 5 is not numeric in the columns used: \['0', 'x', '3'\]"),
    (["0,1,2", "", ",,", "0,2,3", "1,nan,4", "1,4,5"], r"line 6 has a non-finite value \(NaN or inf\) in column\(s\) \['x'\]"),
    (["0,1,2", "\t", "", "", "inf,2,-inf", "1,4,5"], r"line 6 has a non-finite value .* \['time', 'y'\]"),
    (["0,1,2", "", "0,2", "1,bad,4", "1,4,5"], r"line 4 has 2 fields, the header 3: \['0', '2'\]"),
    (["0,1,2", "", "0,bad,3", "1,3", "1,4,5"], r"line 4 is not numeric"),
    (["0,1,2", "", "0,2,3", "1,inf,4", "1,bad,5", "1,3"], r"line 5 has a non-finite value"),
    (["0,1,2", " , , ", "0,2,3", "1,3,4", "1,4,5", "", "2,1,2,3"], r"line 8 has 4 fields, the header 3"),
])
def test_snapshot_csv_errors_name_the_line_with_blank_lines(tmp_path, body, msg):
    path = tmp_path / "s.csv"
    path.write_text("time,x,y\n" + "\n".join(body) + "\n")
    with pytest.raises(InputError, match=r"data .*s\.csv: " + msg):
        read_snapshot_csv(path)


def test_snapshot_csv_blank_lines_are_skipped(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("time,x,y\n\n" + "\n , , \n".join(GOOD) + "\n\n,,\n")
    snaps = read_snapshot_csv(path)
    assert snaps.times.tolist() == [0.0, 1.0]
    assert [s.tolist() for s in snaps.samples] == [[[1.0, 2.0], [2.0, 3.0]], [[3.0, 4.0], [4.0, 5.0]]]


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_plain_and_csv_module_paths_agree(tmp_path, newline):
    """Empty lines keep the loadtxt path; a line of spaces or a quoted cell takes the csv-module one."""
    rows = [f"{t},{x!r},{-x!r}" for t in range(3) for x in np.random.default_rng(t).standard_normal(4).tolist()]
    plain, spaced, quoted = (rows[:5] + [""] + rows[5:], rows[:5] + ["  "] + rows[5:],
                             rows[:5] + ['"' + rows[5].replace(",", '","') + '"'] + rows[6:])
    got = []
    for name, body in (("plain", plain), ("spaced", spaced), ("quoted", quoted)):
        path = tmp_path / f"{name}.csv"
        path.write_bytes(("time,x,y" + newline + newline.join(body) + newline * 2).encode())
        s = read_snapshot_csv(path)
        got.append((s.times.tolist(), [x.tolist() for x in s.samples]))
    assert got[0] == got[1] == got[2]
    assert got[0][1][0][0] == [float(rows[0].split(",")[1]), float(rows[0].split(",")[2])]


def test_snapshot_csv_only_the_columns_used_must_be_numeric(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("time,label,x\n0,a,1\n0,b,2\n\n1,c,3\n1,d,oops\n")
    with pytest.raises(InputError, match=r"line 6 is not numeric in the columns used: \['1', 'd', 'oops'\]"):
        read_snapshot_csv(path, columns=["x"])
    path.write_text("time,label,x\n0,a,1\n0,b,2\n\n1,c,3\n1,d,4\n")
    assert read_snapshot_csv(path, columns=["x"]).samples[1].tolist() == [[3.0], [4.0]]


@pytest.mark.parametrize("where", [0, 1, 12_345, 19_999])
def test_a_bad_cell_deep_in_a_large_file_is_found(tmp_path, where):
    rows = [f"{i // 5000},{i * 0.5},{i}" for i in range(20_000)]
    rows[where] = rows[where].replace(f",{where}", ",1e5x")
    path = tmp_path / "big.csv"
    path.write_text("time,x,y\n" + "\n".join(rows[:100]) + "\n\n" + "\n".join(rows[100:]) + "\n")
    line = where + 2 + (where >= 100)
    with pytest.raises(InputError, match=rf"big\.csv: line {line} is not numeric"):
        read_snapshot_csv(path)


@pytest.mark.parametrize("body, msg", [
    (["0,0,1", "", "0,1,x", "1,0,3", "1,1,4"], r"line 4 is not numeric in the columns used"),
    (["0,0,1", "0,1,2", "   ", "1,0"], r"line 5 has 2 fields, the header 3"),
    (["0,0,1", "0,1,2", "1,0,3", "2,1,4"], r"line 5: expected path 1 at time 1\.0"),
    (["0,0,1", "", "0,1,2", "1,0,3", "", "2,1,4"], r"line 7: expected path 1 at time 1\.0"),
    (["0,0,1", "0,1,2", "1,0,3"], r"3 rows do not make 2 paths of 2 frames"),
    (["0,0,1", "-1,1,2"], r"line 3: 'path' must be a path index"),
])
def test_trajectory_csv_errors_name_the_line(tmp_path, body, msg):
    path = tmp_path / "t.csv"
    path.write_text("path,time,x0\n" + "\n".join(body) + "\n")
    with pytest.raises(InputError, match=r"trajectory .*t\.csv: " + msg):
        read_trajectories(path)


def test_trajectory_csv_header_and_blank_lines(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("frame,time,row,x0\n0,0,0,1\n")
    with pytest.raises(InputError, match=r"t\.csv: expected the columns path, time, x0"):
        read_trajectories(path)
    path.write_text("path,time,x0\n\n0,0,1\n0,0.5,2\n\n1,0,3\n1,0.5,nan\n\n")
    back = read_trajectories(path)
    assert back.times.tolist() == [0.0, 0.5]
    assert back.states[:, 0, 0].tolist() == [1.0, 2.0] and back.states[0, 1, 0].item() == 3.0
    assert torch.isnan(back.states[1, 1, 0])              # trajectories may hold NaN (a diverged path)
