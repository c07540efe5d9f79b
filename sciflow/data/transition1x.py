"""Transition1x HDF5 (Schreiner et al., *Sci. Data* 9, 779 (2022), CC BY 4.0): reader and a writer of the layout.

Layout: ``/{data|train|val|test}/<formula>/<rxn>/`` holding ``atomic_numbers`` (atoms,), ``positions``
(frames, atoms, 3) Å, ``wB97x_6-31G(d).energy`` (frames,) eV, ``wB97x_6-31G(d).forces`` (frames, atoms, 3) eV/Å,
and subgroups ``reactant``, ``transition_state``, ``product`` with the same datasets (frame 0 is the structure).
The reader returns a ``ReactionSet`` (triplets layout) with per-reaction energies ``energy_reactant``,
``energy_ts``, ``energy_product`` (eV) and ``formula``; the writer writes that layout (for tests and for
reactions generated here).
"""
from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ..core.errors import InputError, check_count
from ..core.files import atomic_path
from .reactions import ReactionSet, check_reaction_ids

__all__ = [
    "T1X_ATOM_ENERGIES",
    "T1X_ENERGY",
    "T1X_FORCES",
    "T1X_SPLITS",
    "read_transition1x",
    "write_transition1x",
]

T1X_ENERGY = "wB97x_6-31G(d).energy"
T1X_FORCES = "wB97x_6-31G(d).forces"
T1X_SPLITS = ("data", "train", "val", "test")
#: reference atom energies (eV) at wB97x/6-31G(d), for atomisation energies
T1X_ATOM_ENERGIES = {1: -13.62222753701504, 6: -1029.4130839658328, 7: -1484.8710358098756,
                     8: -2041.8396277138045}
_ROLES = (("reactant", "pos_reactant", "energy_reactant"), ("transition_state", "pos_ts", "energy_ts"),
          ("product", "pos_product", "energy_product"))


def read_transition1x(path: str | os.PathLike, split: str = "data", *, limit: int | None = None,
                      formulas: Iterable[str] | None = None, energy_key: str = T1X_ENERGY) -> ReactionSet:
    """Reactant, TS and product (frame 0 of each subgroup) of every reaction of ``split``: in the order
    ``write_transition1x`` wrote them (its ``sciflow_index`` attributes), else in HDF5's order (groups sorted by
    name, as in the public file).

    Every problem with the file raises ``InputError`` naming the file and the dataset: not HDF5 (or truncated),
    text where numbers belong, no frame, non-finite coordinates, and NaN energies (except those
    ``write_transition1x`` marked as unknown: they come back as NaN, and an energy unknown for every reaction is left
    out of ``extra``). Per-reaction attributes that ``write_transition1x`` recorded (``sciflow.<name>``, e.g. the
    xTB generator's ``neb_converged``, ``error``, ``sella_saddle``) come back in ``extra`` when every reaction read
    has them; other readers ignore them."""
    import h5py

    p = Path(path)
    if not p.is_file():
        raise InputError(f"transition1x: no file at {p}")
    if split not in T1X_SPLITS:
        raise InputError(f"split: expected one of {', '.join(T1X_SPLITS)}, got {split!r}")
    if limit is not None:                  # a positive integer: nan, inf and 2.5 are not counts
        limit = check_count("limit", limit)
    if isinstance(formulas, str):          # set("CH2") would be its characters
        formulas = [formulas]
    wanted = set(formulas) if formulas is not None else None
    ids, zs, pos = [], [], {k: [] for _, k, _ in _ROLES}
    energies: dict[str, list[float]] = {e: [] for _, _, e in _ROLES}
    unknown: dict[str, list[bool]] = {e: [] for _, _, e in _ROLES}
    flags: list[dict[str, object]] = []
    forms = []
    try:
        f = h5py.File(p, "r")
    except OSError as e:                   # empty, truncated, or not HDF5 at all
        raise InputError(f"transition1x: {p} is not a readable HDF5 file ({e})") from None
    try:
        with f:
            if split not in f:
                raise InputError(f"split: {p} has no group {split!r} (groups: {', '.join(f.keys())})")
            # only groups are reactions: datasets beside them (a README, notes) are not
            keys = [(formula, rxn) for formula, fgroup in f[split].items()
                    if isinstance(fgroup, h5py.Group) and (wanted is None or formula in wanted)
                    for rxn, rgroup in fgroup.items() if isinstance(rgroup, h5py.Group)]
            order = [f[split][fm][rx].attrs.get(_INDEX) for fm, rx in keys]
            if keys and all(o is not None for o in order):          # written by write_transition1x: its order
                keys = [k for _, k in sorted(zip((int(o) for o in order), keys))]
            for formula, rxn in keys:
                grp = f[split][formula][rxn]
                where = f"{split}/{formula}/{rxn}"
                z = _numbers(grp, "atomic_numbers", p, where).astype(np.int64).reshape(-1) \
                    if "atomic_numbers" in grp else None
                for role, key, ekey in _ROLES:
                    if role not in grp:
                        raise InputError(f"transition1x: {p}: {where} lacks the subgroup {role!r}")
                    sub = grp[role]
                    at = f"{where}/{role}"
                    for ds in ("positions", energy_key):
                        if ds not in sub:
                            raise InputError(f"transition1x: {p}: {at} lacks the dataset {ds!r}")
                    x = _numbers(sub, "positions", p, at)
                    if x.ndim == 3:
                        if x.shape[0] == 0:
                            raise InputError(f"transition1x: {p}: {at}/positions holds no frame (shape {x.shape})")
                        x = x[0]
                    zr = _numbers(sub, "atomic_numbers", p, at).astype(np.int64).reshape(-1) \
                        if "atomic_numbers" in sub else z
                    if zr is None:
                        raise InputError(f"transition1x: {p}: {where} has no atomic_numbers")
                    if z is None:
                        z = zr
                    if not np.array_equal(zr, z) or x.shape != (len(z), 3):
                        raise InputError(f"transition1x: {p}: {at}: atoms differ from the reaction's "
                                         f"({len(z)} atoms; positions of shape {x.shape})")
                    if not np.isfinite(x).all():
                        atom = int(np.argwhere(~np.isfinite(x))[0, 0])
                        raise InputError(f"transition1x: {p}: {at}/positions: non-finite coordinate of atom {atom} "
                                         f"{x[atom].tolist()}")
                    pos[key].append(x.astype(np.float32))
                    e = _numbers(sub, energy_key, p, at).astype(np.float64).reshape(-1)
                    if e.size == 0:
                        raise InputError(f"transition1x: {p}: {at}/{energy_key} is empty")
                    marked = bool(sub[energy_key].attrs.get(_UNKNOWN, False))
                    if not np.isfinite(e[0]) and not marked:
                        raise InputError(f"transition1x: {p}: {at}/{energy_key}: energy is {e[0]} (field "
                                         f"{ekey}); a reaction needs finite energies")
                    energies[ekey].append(float(e[0]) if not marked else float("nan"))
                    unknown[ekey].append(marked)
                flags.append({k[len(_FLAG):]: v for k, v in grp.attrs.items() if k.startswith(_FLAG)})
                ids.append(rxn)
                zs.append(z)
                forms.append(formula)
                if limit is not None and len(ids) >= limit:
                    break
    except (OSError, KeyError, RuntimeError) as e:       # a damaged file h5py opened but cannot read through
        raise InputError(f"transition1x: {p} could not be read ({type(e).__name__}: {e})") from None
    if not ids:
        raise InputError(f"transition1x: no reactions found in {p} split {split!r}")
    if len(set(ids)) != len(ids):          # one reaction name under several formulas: qualify every id
        ids = [f"{fm}_{rx}" for fm, rx in zip(forms, ids)]
        if len(set(ids)) != len(ids):
            raise InputError(f"transition1x: {p} names several reactions alike even with their formulas")
    counts = [len(z) for z in zs]
    extra = {k: np.asarray(v) for k, v in energies.items() if not all(unknown[k])}
    extra["formula"] = np.asarray(forms)
    for k in set.intersection(*(set(fl) for fl in flags)) - set(extra):
        extra[k] = np.asarray([fl[k] for fl in flags])
        if extra[k].dtype.kind in "SO":
            extra[k] = extra[k].astype(str)
    try:
        return ReactionSet(np.asarray(ids), np.concatenate([[0], np.cumsum(counts)]), np.concatenate(zs),
                           np.concatenate(pos["pos_reactant"]), np.concatenate(pos["pos_product"]),
                           np.concatenate(pos["pos_ts"]), extra)
    except InputError as e:
        raise InputError(f"transition1x: {p}: {e}") from None


def _numbers(grp: object, name: str, path: Path, where: str) -> np.ndarray:
    """The dataset ``grp[name]`` as a real numeric array, or ``InputError`` naming the file and dataset path."""
    try:
        v = np.asarray(grp[name][()])      # type: ignore[index]
    except (OSError, KeyError, RuntimeError, TypeError, ValueError) as e:
        raise InputError(f"transition1x: {path}: {where}/{name} could not be read ({type(e).__name__}: {e})") \
            from None
    if v.dtype.kind not in "iuf":
        raise InputError(f"transition1x: {path}: {where}/{name}: expected numbers, got {v.dtype} values")
    return v


#: attribute of each reaction group written here: its position in the written ReactionSet (HDF5 lists groups by
#: name, which would reorder rxn10 before rxn2 and interleave formulas)
_INDEX = "sciflow_index"
#: attribute of an energy dataset written here as NaN because the energy was not known (read back as NaN)
_UNKNOWN = "sciflow.unknown"
#: prefix of the per-reaction attributes written here from ``data.extra`` (flags such as ``neb_converged``)
_FLAG = "sciflow."


def _formula(z: np.ndarray) -> str:
    from ..domains.molecules.elements import SYMBOLS

    counts: dict[str, int] = {}
    for v in z.tolist():
        if not 1 <= int(v) < len(SYMBOLS):     # atomic_numbers changed after the set was checked
            raise InputError(f"atomic_numbers: {int(v)} is no element sciflow supports (1..{len(SYMBOLS) - 1})")
        counts[SYMBOLS[int(v)]] = counts.get(SYMBOLS[int(v)], 0) + 1
    order = sorted(counts, key=lambda s: (s != "C", s != "H", s))
    return "".join(f"{s}{counts[s] if counts[s] > 1 else ''}" for s in order)


def write_transition1x(path: str | os.PathLike, data: ReactionSet, split: str = "data", *,
                       energy_key: str = T1X_ENERGY, paths: dict[int, np.ndarray] | None = None) -> Path:
    """Write reactions in the Transition1x layout (atomically). Energies come from ``data.extra``
    (``energy_reactant``/``energy_ts``/``energy_product``; NaN when absent or NaN there, and then marked with the
    attribute ``sciflow.unknown`` so that ``read_transition1x`` reads it back as unknown instead of refusing it);
    forces are written as NaN unless known. Other per-reaction scalars of ``data.extra`` (e.g. ``neb_converged``,
    ``error``, ``sella_saddle`` of the xTB generator) are written as attributes ``sciflow.<name>`` of each reaction
    group (the public layout has none; other readers ignore them). ``paths`` optionally maps a reaction index to
    its (frames, atoms, 3) NEB path for ``positions``."""
    import h5py

    if data.pos_ts is None:
        raise InputError("data: the Transition1x layout needs transition states (pos_ts)")
    if split not in T1X_SPLITS:
        raise InputError(f"split: expected one of {', '.join(T1X_SPLITS)}, got {split!r}")
    # ids become HDF5 group names ('/' would nest groups no reader finds again); checked again in case they were
    # changed after the set was built
    check_reaction_ids([str(r) for r in data.rxn_id])
    energy_keys = {e for _, _, e in _ROLES}
    flags = {k: v for k, v in data.extra.items() if k not in energy_keys and k != "formula"
             and np.ndim(v) == 1 and len(v) == len(data) and np.asarray(v).dtype.kind in "biufSU"
             and (len(data) != len(data.atomic_numbers) or not k.startswith("pos_"))}
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        root = f.create_group(split)
        for i in range(len(data)):
            s = data.rows(i)
            z = data.atomic_numbers[s]
            grp = root.require_group(_formula(z)).create_group(str(data.rxn_id[i]))
            grp.attrs[_INDEX] = i
            for k, v in flags.items():
                item = np.asarray(v)[i]
                grp.attrs[_FLAG + k] = str(item) if np.asarray(v).dtype.kind in "SU" else item
            roles = {}
            for role, key, ekey in _ROLES:
                x = getattr(data, key)[s]
                e = float(data.extra[ekey][i]) if ekey in data.extra else float("nan")
                sub = grp.create_group(role)
                sub["atomic_numbers"] = z.astype(np.int8)
                sub["positions"] = x[None].astype(np.float32)
                sub[energy_key] = np.array([e])
                if not np.isfinite(e):
                    sub[energy_key].attrs[_UNKNOWN] = True
                sub[T1X_FORCES] = np.full((1, len(z), 3), np.nan, dtype=np.float32)
                roles[role] = (x, e)
            frames = (paths or {}).get(i)
            if frames is None:
                frames = np.stack([roles[r][0] for r, _, _ in _ROLES])
                ens = np.array([roles[r][1] for r, _, _ in _ROLES])
            else:
                ens = np.full(len(frames), np.nan)
            grp["atomic_numbers"] = z.astype(np.int8)
            grp["positions"] = np.asarray(frames, dtype=np.float32)
            grp[energy_key] = ens
            grp[T1X_FORCES] = np.full(np.asarray(frames).shape, np.nan, dtype=np.float32)
    return Path(path)
