"""Bound protein–ligand / host–guest complexes: topology, pocket extraction, pocket alignment, clashes.

This is the domain knowledge UnbindingFlow needs. Positions are in Å. A complex is stored as the ligand atoms
plus the pocket atoms (receptor atoms near the ligand); ``is_ligand`` tells them apart.

Clash definition (used by the generator's guidance, the projection and every metric): a ligand heavy atom and a
receptor heavy atom closer than ``CLASH_DISTANCE`` Å. The receptor atoms tested are ``Complex.clash_atoms()``: every
receptor heavy atom the complex was loaded with (``receptor_heavy``, e.g. the whole protein of a PDB), else the
pocket's; a ligand leaving the pocket meets receptor atoms outside the pocket shell. The threshold sits below the closest heavy-atom contacts of
real bound-state MD (hydrogen-bonded N/O pairs at about 2.6–2.8 Å), so MD frames have no clashes by it.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ...core.errors import InputError
from .elements import masses_of_symbols

__all__ = [
    "CLASH_DISTANCE",
    "COM_DISTANCE",
    "ELEMENT_TYPES",
    "Complex",
    "ComplexTopology",
    "align_frames",
    "clash_energy",
    "clash_mask",
    "element_index",
    "kabsch_rotation",
    "min_pair_distance",
    "pocket_indices",
]

#: element symbols the networks one-hot encode; anything else maps to the last slot ("other").
ELEMENT_TYPES: tuple[str, ...] = ("H", "C", "N", "O", "S", "P", "F", "Cl", "Br", "I", "other")
#: Å. Ligand–pocket heavy-atom pairs closer than this clash.
CLASH_DISTANCE = 2.2
#: name of the per-frame ligand-COM to pocket-centroid distance (T, B), Å, in trajectory step extras.
COM_DISTANCE = "com_distance"
_LOWER = {s.lower(): i for i, s in enumerate(ELEMENT_TYPES[:-1])}


def element_index(symbols: Sequence[str]) -> np.ndarray:
    """(n,) int64 index into ``ELEMENT_TYPES`` of each element symbol (case-insensitive)."""
    return np.array([_LOWER.get(str(s).strip().lower(), len(ELEMENT_TYPES) - 1) for s in symbols], dtype=np.int64)


@dataclass
class ComplexTopology:
    """Atoms of a ligand plus its pocket (or whole receptor).

    elements, atom_names, res_names: (n,) str. res_ids: (n,) int residue numbers. is_ligand: (n,) bool.
    chains: (n,) str chain of each atom (default: one unnamed chain), so that residues with the same number
    and name in different chains stay apart: a residue is (chain, res_id, res_name, res_index).
    res_index: (n,) int, optional: the reader's own residue number (mdtraj's ``residue.index``), which tells apart
    residues that share chain, number and name, e.g. PDB insertion codes (GLY 51 and GLY 51A); None: -1 for all.
    """

    elements: np.ndarray
    atom_names: np.ndarray
    res_names: np.ndarray
    res_ids: np.ndarray
    is_ligand: np.ndarray
    name: str = "complex"
    chains: np.ndarray | None = None
    res_index: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.elements = np.asarray(self.elements).astype(str)
        n = len(self.elements)
        self.atom_names = np.asarray(self.atom_names).astype(str)
        self.res_names = np.asarray(self.res_names).astype(str)
        self.res_ids = np.asarray(self.res_ids).astype(np.int64)
        self.is_ligand = np.asarray(self.is_ligand).astype(bool)
        self.chains = np.full(n, "", dtype=str) if self.chains is None else np.asarray(self.chains).astype(str)
        self.res_index = np.full(n, -1, dtype=np.int64) if self.res_index is None else \
            np.asarray(self.res_index).astype(np.int64)
        for key in ("atom_names", "res_names", "res_ids", "is_ligand", "chains", "res_index"):
            if len(getattr(self, key)) != n:
                raise InputError(f"topology.{key}: has {len(getattr(self, key))} entries, elements has {n}")
        if not self.is_ligand.any():
            raise InputError(f"topology.is_ligand: complex {self.name!r} has no ligand atom (ligand not found)")
        if self.is_ligand.all():
            raise InputError(f"topology.is_ligand: complex {self.name!r} has no pocket atom (empty pocket)")
        unknown = np.flatnonzero(self.is_ligand & np.isnan(masses_of_symbols(self.elements)))
        if unknown.size:
            i = int(unknown[0])
            raise InputError(f"topology.elements: ligand atom {i} ({self.atom_names[i]}) of {self.name!r} has element "
                             f"{str(self.elements[i])!r}, which is no known element (its mass sets the ligand's centre)")

    @property
    def n_atoms(self) -> int:
        return len(self.elements)

    @property
    def ligand_index(self) -> np.ndarray:
        return np.flatnonzero(self.is_ligand)

    @property
    def pocket_index(self) -> np.ndarray:
        return np.flatnonzero(~self.is_ligand)

    @property
    def is_heavy(self) -> np.ndarray:
        return ~np.isin(np.char.upper(np.char.strip(self.elements)), ("H", "D", "T"))

    @property
    def masses(self) -> np.ndarray:
        return masses_of_symbols(self.elements)

    def residue_keys(self) -> list[tuple[str, int, str, int]]:
        """(chain, residue number, residue name, res_index) of each atom: what identifies its residue."""
        return list(zip(self.chains.tolist(), self.res_ids.tolist(), self.res_names.tolist(),
                        self.res_index.tolist()))

    def subset(self, index: Sequence[int] | np.ndarray) -> ComplexTopology:
        idx = np.asarray(index, dtype=np.int64)
        return ComplexTopology(self.elements[idx], self.atom_names[idx], self.res_names[idx], self.res_ids[idx],
                               self.is_ligand[idx], self.name, self.chains[idx], self.res_index[idx])

    def to_dict(self) -> dict[str, Any]:
        return {"elements": self.elements, "atom_names": self.atom_names, "res_names": self.res_names,
                "res_ids": self.res_ids, "is_ligand": self.is_ligand, "name": self.name, "chains": self.chains,
                "res_index": self.res_index}


@dataclass
class Complex:
    """A bound complex: topology plus one pose ``positions`` (n, 3) Å (the condition of UnbindingFlow).

    ``receptor_heavy`` (m, 3) Å, optional: every receptor heavy atom (the pocket's included) in the same frame, for
    clash tests along a path that leaves the pocket; None when the pocket atoms are all that is known of the
    receptor (a trajectory file that stores only the pocket). ``receptor_elements`` (m,) str, optional: their
    elements, when the source gave them (kept so that files written from the complex store them too)."""

    topology: ComplexTopology
    positions: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)
    receptor_heavy: np.ndarray | None = None
    receptor_elements: np.ndarray | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.topology, ComplexTopology):
            raise InputError(f"topology: expected a ComplexTopology, got {type(self.topology).__name__}")
        if torch.is_tensor(self.positions):      # coordinates are inputs: autograd and device do not matter here
            if self.positions.is_meta:
                raise InputError("positions: is a meta tensor (it holds no values)")
            self.positions = self.positions.detach().cpu().numpy()
        self.positions = np.asarray(self.positions, dtype=np.float64)
        if self.receptor_heavy is not None:
            if torch.is_tensor(self.receptor_heavy):
                self.receptor_heavy = self.receptor_heavy.detach().cpu().numpy()
            self.receptor_heavy = np.asarray(self.receptor_heavy, dtype=np.float64)
        self.check_coordinates()
        if self.receptor_elements is not None:
            el = self.receptor_elements = np.asarray(self.receptor_elements).astype(str)
            m = -1 if self.receptor_heavy is None else len(self.receptor_heavy)
            if el.shape != (m,):
                raise InputError(f"receptor_elements: expected one symbol per receptor_heavy row of "
                                 f"{self.topology.name!r}, got shape {el.shape}")

    def check_coordinates(self) -> None:
        """The positions (n, 3) and receptor heavy atoms (m, 3) are finite and of their shapes: checked when the
        complex is made and again by its users (coordinates may be changed after); an InputError names the
        complex, and the first bad atom with its role and element."""
        n, name = self.topology.n_atoms, self.topology.name
        pos = np.asarray(self.positions, dtype=np.float64)
        if pos.shape != (n, 3):
            raise InputError(f"positions: expected shape ({n}, 3) to match the topology of {name!r}, got {pos.shape}")
        bad = np.flatnonzero(~np.isfinite(pos).all(axis=1))
        if bad.size:
            i = int(bad[0])
            role = "ligand" if self.topology.is_ligand[i] else "receptor"
            raise InputError(f"positions: complex {name!r}: atom {i} ({role} {self.topology.elements[i]}) has "
                             f"non-finite coordinates {pos[i].tolist()} ({bad.size} atom(s) in all)")
        if self.receptor_heavy is not None:
            rh = np.asarray(self.receptor_heavy, dtype=np.float64)
            if rh.ndim != 2 or rh.shape[1] != 3 or not len(rh):
                raise InputError(f"receptor_heavy: expected finite (m, 3) positions of {name!r}'s receptor heavy "
                                 f"atoms, got shape {rh.shape}")
            bad = np.flatnonzero(~np.isfinite(rh).all(axis=1))
            if bad.size:
                raise InputError(f"receptor_heavy: complex {name!r}: row {int(bad[0])} has non-finite coordinates "
                                 f"({bad.size} row(s) in all)")

    @property
    def name(self) -> str:
        return self.topology.name

    @property
    def ligand_positions(self) -> np.ndarray:
        return self.positions[self.topology.is_ligand]

    @property
    def pocket_positions(self) -> np.ndarray:
        return self.positions[~self.topology.is_ligand]

    def pocket_centroid(self) -> np.ndarray:
        """(3,) centroid of the pocket heavy atoms, Å: the origin of exit distances and directions."""
        topo = self.topology
        return self.positions[~topo.is_ligand & topo.is_heavy].mean(axis=0)

    def clash_atoms(self) -> np.ndarray:
        """(m, 3) Å receptor heavy atoms that clash tests see: ``receptor_heavy`` if given, else the pocket's."""
        if self.receptor_heavy is not None:
            return self.receptor_heavy
        topo = self.topology
        return self.positions[~topo.is_ligand & topo.is_heavy]

    def ligand_com(self) -> np.ndarray:
        topo = self.topology
        m = topo.masses[topo.is_ligand]
        return (self.ligand_positions * m[:, None]).sum(0) / m.sum()

    def transformed(self, rotation: np.ndarray, shift: np.ndarray) -> Complex:
        """x -> x R^T + shift (a rigid motion of the whole complex)."""
        r, t = np.asarray(rotation), np.asarray(shift)
        rec = None if self.receptor_heavy is None else self.receptor_heavy @ r.T + t
        return Complex(self.topology, self.positions @ r.T + t, dict(self.info), rec, self.receptor_elements)


def pocket_indices(topology: ComplexTopology, positions: np.ndarray, cutoff: float, *,
                   whole_residues: bool = True, exclude: np.ndarray | None = None) -> np.ndarray:
    """Indices of the ligand atoms followed by the receptor atoms within ``cutoff`` Å of any ligand atom
    (extended to whole residues with ``whole_residues``), leaving out the atoms marked in ``exclude`` (n,) bool
    (e.g. solvent). Raises InputError when the pocket comes out empty."""
    if cutoff <= 0:
        raise InputError(f"pocket_cutoff: must be > 0 Å, got {cutoff}")
    pos = np.asarray(positions, dtype=np.float64)
    if pos.shape != (topology.n_atoms, 3):
        raise InputError(f"positions: expected ({topology.n_atoms}, 3) for {topology.name!r}, got {pos.shape}")
    bad = np.flatnonzero(~np.isfinite(pos).all(-1))
    if bad.size:
        named = [f"{topology.res_names[i]}{topology.res_ids[i]}:{topology.atom_names[i]}" for i in bad[:5]]
        raise InputError(f"positions: {bad.size} atom(s) of {topology.name!r} have non-finite coordinates "
                         f"(atoms {bad[:5].tolist()}: {named})")
    lig = topology.ligand_index
    rec = topology.pocket_index
    if exclude is not None:
        rec = rec[~np.asarray(exclude, dtype=bool)[rec]]
        if rec.size == 0:
            raise InputError(f"pocket_cutoff: {topology.name!r} has no receptor atom besides the excluded ones")
    d = np.sqrt(((pos[rec][:, None, :] - pos[lig][None, :, :]) ** 2).sum(-1)).min(axis=1)
    near = rec[d < cutoff]
    if near.size == 0:
        raise InputError(f"pocket_cutoff: no receptor atom within {cutoff} Å of the ligand of "
                         f"{topology.name!r} (empty pocket)")
    if whole_residues:
        res = topology.residue_keys()
        keys = {res[i] for i in near}
        near = np.array([i for i in rec if res[i] in keys])
    return np.concatenate([lig, np.sort(near)])


def kabsch_rotation(p: Tensor, q: Tensor, weights: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Best rigid motion taking points p onto q (both (..., n, 3)): returns (R (..., 3, 3), p_c, q_c) with
    aligned = (p - p_c) @ R^T + q_c, a proper rotation (det +1)."""
    w = torch.ones(p.shape[:-1], dtype=p.dtype, device=p.device) if weights is None else weights.to(p)
    w = (w / w.sum(-1, keepdim=True)).unsqueeze(-1)
    pc, qc = (p * w).sum(-2, keepdim=True), (q * w).sum(-2, keepdim=True)
    h = ((p - pc) * w).transpose(-1, -2) @ (q - qc)                       # (..., 3, 3)
    u, _, vt = torch.linalg.svd(h)
    d = torch.sign(torch.det(vt.transpose(-1, -2) @ u.transpose(-1, -2)))
    diag = torch.ones(h.shape[:-2] + (3,), dtype=p.dtype, device=p.device)
    diag[..., 2] = d
    r = vt.transpose(-1, -2) @ torch.diag_embed(diag) @ u.transpose(-1, -2)
    return r, pc, qc


def align_frames(frames: Tensor, reference: Tensor, mask: Tensor) -> Tensor:
    """Superpose every frame (T, n, 3) on ``reference`` (n, 3) using the atoms in ``mask`` (n,) bool."""
    ref = reference.unsqueeze(0).expand(frames.shape[0], -1, -1)
    r, pc, qc = kabsch_rotation(frames[:, mask], ref[:, mask])
    return (frames - pc) @ r.transpose(-1, -2) + qc


def _pair_distances(ligand: Tensor, pocket: Tensor) -> Tensor:
    """(..., Nl, Np) distances between ligand (..., Nl, 3) and pocket (Np, 3) or (..., Np, 3) atoms."""
    diff = ligand.unsqueeze(-2) - pocket.unsqueeze(-3)
    return (diff.pow(2).sum(-1) + 1e-12).sqrt()


def min_pair_distance(ligand: Tensor, pocket: Tensor) -> Tensor:
    """(...,) smallest ligand–pocket distance of each frame (pass heavy atoms only for the clash metric)."""
    return _pair_distances(ligand, pocket).amin(dim=(-1, -2))


def clash_mask(ligand: Tensor, pocket: Tensor, threshold: float = CLASH_DISTANCE) -> Tensor:
    """(...,) True where a frame has a ligand–pocket pair closer than ``threshold`` Å."""
    return min_pair_distance(ligand, pocket) < threshold


def clash_energy(ligand: Tensor, pocket: Tensor, threshold: float = CLASH_DISTANCE, *, margin: float = 0.3) -> Tensor:
    """(...,) sum over pairs of relu(threshold + margin - d)^2 (Å^2): zero for a clash-free frame with room to
    spare, smooth, and differentiable for guidance and projection."""
    d = _pair_distances(ligand, pocket)
    return torch.relu(threshold + margin - d).pow(2).sum(dim=(-1, -2))
