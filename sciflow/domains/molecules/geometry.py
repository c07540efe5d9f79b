"""Rigid-body geometry of ragged molecular batches: centring, Kabsch alignment and RMSD, vectorised over graphs.

Rows are atoms; ``batch`` (N,) is the sorted graph index of each atom (all zeros for a single molecule).
Every function is E(3)-equivariant in the obvious way and works in float32 or float64 on any device.
"""
from __future__ import annotations

import torch
from torch import Tensor

from ...core.errors import InputError
from ...nn.graph import scatter_sum

__all__ = ["center", "centroid", "kabsch_align", "kabsch_rmsd", "kabsch_rotation", "n_graphs", "rmsd"]


def n_graphs(batch: Tensor) -> int:
    return int(batch.max()) + 1 if batch.numel() else 0


def _ones_batch(x: Tensor, batch: Tensor | None) -> Tensor:
    return batch if batch is not None else torch.zeros(x.shape[0], dtype=torch.long, device=x.device)


def centroid(x: Tensor, batch: Tensor | None = None, weights: Tensor | None = None, *,
             graphs: int | None = None) -> Tensor:
    """(G, 3) mean position of each graph, weighted by ``weights`` (N,) (e.g. masses for the centre of mass).
    ``graphs``: G when the caller knows it (saves reading ``batch.max()`` back from an accelerator)."""
    b = _ones_batch(x, batch)
    g = n_graphs(b) if graphs is None else int(graphs)
    w = torch.ones(x.shape[0], dtype=x.dtype, device=x.device) if weights is None else weights.to(x.dtype)
    tot = scatter_sum(w, b, g).clamp_min(1e-12)
    return scatter_sum(x * w[:, None], b, g) / tot[:, None]


def center(x: Tensor, batch: Tensor | None = None, weights: Tensor | None = None, *,
           graphs: int | None = None) -> Tensor:
    """x with each graph's (weighted) centroid moved to the origin; with masses: centre-of-mass removal."""
    b = _ones_batch(x, batch)
    return x - centroid(x, b, weights, graphs=graphs)[b]


def kabsch_rotation(mobile: Tensor, target: Tensor, batch: Tensor | None = None,
                    weights: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Best proper rotation of each graph of ``mobile`` onto ``target`` (least squares, det = +1).

    Returns (R (G, 3, 3), c_mobile (G, 3), c_target (G, 3)) such that (mobile - c_mobile) @ R^T + c_target is
    the aligned copy.
    """
    if mobile.shape != target.shape or mobile.dim() != 2 or mobile.shape[-1] != 3:
        raise InputError(f"mobile/target: expected equal (N, 3) shapes, got {tuple(mobile.shape)} and "
                         f"{tuple(target.shape)}")
    b = _ones_batch(mobile, batch)
    g = n_graphs(b)
    cm, ct = centroid(mobile, b, weights), centroid(target, b, weights)
    p, q = mobile - cm[b], target - ct[b]
    w = torch.ones(p.shape[0], dtype=p.dtype, device=p.device) if weights is None else weights.to(p.dtype)
    h = scatter_sum((w[:, None, None] * p[:, :, None] * q[:, None, :]).reshape(-1, 9), b, g).reshape(g, 3, 3)
    # SVD in float64: stable for the near-degenerate covariances of small or planar molecules
    u, _, vt = torch.linalg.svd(h.to(torch.float64))
    d = torch.sign(torch.det(vt.transpose(1, 2) @ u.transpose(1, 2)))
    d = torch.where(d == 0, torch.ones_like(d), d)
    diag = torch.ones(g, 3, dtype=torch.float64, device=p.device)
    diag[:, 2] = d
    rot = vt.transpose(1, 2) @ torch.diag_embed(diag) @ u.transpose(1, 2)
    return rot.to(p.dtype), cm, ct


def kabsch_align(mobile: Tensor, target: Tensor, batch: Tensor | None = None,
                 weights: Tensor | None = None) -> Tensor:
    """``mobile`` rotated and translated onto ``target`` (per graph, proper rotations only)."""
    b = _ones_batch(mobile, batch)
    rot, cm, ct = kabsch_rotation(mobile, target, b, weights)
    return torch.einsum("nij,nj->ni", rot[b], mobile - cm[b]) + ct[b]


def rmsd(x: Tensor, y: Tensor, batch: Tensor | None = None) -> Tensor:
    """(G,) root-mean-square deviation per graph without any alignment."""
    b = _ones_batch(x, batch)
    g = n_graphs(b)
    sq = scatter_sum((x - y).pow(2).sum(-1), b, g)
    cnt = scatter_sum(torch.ones_like(sq[b]), b, g)
    return (sq / cnt).sqrt()


def kabsch_rmsd(x: Tensor, y: Tensor, batch: Tensor | None = None) -> Tensor:
    """(G,) RMSD per graph after the optimal proper rotation and translation of x onto y (same atom order)."""
    return rmsd(kabsch_align(x, y, batch), y, batch)
