"""``.xyz`` and ``.extxyz`` through ASE: one frame per time step, one line per atom, positions in Å.

Both suffixes are written as extended XYZ, which plain XYZ readers also accept (atom count, one comment line,
``symbol x y z`` lines). The comment line carries ``time=``, the frame's ``energy=`` (ASE puts it into a
single-point calculator on reading, so ``atoms.get_potential_energy()`` works), a free ``comment="..."`` and
any other per-frame scalar of ``step_extras``. 2-D states are written with z = 0 and ``sciflow_dim=2`` and come
back with 2 columns. A graph batch of several samples is refused: one XYZ frame is one structure. The periodic cell
(``Lattice=``, ``pbc=``) is kept in ``info["cell"]`` / ``info["pbc"]`` (or ``step_extras["cell"]`` when it changes);
other per-atom columns (forces, velocities) are not read, with a warning that names them. ``sciflow_dtype=``
records the dtype written, which the reader gives back (float64 for files without it).
"""
from __future__ import annotations

import shlex
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..core.errors import InputError
from ..core.fields import ATOMIC_NUMBERS, ENERGY
from ..core.trajectory import Trajectory
from ..domains.molecules.xyz_text import check_frame_count, raw_comments
from . import atoms as A
from .registry import reader, suffix_of, writer

__all__ = ["read_xyz", "write_xyz"]

_RESERVED = {"time", "comment", "sciflow_dim", "sciflow_dtype", ENERGY}
#: per-frame scalar names that extended XYZ or ASE take for their own data (lower case): a frame value under such
#: a name would be lost, make an unreadable file or crash ASE (its array-valued calculator properties, and
#: ``virial``, which ASE's reader turns into a stress); scalar properties (free_energy, magmom) round-trip and
#: stay allowed. ``cell`` is where the reader keeps a per-frame Lattice.
_TAKEN = (_RESERVED - {ENERGY}) | {"pbc", "lattice", "properties", "forces", "stress", "stresses", "dipole", "charges",
                                   "magmoms", "energies", "dielectric_tensor", "born_effective_charges",
                                   "polarization", "virial", "cell"}
#: per-atom columns of an extended XYZ file that sciflow reads (species and positions); others are dropped
_PER_ATOM_READ = {"numbers", "positions"}


def _writable(key: str) -> bool:
    """Whether a per-frame scalar can go onto the comment line under this name and come back the same: an
    identifier that extended XYZ and ASE do not take for their own data."""
    return key.isidentifier() and key.lower() not in _TAKEN


def _numbers(traj: Trajectory, meta: dict[str, Any], fmt: str) -> np.ndarray:
    if meta.get("topology") is not None:
        from .molecular import topology_numbers
        z = topology_numbers(meta["topology"])
        A.check_topology_numbers(z, traj, meta, fmt, need_elements=True)
        return z
    return A.atomic_numbers(traj, meta, fmt)


@writer(".xyz", ".extxyz", keywords=("atomic_numbers", "symbols", "comments", "topology"),
        description="extended XYZ via ASE (Å; per-frame time, energy, comment)")
def write_xyz(path: Path, traj: Trajectory, **meta: Any) -> None:
    """meta: ``atomic_numbers`` or ``symbols`` (one per row; else ``extras["atomic_numbers"]`` or a
    ``topology``), ``comments`` (T strings, or one for all frames; else ``info["comments"]``)."""
    fmt = suffix_of(path)
    A.require_one_sample(traj, fmt)
    pos, width = A.coordinates(traj, fmt)
    z = _numbers(traj, meta, fmt)
    energy = A.per_frame(traj, ENERGY, fmt)
    notes = A.comments(traj, meta)
    scalars = {}
    for key, value in traj.step_extras.items():
        if key == ENERGY or not (value.dim() == 1 or (value.dim() == 2 and value.shape[1] == 1)):
            continue
        if key.lower() in _TAKEN:
            raise InputError(f"traj.step_extras: key {key!r} is a name extended XYZ or ASE uses for its own "
                             f"data ({', '.join(sorted(_TAKEN))}); rename it or write npz")
        if not key.isidentifier():
            raise InputError(f"traj.step_extras: key {key!r} cannot be an XYZ comment-line key")
        scalars[key] = A.per_frame(traj, key, fmt)
    times = traj.times.detach().cpu().to(torch.float64).numpy()
    stored = A.stored_dtype(traj.times, traj.states, *(traj.step_extras[k] for k in [*scalars, ENERGY]
                                                        if k in traj.step_extras))
    cells, pbc = _cell_and_pbc(traj)

    import ase.io
    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator
    frames = []
    for k in range(traj.n_frames):
        a = Atoms(numbers=z, positions=pos[k], cell=cells[k] if cells is not None else None, pbc=pbc)
        a.info["time"] = float(times[k])
        a.info["sciflow_dtype"] = stored
        if width == 2:
            a.info["sciflow_dim"] = 2
        if notes is not None and notes[k]:  # ASE writes an empty comment= that it cannot read back
            a.info["comment"] = _escaped(notes[k])
        for key, v in scalars.items():
            a.info[key] = float(v[k])
        if energy is not None:
            a.calc = SinglePointCalculator(a, energy=float(energy[k]))
        frames.append(a)
    ase.io.write(str(path), frames, format="extxyz")


def _cell_and_pbc(traj: Trajectory) -> tuple[np.ndarray | None, Any]:
    """(T, 3, 3) cell vectors in Å from ``step_extras["cell"]`` (T, 3, 3) or ``info["cell"]`` (3, 3), or None, and
    the periodic directions from ``info["pbc"]`` (one bool or three; default: periodic where there is a cell)."""
    cells = None
    if "cell" in traj.step_extras:
        c = traj.step_extras["cell"]
        if tuple(c.shape[1:]) != (3, 3) or not c.is_floating_point() or not bool(torch.isfinite(c).all()):
            raise InputError(f"traj.step_extras['cell']: expected finite cell vectors (T, 3, 3) in Å, got shape "
                             f"{tuple(c.shape)}")
        cells = c.detach().cpu().to(torch.float64).numpy()
    elif traj.info.get("cell") is not None:
        try:
            c = np.asarray(traj.info["cell"], dtype=np.float64)
        except (TypeError, ValueError):
            c = np.zeros(0)
        if c.shape != (3, 3) or not np.all(np.isfinite(c)):
            raise InputError(f"traj.info['cell']: expected 3 finite cell vectors (3, 3) in Å, got "
                             f"{str(traj.info['cell'])[:60]}")
        cells = np.broadcast_to(c, (traj.n_frames, 3, 3))
    pbc = traj.info.get("pbc")
    if pbc is not None:
        flags = [pbc] * 3 if isinstance(pbc, (bool, np.bool_)) else list(pbc) if isinstance(pbc, (list, tuple)) else []
        if len(flags) != 3 or not all(isinstance(f, (bool, np.bool_)) for f in flags):
            raise InputError(f"traj.info['pbc']: expected one bool or three (x, y, z), got {str(pbc)[:60]}")
        pbc = [bool(f) for f in flags]
    elif cells is not None:
        pbc = [True] * 3
    return cells, pbc


def _escaped(note: str) -> str:
    """A free comment as ASE must be handed it to write it back verbatim: ASE quotes values with spaces and
    escapes double quotes, but writes backslashes as they are (its reader then drops them) and leaves other
    white space unquoted (which splits the value), so backslashes are doubled and tabs and line breaks become
    spaces."""
    return " ".join(note.replace("\\", "\\\\").replace("\r", " ").replace("\n", " ").split("\t"))


def _comment_value(line: str) -> str | None:
    """The ``comment=`` value of an extended-XYZ comment line as text (ASE's reader turns ``42`` into an int,
    ``T`` into True and ``"1 2 3"`` into an array), with quotes and backslash escapes resolved."""
    lex = shlex.shlex(line, posix=True)
    lex.whitespace_split, lex.quotes, lex.commenters = True, '"', ""
    try:
        tokens = list(lex)
    except ValueError:                     # an unbalanced quote: not a key=value line
        return None
    for tok in tokens:
        if tok.startswith("comment="):
            return tok[len("comment="):]
    return None


def _scalar(v: Any) -> bool:
    if isinstance(v, (bool, np.bool_)):
        return False
    return isinstance(v, (int, float, np.number)) or (isinstance(v, np.ndarray) and v.ndim == 0
                                                      and v.dtype.kind in "iuf")


@reader(".xyz", ".extxyz", keywords=("dtype", "top"), description="(extended) XYZ via ASE")
def read_xyz(path: Path, *, dtype: torch.dtype | None = None, top: Any = None) -> Trajectory:
    """States (T, N, 3) in Å (or (T, N, 2) for files written from 2-D states), ``extras["atomic_numbers"]``,
    ``step_extras["energy"]`` (T,) and other per-frame scalars when every frame has them, times from
    ``time=`` (else 0..T-1), ``info["comments"]`` and the periodic cell (``info["cell"]`` (3, 3), or
    ``step_extras["cell"]`` (T, 3, 3) when it changes, and ``info["pbc"]``). ``dtype`` (default: the dtype
    sciflow wrote the file from, float64 for other files). ``top`` is accepted and ignored."""
    import ase.io
    raw = raw_comments(path)
    try:
        frames = ase.io.read(str(path), index=":", format="extxyz")
    except KeyError as e:                  # ASE's symbol table: an element symbol it does not know
        raise InputError(f"path: {str(path)!r}: unknown element symbol {e.args[0]!r}") from None
    except Exception as e:  # noqa: BLE001  (ASE raises many types for malformed text)
        raise InputError(f"path: {str(path)!r} could not be read as XYZ ({type(e).__name__}: {e})") from None
    check_frame_count(path, len(frames), raw, what="path")
    if not frames:
        raise InputError(f"path: {str(path)!r} holds no frames")
    _refuse_dummies(path, frames, [no for no, _ in raw])
    z = frames[0].numbers
    for k, a in enumerate(frames):
        if len(a) != len(z) or not np.array_equal(a.numbers, z):
            raise InputError(f"path: frame {k} of {str(path)!r} has other atoms than frame 0; a trajectory needs "
                             "the same atoms in every frame")
    infos = [a.info for a in frames]
    if dtype is None:
        recorded = {str(i.get("sciflow_dtype")) for i in infos}
        dtype = A.DTYPES[recorded.pop()] if len(recorded) == 1 and next(iter(recorded)) in A.DTYPES \
            else torch.float64
    pos = np.stack([a.positions for a in frames])
    if all(a.info.get("sciflow_dim") == 2 for a in frames):
        pos = pos[..., :2]
    where = [f"{str(path)!r}, frame {k} (comment line {raw[k][0] + 1})" if k < len(raw) else
             f"{str(path)!r}, frame {k}" for k in range(len(frames))]
    has_time = ["time" in i for i in infos]
    if any(has_time) and not all(has_time):
        k = has_time.index(not has_time[0])
        raise InputError(f"path: {where[k]} {'has no' if has_time[0] else 'has a'} time= while frame 0 "
                         f"{'has one' if has_time[0] else 'has none'}; give every frame a time or none")
    for k, i in enumerate(infos):
        if "time" in i and not _scalar(i["time"]):
            raise InputError(f"path: {where[k]}: time={_text(i['time'])} is not a number")
    times = (np.asarray([float(i["time"]) for i in infos], dtype=np.float64) if all(has_time)
             else np.arange(len(frames), dtype=np.float64))
    steps: dict[str, torch.Tensor] = {}
    energies = []
    for k, a in enumerate(frames):
        e = a.calc.results.get("energy") if a.calc is not None else a.info.get(ENERGY)
        if e is not None and not _scalar(e):
            raise InputError(f"path: {where[k]}: energy={_text(e)} is not a number")
        energies.append(e)
    if all(e is not None for e in energies):
        steps[ENERGY] = torch.tensor(np.asarray(energies, dtype=np.float64), dtype=dtype)
    # other per-frame scalars: ASE moves the names of calculator properties (free_energy, magmom, ...) from the
    # comment line into the frame's calculator results, the rest stay in info
    scalars = [{**i, **({k: v for k, v in a.calc.results.items() if k != ENERGY} if a.calc is not None else {})}
               for i, a in zip(infos, frames)]
    # only names the writer can put back on the comment line: a free comment such as "E(RB3LYP) = -76.4" or
    # "forces=0.1" stays in info["comments"] (verbatim) and is not turned into a per-frame value
    for key in sorted(k for k in set(scalars[0]) - _RESERVED if _writable(k)):
        vals = [d.get(key) for d in scalars]
        if all(_scalar(v) for v in vals):
            steps[key] = torch.tensor(np.asarray(vals, dtype=np.float64), dtype=dtype)
    notes = []
    for i, (_, r) in zip(infos, raw):
        if "comment" in i:
            value = _comment_value(r)
            notes.append(value if value is not None else str(i["comment"]))
        else:
            notes.append("" if "Properties=" in r else r.strip())
    info: dict[str, Any] = {"source": str(path), "length_unit": "angstrom"}
    if any(notes):
        info["comments"] = notes
    _periodic(frames, info, steps, dtype)
    _warn_dropped(path, frames)
    return Trajectory(times=A.read_times(times, dtype, path), states=torch.tensor(pos, dtype=dtype),
                      extras={ATOMIC_NUMBERS: torch.as_tensor(z, dtype=torch.long)}, step_extras=steps, info=info)


def _text(v: Any) -> str:
    return repr(v.tolist() if isinstance(v, np.ndarray) else v)[:40]


def _periodic(frames: list, info: dict[str, Any], steps: dict[str, torch.Tensor], dtype: torch.dtype) -> None:
    """The extended-XYZ ``Lattice`` and ``pbc`` of the frames: ``info["cell"]`` (3, 3) in Å when every frame has
    the same cell, else ``step_extras["cell"]`` (T, 3, 3); ``info["pbc"]`` (three bools) when any is set."""
    cells = np.stack([np.asarray(a.cell.array, dtype=np.float64) for a in frames])
    if np.any(cells):
        if np.all(cells == cells[0]):
            info["cell"] = cells[0].tolist()
        else:
            steps["cell"] = torch.tensor(cells, dtype=dtype)
    pbcs = np.stack([np.asarray(a.pbc, dtype=bool) for a in frames])
    if np.any(pbcs) or np.any(cells):
        if not np.all(pbcs == pbcs[0]):
            k = int(np.nonzero(np.any(pbcs != pbcs[0], axis=1))[0][0])
            raise InputError(f"path: frame {k} has pbc {pbcs[k].tolist()}, frame 0 {pbcs[0].tolist()}; sciflow keeps "
                             "one pbc for the whole trajectory")
        info["pbc"] = [bool(b) for b in pbcs[0]]


def _warn_dropped(path: Path, frames: list) -> None:
    """Warn, naming them, about per-atom columns (forces, velocities, charges...) and array-valued calculator
    results (forces, stress) of an extended XYZ file that a Trajectory does not hold."""
    dropped = sorted({k for a in frames for k in a.arrays if k not in _PER_ATOM_READ}
                     | {k for a in frames if a.calc is not None for k, v in a.calc.results.items()
                        if np.ndim(v) > 0})
    if dropped:
        warnings.warn(f"{str(path)!r}: extended-XYZ per-atom or array values {', '.join(dropped)} are not read "
                      f"(sciflow keeps species, positions, the cell and per-frame scalars); they are dropped",
                      UserWarning, stacklevel=4)


def _refuse_dummies(path: Path, frames: list, starts: list[int]) -> None:
    """ASE reads ``X`` (a dummy atom, no element) as atomic number 0; sciflow holds elements 1..118 only."""
    for k, a in enumerate(frames):
        bad = np.nonzero(a.numbers < 1)[0]
        if not len(bad):
            continue
        line = (starts[k] + 2 + int(bad[0])) if k < len(starts) else None
        symbol = a.get_chemical_symbols()[int(bad[0])]
        if line is not None:
            with open(path) as fh:
                for no, text in enumerate(fh, start=1):
                    if no == line:
                        symbol = text.split()[0] if text.split() else symbol
                        break
        where = f"line {line}" if line is not None else f"frame {k}, atom {int(bad[0])}"
        raise InputError(f"path: {str(path)!r}, {where}: symbol {symbol!r} is a dummy atom (atomic number 0), "
                         f"not a chemical element; sciflow holds elements 1..{A.N_ELEMENTS} only")
