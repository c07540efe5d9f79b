"""``.csv``: flat states in long format, one line per (frame, row): ``frame,time,row,x0,...,x{d-1}``.

For flat trajectories (MMSB populations, robot plans): states (T, B, d), or (T, B) written as a single column
``x``. Numbers are written with enough digits to come back exactly in float32 (``%.9g``) or float64
(``%.17g``). Only times and states are held; use ``.npz`` for everything.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..core.errors import InputError
from ..core.trajectory import Trajectory
from .atoms import read_times
from .registry import reader, writer

__all__ = ["read_csv", "write_csv"]


@writer(".csv", keywords=("topology",), description="long table frame,time,row,x0..x{d-1} (flat states)")
def write_csv(path: Path, traj: Trajectory, **meta: Any) -> None:
    """``topology`` is accepted and ignored (so ``sciflow export a.dcd b.csv --top a.pdb`` works)."""
    x = traj.states.detach().cpu()
    if x.dim() not in (2, 3):
        raise InputError(f"traj.states: .csv holds flat states (T, B) or (T, B, d); got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        x = x.to(torch.float64)
    t_count, b_count = x.shape[0], x.shape[1]
    cols = ["x"] if x.dim() == 2 else [f"x{i}" for i in range(x.shape[2])]
    digits = "%.17g" if x.dtype == torch.float64 or traj.times.dtype == torch.float64 else "%.9g"
    vals = x.to(torch.float64).reshape(t_count * b_count, -1).numpy()
    frame = np.repeat(np.arange(t_count), b_count)
    row = np.tile(np.arange(b_count), t_count)
    time = np.repeat(traj.times.detach().cpu().to(torch.float64).numpy(), b_count)
    table = np.column_stack([frame, time, row, vals])
    fmt = ["%d", digits, "%d"] + [digits] * vals.shape[1]
    with open(path, "w") as fh:
        np.savetxt(fh, table, fmt=fmt, delimiter=",", header=",".join(["frame", "time", "row", *cols]),
                   comments="")


@reader(".csv", keywords=("dtype", "top"), description="long table written by sciflow (or in its layout)")
def read_csv(path: Path, *, dtype: torch.dtype | None = None, top: Any = None) -> Trajectory:
    """States (T, B, d) (or (T, B) for a single ``x`` column) and times. ``dtype`` (default: float32 when every
    number is what float32 values print as with ``%.9g``, as sciflow writes them, else float64, so no digit is
    lost). ``top`` is accepted and ignored."""
    with open(path) as fh:
        header = fh.readline().strip().split(",")
    if header[:3] != ["frame", "time", "row"] or len(header) < 4:
        raise InputError(f"path: {str(path)!r} is not a sciflow CSV trajectory; the header must start with "
                         f"frame,time,row and then state columns, got {','.join(header)[:60]!r}")
    try:
        data = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2, dtype=np.float64)
    except ValueError as e:
        raise InputError(f"path: {str(path)!r} has a malformed line ({e})") from None
    if data.shape[1] != len(header):
        raise InputError(f"path: {str(path)!r} has {data.shape[1]} columns per line, the header {len(header)}")
    if not np.all(np.isfinite(data)):
        raise InputError(f"path: {str(path)!r} holds non-finite values")
    frame, row = data[:, 0].astype(np.int64), data[:, 2].astype(np.int64)
    t_count, b_count = int(frame.max()) + 1, int(row.max()) + 1
    if frame.min() < 0 or row.min() < 0 or len(data) != t_count * b_count:
        raise InputError(f"path: {str(path)!r} does not hold every (frame, row) pair once: {len(data)} lines for "
                         f"{t_count} frames x {b_count} rows")
    order = np.lexsort((row, frame))
    data, frame, row = data[order], frame[order], row[order]
    if not (np.array_equal(frame, np.repeat(np.arange(t_count), b_count))
            and np.array_equal(row, np.tile(np.arange(b_count), t_count))):
        raise InputError(f"path: {str(path)!r} repeats some (frame, row) pairs and misses others")
    times = data[::b_count, 1]
    if dtype is None:
        dtype = torch.float32 if _float32_text(data[:, [1, *range(3, data.shape[1])]]) else torch.float64
    if not np.all(data[:, 1].reshape(t_count, b_count) == times[:, None]):
        raise InputError(f"path: {str(path)!r} gives different times to rows of the same frame")
    states = data[:, 3:].reshape(t_count, b_count, -1)
    if header[3:] == ["x"]:
        states = states[..., 0]
    return Trajectory(times=read_times(times, dtype, path), states=torch.tensor(states, dtype=dtype),
                      info={"source": str(path)})


def _float32_text(values: np.ndarray) -> bool:
    """Whether every value is what a float32 prints as with ``%.9g`` (the float32 writer's format): then float32
    reads the file back exactly; any other number (more digits, or not a float32) needs float64.

    Vectorised: the nearest float32 of each value is rounded to nine significant digits with exact float64
    arithmetic where that is exact (powers of ten up to 1e22, no near-tie); the few other values are formatted
    one by one."""
    u = np.unique(np.asarray(values, dtype=np.float64))
    if u.size and float(np.abs(u).max()) > float(np.finfo(np.float32).max):
        return False                                     # beyond float32's range (and no overflow warning)
    f = u.astype(np.float32).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        e = np.floor(np.log10(np.abs(f)))
        k = 8 - e                                        # 9 significant digits: f * 10**k has 9 integer digits
        fast = np.isfinite(k) & (k >= 0) & (k <= 22)
        q = np.where(fast, 10.0 ** np.where(fast, k, 0), 1.0)
        scaled = f * q
        fast &= (np.abs(scaled) >= 1e8) & (np.abs(scaled) < 1e9)      # log10 floor was right
        fast &= np.abs(np.abs(scaled - np.trunc(scaled)) - 0.5) > 1e-6  # not near a rounding tie
        printed = np.rint(scaled) / q
    zero = f == 0
    if not np.all(printed[fast] == u[fast]) or not np.all(u[zero] == 0):
        return False
    return all(float(f"{np.float32(v):.9g}") == v for v in u[~fast & ~zero])
