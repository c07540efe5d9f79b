"""Readers and writers of population snapshots: npz (dense and ragged), CSV and AnnData ``.h5ad``.

npz, dense (the layout of the SBIRR / SnapMMD benchmark files): ``Xs`` (K, N, d), ``dts`` (K,) observation
times, optionally ``N_steps`` = K. npz, ragged (different N per time): ``points`` (M, d), ``snapshot`` (M,)
integer snapshot index of each row, ``dts`` (K,). CSV: a header row, a time column (default ``time``) and one
numeric column per dimension; rows with equal time form a snapshot. ``.h5ad``: read with h5py directly (no
anndata needed): the time comes from an ``obs`` column, the features from ``X`` (dense or CSR/CSC sparse) or
an ``obsm`` entry such as ``X_pca``. ``read_snapshots(path, pca=n)`` projects the features of any format on
their first n principal components; ``unused_options`` names the reading options a format does not use
(``time_key``: .csv and .h5ad; ``use_rep``: .h5ad), so that callers refuse them rather than ignore them.
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

from ..core.csv_blocks import (
    csv_body,
    float_cells,
    numeric_records,
    read_csv_records,
    read_csv_text,
    simple_numeric_block,
)
from ..core.errors import InputError
from ..core.files import atomic_path, open_npz
from ..domains.cells.snapshots import Snapshots
from .h5ad import pca_project, read_h5ad

__all__ = [
    "FORMAT_OPTIONS",
    "formats_using",
    "group_by_time",
    "pca_project",
    "read_h5ad",
    "read_snapshot_csv",
    "read_snapshot_npz",
    "read_snapshots",
    "unused_options",
    "write_snapshot_csv",
    "write_snapshot_npz",
]


def group_by_time(values: np.ndarray, times: np.ndarray, *, dtype: torch.dtype = torch.float64) -> Snapshots:
    """Rows ``values`` (M, d) with observation times ``times`` (M,) -> snapshots sorted by time."""
    values = np.asarray(values, dtype=np.float64)
    times = np.asarray(times, dtype=np.float64).reshape(-1)
    if values.ndim != 2 or values.shape[0] != times.shape[0]:
        raise InputError(f"values: expected ({times.shape[0]}, d) rows matching the times, got {values.shape}")
    if not np.isfinite(times).all():
        raise InputError(f"time: {int((~np.isfinite(times)).sum())} row(s) have no finite time")
    uniq = np.unique(times)
    return Snapshots.from_arrays([values[times == t] for t in uniq], uniq, dtype=dtype)


# -- npz ------------------------------------------------------------------------------------------
def read_snapshot_npz(path: str | os.PathLike, *, dtype: torch.dtype = torch.float64) -> Snapshots:
    """Read a dense (``Xs``, ``dts``) or ragged (``points``, ``snapshot``, ``dts``) snapshot npz."""
    try:
        return _read_snapshot_npz(Path(path), dtype)
    except InputError as e:       # name the file, and the time array by the key it has in the file
        msg = str(e)
        if msg.startswith("data"):
            raise
        tkey = _time_key(Path(path))
        msg = f"'{tkey}'{msg[len('times'):]}" if msg.startswith("times:") else msg
        raise InputError(f"data {path}: {msg}") from None


def _time_key(p: Path) -> str:
    with np.load(p, allow_pickle=False) as z:
        return "dts" if "dts" in z.files else "times"


def _read_snapshot_npz(p: Path, dtype: torch.dtype) -> Snapshots:
    with open_npz(p, "data", "a snapshot .npz (Xs, dts)") as z:     # closed after reading
        keys = set(z.files)
        arrays = {k: z[k] for k in ("dts", "times", "Xs", "points", "snapshot", "N_steps") if k in keys}
    return _snapshots_from(p, keys, arrays, dtype)


#: the keys the snapshot npz layouts use; ``write_snapshot_npz(**extra)`` may not overwrite them
_NPZ_KEYS = ("dts", "times", "Xs", "N_steps", "points", "snapshot")


def _snapshot_indices(p: Path, idx: np.ndarray, k: int) -> np.ndarray:
    """The ragged layout's ``snapshot`` (M,): whole numbers in [0, K-1], else InputError naming the file."""
    idx = np.asarray(idx).reshape(-1)
    if idx.dtype.kind not in "iuf":
        raise InputError(f"data {p}: 'snapshot' must hold integer snapshot indices in [0, {k - 1}], got dtype "
                         f"{idx.dtype}")
    if idx.dtype.kind == "f":
        bad = ~np.isfinite(idx) | (idx != np.round(idx))
        if bad.any():
            raise InputError(f"data {p}: 'snapshot' must hold whole-number snapshot indices in [0, {k - 1}]; "
                             f"{int(bad.sum())} are not, first {idx[bad][0].item()!r} (row {int(np.argmax(bad))})")
    if idx.size and (idx.min() < 0 or idx.max() >= k):
        raise InputError(f"data {p}: 'snapshot' indices must lie in [0, {k - 1}] (one per time in 'dts'), got "
                         f"[{idx.min():g}, {idx.max():g}]")
    return idx.astype(np.int64)


def _snapshots_from(p: Path, keys: set[str], z: dict[str, Any], dtype: torch.dtype) -> Snapshots:
    tkey = "dts" if "dts" in keys else "times" if "times" in keys else None
    if tkey is None:
        raise InputError(f"data {p}: needs observation times 'dts' (K,); keys present: {sorted(keys)}")
    times = z[tkey]
    if tkey == "dts" and "times" in keys and not np.array_equal(np.asarray(z["times"]), np.asarray(times)):
        raise InputError(f"data {p}: holds both 'dts' and 'times', which differ; which are the observation times "
                         f"is ambiguous: keep one")
    ragged = [k for k in ("points", "snapshot") if k in keys]
    if "Xs" in keys and ragged:
        raise InputError(f"data {p}: holds both the dense layout ('Xs') and the ragged one ({ragged}); which "
                         f"snapshots to read is ambiguous: keep one layout")
    if "Xs" in keys:
        xs = z["Xs"]
        if xs.ndim != 3:
            raise InputError(f"data {p}: Xs must be (K, N, d), got shape {xs.shape}")
        _check_n_steps(p, z, xs.shape[0], "Xs has")
        return Snapshots.from_arrays(xs, times, dtype=dtype)
    if "points" in keys and "snapshot" in keys:
        pts = z["points"]
        k = len(np.asarray(times).reshape(-1))
        if pts.ndim != 2 or pts.shape[0] != np.asarray(z["snapshot"]).size:
            raise InputError(f"data {p}: points (M, d) and snapshot (M,) disagree: {pts.shape} vs "
                             f"{np.asarray(z['snapshot']).shape}")
        idx = _snapshot_indices(p, z["snapshot"], k)
        _check_n_steps(p, z, k, f"'{tkey}' has")
        return Snapshots.from_arrays([pts[idx == i] for i in range(k)], times, dtype=dtype)
    raise InputError(f"data {p}: expected 'Xs' (K, N, d) or 'points' + 'snapshot'; keys present: {sorted(keys)}")


def _check_n_steps(p: Path, z: dict[str, Any], k: int, what: str) -> None:
    """``N_steps``, when present, is the number of snapshots K (the benchmark files' convention)."""
    if "N_steps" not in z:
        return
    n = np.asarray(z["N_steps"])
    if n.size != 1 or n.dtype.kind not in "iuf" or float(n.reshape(-1)[0]) != k:
        shown = n.reshape(-1)[0].item() if n.size == 1 else f"an array of shape {n.shape}"
        raise InputError(f"data {p}: 'N_steps' must be the number of snapshots, {what} {k} but 'N_steps' is "
                         f"{shown!r}")


def write_snapshot_npz(path: str | os.PathLike, snapshots: Snapshots, **extra: Any) -> Path:
    """Write the dense layout when every snapshot has the same size, else the ragged one (atomically).

    ``extra``: further arrays to store; the layout's own keys (``_NPZ_KEYS``) are refused."""
    reserved = sorted(set(extra) & set(_NPZ_KEYS))
    if reserved:
        raise InputError(f"extra: {reserved} are keys of the snapshot layout itself ({', '.join(_NPZ_KEYS)}); "
                         f"store extra arrays under other names")
    arrays: dict[str, Any] = {"dts": snapshots.times.cpu().numpy()}
    if snapshots.ragged:
        x, idx = snapshots.stacked()
        arrays.update(points=x.cpu().numpy(), snapshot=idx.cpu().numpy())
    else:
        arrays.update(Xs=snapshots.dense().cpu().numpy(), N_steps=np.array(snapshots.n_snapshots))
    arrays.update({k: np.asarray(v) for k, v in extra.items()})
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez(tmp, **arrays)
    return Path(path)


# -- CSV ------------------------------------------------------------------------------------------
def read_snapshot_csv(path: str | os.PathLike, *, time_column: str = "time",
                      columns: Sequence[str] | None = None, dtype: torch.dtype = torch.float64) -> Snapshots:
    """Rows of a CSV with a header; ``columns`` picks the feature columns (default: every other column)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"data: no file at {p}")
    try:
        times, rows = _csv_rows(p, time_column, columns)
    except UnicodeDecodeError as e:
        raise InputError(f"data {p}: not UTF-8 text (byte {e.start}); expected a CSV file") from None
    except csv.Error as e:
        raise InputError(f"data {p}: malformed CSV: {e}") from None
    if not len(rows):
        raise InputError(f"data {p}: no data rows")
    try:
        return group_by_time(rows, times, dtype=dtype)
    except InputError as e:                        # "need at least 2 snapshots" alone does not say which file
        raise InputError(f"data {p}: {e}") from None


def _csv_rows(p: Path, time_column: str, columns: Sequence[str] | None) -> tuple[np.ndarray, np.ndarray]:
    """(times (M,), feature rows (M, d)) of a snapshot CSV; every problem raises InputError naming the file and
    line. Parsed as one block (no per-row Python code): by ``np.loadtxt`` when the text is plain and sound,
    else split by the csv module and converted at once, the first bad row then found by vectorised checks."""
    text = read_csv_text(p)                                       # a byte-order mark (Excel) is not a column name
    with io.StringIO(text, newline="") if text is not None else p.open(newline="", encoding="utf-8-sig") as fh:
        header = next(csv.reader(fh), None)
    if not header:
        raise InputError(f"data {p}: empty file, expected a header row")
    header = [h.strip() for h in header]
    dup = sorted({h for h in header if header.count(h) > 1})
    if dup:
        raise InputError(f"data {p}: column(s) {dup} appear more than once in the header; columns: {header}")
    if time_column not in header:
        raise InputError(f"time_column (command line: --time-key): {time_column!r} is not a column of {p}; "
                         f"columns: {header}")
    feats = list(columns) if columns is not None else [h for h in header if h != time_column]
    missing = [c for c in feats if c not in header]
    if missing or not feats:
        raise InputError(f"columns: {missing or feats} not usable in {p}; columns: {header}")
    ti, fi = header.index(time_column), [header.index(c) for c in feats]
    block = simple_numeric_block(text, len(header), [ti, *fi]) if text is not None else None
    if block is not None:
        values = block[0]
    else:                                          # not plain, or a problem somewhere
        with io.StringIO(text, newline="") if text is not None else p.open(newline="", encoding="utf-8-sig") as fh:
            _, records, deferred = read_csv_records(fh)
        values, _ = numeric_records(f"data {p}", records, len(header), [ti, *fi], [time_column, *feats])
        if deferred is not None:
            raise deferred
    return values[:, 0], values[:, 1:]


def write_snapshot_csv(path: str | os.PathLike, snapshots: Snapshots, *, columns: Sequence[str] | None = None,
                       time_column: str = "time") -> Path:
    """One row per sample: the time, then the features; numbers as ``repr(float)`` (shortest text that reads
    back to the same float64), formatted and joined as one block."""
    names = list(columns) if columns is not None else [f"x{i}" for i in range(snapshots.dim)]
    if len(names) != snapshots.dim:
        raise InputError(f"columns: expected {snapshots.dim} names, got {len(names)}")
    counts = [int(s.shape[0]) for s in snapshots.samples]
    times = np.array(list(map(repr, snapshots.times.tolist())), dtype=object)
    if sum(counts):
        x = np.concatenate([s.cpu().numpy().astype(np.float64).reshape(-1, snapshots.dim)
                            for s in snapshots.samples])
    else:
        x = np.zeros((0, snapshots.dim))
    cells = np.empty((x.shape[0], 1 + snapshots.dim), dtype=object)
    cells[:, 0] = np.repeat(times, counts)
    cells[:, 1:] = float_cells(x)
    with atomic_path(path) as tmp, tmp.open("w", newline="") as fh:
        csv.writer(fh).writerow([time_column, *names])
        fh.write(csv_body(cells))
    return Path(path)



#: the reading options each snapshot format uses (``pca`` applies to every format)
FORMAT_OPTIONS: dict[str, tuple[str, ...]] = {
    ".npz": ("pca",),
    ".csv": ("time_key", "pca"),
    ".h5ad": ("time_key", "use_rep", "pca"),
}


def unused_options(path: str | os.PathLike, **given: Any) -> list[str]:
    """The options in ``given`` (name -> value; ``None`` = not given) that the format of ``path`` does not use,
    e.g. ``use_rep`` for a ``.csv``; callers refuse them rather than ignore them."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMAT_OPTIONS:             # an unknown format is the reader's error, not the option's
        return []
    used = FORMAT_OPTIONS[suffix]
    return [k for k, v in given.items() if v is not None and k not in used]


def formats_using(option: str) -> str:
    """'.csv and .h5ad': the formats that use a reading option, for error messages."""
    return " and ".join(s for s, opts in FORMAT_OPTIONS.items() if option in opts)


def read_snapshots(path: str | os.PathLike, *, pca: int | None = None, **kwargs: Any) -> Snapshots:
    """Read snapshots by suffix: ``.npz``, ``.csv``, ``.h5ad``; the other keywords go to that format's reader.

    ``pca``: project the features (of every snapshot together) on their first ``pca`` principal components,
    for any format."""
    suffix = Path(path).suffix.lower()
    readers = {".npz": read_snapshot_npz, ".csv": read_snapshot_csv, ".h5ad": read_h5ad}
    if suffix not in readers:
        raise InputError(f"data: unknown snapshot format {suffix!r} of {path}; use .npz, .csv or .h5ad")
    if suffix == ".h5ad":
        return read_h5ad(path, pca=pca, **kwargs)
    snaps = readers[suffix](path, **kwargs)
    if pca is None:
        return snaps
    x, idx = snaps.stacked()
    try:
        z = torch.as_tensor(pca_project(x.double().cpu().numpy(), pca)[0])
    except InputError as e:
        raise InputError(f"data {path}: {e} ({snaps.dim} features, {x.shape[0]} points)") from None
    return Snapshots.from_arrays([z[idx == k] for k in range(snaps.n_snapshots)], snaps.times, dtype=x.dtype)
