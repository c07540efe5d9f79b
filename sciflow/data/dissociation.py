"""DD-13M-style dissociation trajectories: reader and writer (HDF5, H5MD-like; or PDB + DCD/XTC via mdtraj).

One trajectory = the ligand plus its pocket atoms (elements, atom and residue names, residue numbers, a ligand
flag), frames x atoms x 3 in Å, and the time of each frame in ps (Li et al., arXiv 2504.18367, store the same
per trajectory). HDF5 layout written and read here (several trajectories per file, one group each)::

    /                      attrs: format = "sciflow.dissociation/1"
    /h5md                  attrs: version = [1, 1]; author, creator (H5MD-like marker)
    /trajectories/<name>/  attrs: complex, frame_spacing_ps, plus generator settings (JSON in "info")
        topology/element, atom_name, res_name (n,) str; res_id (n,) int64; is_ligand (n,) bool;
                 chain (n,) str (optional); res_index (n,) int64 (optional: tells apart residues that share chain,
                 number and name, e.g. insertion codes; files without it read as res_index -1)
        particles/all/position/value (T, n, 3) float32, attr unit = "angstrom"
        particles/all/position/time  (T,) float64, attr unit = "ps"
        observables/potential_energy/value (T,) float64 kcal/mol (optional)
        receptor/position (m, 3) float32, attr unit = "angstrom"; receptor/element (m,) str   (optional)

``receptor``: every receptor heavy atom (the pocket's included; water and monovalent ions left out) in frame 0,
the bound pose, which is what clash tests see (``Complex.clash_atoms``). Files written before 2026-11-29 lack it.

mdtraj and h5py are imported inside the functions that need them.
"""
from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import InputError
from ..core.files import atomic_path, listed_files
from ..domains.molecules.complexes import Complex, ComplexTopology

__all__ = [
    "FORMAT",
    "DissociationTrajectory",
    "load_complex",
    "paths_to_trajectories",
    "read_dataset",
    "read_h5",
    "read_mdtraj",  # noqa: F822 (exported by __getattr__ from dissociation_pdb)
    "to_mdtraj",  # noqa: F822 (exported by __getattr__ from dissociation_pdb)
    "write_h5",
    "write_mdtraj",  # noqa: F822 (exported by __getattr__ from dissociation_pdb)
]

FORMAT = "sciflow.dissociation/1"


@dataclass
class DissociationTrajectory:
    """A ligand leaving its pocket: ``positions`` (T, n, 3) Å, ``times`` (T,) ps, optional ``energy`` (T,)
    kcal/mol. Frame 0 is the bound pose.

    ``receptor_heavy`` (m, 3) Å, optional: every receptor heavy atom (the pocket's included) in frame 0, with
    ``receptor_elements`` (m,) str, optional: what clash tests must see beyond the pocket (``bound`` passes it
    on as ``Complex.receptor_heavy``). One frame: the model and every clash test hold the receptor fixed at the
    bound pose."""

    name: str
    topology: ComplexTopology
    positions: np.ndarray
    times: np.ndarray
    energy: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)
    receptor_heavy: np.ndarray | None = None
    receptor_elements: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.positions = np.asarray(self.positions, dtype=np.float32)
        self._check_receptor()
        self.times = np.asarray(self.times, dtype=np.float64)
        n = self.topology.n_atoms
        if self.positions.ndim != 3 or self.positions.shape[1:] != (n, 3):
            raise InputError(f"positions: expected shape (T, {n}, 3) to match the topology of {self.name!r}, "
                             f"got {self.positions.shape}")
        if self.positions.shape[0] < 1:
            raise InputError(f"positions: trajectory {self.name!r} has no frame")
        if self.times.shape != (self.positions.shape[0],):
            raise InputError(f"times: expected shape ({self.positions.shape[0]},), got {self.times.shape}")
        if not np.isfinite(self.times).all() or (np.diff(self.times) <= 0).any():
            raise InputError(f"times: trajectory {self.name!r} needs finite, strictly increasing frame times (frame "
                             f"0 is the bound pose), got {self.times[:6].tolist()}...")
        if not np.isfinite(self.positions).all():
            raise InputError(f"positions: trajectory {self.name!r} has non-finite coordinates")
        if self.energy is not None:
            self.energy = np.asarray(self.energy, dtype=np.float64)
            if self.energy.shape != self.times.shape:
                raise InputError(f"energy: expected shape {self.times.shape}, got {self.energy.shape}")
            if not np.isfinite(self.energy).all():
                bad = int(np.flatnonzero(~np.isfinite(self.energy))[0])
                raise InputError(f"energy: trajectory {self.name!r} has non-finite potential energies (first at "
                                 f"frame {bad}: {self.energy[bad]})")

    def _check_receptor(self) -> None:
        if self.receptor_heavy is None:
            if self.receptor_elements is not None:
                raise InputError(f"receptor_elements: given for {self.name!r} without receptor_heavy positions")
            return
        rh = self.receptor_heavy = np.asarray(self.receptor_heavy, dtype=np.float32)
        if rh.ndim != 2 or rh.shape[1] != 3 or not len(rh) or not np.isfinite(rh).all():
            raise InputError(f"receptor_heavy: expected finite (m, 3) positions (Å) of {self.name!r}'s receptor "
                             f"heavy atoms, got shape {rh.shape}")
        if self.receptor_elements is not None:
            el = self.receptor_elements = np.asarray(self.receptor_elements).astype(str)
            if el.shape != (len(rh),):
                raise InputError(f"receptor_elements: expected ({len(rh)},) symbols for {self.name!r}, got {el.shape}")
            light = np.isin(np.char.upper(np.char.strip(el)), ("H", "D", "T"))
            if light.any():
                raise InputError(f"receptor_elements: {self.name!r} lists {int(light.sum())} hydrogen(s); the "
                                 "receptor field holds heavy atoms only")

    @property
    def complex_name(self) -> str:
        return self.topology.name

    @property
    def n_frames(self) -> int:
        return int(self.positions.shape[0])

    @property
    def frame_spacing(self) -> float:
        """ps between saved frames (0 for a single frame)."""
        return float(np.median(np.diff(self.times))) if self.n_frames > 1 else 0.0

    @property
    def bound(self) -> Complex:
        """The first frame as a bound complex (the model's condition)."""
        return Complex(self.topology, self.positions[0].astype(np.float64), {"trajectory": self.name},
                       self.receptor_heavy, self.receptor_elements)

    def thin(self, every: int) -> DissociationTrajectory:
        """Every ``every``-th frame from the bound pose on, and always the last (exit) frame."""
        if int(every) < 1:
            raise InputError(f"every: must be >= 1, got {every}")
        keep = [*range(0, self.n_frames - 1, int(every)), self.n_frames - 1]
        return DissociationTrajectory(self.name, self.topology, self.positions[keep], self.times[keep],
                                      None if self.energy is None else self.energy[keep], self.info,
                                      self.receptor_heavy, self.receptor_elements)


# -- HDF5 ----------------------------------------------------------------------------------------
def write_h5(path: str | os.PathLike, trajectories: Iterable[DissociationTrajectory], *,
             creator: str = "sciflow") -> Path:
    """Write trajectories to one HDF5 file atomically (a name appearing twice is an error)."""
    import h5py

    trajs = list(trajectories)
    names = [t.name for t in trajs]
    if len(set(names)) != len(names):
        raise InputError(f"trajectories: names must be unique, got duplicates in {names[:10]}")
    bad = [n for n in names if not n or "/" in n or n in (".", "..")]
    if bad:     # HDF5 would make nested groups of a name with '/', which no reader finds again
        raise InputError(f"trajectories: a name must be non-empty, without '/' and not '.' or '..', got {bad[:5]}")
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.attrs["format"] = FORMAT
        h5 = f.create_group("h5md")
        h5.attrs["version"] = np.array([1, 1])
        h5.attrs["creator"] = creator
        root = f.create_group("trajectories", track_order=True)     # read back in the order written
        for t in trajs:
            g = root.create_group(t.name)
            g.attrs["complex"] = t.topology.name
            g.attrs["frame_spacing_ps"] = t.frame_spacing
            g.attrs["info"] = json.dumps(_plain(t.info), default=str)
            top = g.create_group("topology")
            for key, arr in (("element", t.topology.elements), ("atom_name", t.topology.atom_names),
                             ("res_name", t.topology.res_names)):
                top.create_dataset(key, data=np.asarray(arr).astype("S"))
            top.create_dataset("res_id", data=t.topology.res_ids)
            top.create_dataset("is_ligand", data=t.topology.is_ligand)
            top.create_dataset("chain", data=np.asarray(t.topology.chains).astype("S"))
            top.create_dataset("res_index", data=np.asarray(t.topology.res_index, dtype=np.int64))
            pos = g.create_group("particles/all/position")
            v = pos.create_dataset("value", data=t.positions, compression="gzip", compression_opts=4,
                                   shuffle=True)
            v.attrs["unit"] = "angstrom"
            tm = pos.create_dataset("time", data=t.times)
            tm.attrs["unit"] = "ps"
            if t.energy is not None:
                e = g.create_dataset("observables/potential_energy/value", data=t.energy)
                e.attrs["unit"] = "kcal/mol"
            if t.receptor_heavy is not None:
                r = g.create_dataset("receptor/position", data=t.receptor_heavy, compression="gzip",
                                     compression_opts=4, shuffle=True)
                r.attrs["unit"] = "angstrom"
                r.attrs["frame"] = 0
                if t.receptor_elements is not None:
                    g["receptor"].create_dataset("element", data=t.receptor_elements.astype("S"))
    return Path(path)


def _plain(obj: Any) -> Any:
    """``obj`` (the ``info`` dict) with numpy / torch scalars and arrays as plain Python numbers and lists and
    tuples as lists, so that ``json`` writes them as numbers and they read back equal (NaN stays NaN)."""
    if isinstance(obj, dict):
        return {_plain(k) if isinstance(k, np.generic) else k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    tolist = getattr(obj, "tolist", None)           # numpy / torch scalars and arrays
    return _plain(tolist()) if callable(tolist) else obj


def _decode(arr: Any) -> np.ndarray:
    a = np.asarray(arr)
    return a.astype(str) if a.dtype.kind in "SO" else a


def _complex_names(complexes: str | Sequence[str] | None) -> set[str] | None:
    """The complex names to keep: one name (a str) or several; matched exactly."""
    if complexes is None:
        return None
    names = [complexes] if isinstance(complexes, str) else list(complexes)
    bad = [c for c in names if not isinstance(c, str)]
    if bad:
        raise InputError(f"complexes: expected complex names (str), got {bad[:3]!r}")
    return set(names)


def read_h5(path: str | os.PathLike, *, complexes: str | Sequence[str] | None = None) -> \
        list[DissociationTrajectory]:
    """Read every trajectory of an HDF5 file (optionally only those of the named complexes: one name or several,
    matched exactly). A missing or malformed dataset or attribute is an ``InputError`` naming the file, the
    trajectory and the dataset."""
    import h5py

    p = Path(path)
    wanted = _complex_names(complexes)
    if not p.is_file():
        raise InputError(f"data: no file at {p}")
    out, missing = [], []
    try:
        f = h5py.File(p, "r")
    except OSError as e:
        raise InputError(f"data: {p} is not an HDF5 file, or a damaged or truncated one (expected a {FORMAT} .h5 "
                         f"file; h5py: {e})") from None
    with f:
        try:
            fmt = f.attrs.get("format")
            groups = list(f["trajectories"].items()) if "trajectories" in f else None
        except (OSError, KeyError, RuntimeError) as e:
            raise InputError(f"data: {p} could not be read (a damaged or truncated file? h5py: {e})") from None
        if fmt != FORMAT or groups is None:
            raise InputError(f"data: {p} is not a {FORMAT} file (format attribute {fmt!r})")
        for name, g in groups:
            where = f"data {p} trajectory {name!r}"
            try:
                got = _read_group(g, name, wanted, where, h5py)
            except InputError as e:
                msg = str(e)
                raise InputError(msg if msg.startswith(where) else f"{where}: {msg}") from None
            except (OSError, KeyError, RuntimeError, ValueError, TypeError) as e:
                raise InputError(f"{where}: could not be read (a damaged or truncated file? {type(e).__name__}: "
                                 f"{e})") from None
            if got is not None:
                out.append(got[0])
                if got[1]:
                    missing.append(name)
    if missing and str(p.resolve()) not in _WARNED_NO_RECEPTOR:
        _WARNED_NO_RECEPTOR.add(str(p.resolve()))
        warnings.warn(f"data: {p}: {len(missing)} trajector{'y stores' if len(missing) == 1 else 'ies store'} no "
                      f"receptor heavy atoms (e.g. {missing[0]!r}; written before 2026-11-29, or from a source that "
                      "had only the pocket), so clash tests of complexes taken from it see only the stored pocket "
                      "and miss receptor atoms outside it. Regenerate the file from its source with a writer that "
                      "stores them (e.g. read_mdtraj(...) + write_h5 for PDB + DCD/XTC; the optional 'receptor' "
                      "field in docs/unbinding.md, File formats)", UserWarning, stacklevel=2)
    return out


_KIND_NAMES = {"iu": "integers", "biu": "booleans", "fiu": "numbers", "SOU": "strings"}


def _read_group(g: Any, name: str, wanted: set[str] | None, where: str, h5py: Any) -> \
        tuple[DissociationTrajectory, bool] | None:
    """One trajectory group (None when its complex is not wanted) and whether it lacks the receptor field."""
    if not isinstance(g, h5py.Group):
        raise InputError(f"{where}: trajectories/{name} is not a group (expected one group per trajectory)")
    cname = g.attrs.get("complex", "complex")
    cname = cname.decode() if isinstance(cname, bytes) else str(cname)
    if wanted is not None and cname not in wanted:
        return None

    def dataset(key: str, ndim: int, shape: tuple[int | None, ...] | None = None, kinds: str | None = None,
                what: str = "") -> np.ndarray:
        obj = g.get(key)
        if obj is None:
            parts = key.split("/")
            gone = next(("/".join(parts[:i]) for i in range(1, len(parts)) if "/".join(parts[:i]) not in g), None)
            raise InputError(f"{where}: group {gone} is missing (no dataset {key})" if gone else
                             f"{where}: dataset {key} is missing")
        if not isinstance(obj, h5py.Dataset):
            raise InputError(f"{where}: {key} is not a dataset")
        a = np.asarray(obj[()])
        want = shape or (None,) * ndim
        if a.ndim != ndim or any(s is not None and s != d for s, d in zip(want, a.shape)):
            text = "(" + ", ".join("*" if s is None else str(s) for s in want) + ("," if ndim == 1 else "") + ")"
            raise InputError(f"{where}: dataset {key} has shape {a.shape}, expected {text}{what}")
        if kinds is not None and a.dtype.kind not in kinds:
            raise InputError(f"{where}: dataset {key} has dtype {a.dtype}, expected {_KIND_NAMES[kinds]}")
        return a

    elements = _decode(dataset("topology/element", 1, kinds="SOU"))
    n = len(elements)
    per_atom = " (one entry per atom of topology/element)"
    cols = {key: dataset(f"topology/{key}", 1, (n,), kinds, per_atom) for key, kinds in (
        ("atom_name", "SOU"), ("res_name", "SOU"), ("res_id", "iu"), ("is_ligand", "biu"))}
    flags = cols["is_ligand"]
    if flags.dtype.kind != "b" and not np.isin(flags, (0, 1)).all():
        raise InputError(f"{where}: dataset topology/is_ligand holds {sorted(set(flags.tolist()) - {0, 1})[:3]}; "
                         "expected booleans (0 or 1)")
    chain = _decode(dataset("topology/chain", 1, (n,), "SOU", per_atom)) if "topology/chain" in g else None
    res_index = dataset("topology/res_index", 1, (n,), "iu", per_atom) if "topology/res_index" in g else None
    topo = ComplexTopology(elements, _decode(cols["atom_name"]), _decode(cols["res_name"]), cols["res_id"],
                           flags.astype(bool), cname, chain, res_index)
    xyz_key, time_key = "particles/all/position/value", "particles/all/position/time"
    xyz = dataset(xyz_key, 3, (None, n, 3), "fiu", f" (frames x the {n} atoms of topology/element x 3)")
    times = dataset(time_key, 1, (len(xyz),), "fiu", f" (one time per frame of {xyz_key})")
    xyz = xyz * _unit_factor(g[xyz_key].attrs.get("unit"), _LENGTH, f"{where}: position unit of {xyz_key}")
    times = times * _unit_factor(g[time_key].attrs.get("unit"), _TIME, f"{where}: time unit of {time_key}")
    if not np.isfinite(xyz).all():
        raise InputError(f"{where}: dataset {xyz_key} holds non-finite coordinates")
    energy = None
    if "observables/potential_energy" in g:
        e_key = "observables/potential_energy/value"
        energy = dataset(e_key, 1, (len(xyz),), "fiu", f" (one energy per frame of {xyz_key})")
        energy = energy * _unit_factor(g[e_key].attrs.get("unit"), _ENERGY, f"{where}: energy unit of {e_key}")
        if not np.isfinite(energy).all():
            bad = int(np.flatnonzero(~np.isfinite(energy))[0])
            raise InputError(f"{where}: dataset {e_key} holds non-finite energies (first at frame {bad}: "
                             f"{energy[bad]})")
    raw = g.attrs.get("info", "{}")
    try:
        info = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
    except (json.JSONDecodeError, TypeError, UnicodeDecodeError) as e:
        raise InputError(f"{where}: attribute info is not valid JSON ({e})") from None
    if not isinstance(info, dict):
        raise InputError(f"{where}: attribute info must be a JSON object, got {type(info).__name__}")
    rec = rec_el = None
    if "receptor/position" in g:
        r_key = "receptor/position"
        rec = dataset(r_key, 2, (None, 3), "fiu", " (the receptor heavy atoms x 3)")
        rec = rec * _unit_factor(g[r_key].attrs.get("unit"), _LENGTH, f"{where}: receptor position unit of {r_key}")
        if "receptor/element" in g:
            rec_el = _decode(dataset("receptor/element", 1, (len(rec),), "SOU", f" (one per atom of {r_key})"))
        _check_receptor_frame(topo, xyz[0], rec, where)
    no_receptor = rec is None and not _whole_receptor(info)
    return DissociationTrajectory(name, topo, xyz, times, energy, info, rec, rec_el), no_receptor


#: files already warned about (once per file and process) for storing no receptor heavy atoms
_WARNED_NO_RECEPTOR: set[str] = set()


def _whole_receptor(info: dict[str, Any]) -> bool:
    """True when the stored pocket is known to be the whole receptor (RAMD run with ``pocket_cutoff`` None, as the
    host-guest data): the receptor field would add nothing."""
    settings = info.get("settings")
    return isinstance(settings, dict) and "pocket_cutoff" in settings and settings["pocket_cutoff"] is None


def _check_receptor_frame(topo: ComplexTopology, frame0: np.ndarray, receptor: np.ndarray, where: str) -> None:
    """Refuse a receptor field not in frame 0's coordinates: each pocket heavy atom must be one of its atoms."""
    pocket = np.asarray(frame0, dtype=np.float64)[~topo.is_ligand & topo.is_heavy]
    rec = np.asarray(receptor, dtype=np.float64)
    if rec.ndim != 2 or rec.shape[1] != 3 or not len(pocket):
        return                                      # the shape is DissociationTrajectory's to refuse
    d = np.concatenate([np.sqrt(((pocket[i:i + 256, None] - rec[None]) ** 2).sum(-1)).min(1)
                        for i in range(0, len(pocket), 256)])        # in blocks: a protein has thousands
    if d.max() > 1e-2:
        raise InputError(f"{where}: receptor/position does not hold the pocket heavy atoms of frame 0 (one is "
                         f"{d.max():.3g} Å from every receptor atom); it must be frame 0's receptor heavy atoms")


# factors to the units sciflow keeps (Å, ps, kcal/mol) from the unit names an H5MD-like writer may use
_LENGTH = {"angstrom": 1.0, "a": 1.0, "å": 1.0, "nm": 10.0, "nanometer": 10.0, "nanometers": 10.0}
_TIME = {"ps": 1.0, "picosecond": 1.0, "picoseconds": 1.0, "fs": 1e-3, "femtosecond": 1e-3, "ns": 1e3,
         "nanosecond": 1e3}
_ENERGY = {"kcal/mol": 1.0, "kcal mol-1": 1.0, "kj/mol": 1.0 / 4.184, "kj mol-1": 1.0 / 4.184}


def _unit_factor(unit: Any, table: dict[str, float], what: str) -> float:
    """The factor for a unit attribute (absent: the sciflow unit); an unknown unit is an error, not a guess."""
    if unit is None:
        return 1.0
    key = (unit.decode() if isinstance(unit, bytes) else str(unit)).strip().lower()
    if key not in table:
        raise InputError(f"{what}: {key!r} is not one of {sorted(table)}")
    return table[key]


def read_dataset(path: str | os.PathLike, *, complexes: Sequence[str] | None = None) -> list[DissociationTrajectory]:
    """An HDF5 file, or a folder: every ``*.h5`` below it (sorted), concatenated."""
    p = Path(path)
    if p.is_dir():
        files = listed_files(p, (".h5",), recursive=True)
        if not files:
            raise InputError(f"data: no .h5 file under {p}")
        return [t for fp in files for t in read_h5(fp, complexes=complexes)]
    return read_h5(p, complexes=complexes)


# -- PDB + DCD / XTC (mdtraj): in ``dissociation_pdb`` (it imports the trajectory type from here) -----------
_PDB_NAMES = ("SOLVENT_IONS", "read_mdtraj", "to_mdtraj", "write_mdtraj")


def __getattr__(name: str) -> Any:
    """``read_mdtraj``, ``to_mdtraj``, ``write_mdtraj`` and ``SOLVENT_IONS`` live in ``dissociation_pdb``; they
    are exported from here too (imported on first use, as that module imports this one)."""
    if name in _PDB_NAMES:
        from . import dissociation_pdb
        return getattr(dissociation_pdb, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load_complex(path: str | os.PathLike, *, ligand: str = "resname LIG", pocket_cutoff: float = 10.0) -> Complex:
    """A bound complex from a PDB (ligand by mdtraj selection, pocket within ``pocket_cutoff`` Å) or from the
    first frame of the first trajectory of a dissociation HDF5 file.

    From a PDB the complex also keeps every receptor heavy atom that is not water or a monovalent ion
    (``Complex.receptor_heavy``): the pocket is the network's input, but a leaving ligand meets atoms outside it,
    and clash guidance, the projection and the clash counts test against all of them. From an HDF5 file it
    keeps them when the file stores them (its ``receptor`` field, written since 2026-11-29); an older file stores
    only the pocket (``read_h5`` warns), and then the pocket is all the clash tests see."""
    p = Path(path)
    if p.suffix.lower() in (".h5", ".hdf5"):
        trajs = read_h5(p)
        if not trajs:
            raise InputError(f"complex: {p} holds no trajectory to take the bound pose from")
        return trajs[0].bound
    if p.suffix.lower() != ".pdb":
        raise InputError(f"complex: expected a .pdb or .h5 file, got {p}")
    from .dissociation_pdb import read_mdtraj
    # only frame 0 (the bound pose) is used, so the spacing of a multi-model PDB's frames does not matter
    return read_mdtraj(p, None, ligand=ligand, pocket_cutoff=pocket_cutoff, name=p.stem, frame_spacing_ps=1.0).bound


def paths_to_trajectories(cx: Complex, ligand_frames: np.ndarray, times: np.ndarray,
                          prefix: str = "path") -> list[DissociationTrajectory]:
    """Generated ligand frames (n, T, n_lig, 3) Å + the fixed pocket of ``cx`` -> one trajectory per path (each
    keeps ``cx.receptor_heavy``, the receptor the paths were checked against)."""
    lf = np.asarray(ligand_frames)
    n_lig = int(cx.topology.is_ligand.sum())
    if lf.ndim != 4 or lf.shape[2:] != (n_lig, 3):
        raise InputError(f"ligand_frames: expected (n, T, {n_lig}, 3), got {lf.shape}")
    out = []
    for k, fr in enumerate(lf):
        pos = np.repeat(cx.positions[None], fr.shape[0], axis=0)
        pos[:, cx.topology.is_ligand] = fr
        out.append(DissociationTrajectory(f"{prefix}{k:03d}", cx.topology, pos, np.asarray(times[k]),
                                          receptor_heavy=cx.receptor_heavy, receptor_elements=cx.receptor_elements))
    return out
