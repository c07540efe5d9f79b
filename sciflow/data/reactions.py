"""Reaction triplets (reactant, transition state, product) in the ``triplets.npz`` layout, and a fixed split.

Layout (one file, ragged by ``offsets``; Å; the same atom order in all geometries of a reaction):
``rxn_id (R,) str``, ``n_atoms (R,) int``, ``offsets (R + 1,) int`` (reaction i = rows offsets[i]:offsets[i+1]),
``atomic_numbers (N,) int``, ``pos_reactant``, ``pos_ts``, ``pos_product`` ``(N, 3) float32``, and optional extra
per-atom geometries such as ``pos_ts_g2c_model`` (model predictions shipped with the Grambow set; every extra named
``pos_*`` is checked like the core geometries: shape (N, 3), finite) or per-reaction arrays (``energy_*`` of shape
(R,)). Atomic numbers must lie in sciflow's element table (1..53, H..I), which the TS-GEN element embedding shares.
Reading needs numpy only (no RDKit), so GPU machines can train and evaluate.

Real data: the 700 Grambow isomerizations (Grambow, Pattanaik & Green, *Sci. Data* 7, 137 (2020); split of
Pattanaik, Ingraham, Grambow & Green, *PCCP* 2020), see ``datasets/reactions/CARD.md``.
"""
from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..core.errors import InputError, check_count
from ..core.files import atomic_path, open_npz
from ..core.random import make_generator, randperm

__all__ = [
    "GRAMBOW_DIRNAME",
    "GRAMBOW_SPLIT",
    "ReactionSet",
    "check_reaction_ids",
    "find_grambow",
    "load_triplets",
    "read_reaction_sdfs",
    "save_triplets",
    "split_indices",
]

GRAMBOW_DIRNAME = "grambow_isomerization_700"
#: the fixed split of the 700 Grambow reactions (recorded in datasets/reactions/CARD.md)
GRAMBOW_SPLIT = {"seed": 20240601, "sizes": (560, 70, 70), "names": ("train", "val", "test")}

_REQUIRED = ("atomic_numbers", "offsets", "pos_reactant", "pos_product")


@dataclass
class ReactionSet:
    """Ragged arrays of R reactions; ``pos_ts`` is None when the transition states are unknown (inference)."""

    rxn_id: np.ndarray
    offsets: np.ndarray
    atomic_numbers: np.ndarray
    pos_reactant: np.ndarray
    pos_product: np.ndarray
    pos_ts: np.ndarray | None = None
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.offsets = _whole_numbers("offsets", self.offsets)
        if self.offsets.ndim != 1:
            raise InputError(f"offsets: expected a 1-D array of R + 1 row offsets, got shape {self.offsets.shape}")
        n = int(self.offsets[-1]) if len(self.offsets) else 0
        if len(self.offsets) < 1 or self.offsets[0] != 0 or np.any(np.diff(self.offsets) <= 0):
            raise InputError("offsets: must start at 0 and increase strictly (every reaction has atoms)")
        self.rxn_id = np.asarray(self.rxn_id).astype(str)
        if self.rxn_id.shape != (len(self.offsets) - 1,):
            raise InputError(f"rxn_id: expected {len(self.offsets) - 1} ids, got {self.rxn_id.shape}")
        check_reaction_ids(self.rxn_id.tolist())
        if np.shape(self.atomic_numbers) != (n,):
            raise InputError(f"atomic_numbers: expected shape ({n},) from offsets, "
                             f"got {np.shape(self.atomic_numbers)}")
        self.atomic_numbers = _whole_numbers("atomic_numbers", self.atomic_numbers, self)
        # the element table (symbols, masses, radii) and the TS-GEN element embedding stop at len(SYMBOLS) - 1;
        # a heavier element would pass here and fail later (writing a formula, embedding an atom)
        from ..domains.molecules.elements import SYMBOLS
        z_max = len(SYMBOLS) - 1
        bad = np.flatnonzero((self.atomic_numbers < 1) | (self.atomic_numbers > z_max))
        if bad.size:
            raise InputError(f"atomic_numbers: {int(self.atomic_numbers[bad[0]])} is no element sciflow supports "
                             f"(1..{z_max}, H..{SYMBOLS[z_max]}), in {self._where(bad[0])}")
        for name in ("pos_reactant", "pos_product", "pos_ts"):
            v = getattr(self, name)
            if v is None:
                continue
            v = np.asarray(v)
            if v.dtype.kind not in "iuf":       # complex ones would lose their imaginary part, silently
                raise InputError(f"{name}: expected real coordinates, got {v.dtype} values")
            v = v.astype(np.float32)
            if v.shape != (n, 3):
                raise InputError(f"{name}: expected shape ({n}, 3), got {v.shape}")
            if not np.isfinite(v).all():
                row = int(np.argwhere(~np.isfinite(v))[0, 0])
                raise InputError(f"{name}: non-finite coordinate in {self._where(row)}")
            setattr(self, name, v)
        n_r = len(self.offsets) - 1
        self.extra = {k: np.asarray(v) for k, v in self.extra.items()}      # a list would break subset
        for k, v in self.extra.items():      # per reaction or per atom: anything else would be lost by subset
            shape = np.shape(v)
            if not shape or shape[0] not in (n_r, n):
                raise InputError(f"{k}: an extra array needs one entry per reaction ({n_r}) or per atom ({n}), "
                                 f"got shape {shape}")
            if k.startswith("pos_"):         # an extra geometry (pos_ts_g2c_model): a guess or a reference, used
                if v.dtype.kind not in "iuf" or v.shape != (n, 3):     # as coordinates, so checked as such
                    raise InputError(f"{k}: an extra geometry needs real coordinates of shape ({n}, 3), got "
                                     f"{v.dtype} values of shape {v.shape}")
                if not np.isfinite(v).all():
                    row = int(np.argwhere(~np.isfinite(v))[0, 0])
                    raise InputError(f"{k}: non-finite coordinate in {self._where(row)}")

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def _where(self, row: int) -> str:
        """'reaction i (id), atom j' of an atom row."""
        rxn = int(np.searchsorted(self.offsets, row, side="right") - 1)
        return f"reaction {rxn} ({self.rxn_id[rxn]}), atom {int(row) - int(self.offsets[rxn])}"

    @property
    def n_atoms(self) -> np.ndarray:
        return np.diff(self.offsets)

    def rows(self, i: int) -> slice:
        return slice(int(self.offsets[i]), int(self.offsets[i + 1]))

    def subset(self, idx: Sequence[int] | np.ndarray) -> ReactionSet:
        """The reactions ``idx`` (in that order) as a new set."""
        idx = np.asarray(idx, dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise InputError(f"idx: reaction indices must lie in 0..{len(self) - 1}")
        rows = np.concatenate([np.arange(self.offsets[i], self.offsets[i + 1]) for i in idx]) if idx.size else \
            np.zeros(0, dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(self.n_atoms[idx])])
        n_r, n_a = len(self), len(self.atomic_numbers)
        extra = {}
        for k, v in self.extra.items():
            if v.shape[:1] == (n_a,) and n_a != n_r:
                extra[k] = v[rows]
            elif v.shape[:1] == (n_r,):
                extra[k] = v[idx]
        return ReactionSet(self.rxn_id[idx], offsets, self.atomic_numbers[rows], self.pos_reactant[rows],
                           self.pos_product[rows], None if self.pos_ts is None else self.pos_ts[rows], extra)

    def reaction(self, i: int) -> dict[str, np.ndarray]:
        s = self.rows(i)
        out = {"rxn_id": str(self.rxn_id[i]), "atomic_numbers": self.atomic_numbers[s],
               "pos_reactant": self.pos_reactant[s], "pos_product": self.pos_product[s]}
        if self.pos_ts is not None:
            out["pos_ts"] = self.pos_ts[s]
        return out

    def to_arrays(self) -> dict[str, np.ndarray]:
        out = {"rxn_id": self.rxn_id, "n_atoms": self.n_atoms, "offsets": self.offsets,
               "atomic_numbers": self.atomic_numbers.astype(np.int8), "pos_reactant": self.pos_reactant,
               "pos_product": self.pos_product}
        if self.pos_ts is not None:
            out["pos_ts"] = self.pos_ts
        out.update(self.extra)
        return out

    def batch_index(self) -> torch.Tensor:
        """(N,) graph index of every atom."""
        return torch.repeat_interleave(torch.arange(len(self)), torch.as_tensor(self.n_atoms))


def _whole_numbers(name: str, a: Any, data: ReactionSet | None = None) -> np.ndarray:
    """``a`` as int64, refusing what a cast would change: 8.7 (read as 8), NaN, complex, text."""
    a = np.asarray(a)
    if a.dtype.kind not in "iuf":
        raise InputError(f"{name}: expected whole numbers, got {a.dtype} values")
    if a.dtype.kind == "f":
        bad = np.flatnonzero(~np.isfinite(a) | (a != np.round(a)))
        if bad.size and data is not None:       # the element check of the molecules domain says why
            from ..domains.molecules.elements import atomic_number
            atomic_number(float(a.reshape(-1)[bad[0]]), field=f"{name} ({data._where(bad[0])})")
        if bad.size:
            raise InputError(f"{name}: expected whole numbers, got {a.reshape(-1)[bad[0]]} at index {bad[0]}")
    return a.astype(np.int64)


def check_reaction_ids(ids: list[str]) -> None:
    """Reaction ids name output files (``<id>.xyz``): refuse ids that leave the folder, hide or nest the file, or
    that two reactions share (one output would overwrite the other)."""
    bad = [r for r in ids if not r or r.startswith("..") or r == "." or any(c in r for c in "/\\\0")]
    if bad:
        raise InputError(f"rxn_id: must be non-empty, without '/', '\\' or NUL and not '.' or start with '..', "
                         f"got {bad[:5]}")
    dup = sorted(r for r, k in Counter(ids).items() if k > 1)
    if dup:
        raise InputError(f"rxn_id: must be unique, got duplicates {dup[:5]}")


def load_triplets(path: str | os.PathLike, *, require_ts: bool = True) -> ReactionSet:
    """Read a ``triplets.npz`` file (or a folder holding one); missing keys raise InputError naming them."""
    p = Path(path)
    if p.is_dir():
        p = p / "triplets.npz"
    if not p.is_file():
        raise InputError(f"data: no triplets file at {p}")
    arrays = {}
    with open_npz(p, "data", "a readable triplets .npz archive") as d:    # names an unreadable array
        arrays.update((k, d[k]) for k in d.files)
    need = _REQUIRED + (("pos_ts",) if require_ts else ())
    missing = [k for k in need if k not in arrays]
    if missing:
        raise InputError(f"data: {p} lacks the array(s) {', '.join(missing)} of the triplets layout")
    offsets = arrays.pop("offsets")
    if np.ndim(offsets) != 1:
        raise InputError(f"offsets: in {p} expected a 1-D array of R + 1 row offsets, "
                         f"got shape {np.shape(offsets)}")
    rxn_id = arrays.pop("rxn_id", np.array([f"rxn{i}" for i in range(len(offsets) - 1)]))
    n_atoms = arrays.pop("n_atoms", None)
    core = {k: arrays.pop(k) for k in ("atomic_numbers", "pos_reactant", "pos_product")}
    pos_ts = arrays.pop("pos_ts", None)
    try:
        data = ReactionSet(rxn_id, offsets, pos_ts=pos_ts, extra=arrays, **core)
    except InputError as e:
        raise InputError(f"{e} (in {p})") from None
    if len(data) == 0:
        raise InputError(f"data: {p} holds no reactions")
    if n_atoms is not None and (np.shape(n_atoms) != (len(data),) or not np.array_equal(n_atoms, data.n_atoms)):
        raise InputError(f"n_atoms: disagrees with offsets in {p} (n_atoms {np.asarray(n_atoms)[:6].tolist()}..., "
                         f"offsets give {data.n_atoms[:6].tolist()}...)")
    return data


def save_triplets(path: str | os.PathLike, data: ReactionSet) -> Path:
    """Write atomically in the triplets layout."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **data.to_arrays())
    return Path(path)


def read_reaction_sdfs(folder: str | os.PathLike) -> ReactionSet:
    """Read ``reactants.sdf``, ``ts.sdf``, ``products.sdf`` (+ ``g2c_model_predicted_ts.sdf`` if present) with
    RDKit (records in the same order and atom order); ids from ``index.csv`` when present (column ``rxn_id``,
    one row per record, placed by its ``idx`` column when there is one; see ``_index_ids``)."""
    from ..domains.molecules.io import read_sdf

    folder = Path(folder)
    mols = {}
    for key, name in (("r", "reactants.sdf"), ("ts", "ts.sdf"), ("p", "products.sdf")):
        if not (folder / name).is_file():
            raise InputError(f"data: {folder} lacks {name}")
        mols[key] = read_sdf(folder / name)
    n = len(mols["r"])
    if not len(mols["ts"]) == len(mols["p"]) == n:
        raise InputError(f"data: {folder}: reactants/ts/products hold {n}/{len(mols['ts'])}/{len(mols['p'])} records")
    z, pr, pt, pp, counts = [], [], [], [], []
    for i in range(n):
        (zr, xr), (zt, xt), (zp, xp) = mols["r"][i], mols["ts"][i], mols["p"][i]
        if not (np.array_equal(zr, zt) and np.array_equal(zr, zp)):
            raise InputError(f"data: record {i}: reactant, TS and product atom orders differ")
        z.append(zr); pr.append(xr); pt.append(xt); pp.append(xp); counts.append(len(zr))
    extra = {}
    g2c = folder / "g2c_model_predicted_ts.sdf"
    if g2c.is_file():
        preds = read_sdf(g2c)
        bad = [i for i, (zg, _) in enumerate(preds[:n]) if not np.array_equal(zg, z[i])]
        if len(preds) != n or bad:
            raise InputError(f"data: {g2c.name}: expected {n} records with the reactants' atoms, got {len(preds)}"
                             + (f" (atoms differ from record {bad[0]} on)" if bad else ""))
        extra["pos_ts_g2c_model"] = np.concatenate([x for _, x in preds]).astype(np.float32)
    ids = np.array([f"rxn{i}" for i in range(n)])
    if (folder / "index.csv").is_file():
        ids = np.array(_index_ids(folder / "index.csv", counts))
    try:
        return ReactionSet(ids, np.concatenate([[0], np.cumsum(counts)]), np.concatenate(z), np.concatenate(pr),
                           np.concatenate(pp), np.concatenate(pt), extra)
    except InputError as e:
        raise InputError(f"{e} (in {folder})") from None


def _index_ids(path: Path, counts: Sequence[int]) -> list[str]:
    """Reaction ids from ``index.csv``: column ``rxn_id``, one row per SDF record; an ``idx`` column gives each
    row's record (0-based; rows may come in any order), else rows follow the records. An ``n_atoms`` column must
    agree with the records."""
    import csv

    n = len(counts)
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            columns = list(reader.fieldnames or [])
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise InputError(f"index.csv: {path} could not be read ({type(e).__name__}: {e})") from None
    if "rxn_id" not in columns:
        raise InputError(f"index.csv: {path} has no 'rxn_id' column (columns: {columns or 'none'})")
    if len(rows) != n:
        raise InputError(f"index.csv: {path} lists {len(rows)} reaction(s), the SDF files hold {n} records")

    def cell(line: int, row: dict[str, Any], column: str) -> str:
        v = row.get(column)
        if v is None or not str(v).strip():
            raise InputError(f"index.csv: {path} line {line}: column {column!r} is empty")
        return str(v).strip()

    def whole(line: int, row: dict[str, Any], column: str) -> int:
        v = cell(line, row, column)
        try:
            return int(v)
        except ValueError:
            raise InputError(f"index.csv: {path} line {line}: column {column!r} expected a whole number, "
                             f"got {v!r}") from None

    order = [whole(k + 2, row, "idx") for k, row in enumerate(rows)] if "idx" in columns else list(range(n))
    for k, i in enumerate(order):
        if not 0 <= i < n:
            raise InputError(f"index.csv: {path} line {k + 2}: column 'idx' is {i}, expected a record index in "
                             f"0..{n - 1}")
    seen: dict[int, int] = {}
    for k, i in enumerate(order):
        if i in seen:
            raise InputError(f"index.csv: {path} lines {seen[i] + 2} and {k + 2}: column 'idx' repeats {i}")
        seen[i] = k
    ids = [""] * n
    for k, (i, row) in enumerate(zip(order, rows)):
        ids[i] = cell(k + 2, row, "rxn_id")
        if "n_atoms" in columns and whole(k + 2, row, "n_atoms") != counts[i]:
            raise InputError(f"index.csv: {path} line {k + 2}: column 'n_atoms' is {row['n_atoms'].strip()} for "
                             f"{ids[i]!r} (idx {i}), but SDF record {i} has {counts[i]} atoms")
    return ids


def split_indices(n: int, sizes: Sequence[int], seed: int) -> list[np.ndarray]:
    """A random partition of range(n) into parts of the given sizes, from a seeded torch.Generator; each part
    is sorted. Sizes must sum to n."""
    for i, size in enumerate(sizes):
        check_count(f"sizes[{i}]", size, 0)
    if sum(sizes) != n:
        raise InputError(f"sizes: must sum to {n}, got {list(sizes)} (sum {sum(sizes)})")
    perm = randperm(n, generator=make_generator(seed)).numpy()
    out, start = [], 0
    for s in sizes:
        out.append(np.sort(perm[start:start + s]))
        start += s
    return out


def find_grambow(start: str | os.PathLike | None = None) -> Path:
    """The Grambow folder: $SCIFLOW_REACTIONS, else ``shared/data/reactions/grambow_isomerization_700`` found in
    the current folder or one of its parents (the layout of a sciflow checkout beside ``shared/``)."""
    env = os.environ.get("SCIFLOW_REACTIONS")
    if env:
        return Path(env)
    here = Path(start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        cand = d / "shared" / "data" / "reactions" / GRAMBOW_DIRNAME
        if cand.is_dir():
            return cand
    raise InputError(f"data: could not find shared/data/reactions/{GRAMBOW_DIRNAME} above {here}; "
                     "set SCIFLOW_REACTIONS to the folder")


def grambow_split(data: ReactionSet) -> dict[str, ReactionSet]:
    """The fixed train/val/test split of the 700 Grambow reactions."""
    parts = split_indices(len(data), GRAMBOW_SPLIT["sizes"], GRAMBOW_SPLIT["seed"])
    return {name: data.subset(idx) for name, idx in zip(GRAMBOW_SPLIT["names"], parts)}


__all__.append("grambow_split")
