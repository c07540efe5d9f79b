"""Molecules in and out: ase.Atoms, RDKit Mol, XYZ / extended XYZ / SDF / MOL files, or (elements, positions).

Everything is reduced to a ``Molecule`` (atomic numbers + positions in Å); ase and RDKit are imported only inside
the functions that need them. Every check raises ``InputError`` naming the field and the value.
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...core.errors import InputError
from .elements import SYMBOLS, atomic_number

__all__ = ["Molecule", "as_molecule", "read_molecules", "read_sdf", "read_xyz", "to_atoms", "to_rdkit",
           "write_xyz_frames"]

_FILE_SUFFIXES = (".xyz", ".extxyz", ".sdf", ".mol")


@dataclass(frozen=True)
class Molecule:
    """numbers (N,) int64 atomic numbers; positions (N, 3) float64 in Å; title: free text (a name, an id)."""

    numbers: np.ndarray
    positions: np.ndarray
    title: str = ""

    def __post_init__(self) -> None:
        name = self.title or "molecule"
        z = np.asarray(_plain(self.numbers, f"{name}.numbers"), dtype=np.int64).reshape(-1)
        x = np.asarray(_plain(self.positions, f"{name}.positions"), dtype=np.float64)
        if x.shape != (z.shape[0], 3):
            raise InputError(f"{self.title or 'molecule'}.positions: expected shape ({z.shape[0]}, 3), "
                             f"got {x.shape}")
        if z.shape[0] == 0:
            raise InputError(f"{self.title or 'molecule'}: has no atoms")
        for i, v in enumerate(z):
            atomic_number(int(v), field=f"{self.title or 'molecule'}.numbers[{i}]")
        if not np.isfinite(x).all():
            i = int(np.argwhere(~np.isfinite(x))[0, 0])
            raise InputError(f"{self.title or 'molecule'}.positions: atom {i} has a non-finite coordinate "
                             f"{x[i].tolist()}")
        object.__setattr__(self, "numbers", z)
        object.__setattr__(self, "positions", x)

    def __len__(self) -> int:
        return int(self.numbers.shape[0])

    @property
    def symbols(self) -> list[str]:
        return [SYMBOLS[int(z)] for z in self.numbers]


def _plain(value: Any, field: str) -> Any:
    """A torch tensor as a CPU numpy array (coordinates are inputs: autograd and device do not matter here);
    a meta tensor holds no values. Anything else is returned as given."""
    if type(value).__module__.startswith("torch") and hasattr(value, "detach"):
        if value.is_meta:
            raise InputError(f"{field}: is a meta tensor (it holds no values)")
        return value.detach().cpu().numpy()
    return value


def _numbers(elements: Sequence[Any], field: str) -> np.ndarray:
    return np.array([atomic_number(e if isinstance(e, str) else int(e), field=f"{field}[{i}]")
                     for i, e in enumerate(elements)], dtype=np.int64)


def read_sdf(path: str | os.PathLike) -> list[tuple[np.ndarray, np.ndarray]]:
    """All records of an SDF file as (atomic numbers, positions), hydrogens kept, no sanitisation (RDKit)."""
    from rdkit import Chem

    p = Path(path)
    if not p.is_file():
        raise InputError(f"sdf: no file at {p}")
    out = []
    for i, mol in enumerate(Chem.SDMolSupplier(str(p), removeHs=False, sanitize=False)):
        if mol is None:
            raise InputError(f"sdf: {p} record {i} could not be parsed")
        out.append(_from_rdkit(mol, f"{p.name}[{i}]"))
    return out


def _from_rdkit(mol: Any, field: str) -> tuple[np.ndarray, np.ndarray]:
    if mol.GetNumConformers() == 0:
        raise InputError(f"{field}: the RDKit molecule has no 3D conformer")
    if not mol.GetConformer().Is3D():   # a 2D depiction (MOL header '2D', or no dimension and every z = 0)
        raise InputError(f"{field}: holds 2D (depiction) coordinates, not a 3D geometry; embed it in 3D first "
                         "(e.g. RDKit AllChem.EmbedMolecule) or write it with a '3D' header")
    mol.UpdatePropertyCache(strict=False)
    # a bonded molecule with no hydrogen atom at all whose valences RDKit completes with hydrogens was built or
    # written without them (SMILES without Chem.AddHs, a heavy-atom MOL file): those atoms have no coordinates.
    # Molecules with explicit hydrogens are taken as given (radicals and carbenes often lack RDKit's flags, and
    # then look like missing hydrogens), and so are bond-less ones (from XYZ, or to_rdkit)
    has_h = any(a.GetAtomicNum() == 1 for a in mol.GetAtoms())
    implicit = [a.GetIdx() for a in mol.GetAtoms() if a.GetNumImplicitHs() > 0 and not a.GetNoImplicit()] \
        if mol.GetNumBonds() > 0 and not has_h else []
    if implicit:                        # the model needs every atom; hydrogens left implicit have no coordinates
        raise InputError(f"{field}: atom(s) {implicit[:6]} carry implicit hydrogens without coordinates (e.g. a "
                         f"molecule built without Chem.AddHs); add them with Chem.AddHs(mol, addCoords=True) or "
                         f"write the file with explicit hydrogens")
    z = np.array([a.GetAtomicNum() for a in mol.GetAtoms()], dtype=np.int64)
    return _numbers(z, field), np.asarray(mol.GetConformer().GetPositions(), dtype=np.float64)


def read_xyz(path: str | os.PathLike) -> list[tuple[np.ndarray, np.ndarray]]:
    """All frames of an (extended) XYZ file as (atomic numbers, positions) (ase)."""
    import ase.io

    p = Path(path)
    if not p.is_file():
        raise InputError(f"xyz: no file at {p}")
    try:
        frames = ase.io.read(str(p), index=":", format="extxyz")
    except Exception as e:  # noqa: BLE001 - ase raises many types for malformed files
        raise InputError(f"xyz: {p} could not be parsed: {e}") from None
    return [(_numbers(a.numbers, f"{p.name}[{i}]"), np.asarray(a.positions, dtype=np.float64))
            for i, a in enumerate(frames)]


def read_molecules(path: str | os.PathLike) -> list[Molecule]:
    """Every structure in an XYZ/extXYZ/SDF/MOL file, in file order."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in _FILE_SUFFIXES:
        raise InputError(f"path: {p} has an unsupported suffix {suffix!r}; expected one of {', '.join(_FILE_SUFFIXES)}")
    recs = read_sdf(p) if suffix in (".sdf", ".mol") else read_xyz(p)
    return [Molecule(z, x, f"{p.name}[{i}]") for i, (z, x) in enumerate(recs)]


def as_molecule(obj: Any, *, field: str = "molecule") -> Molecule:
    """Coerce ase.Atoms, an RDKit Mol (with a conformer), a file path (first structure), a Molecule, a mapping
    with ``numbers``/``symbols`` and ``positions``, or a pair (elements, positions) into a Molecule."""
    if isinstance(obj, Molecule):
        return obj
    if isinstance(obj, (str, os.PathLike)):
        mols = read_molecules(obj)
        if not mols:
            raise InputError(f"{field}: {obj} holds no structure")
        return Molecule(mols[0].numbers, mols[0].positions, field)
    mod = type(obj).__module__
    if mod.startswith("ase.") and hasattr(obj, "get_positions"):
        return Molecule(_numbers(obj.numbers, f"{field}.numbers"), obj.get_positions(), field)
    if mod.startswith("rdkit.") and hasattr(obj, "GetAtoms"):
        z, x = _from_rdkit(obj, field)
        return Molecule(z, x, field)
    if isinstance(obj, Mapping):
        elements = obj.get("numbers", obj.get("atomic_numbers", obj.get("symbols")))
        if elements is None or "positions" not in obj:
            raise InputError(f"{field}: a mapping needs 'numbers' (or 'symbols') and 'positions'")
        return Molecule(_numbers(list(np.asarray(_plain(elements, f"{field}.numbers")).tolist()), f"{field}.numbers"),
                        np.asarray(_plain(obj["positions"], f"{field}.positions"), float), field)
    if isinstance(obj, (tuple, list)) and len(obj) == 2:
        elements, pos = obj
        return Molecule(_numbers(list(np.asarray(_plain(elements, f"{field}.numbers")).tolist()), f"{field}.numbers"),
                        np.asarray(_plain(pos, f"{field}.positions"), dtype=np.float64), field)
    raise InputError(f"{field}: cannot read a molecule from a {type(obj).__name__}; pass ase.Atoms, an RDKit Mol, "
                     f"an XYZ/SDF path or (elements, positions)")


def to_atoms(numbers: np.ndarray, positions: np.ndarray, info: Mapping[str, Any] | None = None) -> Any:
    """An ase.Atoms object (no cell, no periodicity)."""
    from ase import Atoms

    atoms = Atoms(numbers=np.asarray(numbers, dtype=np.int64), positions=np.asarray(positions, dtype=np.float64))
    atoms.info.update(dict(info or {}))
    return atoms


def to_rdkit(numbers: np.ndarray, positions: np.ndarray) -> Any:
    """An RDKit Mol with atoms and one conformer (no bonds: geometry only)."""
    from rdkit import Chem
    from rdkit.Geometry import Point3D

    rw = Chem.RWMol()
    for z in np.asarray(numbers).tolist():
        rw.AddAtom(Chem.Atom(int(z)))
    conf = Chem.Conformer(len(numbers))
    for i, (x, y, z) in enumerate(np.asarray(positions, dtype=np.float64).tolist()):
        conf.SetAtomPosition(i, Point3D(x, y, z))
    mol = rw.GetMol()
    mol.AddConformer(conf, assignId=True)
    return mol


def write_xyz_frames(path: str | os.PathLike, frames: Sequence[tuple[np.ndarray, np.ndarray, str]]) -> Path:
    """Write (numbers, positions, comment) frames as a multi-frame XYZ file, atomically."""
    from ...core.files import atomic_write_text

    lines = []
    for k, (z, x, comment) in enumerate(frames):
        Molecule(z, x, title=f"frames[{k}]")          # checks shape, elements and finite coordinates first
        lines.append(str(len(z)))
        lines.append(comment.replace("\n", " "))
        for zi, (a, b, c) in zip(np.asarray(z).tolist(), np.asarray(x, dtype=np.float64).tolist()):
            lines.append(f"{SYMBOLS[int(zi)]:<2s} {a:15.8f} {b:15.8f} {c:15.8f}")
    return atomic_write_text(path, "\n".join(lines) + "\n")
