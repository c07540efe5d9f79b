"""Writing MMSB outputs: trajectories (npz, CSV), fitted parameters (JSON) and a PNG figure.

npz layout: ``times`` (T,), ``states`` (T, B, d), plus each per-row extra (e.g. ``snapshot_rows`` (B, K)) and
``snapshot_times`` (K,) (read back into ``info``). CSV layout (long): one row per path and frame, columns ``path, time, x0 .. x{d-1}``.
Files are written atomically.
"""
from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...core.csv_blocks import (
    csv_body,
    float_cells,
    numeric_records,
    read_csv_records,
    read_csv_text,
    simple_numeric_block,
)
from ...core.errors import InputError
from ...core.files import atomic_path
from ...core.trajectory import Trajectory

__all__ = ["read_trajectories", "write_trajectories"]

#: npz arrays that describe the run, not the paths (read back into ``info`` even when their length is B)
_META = ("snapshot_times",)


def write_trajectories(path: str | os.PathLike, traj: Trajectory, *, columns: Sequence[str] | None = None,
                       **meta: Any) -> Path:
    """Write a flat (T, B, d) trajectory as ``.npz`` or long-format ``.csv`` (by suffix)."""
    p = Path(path)
    states = traj.states.detach().cpu().numpy()
    if states.ndim != 3:
        raise InputError(f"traj: expected states (T, B, d), got shape {states.shape}")
    suffix = p.suffix.lower()
    if suffix == ".npz":
        arrays = {"times": traj.times.detach().cpu().numpy(), "states": states}
        for k, v in traj.extras.items():
            arrays[k] = v.detach().cpu().numpy()
        for k, v in meta.items():
            arrays[k] = np.asarray(v.detach().cpu().numpy() if torch.is_tensor(v) else v)
        with atomic_path(p, suffix=".npz") as tmp:
            np.savez(tmp, **arrays)
        return p
    if suffix == ".csv":
        names = list(columns) if columns is not None else [f"x{i}" for i in range(states.shape[2])]
        if len(names) != states.shape[2]:
            raise InputError(f"columns: expected {states.shape[2]} names, got {len(names)}")
        times = traj.times.detach().cpu().numpy()
        n_t, n_b, d = states.shape
        cells = np.empty((n_b * n_t, 2 + d), dtype=object)       # path-major: every frame of path 0, then 1...
        cells[:, 0] = np.repeat(np.array(list(map(str, range(n_b))), dtype=object), n_t)
        cells[:, 1] = np.tile(float_cells(times.reshape(1, -1)[:, :n_t])[0], n_b)
        cells[:, 2:] = float_cells(states.transpose(1, 0, 2).reshape(n_b * n_t, d))
        with atomic_path(p) as tmp, tmp.open("w", newline="") as fh:
            csv.writer(fh).writerow(["path", "time", *names])
            fh.write(csv_body(cells))
        return p
    raise InputError(f"out: unknown trajectory format {suffix!r}; use .npz or .csv")


def read_trajectories(path: str | os.PathLike) -> Trajectory:
    """Read back what ``write_trajectories`` wrote (npz or CSV)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"trajectory: no file at {p}")
    if p.suffix.lower() == ".npz":
        with np.load(p, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        b = arrays["states"].shape[1]
        extras, info = {}, {}
        for k, v in arrays.items():
            if k in ("times", "states"):
                continue
            if k not in _META and v.ndim >= 1 and v.shape[0] == b:    # one row per path (snapshot_rows, ...)
                extras[k] = torch.as_tensor(v)
            else:                                                      # metadata (snapshot_times, ...)
                info[k] = v.tolist()
        return Trajectory(times=torch.as_tensor(arrays["times"]), states=torch.as_tensor(arrays["states"]),
                          extras=extras, info=info)
    if p.suffix.lower() == ".csv":
        return _read_csv(p)
    raise InputError(f"trajectory: unknown format {p.suffix!r}; use .npz or .csv")


def _read_csv(p: Path) -> Trajectory:
    """The long CSV layout back to (T, B, d), parsed as one block; a malformed file raises InputError naming the
    file, the line and the field. Blank lines are skipped (they still count for line numbers)."""
    where = f"trajectory {p}"
    text = read_csv_text(p)
    try:
        with io.StringIO(text, newline="") if text is not None else p.open(newline="", encoding="utf-8-sig") as fh:
            header = next(csv.reader(fh), None)
    except UnicodeDecodeError as e:
        raise InputError(f"{where}: not UTF-8 text (byte {e.start}); expected a CSV file") from None
    except csv.Error as e:
        raise InputError(f"{where}: malformed CSV: {e}") from None
    if not header:
        raise InputError(f"{where}: empty file, expected a header row")
    header = [h.strip() for h in header]
    if len(header) < 3 or header[:2] != ["path", "time"]:
        raise InputError(f"{where}: expected the columns path, time, x0 .. (one row per path and frame); "
                         f"columns: {header}")
    use = range(len(header))
    block = simple_numeric_block(text, len(header), use, finite=False) if text is not None else None
    if block is not None:
        data, lines = block
    else:                                          # not plain, or a problem somewhere
        with io.StringIO(text, newline="") if text is not None else p.open(newline="", encoding="utf-8-sig") as fh:
            _, records, deferred = read_csv_records(fh)
        data, lines = numeric_records(where, records, len(header), use, header, finite=False)
        if isinstance(deferred, UnicodeDecodeError):
            raise InputError(f"{where}: not UTF-8 text (byte {deferred.start}); expected a CSV file") from None
        if deferred is not None:
            raise InputError(f"{where}: malformed CSV: {deferred}") from None
    if not len(data):
        raise InputError(f"{where}: no data rows")
    paths = data[:, 0]
    bad = ~np.isfinite(paths) | (paths != np.round(paths)) | (paths < 0)
    if bad.any():
        i = int(np.argmax(bad))
        raise InputError(f"{where}: line {lines[i]}: 'path' must be a path index 0, 1, ..., got "
                         f"{float(paths[i])!r}")
    n_paths = int(paths.max()) + 1
    times = data[paths == 0, 1]
    n_t = len(times)
    m = min(len(data), n_paths * n_t)                  # rows path by path, every path at the times of path 0
    want_path, want_time = np.repeat(np.arange(n_paths), n_t)[:m], np.tile(times, n_paths)[:m]
    got_time = data[:m, 1]
    off = (paths[:m] != want_path) | ((got_time != want_time) & ~(np.isnan(got_time) & np.isnan(want_time)))
    if off.any():
        i = int(np.argmax(off))
        raise InputError(f"{where}: line {lines[i]}: expected path {want_path[i]} at time "
                         f"{float(want_time[i])!r} (rows path by path, every path at the times of path 0), got "
                         f"path {paths[i]:g} at time {float(got_time[i])!r}")
    if len(data) != n_paths * n_t:
        raise InputError(f"{where}: {len(data)} rows do not make {n_paths} paths of {n_t} frames (the rows of "
                         f"path 0)")
    states = data[:, 2:].reshape(n_paths, n_t, -1).transpose(1, 0, 2)
    return Trajectory(times=torch.as_tensor(times), states=torch.as_tensor(states))
