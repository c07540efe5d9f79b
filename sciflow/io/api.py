"""``write_trajectory`` / ``read_trajectory``: the format is chosen by the file suffix; every write is atomic."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from ..core.errors import InputError, check_finite
from ..core.fields import BATCH
from ..core.files import atomic_path
from ..core.trajectory import Trajectory
from .registry import READERS, WRITERS, check_keywords, lookup, suffix_of

__all__ = ["formats", "read_trajectory", "write_samples", "write_trajectory"]

#: formats whose rows are the atoms of one structure (a trajectory without a graph index is one sample there)
_ATOMIC = (".xyz", ".extxyz", ".pdb", ".dcd")


def formats() -> dict[str, dict[str, str]]:
    """{suffix: {"write": description, "read": description}} of every registered format."""
    out: dict[str, dict[str, str]] = {}
    for what, table in (("write", WRITERS), ("read", READERS)):
        for suffix, entry in table.items():
            out.setdefault(suffix, {})[what] = entry.description
    return dict(sorted(out.items()))


def write_trajectory(path: str | os.PathLike, traj: Trajectory, **meta: Any) -> Path:
    """Write ``traj`` to ``path`` in the format its suffix names (``formats()`` lists them).

    The file appears whole or not at all: it is written to a temporary file in the same folder and renamed
    over ``path``; on any error the temporary file is removed and an existing ``path`` is left as it was.
    ``meta`` holds format options (``atomic_numbers``, ``symbols``, ``comments``, ``topology``); an option that
    the format does not take raises ``InputError`` before anything is written.
    """
    entry = lookup(WRITERS, path)
    check_keywords(entry, meta, path, "meta")
    if not isinstance(traj, Trajectory):
        raise InputError(f"traj: expected a sciflow Trajectory, got {type(traj).__name__}")
    if traj.states.numel() == 0 and not entry.holds_empty:
        what = "no frames" if traj.n_frames == 0 else "no rows" if traj.n_rows == 0 else "no state values"
        raise InputError(f"traj.states: the trajectory is empty (shape {tuple(traj.states.shape)}: {what}), and a "
                         f"{suffix_of(path)} file cannot hold an empty trajectory; write .npz, or "
                         f"check what produced it")
    check_finite("traj.states", traj.states)
    check_finite("traj.times", traj.times)
    target = Path(path)
    if target.is_dir():
        raise InputError(f"path: {str(target)!r} is a folder")
    with atomic_path(target) as tmp:
        entry.fn(tmp, traj, **meta)
    return target


def read_trajectory(path: str | os.PathLike, **kw: Any) -> Trajectory:
    """Read a trajectory written by ``write_trajectory`` (or any file of a registered format).

    Keywords: ``top`` (topology for ``.dcd``: PDB path or mdtraj Topology), ``dtype`` (floating dtype of the
    text formats; default: the dtype sciflow wrote the file from, float64 for files from elsewhere, float32 for
    ``.dcd``; ``.npz`` keeps the stored dtypes).
    """
    entry = lookup(READERS, path)
    check_keywords(entry, kw, path, "read_trajectory")
    p = Path(path)
    if not p.is_file():
        raise InputError(f"path: no such file {str(p)!r}")
    if kw.get("dtype") is not None and not (isinstance(kw["dtype"], torch.dtype) and kw["dtype"].is_floating_point):
        raise InputError(f"dtype: expected a floating torch dtype, got {kw['dtype']!r}")
    return entry.fn(p, **kw)


def write_samples(pattern: str, traj: Trajectory, **meta: Any) -> list[Path]:
    """Write each sample of a (graph) batch to its own file: ``pattern`` is formatted with ``i`` (the sample
    index), e.g. ``"out/ts_{i:03d}.xyz"``. ``atomic_numbers`` / ``symbols`` given for all rows of the batch are
    split per sample. A trajectory without a graph index is one structure for the atomic formats (``.xyz``,
    ``.extxyz``, ``.pdb``, ``.dcd``: its rows are atoms), so it goes to one file (``i = 0``); for ``.npz`` and
    ``.csv`` each row is a sample. Returns the paths, in sample order."""
    if not isinstance(pattern, str) or "{i" not in pattern:
        raise InputError(f"pattern: must hold '{{i}}' (the sample index), e.g. 'out/sample_{{i}}.xyz'; got "
                         f"{pattern!r}")
    if not isinstance(traj, Trajectory):
        raise InputError(f"traj: expected a sciflow Trajectory, got {type(traj).__name__}")
    lookup(WRITERS, pattern.replace("{", "").replace("}", ""))
    whole = BATCH not in traj.extras and suffix_of(pattern.replace("{", "").replace("}", "")) in _ATOMIC
    n = 1 if whole else traj.n_samples
    names = [pattern.format(i=i) for i in range(n)]
    if len(set(names)) != n:
        raise InputError(f"pattern: {pattern!r} gives the same file name to several samples")
    per_row = {k: meta[k] for k in ("atomic_numbers", "symbols") if meta.get(k) is not None
               and BATCH in traj.extras and len(meta[k]) == traj.n_rows}
    batch = traj.extras.get(BATCH)
    # all or nothing: every sample goes to a hidden temporary file beside its target first, and the files are
    # renamed into place only when all of them are written
    staged: list[tuple[Path, Path]] = []
    try:
        for i, name in enumerate(names):
            one = traj if whole else traj.samples([i])
            m = dict(meta)
            if per_row:
                rows = (batch == i).nonzero().squeeze(1).tolist()
                for k, v in per_row.items():
                    m[k] = [v[r] for r in rows] if not torch.is_tensor(v) else v[rows]
            if BATCH in one.extras:
                one = Trajectory(one.times, one.states, extras={k: v for k, v in one.extras.items() if k != BATCH},
                                 step_extras=one.step_extras, info=one.info)
            final = Path(name)
            tmp = final.with_name(f".{final.stem}.{os.getpid()}.part{final.suffix}")
            staged.append((tmp, final))
            try:
                write_trajectory(tmp, one, **m)
            except InputError as e:
                raise InputError(f"sample {i} ({final.name}): {e}") from None
        for tmp, final in staged:
            os.replace(tmp, final)
    finally:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
    return [final for _, final in staged]


