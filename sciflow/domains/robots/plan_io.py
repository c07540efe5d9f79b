"""Plan tables: one row per integration step with time, state and the control applied from that step.

CSV columns: ``t_s, x_m, y_m, heading_rad, speed_mps, steer_rad, accel_mps2, steer_rate_radps``; the last row
(the final state) has empty control cells. Written atomically; ``read_plan_csv`` inverts it.
"""
from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path

import torch
from torch import Tensor

from ...core.errors import InputError
from ...core.files import atomic_write_text

__all__ = ["PLAN_COLUMNS", "read_plan_csv", "write_plan_csv"]

PLAN_COLUMNS = ("t_s", "x_m", "y_m", "heading_rad", "speed_mps", "steer_rad", "accel_mps2", "steer_rate_radps")


_WIDTHS = {"times": 1, "states": 5, "controls": 2}


def _checked(name: str, x: Tensor, expected: str) -> Tensor:
    """x as float64, refused (naming the field and its shape) when it is not a real (rows, width) array or holds
    a NaN or infinity."""
    x = torch.as_tensor(x)
    width = _WIDTHS[name]
    ok_shape = x.dim() == 1 if width == 1 else (x.dim() == 2 and x.shape[1] == width)
    if not ok_shape:
        raise InputError(f"{name}: expected shape {expected}, got {tuple(x.shape)}")
    if x.is_complex() or x.dtype == torch.bool:
        raise InputError(f"{name}: expected real numbers, got dtype {x.dtype}")
    x = x.detach().cpu().to(torch.float64)
    bad = (~torch.isfinite(x)).nonzero()
    if len(bad):
        raise InputError(f"{name}: shape {tuple(x.shape)} holds a non-finite value (NaN or inf) at index "
                         f"{tuple(bad[0].tolist())}; a plan table holds finite numbers only")
    return x


def write_plan_csv(path: str | os.PathLike, times: Tensor, states: Tensor, controls: Tensor) -> Path:
    """times (T + 1,), states (T + 1, 5), controls (T, 2), all finite."""
    times = _checked("times", times, "(T + 1,)")
    states = _checked("states", states, "(T + 1, 5): x_m, y_m, heading_rad, speed_mps, steer_rad")
    controls = _checked("controls", controls, "(T, 2): accel_mps2, steer_rate_radps")
    if states.shape[0] != times.shape[0] or controls.shape[0] != states.shape[0] - 1:
        raise InputError(f"plan: expected times (T+1,), states (T+1, 5), controls (T, 2), got "
                         f"{tuple(times.shape)}, {tuple(states.shape)}, {tuple(controls.shape)}")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(PLAN_COLUMNS)
    for k in range(states.shape[0]):
        row = [repr(float(times[k]))] + [repr(float(v)) for v in states[k]]
        row += [repr(float(v)) for v in controls[k]] if k < controls.shape[0] else ["", ""]
        w.writerow(row)
    return atomic_write_text(path, buf.getvalue())


def read_plan_csv(path: str | os.PathLike) -> tuple[Tensor, Tensor, Tensor]:
    """-> times (T + 1,), states (T + 1, 5), controls (T, 2), float64 (shapes (0,), (0, 5), (0, 2) for a file
    with the header only). Every problem raises InputError naming the file and line."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"plan: no file at {p}")
    try:
        rows = _rows(p)
    except UnicodeDecodeError as e:
        raise InputError(f"plan {p}: not UTF-8 text (byte {e.start}); expected a CSV file") from None
    except csv.Error as e:
        raise InputError(f"plan {p}: malformed CSV: {e}") from None
    for i, (n, row) in enumerate(rows):
        last = i == len(rows) - 1
        if last and any(v is not None for v in row[6:]):
            raise InputError(f"plan {p}: line {n} is the final state, its control cells must be empty: {row}")
        if not last and any(v is None for v in row[6:]):
            raise InputError(f"plan {p}: line {n} has empty control cells; only the last row (the final state) "
                             "may")
    t = torch.tensor([r[0] for _, r in rows], dtype=torch.float64).reshape(-1)
    s = torch.tensor([r[1:6] for _, r in rows], dtype=torch.float64).reshape(-1, 5)
    c = torch.tensor([r[6:8] for _, r in rows[:-1]], dtype=torch.float64).reshape(-1, 2)
    return t, s, c


def _rows(p: Path) -> list[tuple[int, list]]:
    """(line number, row) of every data row: 8 cells, the first 6 finite numbers, the controls finite numbers
    or None when empty."""
    with p.open(newline="", encoding="utf-8-sig") as fh:          # a byte-order mark (Excel) is not a column name
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None or tuple(h.strip() for h in header) != PLAN_COLUMNS:
            raise InputError(f"plan {p}: expected header {','.join(PLAN_COLUMNS)}, got "
                             f"{','.join(header) if header else 'an empty file'}")
        out = []
        for n, row in enumerate(reader, start=2):
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) != len(PLAN_COLUMNS):
                raise InputError(f"plan {p}: line {n} has {len(row)} fields, the header {len(PLAN_COLUMNS)}: "
                                 f"{row[:8]}")
            vals: list = []
            for name, cell in zip(PLAN_COLUMNS, row):
                cell = cell.strip()
                if not cell and name in PLAN_COLUMNS[6:]:
                    vals.append(None)
                    continue
                try:
                    v = float(cell)
                except ValueError:
                    raise InputError(f"plan {p}: line {n}, column {name}: {cell!r} is not a number") from None
                if not math.isfinite(v):
                    raise InputError(f"plan {p}: line {n}, column {name}: {cell!r} is not finite (NaN or inf)")
                vals.append(v)
            out.append((n, vals))
    return out
