"""Plan CSV tables: exact round trip, and bad tables or bad arrays refused with the file, line or field named."""
import pytest
import torch

from sciflow.core.errors import InputError
from sciflow.domains.robots import PLAN_COLUMNS, read_plan_csv, write_plan_csv


def _plan(t=3):
    g = torch.Generator().manual_seed(0)
    return (torch.arange(t + 1, dtype=torch.float64) * 0.1, torch.randn(t + 1, 5, generator=g, dtype=torch.float64),
            torch.randn(t, 2, generator=g, dtype=torch.float64))


def test_round_trip_is_exact_and_an_empty_plan_keeps_its_widths(tmp_path):
    times, states, controls = _plan()
    back = read_plan_csv(write_plan_csv(tmp_path / "p.csv", times, states, controls))
    for a, b in zip(back, (times, states, controls)):
        assert torch.equal(a, b)
    (tmp_path / "h.csv").write_text(",".join(PLAN_COLUMNS) + "\n")
    assert [tuple(x.shape) for x in read_plan_csv(tmp_path / "h.csv")] == [(0,), (0, 5), (0, 2)]
    one = read_plan_csv(write_plan_csv(tmp_path / "one.csv", *_plan(0)))
    assert [tuple(x.shape) for x in one] == [(1,), (1, 5), (0, 2)]
    (tmp_path / "bom.csv").write_text((tmp_path / "p.csv").read_text(), encoding="utf-8-sig")
    assert torch.equal(read_plan_csv(tmp_path / "bom.csv")[1], states)


def _edit(tmp_path, fn):
    write_plan_csv(tmp_path / "p.csv", *_plan())
    lines = (tmp_path / "p.csv").read_text().splitlines()
    lines = fn(lines)
    (tmp_path / "bad.csv").write_text("\n".join(lines) + "\n")
    return tmp_path / "bad.csv"


def _cell(lines, line, col, value):
    cells = lines[line - 1].split(",")
    cells[col] = value
    return lines[:line - 1] + [",".join(cells)] + lines[line:]


@pytest.mark.parametrize("edit, msg", [
    (lambda ls: _cell(ls, 3, 1, "nan"), r"line 3, column x_m: 'nan' is not finite"),
    (lambda ls: _cell(ls, 4, 7, "inf"), r"line 4, column steer_rate_radps: 'inf' is not finite"),
    (lambda ls: _cell(ls, 3, 2, "abc"), r"line 3, column y_m: 'abc' is not a number"),
    (lambda ls: ls[:2] + [",".join(ls[2].split(",")[:4])] + ls[3:], r"line 3 has 4 fields, the header 8"),
    (lambda ls: _cell(ls, 3, 6, ""), r"line 3 has empty control cells"),
    (lambda ls: _cell(ls, 5, 6, "1.0"), r"line 5 is the final state"),
    (lambda ls: ["t,x"] + ls[1:], r"expected header"),
])
def test_bad_tables_are_refused_naming_file_and_line(tmp_path, edit, msg):
    path = _edit(tmp_path, edit)
    with pytest.raises(InputError, match=msg) as e:
        read_plan_csv(path)
    assert str(path) in str(e.value)


def test_a_file_that_is_not_utf8_is_refused(tmp_path):
    (tmp_path / "b.csv").write_bytes(b"\xff\xfe\x00\x01garbage")
    with pytest.raises(InputError, match="not UTF-8"):
        read_plan_csv(tmp_path / "b.csv")


@pytest.mark.parametrize("which, value, msg", [
    (1, torch.randn(4, 3), r"states: expected shape \(T \+ 1, 5\).*got \(4, 3\)"),
    (2, torch.randn(3, 3), r"controls: expected shape \(T, 2\).*got \(3, 3\)"),
    (0, torch.zeros(4, 1), r"times: expected shape \(T \+ 1,\), got \(4, 1\)"),
    (1, torch.full((4, 5), float("nan")), r"states: shape \(4, 5\) holds a non-finite value"),
    (2, torch.tensor([[0.0, 1.0], [float("inf"), 0.0], [0.0, 0.0]]), r"controls: .* at index \(1, 0\)"),
])
def test_the_writer_refuses_wrong_widths_and_non_finite_values(tmp_path, which, value, msg):
    args = list(_plan())
    args[which] = value
    with pytest.raises(InputError, match=msg):
        write_plan_csv(tmp_path / "w.csv", *args)
    assert not (tmp_path / "w.csv").exists()


def test_export_plan_refuses_a_trajectory_that_is_no_plan(tmp_path):
    from sciflow.core.trajectory import Trajectory
    from sciflow.methods.ditree.export import export_plan
    times, states, controls = _plan()
    good = Trajectory(times, states[:, None], extras={"controls": controls[None]})
    back = read_plan_csv(export_plan(tmp_path / "p.csv", good))
    assert torch.equal(back[1], states) and torch.equal(back[2], controls)
    with pytest.raises(InputError, match=r"needs 'controls'"):
        export_plan(tmp_path / "q.csv", Trajectory(times, states[:, None]))
    with pytest.raises(InputError, match=r"one sample, expected shape \(T, 1, 5\), got \(4, 2, 5\)"):
        export_plan(tmp_path / "q.csv", Trajectory(times, states[:, None].repeat(1, 2, 1),
                                                   extras={"controls": controls[None].repeat(2, 1, 1)}))
    assert not (tmp_path / "q.csv").exists()
    # also when the io layer's writer is passed (the CLI always passes one; it only writes .npz)
    with pytest.raises(InputError, match=r"needs 'controls'"):
        export_plan(tmp_path / "q.csv", Trajectory(times, states[:, None]), writer=lambda p, t: p)
