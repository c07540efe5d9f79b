"""Metrics of dissociation paths: success, clashes, exit directions and their Wasserstein distance on the sphere.

Every path is given as ligand frames (T, n_lig, 3) Å in the frame of its pocket, with the pocket heavy atoms
(Np, 3) and the pocket centroid. The ligand centre is its mass-weighted centre of all atoms (as in the RAMD
generator's exit test).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from ...core.errors import InputError
from ...domains.molecules.complexes import CLASH_DISTANCE, min_pair_distance

__all__ = ["centre_distances", "equal_size_w1", "exit_direction", "path_clashes", "path_length", "sphere_w1",
           "split_half_w1"]


def centre_distances(frames: Tensor, masses: Tensor, centroid: Tensor) -> Tensor:
    """(T,) distance of the ligand's centre of mass from the pocket centroid in each frame."""
    com = (frames * masses.reshape(1, -1, 1)).sum(1) / masses.sum()
    return (com - centroid).norm(dim=-1)


def exit_direction(frames: Tensor, masses: Tensor, centroid: Tensor) -> Tensor:
    """(3,) unit vector from the pocket centroid to the ligand's centre of mass in the last frame."""
    com = (frames[-1] * masses.reshape(-1, 1)).sum(0) / masses.sum()
    d = com - centroid
    return d / d.norm().clamp_min(1e-9)


def path_length(frames: Tensor, masses: Tensor) -> float:
    """Å travelled by the ligand's centre of mass along the frames."""
    com = (frames * masses.reshape(1, -1, 1)).sum(1) / masses.sum()
    return float((com[1:] - com[:-1]).norm(dim=-1).sum())


def path_clashes(ligand_heavy: Tensor, pocket_heavy: Tensor, threshold: float = CLASH_DISTANCE) -> int:
    """Number of frames of (T, Nl, 3) whose closest ligand-pocket heavy-atom pair is under ``threshold`` Å."""
    return int((min_pair_distance(ligand_heavy, pocket_heavy) < threshold).sum())


def sphere_w1(a: Tensor | np.ndarray, b: Tensor | np.ndarray) -> float:
    """Exact 1-Wasserstein distance (radians, great-circle cost) between two sets of unit vectors (n, 3), (m, 3)
    with uniform weights."""
    import ot

    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != 3 or y.shape[1] != 3 or not len(x) or not len(y):
        raise InputError(f"directions: expected non-empty (n, 3) and (m, 3) arrays, got {x.shape} and {y.shape}")
    for name, v in (("first", x), ("second", y)):
        norm = np.linalg.norm(v, axis=1)
        if not np.isfinite(norm).all() or (norm < 1e-9).any():
            bad = np.flatnonzero(~np.isfinite(norm) | (norm < 1e-9))
            raise InputError(f"directions: the {name} set has zero-length or non-finite vectors (rows "
                             f"{bad[:5].tolist()}), which have no direction")
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    y = y / np.linalg.norm(y, axis=1, keepdims=True)
    cost = np.arccos(np.clip(x @ y.T, -1.0, 1.0))
    return float(ot.emd2(np.full(len(x), 1 / len(x)), np.full(len(y), 1 / len(y)), cost))


def split_half_w1(directions: Sequence[np.ndarray] | np.ndarray, *, repeats: int = 20,
                  generator: torch.Generator | None = None) -> float:
    """Mean W1 between two random halves of one set of directions (the MD set's own sampling noise at half its
    size). Not a floor for a W1 against the whole set: empirical W1 shrinks as the samples grow, so compare with
    ``equal_size_w1``, which measures score and floor on samples of one size."""
    d = np.asarray(directions, dtype=np.float64)
    if len(d) < 4:
        return float("nan")
    vals = []
    for _ in range(repeats):
        perm = torch.randperm(len(d), generator=generator).numpy()
        h = len(d) // 2
        vals.append(sphere_w1(d[perm[:h]], d[perm[h:2 * h]]))
    return float(np.mean(vals))


def equal_size_w1(generated: Sequence[np.ndarray] | np.ndarray, md: Sequence[np.ndarray] | np.ndarray, *,
                  repeats: int = 20, generator: torch.Generator | None = None) -> dict[str, float]:
    """Exit-direction W1 of generated against MD directions next to the MD set's own noise, at one sample size.

    Each of ``repeats`` rounds splits the MD directions at random into halves A and B (k = n_md // 2 each, or
    fewer when there are fewer generated directions) and draws a random subsample G of k generated directions;
    ``floor`` is the mean of W1(A, B), ``score`` the mean of W1(G, B) and ``ratio`` = score / floor. A generator
    drawing from the MD distribution has ratio about 1 whatever the sizes (W1 of finite samples shrinks with their
    size, so a score against all MD directions is not comparable to a floor between halves). ``size`` is k. With
    fewer than 4 MD directions (or none generated) every value is NaN."""
    g = np.asarray(generated, dtype=np.float64).reshape(-1, 3)
    d = np.asarray(md, dtype=np.float64).reshape(-1, 3)
    h = len(d) // 2
    k = min(h, len(g))
    nan = float("nan")
    if h < 2 or k < 1:
        return {"score": nan, "floor": nan, "ratio": nan, "size": k}
    score, floor = [], []
    for _ in range(int(repeats)):
        perm = torch.randperm(len(d), generator=generator).numpy()
        pick = torch.randperm(len(g), generator=generator).numpy()[:k]
        a, b = d[perm[:k]], d[perm[h:h + k]]
        floor.append(sphere_w1(a, b))
        score.append(sphere_w1(g[pick], b))
    s, f = float(np.mean(score)), float(np.mean(floor))
    return {"score": s, "floor": f, "ratio": s / f if f > 0 else nan, "size": k}
