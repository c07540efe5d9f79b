"""AnnData ``.h5ad`` snapshots, read with h5py directly (no anndata needed): the time from an ``obs`` column
(numbers, categories or nullable strings), the features from ``X`` (dense or CSR/CSC sparse) or an ``obsm``
entry such as ``X_pca``; every problem in the file is an InputError naming it and the HDF5 path. Also
``pca_project``, used by every snapshot format. Exported by ``sciflow.data.snapshots``."""
from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..core.errors import InputError
from ..domains.cells.snapshots import Snapshots

__all__ = ["pca_project", "read_h5ad"]


def _attr(obj: Any, key: str, default: Any = None) -> Any:
    v = obj.attrs.get(key, default)
    return v.decode() if isinstance(v, bytes) else v


def _strings(arr: np.ndarray) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in np.asarray(arr).reshape(-1)]


def _read_matrix(p: Path, node: Any) -> np.ndarray:
    """A dense dataset or a CSR/CSC sparse group (anndata's encoding) as a dense float array (cells, features);
    a malformed one raises InputError naming the file and the HDF5 path."""
    import h5py
    where = f"data {p}: matrix {node.name}"
    if isinstance(node, h5py.Dataset):
        try:
            x = np.asarray(node[()], dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise InputError(f"{where} is not numeric (dtype {node.dtype}): {e}") from None
        if x.ndim != 2:
            raise InputError(f"{where} must be 2-D (cells, features), got shape {x.shape}")
        return x
    enc = _attr(node, "encoding-type", "")
    if enc not in ("csr_matrix", "csc_matrix"):
        raise InputError(f"{where}: cannot read encoding {enc!r} (expected a dataset, csr_matrix or csc_matrix)")
    missing = [k for k in ("data", "indices", "indptr") if k not in node or not isinstance(node[k], h5py.Dataset)]
    shape = np.asarray(node.attrs["shape"]).reshape(-1) if "shape" in node.attrs else None
    if missing or shape is None:
        raise InputError(f"{where}: a {enc} group needs datasets data, indices, indptr and a 'shape' attribute; "
                         f"missing: {missing + ([] if shape is not None else ['shape'])}")
    if shape.size != 2 or shape.dtype.kind not in "iuf" or (shape < 0).any() or (shape != np.round(shape)).any():
        raise InputError(f"{where}: attribute 'shape' must be two non-negative integers, got {shape.tolist()}")
    rows, cols = (int(v) for v in shape)
    data, indices, indptr = (np.asarray(node[k][()]).reshape(-1) for k in ("data", "indices", "indptr"))
    major, minor = (rows, cols) if enc == "csr_matrix" else (cols, rows)
    if indptr.dtype.kind not in "iu" or indices.dtype.kind not in "iu":
        raise InputError(f"{where}: indptr and indices must be integers, got {indptr.dtype} and {indices.dtype}")
    if indptr.size != major + 1 or indptr[0] != 0 or (np.diff(indptr) < 0).any():
        raise InputError(f"{where}/indptr: expected {major + 1} non-decreasing offsets from 0 (shape "
                         f"{(rows, cols)}), got {indptr.size}" + (f" from {indptr[0]}" if indptr.size else ""))
    if not indptr[-1] == data.size == indices.size:
        raise InputError(f"{where}: indptr ends at {indptr[-1]} but data has {data.size} and indices {indices.size} "
                         f"entries")
    if indices.size and (indices.min() < 0 or indices.max() >= minor):
        raise InputError(f"{where}/indices: must lie in [0, {minor - 1}] (shape {(rows, cols)}), got "
                         f"[{indices.min()}, {indices.max()}]")
    try:
        values = data.astype(np.float64)
    except (TypeError, ValueError) as e:
        raise InputError(f"{where}/data is not numeric (dtype {data.dtype}): {e}") from None
    out = np.zeros((rows, cols), dtype=np.float64)
    major_idx = np.repeat(np.arange(major), np.diff(indptr))
    if enc == "csr_matrix":
        out[major_idx, indices] = values
    else:
        out[indices, major_idx] = values
    return out


def _member(p: Path, node: Any, key: str, enc: str) -> np.ndarray:
    """Dataset ``key`` of an encoded obs column group, or InputError naming the file and the HDF5 path."""
    import h5py
    if key not in node or not isinstance(node[key], h5py.Dataset):
        raise InputError(f"data {p}: obs column {node.name} ({enc}) has no dataset {key!r}; members: "
                         f"{list(node.keys())}")
    return node[key][()]


def _obs_column(p: Path, f: Any, key: str) -> tuple[np.ndarray, list[str] | None, str]:
    """(values, categories or None, HDF5 path of the values) of an obs column in the current (group) or old
    (compound) layout. A nullable string column is returned as categories (its distinct strings) with codes,
    -1 where masked."""
    import h5py
    obs = f["obs"]
    if isinstance(obs, h5py.Dataset):  # anndata < 0.7: a compound dataset, categories in uns/<key>_categories
        names = obs.dtype.names or ()
        if key not in names:
            raise InputError(f"time_key: {key!r} is not an obs column of {p}; columns: {list(names)}")
        vals = obs[key]
        cats_key = f"uns/{key}_categories"
        return vals, (_strings(f[cats_key][()]) if cats_key in f else None), f"{obs.name}[{key!r}]"
    if key not in obs:
        cols = [c for c in obs.keys() if c != _attr(obs, "_index", "_index")]
        raise InputError(f"time_key: {key!r} is not an obs column of {p}; columns: {cols}")
    node = obs[key]
    if isinstance(node, h5py.Group):
        enc = _attr(node, "encoding-type", "")
        if enc == "categorical":
            codes = _member(p, node, "codes", enc)
            return codes, _strings(_member(p, node, "categories", enc)), f"{node.name}/codes"
        mask = _member(p, node, "mask", enc).astype(bool).reshape(-1) if "mask" in node else None
        if enc == "nullable-string-array":
            strs = np.array(_strings(_member(p, node, "values", enc)), dtype=object)
            if mask is not None and mask.shape != strs.shape:
                raise InputError(f"data {p}: obs column {node.name}: mask has {mask.size} entries, values {strs.size}")
            keep = ~mask if mask is not None else np.ones(strs.shape, bool)
            cats = sorted(set(strs[keep].tolist()))
            lookup = {c: i for i, c in enumerate(cats)}
            codes = np.array([lookup[v] if k else -1 for v, k in zip(strs.tolist(), keep.tolist())], dtype=np.int64)
            return codes, cats, f"{node.name}/values"
        if enc.startswith("nullable"):
            raw = _member(p, node, "values", enc)
            try:
                vals = np.asarray(raw, dtype=np.float64).reshape(-1)
            except (TypeError, ValueError):
                raise InputError(f"data {p}: obs column {node.name}/values ({enc}) is not numeric "
                                 f"(dtype {raw.dtype})") from None
            if mask is not None:
                if mask.shape != vals.shape:
                    raise InputError(f"data {p}: obs column {node.name}: mask has {mask.size} entries, values "
                                     f"{vals.size}")
                vals[mask] = np.nan
            return vals, None, f"{node.name}/values"
        raise InputError(f"data {p}: obs column {node.name} has an unsupported encoding {enc!r}")
    vals = node[()]
    cats = _attr(node, "categories")  # anndata 0.7: codes with a reference to the categories dataset
    if cats is not None and not isinstance(cats, str):
        return vals, _strings(f[cats][()]), node.name
    return vals, None, node.name


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


def _category_codes(p: Path, vals: Any, n_categories: int, where: str) -> np.ndarray:
    """Integer category codes: -1 (missing) or an index into the categories, else InputError naming the file."""
    codes = np.asarray(vals).reshape(-1)
    if codes.dtype.kind not in "iu" and not (codes.dtype.kind == "f" and np.array_equal(codes, np.round(codes))):
        raise InputError(f"data {p}: category codes {where} must be integers, got dtype {codes.dtype}")
    codes = codes.astype(np.int64)
    bad = (codes < -1) | (codes >= n_categories)
    if bad.any():
        raise InputError(f"data {p}: category codes {where} must lie in [-1, {n_categories - 1}] (-1: missing; "
                         f"{n_categories} categories), {int(bad.sum())} do not, first {int(codes[bad][0])} "
                         f"(row {int(np.argmax(bad))})")
    return codes


def pca_project(x: np.ndarray, n_components: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(scores (M, n), components (n, d), mean (d,)) of a centred SVD."""
    if not 1 <= int(n_components) <= min(x.shape):
        raise InputError(f"pca: n_components must lie in [1, {min(x.shape)}], got {n_components}")
    mean = x.mean(0)
    _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
    comps = vt[: int(n_components)]
    return (x - mean) @ comps.T, comps, mean


def _h5ad_arrays(p: Path, f: Any, time_key: str, use_rep: str | None,
                 time_map: Mapping[str, float] | None) -> tuple[np.ndarray, np.ndarray]:
    """(features (M, d), times (M,), NaN where missing) of an open AnnData file."""
    if "obs" not in f:
        raise InputError(f"data {p}: no 'obs' group; not an AnnData file")
    vals, cats, where = _obs_column(p, f, time_key)
    if cats is not None:
        codes = _category_codes(p, vals, len(cats), where)
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
        x = _read_matrix(p, f["X"])
    else:
        if "obsm" not in f or use_rep not in f["obsm"]:
            have = list(f["obsm"].keys()) if "obsm" in f else []
            raise InputError(f"use_rep: {use_rep!r} is not in obsm; present: {have}")
        x = _read_matrix(p, f["obsm"][use_rep])
    return x, np.asarray(times, dtype=np.float64).reshape(-1)


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
        try:
            x, times = _h5ad_arrays(p, f, time_key, use_rep, time_map)
        except InputError:
            raise
        except (KeyError, IndexError, TypeError, ValueError, OSError, RuntimeError) as e:   # a layout not foreseen
            raise InputError(f"data {p}: cannot read the AnnData layout ({type(e).__name__}: {e})") from None
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
        try:
            x = pca_project(x, pca)[0]
        except InputError as e:
            raise InputError(f"data {p}: {e} ({x.shape[1]} features, {x.shape[0]} cells)") from None
    try:
        from .snapshots import group_by_time  # (that module imports this one)
        return group_by_time(x, times, dtype=dtype)
    except InputError as e:                        # name the file: "snapshot[0]: holds NaN" alone does not
        raise InputError(f"data {p}: {e}") from None
