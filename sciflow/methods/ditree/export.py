"""Write a plan Trajectory as CSV (robot table) or npz (the io layer's trajectory format when present)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ...core.errors import InputError
from ...core.fields import CONTROLS
from ...core.files import atomic_path
from ...core.trajectory import Trajectory
from ...domains.robots import write_plan_csv

__all__ = ["export_plan"]


def export_plan(path: str | os.PathLike, traj: Trajectory, writer=None) -> Path:
    """``.csv``: one row per integration step; ``.npz``: ``writer(path, traj)`` when given (the io layer's
    ``write_trajectory``), else arrays times (T,), states (T, 1, 5), controls (1, T - 1, 2)."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".csv" or (suffix == ".npz" and writer is None):     # the io writer checks its own input
        _check_plan(traj)
    if suffix == ".csv":
        return write_plan_csv(p, traj.times, traj.states[:, 0], traj.extras[CONTROLS][0])
    if suffix == ".npz":
        if writer is not None:
            return Path(writer(p, traj))
        with atomic_path(p) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, times=traj.times.numpy(), states=traj.states.numpy(),
                     controls=traj.extras[CONTROLS].numpy())
        return p
    raise InputError(f"out: unknown plan format {p.suffix!r}; use .csv or .npz")


def _check_plan(traj: Trajectory) -> None:
    """A plan trajectory: states (T, 1, 5) of one sample and extras[CONTROLS] (1, T - 1, 2)."""
    if traj.states.dim() != 3 or traj.states.shape[1] != 1:
        raise InputError(f"traj.states: a plan holds one sample, expected shape (T, 1, 5), got "
                         f"{tuple(traj.states.shape)}")
    if CONTROLS not in traj.extras:
        raise InputError(f"traj.extras: a plan needs {CONTROLS!r} (1, T - 1, 2), the controls applied at each step; "
                         f"have {sorted(traj.extras)}")
    c = traj.extras[CONTROLS]
    if c.dim() != 3 or c.shape[0] != 1:
        raise InputError(f"traj.extras[{CONTROLS!r}]: expected shape (1, T - 1, 2), got {tuple(c.shape)}")
