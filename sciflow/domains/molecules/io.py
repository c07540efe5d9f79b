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
from .xyz_text import check_frame_count

__all__ = ["Molecule", "as_molecule", "check_neutral_closed_shell", "is_elements_positions", "read_molecules",
           "read_sdf", "read_xyz", "to_atoms", "to_rdkit", "write_xyz_frames"]

_FILE_SUFFIXES = (".xyz", ".extxyz", ".sdf", ".mol")
#: Å. A coordinate farther from the origin is no molecule's (1 µm): a unit error or a diverged/garbage file
MAX_COORDINATE = 1e4


@dataclass(frozen=True)
class Molecule:
    """numbers (N,) int64 atomic numbers; positions (N, 3) float64 in Å; title: free text (a name, an id);
    charge: net charge (e) and unpaired: unpaired electrons, where the input states them (RDKit formal charges and
    radical electrons, ase ``info['charge']`` / initial charges / ``info['multiplicity']``), else None."""

    numbers: np.ndarray
    positions: np.ndarray
    title: str = ""
    charge: int | None = None
    unpaired: int | None = None

    def __post_init__(self) -> None:
        name = self.title or "molecule"
        raw = np.asarray(_plain(self.numbers, f"{name}.numbers"))
        if raw.dtype.kind not in "iuf":
            raise InputError(f"{name}.numbers: expected atomic numbers (integers), got {raw.dtype} values")
        if raw.dtype.kind == "f" and not bool(np.all(np.isfinite(raw) & (raw == np.round(raw)))):
            raise InputError(f"{name}.numbers: atomic numbers must be whole numbers, got "
                             f"{raw.reshape(-1)[:8].tolist()}")          # 6.5 was truncated to 6 (carbon)
        z = raw.astype(np.int64).reshape(-1)
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
        if np.abs(x).max() > MAX_COORDINATE:
            i = int(np.argwhere(np.abs(x) > MAX_COORDINATE)[0, 0])
            raise InputError(f"{self.title or 'molecule'}.positions: atom {i} has a coordinate {x[i].tolist()} "
                             f"beyond {MAX_COORDINATE:g} Å from the origin; no molecule spans that (a unit or "
                             "file error?)")
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
    out = []
    for i, e in enumerate(elements):
        if isinstance(e, str) and e.strip().lower() in ("d", "t"):
            raise InputError(f"{field}[{i}]: unknown element symbol {e!r} (use H: hydrogen isotopes are hydrogen)")
        out.append(atomic_number(e if isinstance(e, str) else int(e), field=f"{field}[{i}]"))
    return np.array(out, dtype=np.int64)


def check_neutral_closed_shell(mol: Molecule, name: str, scope: str = "this model") -> None:
    """Refuse a molecule whose stated charge or unpaired electrons say it is not neutral and closed-shell (input
    that states neither, plain XYZ, passes). ``scope`` names what needs that in the message (a method passes its
    own name, e.g. ``"TS-GEN and its xTB checks"``)."""
    if mol.charge:
        raise InputError(f"{name}: has net charge {mol.charge:+d}; {scope}: neutral closed-shell molecules only "
                         f"(as in the training data), so charged input is refused")
    if mol.unpaired:
        raise InputError(f"{name}: has {mol.unpaired} unpaired electron(s) (open shell); {scope}: neutral "
                         f"closed-shell molecules only (as in the training data)")


def is_elements_positions(raw: Any) -> bool:
    """True for (elements, positions) of one molecule: a 1-D sequence of element symbols or atomic numbers and a
    sequence with one row per element (rows are checked later), as opposed to a list of two molecules."""
    if not isinstance(raw, (tuple, list)) or len(raw) != 2:
        return False
    a, b = (_plain(v, "molecule") for v in raw)
    if isinstance(a, (str, bytes, Mapping)) or isinstance(b, (str, bytes, Mapping)) or not hasattr(a, "__len__") \
            or not hasattr(b, "__len__"):
        return False
    if isinstance(a, np.ndarray):
        return a.ndim == 1 and len(a) == len(b)
    return all(isinstance(e, (str, int, np.integer)) and not isinstance(e, bool) for e in a) and len(a) == len(b)


def _positions(pos: Any, n: int, field: str) -> np.ndarray:
    """(n, 3) float positions, or an InputError naming ``positions`` and the expected shape."""
    try:
        x = np.asarray(_plain(pos, f"{field}.positions"), dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise InputError(f"{field}.positions: expected {n} rows of 3 numbers (shape ({n}, 3)) in Å; could not read "
                         f"them as numbers ({e})") from None
    if x.shape != (n, 3):
        raise InputError(f"{field}.positions: expected shape ({n}, 3) (one x, y, z row per element), got {x.shape}")
    return x


def _unwrapped(numbers: np.ndarray, positions: np.ndarray, cell: Any, pbc: Any, field: str) -> np.ndarray:
    """Positions of a periodic structure made whole: atoms bonded across the cell boundary (minimum-image distance
    below 1.25 x the sum of covalent radii) are moved next to each other, bond by bond. A structure already whole
    comes back unchanged; one that cannot be made whole (a bond ring around the cell, a polymer) is refused."""
    from ase.geometry import get_distances

    from .elements import COVALENT_RADII

    cell = np.asarray(cell, dtype=np.float64).reshape(3, 3)
    pbc = np.asarray(pbc, dtype=bool).reshape(-1) & (np.linalg.norm(cell, axis=1) > 1e-9)
    if not pbc.any() or len(numbers) < 2:
        return positions
    vec, dist = get_distances(positions, cell=cell, pbc=pbc)
    rc = np.asarray(COVALENT_RADII)[numbers]
    bonded = dist < 1.25 * (rc[:, None] + rc[None, :])
    np.fill_diagonal(bonded, False)
    out = positions.copy()
    seen = np.zeros(len(numbers), dtype=bool)
    for root in range(len(numbers)):
        if seen[root]:
            continue
        seen[root], stack = True, [root]
        while stack:
            i = stack.pop()
            for j in np.flatnonzero(bonded[i] & ~seen):
                out[j] = out[i] + vec[i, j]
                seen[j] = True
                stack.append(j)
    plain = np.linalg.norm(out[:, None] - out[None], axis=-1)
    broken = np.argwhere(bonded & (np.abs(plain - dist) > 1e-6))
    if broken.size:
        i, j = (int(v) for v in broken[0])
        raise InputError(f"{field}: periodic structure cannot be made whole: atoms {i} and {j} are bonded across "
                         f"the cell boundary however it is unwrapped (an infinite chain?); pass an unwrapped molecule "
                         f"with pbc=False")
    return out


def _from_ase(atoms: Any, field: str) -> Molecule:
    """A Molecule from ase.Atoms: periodic input made whole across the cell boundary; charge and unpaired
    electrons from info['charge'] / initial charges and info['multiplicity'] / info['uhf'] / magnetic moments."""
    z = _numbers(atoms.numbers, f"{field}.numbers")
    x = _positions(atoms.get_positions(), len(z), field)
    if np.isfinite(x).all():
        x = _unwrapped(z, x, atoms.cell.array, atoms.pbc, field)
    info = dict(getattr(atoms, "info", {}) or {})
    charge = unpaired = None
    try:
        if "charge" in info:
            charge = float(info["charge"])
        elif atoms.has("initial_charges"):
            charge = float(np.sum(atoms.get_initial_charges()))
        if "multiplicity" in info:
            unpaired = float(info["multiplicity"]) - 1
        elif "uhf" in info:
            unpaired = float(info["uhf"])
        elif atoms.has("initial_magmoms"):
            unpaired = abs(float(np.sum(atoms.get_initial_magnetic_moments())))
    except (TypeError, ValueError):
        raise InputError(f"{field}: charge / multiplicity in its info is not a number: "
                         f"{ {k: info[k] for k in ('charge', 'multiplicity', 'uhf') if k in info} }") from None
    return Molecule(z, x, field, None if charge is None else round(charge),
                    None if unpaired is None else round(unpaired))


def read_sdf(path: str | os.PathLike) -> list[tuple[np.ndarray, np.ndarray]]:
    """All records of an SDF file as (atomic numbers, positions), hydrogens kept, no sanitisation (RDKit)."""
    return [(m.numbers, m.positions) for m in _sdf_molecules(path)]


def _sdf_molecules(path: str | os.PathLike) -> list[Molecule]:
    from rdkit import Chem

    p = Path(path)
    if not p.is_file():
        raise InputError(f"sdf: no file at {p}")
    out = []
    try:
        for i, mol in enumerate(Chem.SDMolSupplier(str(p), removeHs=False, sanitize=False)):
            if mol is None:
                raise InputError(f"sdf: {p} record {i} could not be parsed")
            out.append(_from_rdkit(mol, f"{p.name}[{i}]", from_file=True))
    except OSError as e:                # RDKit: an empty or unreadable file
        raise InputError(f"sdf: {p} could not be read ({e}); is it an empty or non-SDF/MOL file?") from None
    if not out:
        raise InputError(f"sdf: {p} holds no molecule record")
    return out


def _from_rdkit(mol: Any, field: str, *, from_file: bool = False) -> Molecule:
    """A Molecule from an RDKit Mol with one 3D conformer and every hydrogen as an atom with coordinates."""
    from rdkit import Chem

    if mol.GetNumConformers() == 0:
        raise InputError(f"{field}: the RDKit molecule has no 3D conformer")
    if mol.GetNumConformers() > 1:
        raise InputError(f"{field}: the RDKit molecule has {mol.GetNumConformers()} conformers; pass a Mol with a "
                         f"single conformer (e.g. Chem.Mol(mol, confId=cid)) so that it is clear which geometry to use")
    if not mol.GetConformer().Is3D():   # a 2D depiction (MOL header '2D', or no dimension and every z = 0)
        raise InputError(f"{field}: holds 2D (depiction) coordinates, not a 3D geometry; embed it in 3D first "
                         "(e.g. RDKit AllChem.EmbedMolecule) or write it with a '3D' header")
    mol.UpdatePropertyCache(strict=False)
    # a Mol in memory must list every hydrogen as an atom (RDKit's own readers drop them by default: removeHs=True,
    # and Chem.AddHs(mol, onlyOnAtoms=...) adds only some); bond-less ones (from XYZ, or to_rdkit) have no valences
    # to complete. For an SDF/MOL file read here unsanitised:
    # a bonded molecule with no hydrogen atom at all whose valences RDKit completes with hydrogens was built or
    # written without them (SMILES without Chem.AddHs, a heavy-atom MOL file): those atoms have no coordinates.
    # Molecules with explicit hydrogens are taken as given (radicals and carbenes often lack RDKit's flags, and
    # then look like missing hydrogens), and so are bond-less ones (from XYZ, or to_rdkit)
    if from_file:
        has_h = any(a.GetAtomicNum() == 1 for a in mol.GetAtoms())
        implicit = [a.GetIdx() for a in mol.GetAtoms() if a.GetNumImplicitHs() > 0 and not a.GetNoImplicit()] \
            if mol.GetNumBonds() > 0 and not has_h else []
    else:
        # bond-less: only hydrogen counts stated on the atom itself (SMILES '[NH4+]', '[OH2]' without AddHs)
        implicit = [a.GetIdx() for a in mol.GetAtoms()
                    if (a.GetTotalNumHs() if mol.GetNumBonds() > 0 else a.GetNumExplicitHs()) > 0]
    if implicit:                        # the model needs every atom; hydrogens left implicit have no coordinates
        named = ", ".join(f"{i} ({mol.GetAtomWithIdx(i).GetSymbol()})" for i in implicit[:6])
        raise InputError(f"{field}: atom(s) {named} carry implicit hydrogens without coordinates (e.g. a "
                         f"molecule built without Chem.AddHs, or read with RDKit's default removeHs=True); add them "
                         f"with Chem.AddHs(mol, addCoords=True) or read/write the file with explicit hydrogens")
    z = np.array([a.GetAtomicNum() for a in mol.GetAtoms()], dtype=np.int64)
    x = np.asarray(mol.GetConformer().GetPositions(), dtype=np.float64)
    hyd = np.flatnonzero(z == 1)
    if hyd.size and len(z) > 1:         # Chem.AddHs(mol) without addCoords=True leaves every new H at (0, 0, 0)
        d = np.linalg.norm(x[hyd][:, None] - x[None], axis=-1)
        d[np.arange(hyd.size), hyd] = np.inf
        stacked = hyd[(d < 1e-6).any(axis=1)]
        if stacked.size:
            raise InputError(f"{field}: hydrogen atom(s) {stacked[:6].tolist()} have no coordinates of their own "
                             f"(they sit on another atom, e.g. at (0, 0, 0)): hydrogens added with Chem.AddHs(mol) "
                             f"without addCoords=True; use Chem.AddHs(mol, addCoords=True) or embed after AddHs")
    charge = Chem.GetFormalCharge(mol)
    unpaired = sum(a.GetNumRadicalElectrons() for a in mol.GetAtoms())
    return Molecule(_numbers(z, field), x, field, int(charge), int(unpaired))


def read_xyz(path: str | os.PathLike) -> list[tuple[np.ndarray, np.ndarray]]:
    """All frames of an (extended) XYZ file as (atomic numbers, positions) (ase); periodic frames are made whole
    across the cell boundary. A file with no frame (empty) raises ``InputError`` naming it."""
    return [(m.numbers, m.positions) for m in _xyz_molecules(path)]


def _xyz_molecules(path: str | os.PathLike) -> list[Molecule]:
    import ase.io

    p = Path(path)
    if not p.is_file():
        raise InputError(f"xyz: no file at {p}")
    try:
        frames = ase.io.read(str(p), index=":", format="extxyz")
    except KeyError as e:   # ase: a symbol it does not know
        sym = str(e.args[0]) if e.args else "?"
        hint = " (use H: hydrogen isotopes are hydrogen)" if sym.strip().lower() in ("d", "t") else ""
        raise InputError(f"xyz: {p}: unknown element symbol {sym!r}{hint}") from None
    except Exception as e:  # noqa: BLE001 - ase raises many types for malformed files
        raise InputError(f"xyz: {p} could not be parsed: {e}") from None
    check_frame_count(p, len(frames))       # ase stops at a blank line before or between frames, silently
    if not frames:          # ase reads an empty (or blank) file as no frames; every caller needs a structure
        raise InputError(f"xyz: {p} holds no structure (the file is empty)")
    return [_from_ase(a, f"{p.name}[{i}]") for i, a in enumerate(frames)]


def read_molecules(path: str | os.PathLike) -> list[Molecule]:
    """Every structure in an XYZ/extXYZ/SDF/MOL file, in file order (at least one: a file without any raises
    ``InputError`` naming it)."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in _FILE_SUFFIXES:
        raise InputError(f"path: {p} has an unsupported suffix {suffix!r}; expected one of {', '.join(_FILE_SUFFIXES)}")
    return _sdf_molecules(p) if suffix in (".sdf", ".mol") else _xyz_molecules(p)


def as_molecule(obj: Any, *, field: str = "molecule") -> Molecule:
    """Coerce ase.Atoms, an RDKit Mol (with a conformer), a file path of one structure, a Molecule, a mapping
    with ``numbers``/``symbols`` and ``positions``, or a pair (elements, positions) into a Molecule. A file of
    several structures (e.g. R, TS, P frames) is refused: which one is meant is the caller's choice
    (``read_molecules(path)[k]``)."""
    if isinstance(obj, Molecule):
        return obj
    if isinstance(obj, (str, os.PathLike)):
        mols = read_molecules(obj)
        if not mols:
            raise InputError(f"{field}: {obj} holds no structure")
        if len(mols) > 1:
            raise InputError(f"{field}: {obj} holds {len(mols)} structures; pass one, e.g. "
                             f"read_molecules(path)[k] from sciflow.domains.molecules")
        return Molecule(mols[0].numbers, mols[0].positions, field, mols[0].charge, mols[0].unpaired)
    mod = type(obj).__module__
    if mod.startswith("ase.") and hasattr(obj, "get_positions"):
        return _from_ase(obj, field)
    if mod.startswith("rdkit.") and hasattr(obj, "GetAtoms"):
        return _from_rdkit(obj, field)
    if isinstance(obj, Mapping):
        elements = obj.get("numbers", obj.get("atomic_numbers", obj.get("symbols")))
        if elements is None or "positions" not in obj:
            raise InputError(f"{field}: a mapping needs 'numbers' (or 'symbols') and 'positions'")
        z = _numbers(list(np.asarray(_plain(elements, f"{field}.numbers")).tolist()), f"{field}.numbers")
        return Molecule(z, _positions(obj["positions"], len(z), field), field)
    if isinstance(obj, (tuple, list)) and len(obj) == 2:
        elements, pos = obj
        try:
            z = _numbers(list(np.asarray(_plain(elements, f"{field}.numbers")).tolist()), f"{field}.numbers")
        except (TypeError, ValueError) as e:
            if isinstance(e, InputError):
                raise
            raise InputError(f"{field}: expected (elements, positions) with elements a 1-D list of symbols or atomic "
                             f"numbers, got {type(elements).__name__} ({e})") from None
        return Molecule(z, _positions(pos, len(z), field), field)
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
    """Write (numbers, positions, comment) frames as a multi-frame XYZ file, atomically (at least one frame)."""
    from ...core.files import atomic_write_text

    frames = list(frames)
    if not frames:                   # a file of no frame reads back as nothing (read_molecules refuses it)
        raise InputError(f"frames: no frame to write to {path}; pass at least one (numbers, positions, comment)")
    lines = []
    for k, (z, x, comment) in enumerate(frames):
        Molecule(z, x, title=f"frames[{k}]")          # checks shape, elements and finite coordinates first
        lines.append(str(len(z)))
        lines.append(comment.replace("\n", " "))
        for zi, (a, b, c) in zip(np.asarray(z).tolist(), np.asarray(x, dtype=np.float64).tolist()):
            lines.append(f"{SYMBOLS[int(zi)]:<2s} {a:15.8f} {b:15.8f} {c:15.8f}")
    return atomic_write_text(path, "\n".join(lines) + "\n")
