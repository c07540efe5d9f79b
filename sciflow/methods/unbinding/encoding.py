"""Turning complexes and MD dissociation trajectories into the tensors UnbindingFlow learns from.

The model sees ligand heavy atoms (its nodes move) and pocket heavy atoms (fixed condition). A path is
``n_frames`` frames after the bound pose, taken at equal fractions of the time the ligand needed to reach the
exit distance; every MD frame is first superposed on the bound frame's pocket (Kabsch), so the path is the
ligand's motion relative to its pocket. Ligand hydrogens are not generated: each generated frame places them
by the rigid motion that best maps the bound heavy atoms onto the generated ones.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ...core.errors import InputError
from ...domains.molecules.adapter import check_atoms_apart
from ...domains.molecules.complexes import Complex, align_frames, element_index, kabsch_rotation

__all__ = ["POCKET_CONTACT_DISTANCE", "EncodedComplex", "EncodedPath", "batch_complexes", "encode_complex",
           "encode_path", "place_hydrogens"]

#: Å. A bound ligand has a pocket heavy atom within this distance of one of its heavy atoms. The shipped bound poses
#: (datasets/unbinding: PDB complexes and every replica's first frame) have one at 2.7-4.8 Å; a ligand farther from
#: every pocket atom is not bound there (moved out, or another frame or unit than the pocket's).
POCKET_CONTACT_DISTANCE = 8.0


@dataclass
class EncodedComplex:
    """Condition tensors of one bound complex (Å)."""

    name: str
    ligand_pos: Tensor        # (Nl, 3) ligand heavy atoms, bound pose
    ligand_types: Tensor      # (Nl,) int64 element index
    pocket_pos: Tensor        # (Np, 3) pocket heavy atoms
    pocket_types: Tensor      # (Np,) int64
    centroid: Tensor          # (3,) pocket heavy-atom centroid
    ligand_heavy_index: np.ndarray   # indices into the complex's atoms
    complex: Complex


@dataclass
class EncodedPath:
    """One MD path: condition plus target frames (F, Nl, 3) Å and the exit time in ps."""

    cond: EncodedComplex
    frames: Tensor
    duration: float


def _check_pose(cx: Complex, lig: np.ndarray, poc: np.ndarray) -> None:
    """Refuse a pose that is not a bound complex: non-finite coordinates (also ones set after the Complex was
    made), two ligand atoms closer than ``MIN_ATOM_DISTANCE`` (the check TS-GEN applies to its molecules) or a
    ligand with no pocket heavy atom within ``POCKET_CONTACT_DISTANCE``."""
    cx.check_coordinates()
    topo = cx.topology
    positions = np.asarray(cx.positions, dtype=np.float64)
    li = topo.ligand_index
    lig_all = torch.as_tensor(positions[li])
    check_atoms_apart("ligand", lig_all, torch.zeros(len(li), dtype=torch.long), [f"complex {cx.name!r}"])
    d = torch.cdist(torch.as_tensor(positions[lig]), torch.as_tensor(positions[poc]))
    near = float(d.min())
    if near > POCKET_CONTACT_DISTANCE:
        raise InputError(f"complex {cx.name!r}: the ligand is not in its pocket: the nearest pocket heavy atom is "
                         f"{near:.3g} Å from its heavy atoms (a bound pose has one within {POCKET_CONTACT_DISTANCE} "
                         "Å); give the bound pose, ligand and pocket in the same frame, in Å")


def encode_complex(cx: Complex) -> EncodedComplex:
    """The condition tensors of a bound complex; a pose that is not one (see ``_check_pose``) is an InputError."""
    topo = cx.topology
    lig = np.flatnonzero(topo.is_ligand & topo.is_heavy)
    poc = np.flatnonzero(~topo.is_ligand & topo.is_heavy)
    if lig.size == 0:
        raise InputError(f"complex: {cx.name!r} has no ligand heavy atom (ligand not found)")
    if poc.size == 0:
        raise InputError(f"complex: {cx.name!r} has no pocket heavy atom (empty pocket)")
    _check_pose(cx, lig, poc)
    pos = torch.as_tensor(cx.positions, dtype=torch.float32)
    types = torch.as_tensor(element_index(topo.elements))
    return EncodedComplex(cx.name, pos[lig], types[lig], pos[poc], types[poc], pos[poc].mean(0), lig, cx)


def encode_path(traj, n_frames: int) -> EncodedPath:
    """A ``DissociationTrajectory`` -> pocket-aligned ligand frames at fractions k / n_frames (k = 1..n_frames)
    of its duration (linear interpolation between saved frames)."""
    if traj.n_frames < 2:
        raise InputError(f"trajectory {traj.name!r}: needs at least 2 frames, has {traj.n_frames}")
    cond = encode_complex(traj.bound)
    topo = traj.topology
    pocket_heavy = torch.as_tensor(~topo.is_ligand & topo.is_heavy)
    frames = torch.as_tensor(traj.positions, dtype=torch.float64)
    aligned = align_frames(frames, frames[0], pocket_heavy)[:, cond.ligand_heavy_index]   # (T, Nl, 3)
    t = torch.as_tensor(traj.times - traj.times[0], dtype=torch.float64)
    duration = float(t[-1])
    if duration <= 0:
        raise InputError(f"trajectory {traj.name!r}: times must increase, got {traj.times[:3]}...")
    want = torch.arange(1, n_frames + 1, dtype=torch.float64) / n_frames * duration
    j = torch.searchsorted(t, want).clamp(1, len(t) - 1)
    w = ((want - t[j - 1]) / (t[j] - t[j - 1])).clamp(0, 1).reshape(-1, 1, 1)
    out = aligned[j - 1] * (1 - w) + aligned[j] * w
    return EncodedPath(cond, out.to(torch.float32), duration)


def place_hydrogens(cx: Complex, heavy_frames: Tensor, heavy_index: np.ndarray) -> Tensor:
    """(T, Nlig_all, 3) all ligand atoms: generated heavy atoms, hydrogens moved rigidly with the best-fitting
    motion of the bound heavy atoms onto each frame's heavy atoms."""
    topo = cx.topology
    lig = topo.ligand_index
    bound = torch.as_tensor(cx.positions[lig], dtype=heavy_frames.dtype, device=heavy_frames.device)
    local = {int(a): k for k, a in enumerate(lig)}
    hi = torch.as_tensor([local[int(a)] for a in heavy_index], device=heavy_frames.device)
    ref = bound[hi].unsqueeze(0).expand(heavy_frames.shape[0], -1, -1)
    sv = torch.linalg.svdvals(bound[hi] - bound[hi].mean(0)) if len(hi) > 1 else None
    if sv is not None and sv[1] > 1e-3 * sv[0]:
        r, pc, qc = kabsch_rotation(ref, heavy_frames)
    else:            # one heavy atom, or collinear ones: the spin about their axis is undetermined, and Kabsch
        r = _axis_rotation(bound[hi], heavy_frames)    # picked an arbitrary one (hydrogens moved even in frame 0)
        pc, qc = ref.mean(-2, keepdim=True), heavy_frames.mean(-2, keepdim=True)
    out = (bound.unsqueeze(0) - pc) @ r.transpose(-1, -2) + qc
    out[:, hi] = heavy_frames
    return out


def _axis_rotation(ref: Tensor, frames: Tensor) -> Tensor:
    """(T, 3, 3) smallest rotations taking the axis of the heavy atoms ``ref`` (n, 3; the two farthest apart) onto
    the same atoms' axis in each of ``frames`` (T, n, 3); the identity for a single atom. Rotating the inputs by Q
    turns R into Q R Q^T, so hydrogens placed with it stay equivariant."""
    eye = torch.eye(3, dtype=frames.dtype, device=frames.device).expand(frames.shape[0], 3, 3)
    if ref.shape[0] < 2:
        return eye.clone()
    d = torch.cdist(ref, ref)
    i, j = divmod(int(d.argmax()), ref.shape[0])
    a = torch.nn.functional.normalize(ref[j] - ref[i], dim=-1).expand(frames.shape[0], 3)
    b = torch.nn.functional.normalize(frames[:, j] - frames[:, i], dim=-1)
    v, c = torch.cross(a, b, dim=-1), (a * b).sum(-1)
    k = torch.zeros_like(eye)
    k[:, 0, 1], k[:, 0, 2], k[:, 1, 2] = -v[:, 2], v[:, 1], -v[:, 0]
    k = k - k.transpose(-1, -2)
    r = eye + k + (k @ k) / (1 + c).clamp_min(1e-12)[:, None, None]
    flip = c < -1 + 1e-9                   # opposite axes: a half turn about any axis perpendicular to a
    if bool(flip.any()):
        perp = torch.nn.functional.normalize(torch.cross(a[flip], torch.eye(3, dtype=a.dtype, device=a.device)[
            a[flip].abs().argmin(-1)], dim=-1), dim=-1)
        r[flip] = 2 * perp[:, :, None] * perp[:, None, :] - eye[flip]
    return r


def batch_complexes(items: Sequence[EncodedComplex], device: torch.device | str = "cpu") -> dict[str, Tensor]:
    """Concatenate conditions into a ragged batch (ligand nodes and pocket nodes kept in two lists)."""
    def cat(key: str) -> Tensor:
        return torch.cat([getattr(c, key) for c in items]).to(device)
    lb = torch.cat([torch.full((c.ligand_pos.shape[0],), i, dtype=torch.long) for i, c in enumerate(items)])
    pb = torch.cat([torch.full((c.pocket_pos.shape[0],), i, dtype=torch.long) for i, c in enumerate(items)])
    return {"ligand_pos": cat("ligand_pos"), "ligand_types": cat("ligand_types"), "ligand_batch": lb.to(device),
            "pocket_pos": cat("pocket_pos"), "pocket_types": cat("pocket_types"), "pocket_batch": pb.to(device)}
