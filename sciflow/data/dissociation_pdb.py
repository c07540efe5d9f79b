"""DD-13M-style dissociation trajectories as PDB + DCD/XTC (any format mdtraj reads): the reader, with periodic
unwrapping of the ligand and its pocket, and the writer (multi-model PDB + DCD, residues with insertion codes kept
apart). The trajectory type and the HDF5 layout are in ``sciflow.data.dissociation``, which also exports these
functions. mdtraj is imported inside the functions that need it.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import InputError
from ..core.files import atomic_path
from ..domains.molecules.complexes import ComplexTopology, pocket_indices
from .dissociation import DissociationTrajectory

__all__ = ["SOLVENT_IONS", "read_mdtraj", "to_mdtraj", "write_mdtraj"]

#: residue names of monovalent solution ions (AMBER, CHARMM and GROMACS spellings), left out of pockets like water
SOLVENT_IONS = frozenset({"NA", "NA+", "SOD", "CL", "CL-", "CLA", "K", "K+", "POT", "LI", "LI+", "CS", "RB"})


def read_mdtraj(topology: str | os.PathLike, trajectory: str | os.PathLike | None = None, *,
                ligand: str = "resname LIG", pocket_cutoff: float = 8.0, heavy_pocket: bool = False,
                name: str | None = None, frame_spacing_ps: float | None = None) -> DissociationTrajectory:
    """Read a PDB (+ DCD/XTC) trajectory, keep the ligand (mdtraj selection ``ligand``) and the receptor atoms
    within ``pocket_cutoff`` Å of it in frame 0 (whole residues; heavy atoms only with ``heavy_pocket``).

    Water and monovalent solution ions (``SOLVENT_IONS``) are never pocket atoms: they move freely in explicit-
    solvent MD, and as fixed pocket atoms they shifted the pocket frame every path is aligned to (a water diffusing
    6 Å turned a ligand moving straight out by 3 Å into a 4 Å sideways move). Divalent ions stay (often
    structural, e.g. zinc).

    Periodic boundaries: when the frames carry unit cells (a DCD/XTC, or a PDB of several models with CRYST1), the
    wrapped coordinates are made continuous (``_unwrap``): the ligand is made whole and, in frame 0, every receptor
    atom is taken in its image nearest the ligand (so the pocket is selected by minimum-image distances); later
    frames follow each pocket atom to its image nearest its previous position and put the ligand in its image
    nearest the pocket. A ligand whose centre then steps more than half the box between two frames (it wandered
    too far from the pocket for its image to be told) is refused. A single-model PDB's CRYST1 is not used (it is
    often a crystal's cell); such a file must hold whole, unwrapped molecules.

    The trajectory also keeps frame 0's positions and elements of every receptor heavy atom that is not solvent
    (``receptor_heavy``, ``receptor_elements``: what a clash test must see; the pocket is only part of it), and
    ``write_h5`` stores them."""
    import mdtraj as md

    top_p = Path(topology)
    if not top_p.is_file():
        raise InputError(f"topology: no file at {top_p}")
    if trajectory is not None and not Path(trajectory).is_file():
        raise InputError(f"trajectory: no file at {trajectory}")
    files, what = (str(top_p), "topology") if trajectory is None else \
        (f"{trajectory} (topology {top_p})", "trajectory")
    try:
        traj = md.load(str(trajectory), top=str(top_p)) if trajectory is not None else md.load(str(top_p))
    except Exception as e:  # noqa: BLE001  (mdtraj raises many types for malformed files)
        why = ("not text (binary or not UTF-8)" if isinstance(e, UnicodeDecodeError) else
               "no atoms or frames found (empty, or no ATOM/HETATM records?)" if isinstance(e, IndexError) else
               f"{type(e).__name__}: {str(e)[:160]}")
        raise InputError(f"{what}: {files} could not be read by mdtraj: {why}") from None
    if traj.n_atoms == 0 or traj.n_frames == 0:
        raise InputError(f"{what}: {files} holds no atoms or no frames")
    try:
        lig = traj.topology.select(ligand)
    except (ValueError, KeyError, TypeError, AttributeError) as e:   # mdtraj's selection parse errors
        raise InputError(f"ligand: bad selection {ligand!r}: {e}") from None
    if lig.size == 0:
        raise InputError(f"ligand: selection {ligand!r} matches no atom in {top_p.name} (ligand not found)")
    atoms = list(traj.topology.atoms)
    is_lig = np.zeros(traj.n_atoms, dtype=bool)
    is_lig[lig] = True
    for res in {atoms[i].residue for i in lig}:     # a residue split between ligand and receptor is a selection slip
        left = [a.name for a in res.atoms if not is_lig[a.index]]
        if left:
            raise InputError(f"ligand: selection {ligand!r} covers only part of residue {res.name}{res.resSeq} "
                             f"(not selected: {', '.join(left[:6])}{' ...' if len(left) > 6 else ''}); select "
                             f"whole residues, e.g. 'resname {res.name}'")
    elements = np.array([a.element.symbol if a.element is not None else "X" for a in atoms])
    topo = ComplexTopology(elements, [a.name for a in atoms], [a.residue.name for a in atoms],
                           [a.residue.resSeq for a in atoms], is_lig, name or top_p.stem,
                           [str(a.residue.chain.index) for a in atoms],
                           [a.residue.index for a in atoms])   # mdtraj drops insertion codes, keeps residue order
    xyz = traj.xyz * 10.0                                                  # nm -> Å
    solvent = np.array([(a.residue.is_water or a.residue.name.upper() in SOLVENT_IONS) and not is_lig[i]
                        for i, a in enumerate(atoms)], dtype=bool)
    if solvent.all() or (solvent | is_lig).all():
        raise InputError(f"ligand: besides {ligand!r}, {top_p.name} holds only water and ions (no receptor)")
    box = _periodic_box(traj) if (trajectory is not None or traj.n_frames > 1) else None
    if box is not None:
        xyz[0] = _image_near_ligand(xyz[0], is_lig, box[0])
    keep = pocket_indices(topo, xyz[0], pocket_cutoff, exclude=solvent)
    if heavy_pocket:
        keep = keep[topo.is_ligand[keep] | topo.is_heavy[keep]]
    times = _frame_times(traj, trajectory or top_p, frame_spacing_ps)
    sub = topo.subset(keep)
    pos = xyz[:, keep]
    if box is not None:
        pos = _unwrap(pos, sub.is_ligand, sub.is_heavy, box, trajectory or top_p)
    rec = ~is_lig & ~solvent & topo.is_heavy
    info = {"source": str(trajectory or top_p), "ligand": ligand, "pocket_cutoff_A": pocket_cutoff}
    if box is not None:
        info["periodic"] = "unwrapped (ligand imaged on the pocket)"
    return DissociationTrajectory(name or top_p.stem, sub, pos, times, info=info, receptor_heavy=xyz[0, rec],
                                  receptor_elements=topo.elements[rec])


#: Å; a unit cell with a width under this is a placeholder (CRYST1 1 1 1), not a periodic box
_MIN_BOX_WIDTH = 10.0


def _periodic_box(traj: Any) -> np.ndarray | None:
    """(T, 3, 3) Å box vectors (rows) of every frame, or None when the frames carry no usable unit cell."""
    vec = getattr(traj, "unitcell_vectors", None)
    if vec is None:
        return None
    box = np.asarray(vec, dtype=np.float64) * 10.0
    if box.shape != (traj.n_frames, 3, 3) or not np.isfinite(box).all():
        return None
    return box if _box_widths(box).min() >= _MIN_BOX_WIDTH else None


def _box_widths(box: np.ndarray) -> np.ndarray:
    """(..., 3) distances between opposite faces of boxes (..., 3, 3)."""
    a, b, c = box[..., 0, :], box[..., 1, :], box[..., 2, :]
    vol = np.abs(np.einsum("...i,...i", a, np.cross(b, c)))
    return np.stack([vol / np.linalg.norm(np.cross(b, c), axis=-1), vol / np.linalg.norm(np.cross(c, a), axis=-1),
                     vol / np.linalg.norm(np.cross(a, b), axis=-1)], -1)


def _min_image(d: np.ndarray, box: np.ndarray) -> np.ndarray:
    """Vectors d (..., 3) moved by whole box vectors (rows of ``box`` (3, 3)) to their shortest image."""
    frac = d @ np.linalg.inv(box)
    return (frac - np.round(frac)) @ box


def _whole_ligand(lig: np.ndarray, box: np.ndarray) -> np.ndarray:
    """Ligand atoms (n, 3) each in its image nearest the first ligand atom (a ligand split by the box made whole)."""
    return lig[0] + _min_image(lig - lig[0], box)


def _image_near_ligand(pos: np.ndarray, is_ligand: np.ndarray, box: np.ndarray) -> np.ndarray:
    """Frame (n, 3): the ligand made whole, every other atom in its image nearest the ligand's centroid."""
    out = pos.copy()
    out[is_ligand] = _whole_ligand(pos[is_ligand], box)
    c = out[is_ligand].mean(0)
    out[~is_ligand] = c + _min_image(pos[~is_ligand] - c, box)
    return out


def _unwrap(pos: np.ndarray, is_ligand: np.ndarray, is_heavy: np.ndarray, box: np.ndarray,
            source: str | os.PathLike) -> np.ndarray:
    """Frames (T, n, 3) of ligand + pocket atoms, frame 0 already imaged: each pocket atom follows its image nearest
    its previous position, the (whole) ligand takes its image nearest the pocket's heavy-atom centroid. Refuses a
    ligand centre that steps more than half the box between two frames."""
    out = pos.astype(np.float64)
    poc = ~is_ligand
    anchor = poc & is_heavy if (poc & is_heavy).any() else poc
    for t in range(1, len(out)):
        out[t, poc] = out[t - 1, poc] + _min_image(out[t, poc] - out[t - 1, poc], box[t])
        lig = _whole_ligand(out[t, is_ligand], box[t])
        c = out[t, anchor].mean(0)
        centre = lig.mean(0)
        out[t, is_ligand] = lig + (c + _min_image(centre - c, box[t]) - centre)
        step = float(np.linalg.norm(out[t, is_ligand].mean(0) - out[t - 1, is_ligand].mean(0)))
        half = float(_box_widths(box[t]).min()) / 2
        if step > half:
            raise InputError(f"trajectory: {source} frame {t}: the ligand centre steps {step:.1f} Å from frame "
                             f"{t - 1}, more than half the periodic box ({half:.1f} Å); its periodic image cannot "
                             "be told (the ligand is too far from the pocket, or frames are saved too rarely)")
    return out.astype(np.float32)


# formats whose frames carry their simulation time; for the others (DCD, multi-model PDB) mdtraj numbers the
# frames 0, 1, 2, ... and the spacing must come from the user
_TIMED_SUFFIXES = (".xtc", ".trr", ".h5", ".lh5", ".nc", ".netcdf", ".dtr")


def _frame_times(traj: Any, source: str | os.PathLike, frame_spacing_ps: float | None) -> np.ndarray:
    if frame_spacing_ps is not None:
        if not np.isfinite(frame_spacing_ps) or frame_spacing_ps <= 0:
            raise InputError(f"frame_spacing_ps: must be a finite number > 0, got {frame_spacing_ps}")
        return np.arange(traj.n_frames) * float(frame_spacing_ps)
    if traj.n_frames == 1:
        return np.zeros(1)
    if Path(source).suffix.lower() not in _TIMED_SUFFIXES:
        raise InputError(f"frame_spacing_ps: {Path(source).name} ({traj.n_frames} frames) does not record frame "
                         f"times; give the ps between saved frames")
    times = traj.time.astype(np.float64)
    back = np.flatnonzero(np.diff(times) <= 0)
    if len(back):               # e.g. runs concatenated into one file, each restarting its clock
        i = int(back[0]) + 1
        raise InputError(f"frame_spacing_ps: the frame times of {Path(source).name} do not increase (frame {i}: "
                         f"{times[i]:g} ps after {times[i - 1]:g} ps; {len(back)} such step(s)); pass "
                         f"frame_spacing_ps to number the frames evenly")
    return times


def to_mdtraj(topology: ComplexTopology, positions: np.ndarray, times: np.ndarray | None = None) -> Any:
    """An ``mdtraj.Trajectory`` of frames (T, n, 3) Å: the pocket first, in its own chains (one chain A when the
    topology names none), then the ligand in a chain of its own."""
    import mdtraj as md

    pos = np.asarray(positions, dtype=np.float32)
    if pos.ndim == 2:
        pos = pos[None]
    if pos.shape[1:] != (topology.n_atoms, 3):
        raise InputError(f"positions: expected (T, {topology.n_atoms}, 3), got {pos.shape}")
    top = md.Topology()
    order = np.concatenate([topology.pocket_index, topology.ligand_index])   # PDB: receptor first
    # a new chain at every change of (ligand or not, chain) and a new residue at every change of its (chain, number,
    # name) along ``order``: mdtraj writes a PDB chain by chain and residue by residue, so both must be contiguous
    # runs for the PDB to list the atoms in the order of the coordinates (which the DCD/XTC frames keep)
    res_keys, chain, residue, last = topology.residue_keys(), None, None, None
    for i in order:
        key = (bool(topology.is_ligand[i]), *res_keys[i])
        if last is None or key[:2] != last[:2]:
            chain = top.add_chain()
        if key != last:
            residue = top.add_residue(key[3][:4] or "UNK", chain, resSeq=key[2])
            last = key
        sym = str(topology.elements[i])
        try:
            el = md.element.get_by_symbol(sym.capitalize() if len(sym) > 1 else sym.upper())
        except KeyError:
            el = md.element.virtual
        top.add_atom(str(topology.atom_names[i]), el, residue)
    t = None if times is None else np.asarray(times, dtype=np.float32)
    return md.Trajectory(pos[:, order] / 10.0, top, time=t), order


def write_mdtraj(traj: DissociationTrajectory, pdb: str | os.PathLike, frames: str | os.PathLike | None = None) -> \
        tuple[Path, Path | None]:
    """Write the first frame as PDB and all frames as DCD/XTC (by suffix), or all frames as a multi-model PDB
    when ``frames`` is None. Atoms are reordered receptor first, ligand second (the PDB shows the order).

    Residues that follow one another with the same chain, number and name (insertion codes, e.g. GLY 51 and
    GLY 51A, which mdtraj does not keep) get insertion codes A, B, ... in the PDB, so a reader keeps them apart."""
    mt, _ = to_mdtraj(traj.topology, traj.positions, traj.times)
    if frames is None:
        with atomic_path(pdb) as tmp:
            mt.save_pdb(str(tmp))
            _mark_insertion_codes(tmp, mt.topology)
        return Path(pdb), None
    suffix = Path(frames).suffix.lower()
    if suffix not in (".dcd", ".xtc"):
        raise InputError(f"frames: expected a .dcd or .xtc path, got {frames}")
    with atomic_path(pdb) as tmp:
        mt[0].save_pdb(str(tmp))
        _mark_insertion_codes(tmp, mt.topology)
    with atomic_path(frames) as tmp:
        (mt.save_dcd if suffix == ".dcd" else mt.save_xtc)(str(tmp))
    return Path(pdb), Path(frames)


_ICODES = " ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def _mark_insertion_codes(pdb: Path, top: Any) -> None:
    """Give a residue written right after one with the same chain, number and name (columns 18-26, as mdtraj
    wrote them) the next insertion code (column 27): mdtraj's PDB writer has none, and a PDB reader merges such
    residues into one."""
    res_of = [a.residue.index for a in top.atoms]
    lines = Path(pdb).read_text().splitlines(keepends=True)
    k, prev_res, prev_key, code, changed = 0, None, None, " ", False
    for j, line in enumerate(lines):
        if line.startswith(("MODEL", "TER", "ENDMDL")):          # a new model or chain: residues start afresh
            if line.startswith("MODEL"):
                k = 0
            prev_res = prev_key = None
            continue
        if not line.startswith(("ATOM  ", "HETATM")) or len(line) < 27:
            continue
        r, key = res_of[k % len(res_of)], line[17:26]
        k += 1
        if r != prev_res:
            code = _ICODES[(_ICODES.index(code) + 1) % len(_ICODES)] if key == prev_key else " "
            prev_res, prev_key = r, key
        if code != " ":
            lines[j], changed = line[:26] + code + line[27:], True
    if changed:
        Path(pdb).write_text("".join(lines))
