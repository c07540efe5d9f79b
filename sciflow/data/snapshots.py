"""Readers and writers of population snapshots: npz (dense and ragged), CSV and AnnData ``.h5ad``.

npz, dense (the layout of the SBIRR / SnapMMD benchmark files): ``Xs`` (K, N, d), ``dts`` (K,) observation
times, optionally ``N_steps`` = K. npz, ragged (different N per time): ``points`` (M, d), ``snapshot`` (M,)
integer snapshot index of each row, ``dts`` (K,). CSV: a header row, a time column (default ``time``) and one
numeric column per dimension; rows with equal time form a snapshot. ``.h5ad``: read with h5py directly (no
anndata needed): the time comes from an ``obs`` column, the features from ``X`` (dense or CSR/CSC sparse) or
an ``obsm`` entry such as ``X_pca``, optionally reduced to a few principal components.
"""
from __future__ import annotations

import csv
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..core.errors import InputError
from ..core.files import atomic_path, open_npz
from ..domains.cells.snapshots import Snapshots

__all__ = [
    "group_by_time",
    "pca_project",
    "read_h5ad",
    "read_snapshot_csv",
    "read_snapshot_npz",
    "read_snapshots",
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
        arrays = {k: z[k] for k in ("dts", "times", "Xs", "points", "snapshot") if k in keys}
    return _snapshots_from(p, keys, arrays, dtype)


def _snapshots_from(p: Path, keys: set[str], z: dict[str, Any], dtype: torch.dtype) -> Snapshots:
    tkey = "dts" if "dts" in keys else "times" if "times" in keys else None
    if tkey is None:
        raise InputError(f"data {p}: needs observation times 'dts' (K,); keys present: {sorted(keys)}")
    times = z[tkey]
    if "Xs" in keys:
        xs = z["Xs"]
        if xs.ndim != 3:
            raise InputError(f"data {p}: Xs must be (K, N, d), got shape {xs.shape}")
        return Snapshots.from_arrays(xs, times, dtype=dtype)
    if "points" in keys and "snapshot" in keys:
        pts, idx = z["points"], z["snapshot"].astype(np.int64).reshape(-1)
        if pts.ndim != 2 or pts.shape[0] != idx.shape[0]:
            raise InputError(f"data {p}: points (M, d) and snapshot (M,) disagree: {pts.shape} vs {idx.shape}")
        k = len(np.asarray(times).reshape(-1))
        if idx.size and (idx.min() < 0 or idx.max() >= k):
            raise InputError(f"data {p}: snapshot indices must lie in [0, {k - 1}], got [{idx.min()}, {idx.max()}]")
        return Snapshots.from_arrays([pts[idx == i] for i in range(k)], times, dtype=dtype)
    raise InputError(f"data {p}: expected 'Xs' (K, N, d) or 'points' + 'snapshot'; keys present: {sorted(keys)}")


def write_snapshot_npz(path: str | os.PathLike, snapshots: Snapshots, **extra: Any) -> Path:
    """Write the dense layout when every snapshot has the same size, else the ragged one (atomically)."""
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
    if not rows:
        raise InputError(f"data {p}: no data rows")
    return group_by_time(np.array(rows), np.array(times), dtype=dtype)


def _csv_rows(p: Path, time_column: str, columns: Sequence[str] | None) -> tuple[list[float], list[list[float]]]:
    """(times, feature rows) of a snapshot CSV; every problem raises InputError naming the file and line."""
    with p.open(newline="", encoding="utf-8-sig") as fh:          # a byte-order mark (Excel) is not a column name
        reader = csv.reader(fh)
        header = next(reader, None)
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
        times, rows = [], []
        for n, row in enumerate(reader, start=2):
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) != len(header):
                raise InputError(f"data {p}: line {n} has {len(row)} fields, the header {len(header)}: {row[:8]}")
            try:
                times.append(float(row[ti]))
                rows.append([float(row[i]) for i in fi])
            except ValueError:
                raise InputError(f"data {p}: line {n} is not numeric in the columns used: {row}") from None
            bad = [c for c, v in zip([time_column, *feats], [times[-1], *rows[-1]]) if not np.isfinite(v)]
            if bad:
                raise InputError(f"data {p}: line {n} has a non-finite value (NaN or inf) in column(s) {bad}")
    return times, rows


def write_snapshot_csv(path: str | os.PathLike, snapshots: Snapshots, *, columns: Sequence[str] | None = None,
                       time_column: str = "time") -> Path:
    names = list(columns) if columns is not None else [f"x{i}" for i in range(snapshots.dim)]
    if len(names) != snapshots.dim:
        raise InputError(f"columns: expected {snapshots.dim} names, got {len(names)}")
    with atomic_path(path) as tmp, tmp.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow([time_column, *names])
        for t, s in zip(snapshots.times.tolist(), snapshots.samples):
            for row in s.cpu().numpy():
                w.writerow([repr(t), *(repr(float(v)) for v in row)])
    return Path(path)


# -- AnnData .h5ad --------------------------------------------------------------------------------
def _attr(obj: Any, key: str, default: Any = None) -> Any:
    v = obj.attrs.get(key, default)
    return v.decode() if isinstance(v, bytes) else v


def _strings(arr: np.ndarray) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in np.asarray(arr).reshape(-1)]


def _read_matrix(node: Any) -> np.ndarray:
    """A dense dataset or a CSR/CSC sparse group (anndata's encoding) as a dense float array."""
    import h5py
    if isinstance(node, h5py.Dataset):
        return np.asarray(node[()], dtype=np.float64)
    enc = _attr(node, "encoding-type", "")
    shape = tuple(int(s) for s in node.attrs["shape"]) if "shape" in node.attrs else None
    if enc not in ("csr_matrix", "csc_matrix") or shape is None:
        raise InputError(f"h5ad: cannot read matrix {node.name} (encoding {enc!r})")
    data, indices, indptr = node["data"][()], node["indices"][()], node["indptr"][()]
    out = np.zeros(shape, dtype=np.float64)
    major = shape[0] if enc == "csr_matrix" else shape[1]
    for i in range(major):
        sl = slice(indptr[i], indptr[i + 1])
        if enc == "csr_matrix":
            out[i, indices[sl]] = data[sl]
        else:
            out[indices[sl], i] = data[sl]
    return out


def _obs_column(f: Any, key: str) -> tuple[np.ndarray, list[str] | None]:
    """(values, categories or None) of an obs column in the current (group) or old (compound) layout."""
    import h5py
    obs = f["obs"]
    if isinstance(obs, h5py.Dataset):  # anndata < 0.7: a compound dataset, categories in uns/<key>_categories
        names = obs.dtype.names or ()
        if key not in names:
            raise InputError(f"time_key: {key!r} is not an obs column; columns: {list(names)}")
        vals = obs[key]
        cats_key = f"uns/{key}_categories"
        return vals, (_strings(f[cats_key][()]) if cats_key in f else None)
    if key not in obs:
        cols = [c for c in obs.keys() if c != _attr(obs, "_index", "_index")]
        raise InputError(f"time_key: {key!r} is not an obs column; columns: {cols}")
    node = obs[key]
    if isinstance(node, h5py.Group):
        enc = _attr(node, "encoding-type", "")
        if enc == "categorical":
            return node["codes"][()], _strings(node["categories"][()])
        if enc.startswith("nullable"):
            vals = node["values"][()].astype(np.float64)
            if "mask" in node:
                vals[node["mask"][()].astype(bool)] = np.nan
            return vals, None
        raise InputError(f"h5ad: obs column {key!r} has an unsupported encoding {enc!r}")
    vals = node[()]
    cats = _attr(node, "categories")  # anndata 0.7: codes with a reference to the categories dataset
    if cats is not None and not isinstance(cats, str):
        return vals, _strings(f[cats][()])
    return vals, None


# a sign only at the start of the label or after white space: "t-1" is time 1, not -1 ("day -2" is -2)
_NUMBER = re.compile(r"(?:(?<![^\s])[-+])?\d*\.?\d+(?:[eE][-+]?\d+)?")


def _category_times(cats: list[str], time_map: Mapping[str, float] | None) -> np.ndarray:
    if time_map is not None:
        missing = [c for c in cats if c not in time_map]
        if missing:
            raise InputError(f"time_map: has no time for categories {missing}")
        return np.array([float(time_map[c]) for c in cats])
    out = []
    for c in cats:
        found = _NUMBER.findall(c)
        if not found:
            raise InputError(f"time_key: category {c!r} holds no number; pass time_map={{category: time}}")
        if len(found) > 1:          # "batch2_day0": which number is the time is a guess
            raise InputError(f"time_key: category {c!r} holds several numbers ({', '.join(found)}); pass "
                             f"time_map={{category: time}}")
        out.append(float(found[0]))
    if len(set(out)) != len(out):
        raise InputError(f"time_key: categories {cats} give repeated times {out}; pass time_map")
    return np.array(out)


def pca_project(x: np.ndarray, n_components: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(scores (M, n), components (n, d), mean (d,)) of a centred SVD."""
    if not 1 <= int(n_components) <= min(x.shape):
        raise InputError(f"pca: n_components must lie in [1, {min(x.shape)}], got {n_components}")
    mean = x.mean(0)
    _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
    comps = vt[: int(n_components)]
    return (x - mean) @ comps.T, comps, mean


def read_h5ad(path: str | os.PathLike, *, time_key: str = "time", use_rep: str | None = None,
              n_components: int | None = None, pca: int | None = None,
              time_map: Mapping[str, float] | None = None, dtype: torch.dtype = torch.float64) -> Snapshots:
    """Snapshots from an AnnData file: rows grouped by ``obs[time_key]`` (numbers, or categories holding a
    number such as ``"day 4"``, or mapped with ``time_map``).

    ``use_rep``: ``None`` for ``X``, or an ``obsm`` key such as ``"X_pca"`` (first ``n_components`` columns);
    ``pca``: project the chosen features on their first ``pca`` principal components. Cells with a missing
    time (NaN or category code -1) are dropped.
    """
    import h5py
    p = Path(path)
    if not p.is_file():
        raise InputError(f"data: no file at {p}")
    try:
        f = h5py.File(p, "r")
    except OSError as e:
        raise InputError(f"data {p}: not an HDF5 file ({e})") from None
    with f:
        if "obs" not in f:
            raise InputError(f"data {p}: no 'obs' group; not an AnnData file")
        vals, cats = _obs_column(f, time_key)
        if cats is not None:
            codes = np.asarray(vals).astype(np.int64)
            table = _category_times(cats, time_map)
            times = np.where(codes >= 0, table[np.clip(codes, 0, None)], np.nan)
        elif time_map is not None:                 # the map applies to plain columns too (its keys are text)
            strs = [str(v) if not isinstance(v, bytes) else v.decode() for v in np.asarray(vals).tolist()]
            strs = [s[:-2] if s.endswith(".0") and s[:-2] in time_map else s for s in strs]   # 1.0 read as "1"
            uniq = sorted(set(strs) - {"nan"})           # a missing time stays missing (the cell is dropped)
            table = {**dict(zip(uniq, _category_times(uniq, time_map))), "nan": np.nan}
            times = np.array([table[s] for s in strs])
        else:
            try:
                times = np.asarray(vals, dtype=np.float64)
            except ValueError:
                strs = _strings(vals)
                uniq = sorted(set(strs))
                table = dict(zip(uniq, _category_times(uniq, time_map)))
                times = np.array([table[s] for s in strs])
        if use_rep is None:
            if "X" not in f:
                raise InputError(f"data {p}: no 'X' matrix; pass use_rep= an obsm key")
            x = _read_matrix(f["X"])
        else:
            if "obsm" not in f or use_rep not in f["obsm"]:
                have = list(f["obsm"].keys()) if "obsm" in f else []
                raise InputError(f"use_rep: {use_rep!r} is not in obsm; present: {have}")
            x = _read_matrix(f["obsm"][use_rep])
    if x.shape[0] != times.shape[0]:
        raise InputError(f"data {p}: {x.shape[0]} rows of features but {times.shape[0]} obs rows")
    if n_components is not None:
        if not 1 <= int(n_components) <= x.shape[1]:
            raise InputError(f"n_components: must lie in [1, {x.shape[1]}], got {n_components}")
        x = x[:, : int(n_components)]
    if np.isinf(times).any():                      # NaN means "no time" (dropped); an infinite time is an error
        raise InputError(f"data {p}: obs column {time_key!r} holds {int(np.isinf(times).sum())} infinite time(s)")
    keep = ~np.isnan(times)
    x, times = x[keep], times[keep]
    bad = ~np.isfinite(x).all(axis=1)
    if bad.any():
        raise InputError(f"data {p}: {int(bad.sum())} cell(s) have NaN/inf features, first in kept row "
                         f"{int(np.argmax(bad))}")
    if pca is not None:
        x = pca_project(x, pca)[0]
    try:
        return group_by_time(x, times, dtype=dtype)
    except InputError as e:                        # name the file: "snapshot[0]: holds NaN" alone does not
        raise InputError(f"data {p}: {e}") from None


def read_snapshots(path: str | os.PathLike, **kwargs: Any) -> Snapshots:
    """Read snapshots by suffix: ``.npz``, ``.csv``, ``.h5ad``."""
    suffix = Path(path).suffix.lower()
    readers = {".npz": read_snapshot_npz, ".csv": read_snapshot_csv, ".h5ad": read_h5ad}
    if suffix not in readers:
        raise InputError(f"data: unknown snapshot format {suffix!r} of {path}; use .npz, .csv or .h5ad")
    return readers[suffix](path, **kwargs)
