"""``.pdb`` (multi-model) and ``.dcd`` through mdtraj. sciflow works in Å; mdtraj's Trajectory works in nm.

PDB: one MODEL per frame. The topology comes from ``topology=`` (an mdtraj Topology or a PDB path) or is built
from the atomic numbers: one chain, one residue ``MOL`` per sample (per graph of a graph batch, else one for all
rows), atoms named element + running number (``C1``, ``C2``, ``H1``...). Coordinates have 3 decimals (1e-3 Å).
Times, per-frame energies, the graph index (``graph_sizes``, also with a given topology), the dtype written and 2-D
states are kept in ``REMARK 999 SCIFLOW`` lines, which other programs ignore and ``read_trajectory`` uses. Elements
112..118 are refused (mdtraj has no PDB symbols for them).

DCD: coordinates only (single precision, Å); no times (frames read back as 0..T-1), no elements. Reading needs
``top=`` (a PDB path or an mdtraj Topology); a PDB written by sciflow as topology also restores the graph index.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..core.errors import InputError
from ..core.fields import ATOMIC_NUMBERS, BATCH, ENERGY
from ..core.trajectory import Trajectory
from . import atoms as A
from .registry import reader, writer

__all__ = [
    "REMARK",
    "RESIDUE_NAME",
    "build_topology",
    "load_topology",
    "read_dcd",
    "read_pdb",
    "topology_numbers",
    "write_dcd",
    "write_pdb",
]

RESIDUE_NAME = "MOL"
REMARK = "REMARK 999 SCIFLOW"
_PDB_MIN, _PDB_MAX = -999.999, 9999.999   # what the %8.3f coordinate fields of PDB hold, in Å
#: the heaviest element mdtraj writes to and reads from PDB as itself (it has no symbols for 112..118)
_PDB_MAX_Z = 111


def load_topology(top: Any, what: str = "topology") -> Any:
    """An mdtraj Topology from a Topology, an mdtraj Trajectory or a structure file path (PDB)."""
    import mdtraj as md
    if isinstance(top, md.Topology):
        return top
    if isinstance(top, md.Trajectory):
        return top.topology
    if isinstance(top, (str, os.PathLike)):
        p = Path(top)
        if not p.is_file():
            raise InputError(f"{what}: no such file {str(p)!r}")
        try:
            return md.load_topology(str(p))
        except Exception as e:  # noqa: BLE001  (mdtraj raises many types for files it cannot parse)
            raise InputError(f"{what}: could not read a topology from {str(p)!r} ({type(e).__name__}: {e})") from None
    raise InputError(f"{what}: expected an mdtraj Topology or a PDB path, got {type(top).__name__}")


def topology_numbers(top: Any) -> np.ndarray:
    """(N,) atomic numbers of a topology (0 where an atom has no element)."""
    top = load_topology(top)
    return np.asarray([(a.element.atomic_number if a.element is not None else 0) or 0 for a in top.atoms],
                      dtype=np.int64)


def _atom_names(numbers: Sequence[int]) -> list[str]:
    symbols, seen, names = A.symbols_of(np.asarray(numbers)), {}, []
    for s in symbols:
        seen[s] = seen.get(s, 0) + 1
        name = f"{s}{seen[s]}"
        names.append(name if len(name) <= 4 else s)
    return names


def build_topology(numbers: np.ndarray, samples: np.ndarray) -> Any:
    """One chain, one residue per sample, atoms named element + running number within the residue."""
    import mdtraj as md
    from mdtraj.core.element import Element
    top = md.Topology()
    chain = top.add_chain()
    for s in np.unique(samples):
        idx = np.nonzero(samples == s)[0]
        res = top.add_residue(RESIDUE_NAME, chain, resSeq=int(s) + 1)
        for i, name in zip(idx, _atom_names(numbers[idx])):
            top.add_atom(name, Element.getByAtomicNumber(int(numbers[i])), res)
    return top


def _remarks(entries: dict[str, Sequence[Any]]) -> list[str]:
    lines = []
    for key, values in entries.items():
        words = [repr(float(v)) if isinstance(v, (float, np.floating)) else str(v) for v in values]
        line = f"{REMARK} {key}"
        for w in words:
            if len(line) + 1 + len(w) > 80:
                lines.append(line)
                line = f"{REMARK} {key}+"
            line += " " + w
        lines.append(line)
    return lines


def _parse_remarks(path: Path, what: str = "path") -> dict[str, list[str]]:
    import gzip
    out: dict[str, list[str]] = {}
    opener = gzip.open if str(path).lower().endswith(".gz") else open
    try:
        with opener(path, "rt") as fh:
            for line in fh:
                if line.startswith(("ATOM", "HETATM")):
                    break
                if line.startswith(REMARK):
                    key, *words = line[len(REMARK):].split()
                    out.setdefault(key.rstrip("+"), []).extend(words)
    except (UnicodeDecodeError, OSError, EOFError) as e:
        raise InputError(f"{what}: {str(path)!r} is not a PDB text file ({type(e).__name__}: "
                         f"{str(e).splitlines()[0][:80] if str(e) else 'unreadable'})") from None
    return out


def _check_pdb_elements(z: np.ndarray, name: str) -> None:
    bad = np.nonzero(z > _PDB_MAX_Z)[0]
    if len(bad):
        raise InputError(f"{name}: atom {int(bad[0])} is element {int(z[bad[0]])}; PDB files (through mdtraj) hold "
                         f"elements 1..{_PDB_MAX_Z} only; write .xyz or .npz instead")


def _energies(traj: Trajectory) -> tuple[np.ndarray, int] | None:
    """Energies (T,) or (T, n_samples) flattened frame-major, and the number per frame."""
    if ENERGY not in traj.step_extras:
        return None
    e = traj.step_extras[ENERGY].detach().cpu().to(torch.float64)
    if e.dim() == 2 and e.shape[1] == traj.n_samples and e.shape[1] > 1:
        if not bool(torch.isfinite(e).all()):
            raise InputError("traj.step_extras['energy']: holds non-finite values")
        return e.numpy().reshape(-1), int(e.shape[1])
    return A.per_frame(traj, ENERGY, ".pdb"), 1


@writer(".pdb", keywords=("topology", "atomic_numbers", "symbols"),
        description="multi-model PDB via mdtraj (Å, 3 decimals; times and energies in REMARK lines)")
def write_pdb(path: Path, traj: Trajectory, **meta: Any) -> None:
    """meta: ``topology`` (mdtraj Topology or PDB path) or ``atomic_numbers`` / ``symbols`` (else
    ``extras["atomic_numbers"]``) to build one residue per sample."""
    pos, width = A.coordinates(traj, ".pdb")
    samples = A.sample_index(traj)
    if pos.size and (pos.min() < _PDB_MIN or pos.max() > _PDB_MAX):
        raise InputError(f"traj.states: PDB coordinates must lie in [{_PDB_MIN}, {_PDB_MAX}] Å; got "
                         f"[{pos.min():.4g}, {pos.max():.4g}] (write .npz or .xyz instead)")
    if meta.get("topology") is not None:
        top = load_topology(meta["topology"])
        z = topology_numbers(top)
        A.check_topology_numbers(z, traj, meta, ".pdb", need_elements=False)
        _check_pdb_elements(z, "topology")
    else:
        z = A.atomic_numbers(traj, meta, ".pdb")
        _check_pdb_elements(z, "atomic_numbers")
        top = build_topology(z, samples)
    energy = _energies(traj)
    import mdtraj as md
    times = traj.times.detach().cpu().to(torch.float64).numpy()
    md.Trajectory(pos / 10.0, top, time=times).save_pdb(str(path), force_overwrite=True)
    entries: dict[str, Sequence[Any]] = {"time": list(times)}
    if energy is not None:
        entries[ENERGY] = list(energy[0])
        if energy[1] > 1:
            entries["energy_per_frame"] = [energy[1]]
    if width == 2:
        entries["dim"] = [2]
    if BATCH in traj.extras:            # the sizes of the graphs, in order: with any topology
        entries["graph_sizes"] = [int(c) for c in np.bincount(samples, minlength=traj.n_samples)]
    entries["dtype"] = [A.stored_dtype(traj.times, traj.states, traj.step_extras.get(ENERGY))]
    body = Path(path).read_text()
    Path(path).write_text("\n".join(_remarks(entries)) + "\n" + body)


def _trajectory(pos_angstrom: np.ndarray, times: np.ndarray, numbers: np.ndarray, remarks: dict[str, list[str]],
                residues: np.ndarray | None, dtype: torch.dtype, source: Path) -> Trajectory:
    if remarks.get("dim") == ["2"]:
        pos_angstrom = pos_angstrom[..., :2]
    extras: dict[str, torch.Tensor] = {}
    if len(numbers) and numbers.min() > 0:
        extras[ATOMIC_NUMBERS] = torch.as_tensor(numbers, dtype=torch.long)
    sizes = remarks.get("graph_sizes")
    if sizes is not None:
        try:
            counts = [int(c) for c in sizes]
        except ValueError:
            counts = []
        if sum(counts) != pos_angstrom.shape[1] or min(counts, default=-1) < 0:
            raise InputError(f"path: the {REMARK} graph_sizes of {str(source)!r} ({' '.join(sizes)[:40]}) do not add "
                             f"up to its {pos_angstrom.shape[1]} atoms")
        extras[BATCH] = torch.repeat_interleave(torch.arange(len(counts)), torch.as_tensor(counts, dtype=torch.long))
    elif remarks.get("samples") == ["residue"] and residues is not None:     # files of earlier versions
        extras[BATCH] = torch.as_tensor(np.unique(residues, return_inverse=True)[1], dtype=torch.long)
    steps = {}
    per = int(remarks.get("energy_per_frame", ["1"])[0])
    if ENERGY in remarks and len(remarks[ENERGY]) == len(times) * per:
        e = np.asarray(remarks[ENERGY], dtype=np.float64)
        steps[ENERGY] = torch.tensor(e if per == 1 else e.reshape(len(times), per), dtype=dtype)
    return Trajectory(times=A.read_times(times, dtype, source), states=torch.tensor(pos_angstrom, dtype=dtype),
                      extras=extras, step_extras=steps, info={"source": str(source), "length_unit": "angstrom"})


@reader(".pdb", keywords=("dtype", "top"), description="PDB via mdtraj")
def read_pdb(path: Path, *, dtype: torch.dtype | None = None, top: Any = None) -> Trajectory:
    """States (T, N, 3) in Å, ``extras["atomic_numbers"]`` (when every atom has an element), and what the
    sciflow remarks hold (times, energies, graph index). ``dtype`` (default: the dtype sciflow wrote the file
    from, float64 for other files). ``top`` is accepted and ignored."""
    import mdtraj as md
    try:
        t = md.load_pdb(str(path), standard_names=False)
    except Exception as e:  # noqa: BLE001  (mdtraj raises many types for malformed files)
        raise InputError(f"path: {str(path)!r} could not be read as PDB ({type(e).__name__}: {e})") from None
    if t.n_frames == 0 or t.n_atoms == 0:
        raise InputError(f"path: {str(path)!r} holds no atoms")
    remarks = _parse_remarks(path)
    if dtype is None:
        dtype = A.DTYPES.get(remarks.get("dtype", [""])[0], torch.float64)
    times = (np.asarray(remarks["time"], dtype=np.float64) if len(remarks.get("time", [])) == t.n_frames
             else np.asarray(t.time, dtype=np.float64))
    residues = np.asarray([a.residue.index for a in t.topology.atoms])
    # a PDB coordinate has 3 decimals; mdtraj holds it in float32 nm, so rounding gives back the number in the file
    return _trajectory(np.round(t.xyz.astype(np.float64) * 10.0, 3), times, topology_numbers(t.topology), remarks,
                       residues, dtype, path)


@writer(".dcd", keywords=("topology",), description="DCD via mdtraj (coordinates only, Å, float32)")
def write_dcd(path: Path, traj: Trajectory, **meta: Any) -> None:
    """Coordinates only. ``topology`` (optional) is checked against the number of rows; write it as a PDB
    beside the DCD (``write_trajectory('x.pdb', traj.frames(0))``) to read the DCD back."""
    pos, _ = A.coordinates(traj, ".dcd")
    limit = float(np.finfo(np.float32).max)
    if pos.size and np.abs(pos).max() > limit:
        raise InputError(f"traj.states: DCD files hold float32 coordinates (|x| <= {limit:.4g} Å); got "
                         f"{np.abs(pos).max():.4g} Å (write .npz instead)")
    if meta.get("topology") is not None:
        top = load_topology(meta["topology"])
        if top.n_atoms != traj.n_rows:
            raise InputError(f"topology: has {top.n_atoms} atoms, the trajectory {traj.n_rows} rows")
        A.check_topology_numbers(topology_numbers(top), traj, meta, ".dcd", need_elements=False)
    from mdtraj.formats import DCDTrajectoryFile
    with DCDTrajectoryFile(str(path), "w", force_overwrite=True) as fh:
        fh.write(pos.astype(np.float32))


@reader(".dcd", keywords=("dtype", "top"), description="DCD via mdtraj (needs top=)")
def read_dcd(path: Path, *, top: Any = None, dtype: torch.dtype = torch.float32) -> Trajectory:
    """States (T, N, 3) in Å; ``top`` (a PDB path or an mdtraj Topology) is required."""
    if top is None:
        raise InputError(f"top: reading {str(path)!r} needs a topology, since a DCD file holds coordinates only; "
                         "pass top= a PDB path or an mdtraj Topology (CLI: --top)")
    topology = load_topology(top, "top")
    from mdtraj.formats import DCDTrajectoryFile
    try:
        with DCDTrajectoryFile(str(path), "r") as fh:
            xyz, _, _ = fh.read()
    except Exception as e:  # noqa: BLE001  (the C reader raises OSError and others)
        raise InputError(f"path: {str(path)!r} could not be read as DCD ({type(e).__name__}: {e})") from None
    if xyz.shape[1] != topology.n_atoms:
        raise InputError(f"top: has {topology.n_atoms} atoms, {str(path)!r} {xyz.shape[1]}")
    pdb_file = isinstance(top, (str, os.PathLike)) and str(top).lower().endswith((".pdb", ".pdb.gz"))
    remarks = _parse_remarks(Path(top), "top") if pdb_file else {}     # the graph index of a sciflow PDB
    remarks = {k: v for k, v in remarks.items() if k in ("samples", "graph_sizes")}
    residues = np.asarray([a.residue.index for a in topology.atoms])
    return _trajectory(xyz.astype(np.float64), np.arange(xyz.shape[0], dtype=np.float64),
                       topology_numbers(topology), remarks, residues, dtype, path)
