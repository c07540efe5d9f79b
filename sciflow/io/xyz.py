"""``.xyz`` and ``.extxyz`` through ASE: one frame per time step, one line per atom, positions in Å.

Both suffixes are written as extended XYZ, which plain XYZ readers also accept (atom count, one comment line,
``symbol x y z`` lines). The comment line carries ``time=``, the frame's ``energy=`` (ASE puts it into a
single-point calculator on reading, so ``atoms.get_potential_energy()`` works), a free ``comment="..."`` and
any other per-frame scalar of ``step_extras``. 2-D states are written with z = 0 and ``sciflow_dim=2`` and come
back with 2 columns. A graph batch of several samples is refused: one XYZ frame is one structure.
"""
from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..core.errors import InputError
from ..core.fields import ATOMIC_NUMBERS, ENERGY
from ..core.trajectory import Trajectory
from . import atoms as A
from .registry import reader, suffix_of, writer

__all__ = ["read_xyz", "write_xyz"]

_RESERVED = {"time", "comment", "sciflow_dim", ENERGY}
#: per-frame scalar names that extended XYZ or ASE take for their own data (lower case): a frame value under such
#: a name would be lost, make an unreadable file or crash ASE (its array-valued calculator properties); scalar
#: properties (free_energy, magmom) round-trip and stay allowed
_TAKEN = (_RESERVED - {ENERGY}) | {"pbc", "lattice", "properties", "forces", "stress", "stresses", "dipole", "charges",
                                   "magmoms", "energies", "dielectric_tensor", "born_effective_charges",
                                   "polarization"}


def _writable(key: str) -> bool:
    """Whether a per-frame scalar can go onto the comment line under this name and come back the same: an
    identifier that extended XYZ and ASE do not take for their own data."""
    return key.isidentifier() and key.lower() not in _TAKEN


def _numbers(traj: Trajectory, meta: dict[str, Any], fmt: str) -> np.ndarray:
    if meta.get("topology") is not None and meta.get("atomic_numbers") is None and meta.get("symbols") is None:
        from .molecular import topology_numbers
        z = topology_numbers(meta["topology"])
        if len(z) != traj.n_rows:
            raise InputError(f"topology: has {len(z)} atoms, the trajectory {traj.n_rows} rows")
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

    import ase.io
    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator
    frames = []
    for k in range(traj.n_frames):
        a = Atoms(numbers=z, positions=pos[k])
        a.info["time"] = float(times[k])
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


def _raw_comments(path: Path) -> list[tuple[int, str]]:
    """(line number of the atom count, comment line) of each frame, as written."""
    try:
        return _comment_lines(path)
    except UnicodeDecodeError as e:
        raise InputError(f"path: {str(path)!r} is not an XYZ text file (byte {e.start} is not {e.encoding} "
                         "text; a binary file?)") from None


def _comment_lines(path: Path) -> list[tuple[int, str]]:
    out = []
    with open(path) as fh:
        lines = enumerate(fh, start=1)
        for no, line in lines:
            if not line.strip():
                continue
            try:
                n = int(line.split()[0])
            except ValueError:
                raise InputError(f"path: {str(path)!r} is not an XYZ file (expected an atom count, got "
                                 f"{line.strip()[:40]!r})") from None
            out.append((no, next(lines, (0, ""))[1].rstrip("\n")))
            for _ in range(n):
                next(lines, None)
    return out


@reader(".xyz", ".extxyz", keywords=("dtype", "top"), description="(extended) XYZ via ASE")
def read_xyz(path: Path, *, dtype: torch.dtype = torch.float32, top: Any = None) -> Trajectory:
    """States (T, N, 3) in Å (or (T, N, 2) for files written from 2-D states), ``extras["atomic_numbers"]``,
    ``step_extras["energy"]`` (T,) and other per-frame scalars when every frame has them, times from
    ``time=`` (else 0..T-1) and ``info["comments"]``. ``top`` is accepted and ignored."""
    import ase.io
    raw = _raw_comments(path)
    try:
        frames = ase.io.read(str(path), index=":", format="extxyz")
    except KeyError as e:                  # ASE's symbol table: an element symbol it does not know
        raise InputError(f"path: {str(path)!r}: unknown element symbol {e.args[0]!r}") from None
    except Exception as e:  # noqa: BLE001  (ASE raises many types for malformed text)
        raise InputError(f"path: {str(path)!r} could not be read as XYZ ({type(e).__name__}: {e})") from None
    if not frames:
        raise InputError(f"path: {str(path)!r} holds no frames")
    if len(frames) < len(raw):             # ASE stops at a blank line between frames, silently
        raise InputError(f"path: {str(path)!r} has {len(raw)} frames by its atom-count lines, but the XYZ "
                         f"reader stops after {len(frames)}: frame {len(frames)} (atom count on line "
                         f"{raw[len(frames)][0]}) follows a blank line or malformed text; remove blank lines "
                         "between frames")
    _refuse_dummies(path, frames, [no for no, _ in raw])
    z = frames[0].numbers
    for k, a in enumerate(frames):
        if len(a) != len(z) or not np.array_equal(a.numbers, z):
            raise InputError(f"path: frame {k} of {str(path)!r} has other atoms than frame 0; a trajectory needs "
                             "the same atoms in every frame")
    pos = np.stack([a.positions for a in frames])
    if all(a.info.get("sciflow_dim") == 2 for a in frames):
        pos = pos[..., :2]
    infos = [a.info for a in frames]
    times = (np.asarray([i["time"] for i in infos], dtype=np.float64) if all("time" in i for i in infos)
             else np.arange(len(frames), dtype=np.float64))
    steps: dict[str, torch.Tensor] = {}
    energies = []
    for a in frames:
        e = a.calc.results.get("energy") if a.calc is not None else a.info.get(ENERGY)
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
    return Trajectory(times=torch.tensor(times, dtype=dtype), states=torch.tensor(pos, dtype=dtype),
                      extras={ATOMIC_NUMBERS: torch.as_tensor(z, dtype=torch.long)}, step_extras=steps, info=info)


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
