"""What the molecular formats (XYZ, PDB, DCD) share: coordinates in Å, element identities, one-sample checks.

Conventions: a frame is a time step and a row of ``states`` is an atom. States with 2 coordinates per row are
written with z = 0 (and read back with 2 columns where the format records it). Graph batches that hold several
samples go to one residue per sample in PDB files; XYZ files hold one structure, so they are refused there.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..core.errors import InputError
from ..core.fields import ATOMIC_NUMBERS, BATCH
from ..core.trajectory import Trajectory

__all__ = ["DTYPES", "N_ELEMENTS", "atomic_numbers", "check_topology_numbers", "comments", "coordinates",
           "numbers_of", "per_frame", "read_times", "require_one_sample", "sample_index", "stored_dtype", "symbols_of"]

N_ELEMENTS = 118


def coordinates(traj: Trajectory, fmt: str) -> tuple[np.ndarray, int]:
    """(T, N, 3) float64 positions in Å (2-D states padded with z = 0) and the original width (2 or 3)."""
    x = traj.states
    if x.dim() != 3 or x.shape[-1] not in (2, 3):
        raise InputError(f"traj.states: {fmt} files hold atoms, so states must be (T, n_atoms, 3) or "
                         f"(T, n_atoms, 2) in Å; got shape {tuple(x.shape)}")
    arr = x.detach().cpu().to(torch.float64).numpy()
    width = arr.shape[-1]
    if width == 2:
        arr = np.concatenate([arr, np.zeros(arr.shape[:-1] + (1,))], axis=-1)
    return arr, width


def numbers_of(symbols: Sequence[str]) -> np.ndarray:
    from ase.data import atomic_numbers as table
    out = []
    for i, s in enumerate(symbols):
        key = str(s).strip().capitalize()
        if key not in table or table[key] == 0:
            raise InputError(f"symbols: entry {i} is {s!r}, not a chemical element")
        out.append(table[key])
    return np.asarray(out, dtype=np.int64)


def symbols_of(numbers: np.ndarray) -> list[str]:
    from ase.data import chemical_symbols
    return [chemical_symbols[int(z)] for z in numbers]


def atomic_numbers(traj: Trajectory, meta: dict[str, Any], fmt: str) -> np.ndarray:
    """(N,) atomic numbers from meta ``atomic_numbers=`` / ``symbols=`` or ``traj.extras["atomic_numbers"]``."""
    n = traj.n_rows
    if meta.get("atomic_numbers") is not None:
        raw = meta["atomic_numbers"]
        if isinstance(raw, str) or (not torch.is_tensor(raw) and np.asarray(raw).dtype.kind not in "biuf"):
            raise InputError(f"atomic_numbers: expected integers (1 for H, 8 for O, ...), got {str(raw)[:60]}; "
                             f"pass element symbols as symbols=")
        z, name = np.asarray(torch.as_tensor(raw).cpu()), "atomic_numbers"
    elif meta.get("symbols") is not None:
        symbols = meta["symbols"]
        if isinstance(symbols, str):
            raise InputError("symbols: expected a list of element symbols, one per atom, not a string")
        z, name = numbers_of(symbols), "symbols"
    elif ATOMIC_NUMBERS in traj.extras:
        z, name = traj.extras[ATOMIC_NUMBERS].detach().cpu().numpy(), f"traj.extras[{ATOMIC_NUMBERS!r}]"
    else:
        raise InputError(f"atomic_numbers: {fmt} files need the element of each atom; pass atomic_numbers= or "
                         f"symbols= (one per row), or put extras[{ATOMIC_NUMBERS!r}] (n_atoms,) in the trajectory")
    if z.ndim != 1 or z.shape[0] != n:
        raise InputError(f"{name}: expected one entry per atom ({n}), got shape {tuple(z.shape)}")
    if not np.issubdtype(z.dtype, np.integer):
        if not np.all(np.isfinite(z)) or not np.all(z == np.round(z)):
            raise InputError(f"{name}: atomic numbers must be integers")
        z = z.astype(np.int64)
    bad = np.nonzero((z < 1) | (z > N_ELEMENTS))[0]
    if len(bad):
        raise InputError(f"{name}: entry {int(bad[0])} is {int(z[bad[0]])}, not an atomic number in 1..{N_ELEMENTS}")
    return z.astype(np.int64)


def sample_index(traj: Trajectory) -> np.ndarray:
    """(N,) sample of each row: the graph index of a graph batch, all zeros otherwise (one structure)."""
    if BATCH in traj.extras:
        b = traj.extras[BATCH].detach().cpu().numpy().astype(np.int64)
        if b.shape != (traj.n_rows,):
            raise InputError(f"traj.extras['batch']: expected shape ({traj.n_rows},), got {tuple(b.shape)}")
        if len(b) and (b.min() < 0 or np.any(np.diff(b) < 0)):
            raise InputError("traj.extras['batch']: graph indices must be >= 0 and sorted ascending")
        return b
    return np.zeros(traj.n_rows, dtype=np.int64)


def require_one_sample(traj: Trajectory, fmt: str) -> None:
    if BATCH in traj.extras and traj.n_samples > 1:
        raise InputError(f"traj.extras['batch']: this graph batch holds {traj.n_samples} samples and a {fmt} file "
                         f"holds one structure per frame; write one sample with traj.samples([i]), or one file "
                         f"per sample with sciflow.io.write_samples('out/sample_{{i}}{fmt}', traj)")


def per_frame(traj: Trajectory, key: str, fmt: str) -> np.ndarray | None:
    """(T,) values of a per-frame scalar step extra ((T,) or (T, 1)), or None when absent."""
    if key not in traj.step_extras:
        return None
    v = traj.step_extras[key].detach().cpu()
    if v.dim() == 2 and v.shape[1] == 1:
        v = v[:, 0]
    if v.dim() != 1:
        raise InputError(f"traj.step_extras[{key!r}]: {fmt} files hold one value per frame, (T,) or (T, 1); got "
                         f"shape {tuple(v.shape)} (write one sample at a time)")
    if v.is_floating_point() and not bool(torch.isfinite(v).all()):
        raise InputError(f"traj.step_extras[{key!r}]: holds non-finite values")
    return v.to(torch.float64).numpy()


def comments(traj: Trajectory, meta: dict[str, Any]) -> list[str] | None:
    """Per-frame comments from meta ``comments=`` (a list of T strings, or one string for every frame) or
    ``traj.info["comments"]``."""
    c = meta.get("comments", traj.info.get("comments"))
    if c is None:
        return None
    if isinstance(c, str):
        c = [c] * traj.n_frames
    if not isinstance(c, (list, tuple)) or not all(isinstance(s, str) for s in c):
        raise InputError(f"comments: expected one string for every frame or a list of {traj.n_frames} strings, got "
                         f"{str(c)[:60]!r} ({type(c).__name__})")
    if len(c) != traj.n_frames:
        raise InputError(f"comments: expected one per frame ({traj.n_frames}), got {len(c)}")
    if any("\n" in s or "\r" in s for s in c):
        raise InputError("comments: a comment must be a single line")
    return c


#: the floating dtypes a text file can record that it was written from (``sciflow_dtype=`` / ``REMARK ... dtype``)
DTYPES = {"float32": torch.float32, "float64": torch.float64}


def stored_dtype(*tensors: torch.Tensor | None) -> str:
    """"float32" when every tensor written is a floating tensor of at most single precision, else "float64": the
    dtype a text file records so that ``read_trajectory`` gives back what was written (integer values beyond 2**24
    would not survive float32)."""
    for t in tensors:
        if t is not None and (not t.is_floating_point() or t.dtype == torch.float64):
            return "float64"
    return "float32"


def read_times(times: np.ndarray, dtype: torch.dtype, path: Any) -> torch.Tensor:
    """(T,) times read from ``path`` as ``dtype``, refusing (naming the file) times that are not monotone and
    distinct times that ``dtype`` cannot tell apart (float32 holds about 7 digits: 1e8 and 1e8 + 1 are equal)."""
    t = torch.tensor(np.asarray(times, dtype=np.float64), dtype=dtype)
    d64, d = np.diff(np.asarray(times, dtype=np.float64)), torch.diff(t).to(torch.float64).numpy()
    if not np.all(np.isfinite(times)):
        raise InputError(f"path: {str(path)!r} holds non-finite times")
    if len(d64) and not (np.all(d64 > 0) or np.all(d64 < 0) or np.all(d64 == 0)):
        k = int(np.nonzero(np.sign(d64) != np.sign(d64[0]))[0][0])
        raise InputError(f"path: {str(path)!r}: times must be strictly increasing or decreasing (or all equal); "
                         f"frame {k + 1} has time {float(times[k + 1])!r} after {float(times[k])!r}")
    merged = np.nonzero((d64 != 0) & (d == 0))[0]
    if len(merged):
        k = int(merged[0])
        raise InputError(f"dtype: {dtype} cannot tell the times of {str(path)!r} apart: frames {k} and {k + 1} "
                         f"({float(times[k])!r}, {float(times[k + 1])!r}) both become {float(t[k])!r}; read with "
                         f"dtype=torch.float64")
    return t


def check_topology_numbers(top_z: np.ndarray, traj: Trajectory, meta: dict[str, Any], fmt: str,
                           need_elements: bool) -> None:
    """A topology given to a writer must fit the trajectory: one atom per row and, where the trajectory (or
    ``atomic_numbers=`` / ``symbols=``) names the elements, the same elements; ``need_elements``: every atom of
    the topology must be a chemical element (no virtual sites), as the format writes element symbols."""
    if len(top_z) != traj.n_rows:
        raise InputError(f"topology: has {len(top_z)} atoms, the trajectory {traj.n_rows} rows")
    if need_elements:
        bad = np.nonzero((top_z < 1) | (top_z > N_ELEMENTS))[0]
        if len(bad):
            raise InputError(f"topology: atom {int(bad[0])} has no chemical element (a virtual site or dummy atom); "
                             f"{fmt} files hold elements 1..{N_ELEMENTS} only")
    given = any(meta.get(k) is not None for k in ("atomic_numbers", "symbols")) or ATOMIC_NUMBERS in traj.extras
    if given:
        own = atomic_numbers(traj, {k: v for k, v in meta.items() if k != "topology"}, fmt)
        diff = np.nonzero(own != top_z)[0]
        if len(diff):
            i = int(diff[0])
            src = ("atomic_numbers=" if meta.get("atomic_numbers") is not None else "symbols="
                   if meta.get("symbols") is not None else f"traj.extras[{ATOMIC_NUMBERS!r}]")
            top_el = symbols_of(np.asarray([top_z[i]]))[0] if 0 < top_z[i] <= N_ELEMENTS else "no element"
            raise InputError(f"topology: atom {i} is {top_el} (Z={int(top_z[i])}) but {src} gives "
                             f"{symbols_of(own[i:i + 1])[0]} (Z={int(own[i])}); {len(diff)} of {len(own)} atoms "
                             f"differ; pass the topology of this trajectory")
