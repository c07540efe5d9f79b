"""Plan tables: one row per integration step with time, state and the control applied from that step.

CSV columns: ``t_s, x_m, y_m, heading_rad, speed_mps, steer_rad, accel_mps2, steer_rate_radps``; the last row
(the final state) has empty control cells. Written atomically; ``read_plan_csv`` inverts it.
"""
from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import torch
from torch import Tensor

from ...core.errors import InputError
from ...core.files import atomic_write_text

__all__ = ["PLAN_COLUMNS", "read_plan_csv", "write_plan_csv"]

PLAN_COLUMNS = ("t_s", "x_m", "y_m", "heading_rad", "speed_mps", "steer_rad", "accel_mps2", "steer_rate_radps")


def write_plan_csv(path: str | os.PathLike, times: Tensor, states: Tensor, controls: Tensor) -> Path:
    """times (T + 1,), states (T + 1, 5), controls (T, 2)."""
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
    """-> times (T + 1,), states (T + 1, 5), controls (T, 2), float64."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"plan: no file at {p}")
    rows = list(csv.reader(p.read_text().splitlines()))
    if not rows or tuple(rows[0]) != PLAN_COLUMNS:
        raise InputError(f"plan {p}: expected header {','.join(PLAN_COLUMNS)}")
    body = rows[1:]
    t = torch.tensor([float(r[0]) for r in body], dtype=torch.float64)
    s = torch.tensor([[float(v) for v in r[1:6]] for r in body], dtype=torch.float64)
    c = torch.tensor([[float(v) for v in r[6:8]] for r in body[:-1]], dtype=torch.float64).reshape(-1, 2)
    return t, s, c
