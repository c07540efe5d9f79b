"""Elements: symbols, atomic numbers, masses and covalent radii (H..Kr plus the common heavier halogens).

Values: IUPAC standard atomic weights (g/mol, abridged) and the covalent radii of Cordero et al., *Dalton Trans.*
2008, 2832 (Å). Kept to the elements that organic and biomolecular work needs; an unknown symbol or atomic number
raises ``InputError`` naming the value.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import torch
from torch import Tensor

from ...core.errors import InputError

__all__ = [
    "COVALENT_RADII",
    "ISOTOPE_MASSES",
    "MASSES",
    "SYMBOLS",
    "atomic_number",
    "covalent_radii_of",
    "masses_of",
    "masses_of_symbols",
    "symbol",
    "to_atomic_numbers",
]

#: index = atomic number (0 is a placeholder)
SYMBOLS: tuple[str, ...] = (
    "X", "H", "He", "Li", "Be", "B", "C", "N", "O", "F", "Ne", "Na", "Mg", "Al", "Si", "P", "S", "Cl", "Ar",
    "K", "Ca", "Sc", "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Ga", "Ge", "As", "Se", "Br", "Kr",
    "Rb", "Sr", "Y", "Zr", "Nb", "Mo", "Tc", "Ru", "Rh", "Pd", "Ag", "Cd", "In", "Sn", "Sb", "Te", "I",
)
MASSES: tuple[float, ...] = (
    0.0, 1.008, 4.0026, 6.94, 9.0122, 10.81, 12.011, 14.007, 15.999, 18.998, 20.180, 22.990, 24.305, 26.982,
    28.085, 30.974, 32.06, 35.45, 39.948, 39.098, 40.078, 44.956, 47.867, 50.942, 51.996, 54.938, 55.845,
    58.933, 58.693, 63.546, 65.38, 69.723, 72.630, 74.922, 78.971, 79.904, 83.798, 85.468, 87.62, 88.906,
    91.224, 92.906, 95.95, 98.0, 101.07, 102.91, 106.42, 107.87, 112.41, 114.82, 118.71, 121.76, 127.60, 126.90,
)
COVALENT_RADII: tuple[float, ...] = (
    0.2, 0.31, 0.28, 1.28, 0.96, 0.84, 0.76, 0.71, 0.66, 0.57, 0.58, 1.66, 1.41, 1.21, 1.11, 1.07, 1.05, 1.02,
    1.06, 2.03, 1.76, 1.70, 1.60, 1.53, 1.39, 1.39, 1.32, 1.26, 1.24, 1.32, 1.22, 1.22, 1.20, 1.19, 1.20, 1.20,
    1.16, 2.20, 1.95, 1.90, 1.75, 1.64, 1.54, 1.47, 1.46, 1.42, 1.39, 1.45, 1.44, 1.42, 1.39, 1.39, 1.38, 1.39,
)
_BY_SYMBOL = {s.lower(): z for z, s in enumerate(SYMBOLS) if z > 0}


def atomic_number(sym: str | int, *, field: str = "element") -> int:
    """Atomic number of a symbol ("C", "cl") or a checked integer (a float counts only if it is whole: 6.0 is
    carbon, 6.7 and True are errors)."""
    if isinstance(sym, bool) or type(sym).__name__ == "bool_":
        raise InputError(f"{field}: expected an element symbol or atomic number, got {sym!r}")
    if hasattr(sym, "item") and not isinstance(sym, str):         # numpy / torch scalars
        sym = sym.item()
    if isinstance(sym, float):
        if not sym.is_integer():
            raise InputError(f"{field}: atomic numbers are whole numbers, got {sym!r}")
        sym = int(sym)
    if isinstance(sym, int):
        z = sym
        if not 1 <= z < len(SYMBOLS):
            raise InputError(f"{field}: unknown atomic number {z} (supported 1..{len(SYMBOLS) - 1})")
        return z
    key = str(sym).strip().lower()
    if key not in _BY_SYMBOL:
        raise InputError(f"{field}: unknown element symbol {sym!r}")
    return _BY_SYMBOL[key]


#: hydrogen isotopes, light atoms like H, with their own masses (g/mol)
ISOTOPE_MASSES = {"d": 2.014, "t": 3.016}


def masses_of_symbols(symbols: Iterable[str]) -> np.ndarray:
    """(n,) atomic masses (g/mol) of element symbols (any case; D and T as hydrogen isotopes), NaN for a symbol
    this table does not know (callers whose results depend on the mass refuse those)."""
    keys = np.char.lower(np.char.strip(np.asarray(list(symbols)).astype(str)))
    if keys.size == 0:
        return np.zeros(0)
    uniq, inv = np.unique(keys, return_inverse=True)
    table = np.array([ISOTOPE_MASSES.get(k, MASSES[_BY_SYMBOL[k]] if k in _BY_SYMBOL else math.nan) for k in uniq],
                     dtype=np.float64)
    return table[inv.reshape(-1)]


def symbol(z: int) -> str:
    return SYMBOLS[atomic_number(z)]


def to_atomic_numbers(elements: Iterable[str | int] | Tensor, *, field: str = "element") -> Tensor:
    """(N,) int64 atomic numbers from symbols or numbers; unknown ones raise InputError naming the atom."""
    if torch.is_tensor(elements):
        elements = elements.tolist()
    out = []
    for i, e in enumerate(elements):
        out.append(atomic_number(e, field=f"{field}[{i}]"))
    return torch.tensor(out, dtype=torch.long)


def _lookup(table: Sequence[float], z: Tensor, dtype: torch.dtype) -> Tensor:
    if z.numel() and (int(z.min()) < 1 or int(z.max()) >= len(table)):
        raise InputError(f"atomic_numbers: values must lie in 1..{len(table) - 1}, got {int(z.min())}..{int(z.max())}")
    return torch.tensor(table, dtype=dtype, device=z.device)[z.long()]


def masses_of(z: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
    """(N,) atomic masses (g/mol)."""
    return _lookup(MASSES, z, dtype)


def covalent_radii_of(z: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
    """(N,) covalent radii (Å)."""
    return _lookup(COVALENT_RADII, z, dtype)
