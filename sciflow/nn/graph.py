"""Edges of ragged graph batches (nodes grouped by a sorted ``batch`` index), in pure torch."""
from __future__ import annotations

import torch
from torch import Tensor

from ..core.errors import InputError

__all__ = ["fully_connected_edges", "graph_ptr", "radius_edges", "scatter_mean", "scatter_sum"]


def graph_ptr(batch: Tensor) -> Tensor:
    """(G + 1,) offsets of each graph's nodes; ``batch`` must be sorted (PyG convention)."""
    if batch.numel() and not bool((batch[1:] >= batch[:-1]).all()):
        raise InputError("batch: graph indices must be sorted ascending")
    counts = torch.bincount(batch, minlength=int(batch.max()) + 1 if batch.numel() else 0)
    return torch.cat([counts.new_zeros(1), counts.cumsum(0)])


def fully_connected_edges(batch: Tensor, *, self_loops: bool = False) -> Tensor:
    """(2, E) all ordered pairs (source j, target i) of nodes in the same graph, vectorised over graphs."""
    ptr = graph_ptr(batch)
    counts = ptr[1:] - ptr[:-1]
    n_pairs = counts * counts
    g = torch.repeat_interleave(torch.arange(counts.numel(), device=batch.device), n_pairs)
    start = torch.repeat_interleave(torch.cumsum(n_pairs, 0) - n_pairs, n_pairs)
    k = torch.arange(int(n_pairs.sum()), device=batch.device) - start
    n_g = counts[g]
    src = ptr[g] + k // n_g
    dst = ptr[g] + k % n_g
    if not self_loops:
        keep = src != dst
        src, dst = src[keep], dst[keep]
    return torch.stack([src, dst])


def radius_edges(pos: Tensor, batch: Tensor, cutoff: float, *, self_loops: bool = False) -> Tensor:
    """(2, E) pairs of nodes of the same graph closer than ``cutoff`` (quadratic in graph size)."""
    ei = fully_connected_edges(batch, self_loops=self_loops)
    d = (pos[ei[0]] - pos[ei[1]]).norm(dim=-1)
    return ei[:, d < cutoff]


def scatter_sum(src: Tensor, index: Tensor, n: int) -> Tensor:
    """out[k] = sum of src rows whose index is k; out has n rows."""
    out = src.new_zeros((n,) + tuple(src.shape[1:]))
    return out.index_add_(0, index, src)


def scatter_mean(src: Tensor, index: Tensor, n: int) -> Tensor:
    s = scatter_sum(src, index, n)
    # the counts as bincount would give them, without its read-back of index.min() / index.max() on a GPU
    c = scatter_sum(torch.ones_like(index), index, n).clamp_min(1).to(src.dtype)
    return s / c.reshape((-1,) + (1,) * (src.dim() - 1))
