"""Writing MMSB outputs: trajectories (npz, CSV), fitted parameters (JSON) and a PNG figure.

npz layout: ``times`` (T,), ``states`` (T, B, d), plus each per-row extra (e.g. ``snapshot_rows`` (B, K)) and
``snapshot_times`` (K,) (read back into ``info``). CSV layout (long): one row per path and frame, columns ``path, time, x0 .. x{d-1}``.
Files are written atomically.
"""
from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

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
        with atomic_path(p) as tmp, tmp.open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["path", "time", *names])
            for b in range(states.shape[1]):
                for t in range(states.shape[0]):
                    w.writerow([b, repr(float(times[t])), *(repr(float(v)) for v in states[t, b])])
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
        with p.open(newline="") as fh:
            rows = list(csv.reader(fh))
        data = np.array([[float(v) for v in r] for r in rows[1:]])
        paths = data[:, 0].astype(int)
        n_paths = int(paths.max()) + 1
        times = data[paths == 0, 1]
        states = data[:, 2:].reshape(n_paths, len(times), -1).transpose(1, 0, 2)
        return Trajectory(times=torch.as_tensor(times), states=torch.as_tensor(states))
    raise InputError(f"trajectory: unknown format {p.suffix!r}; use .npz or .csv")
