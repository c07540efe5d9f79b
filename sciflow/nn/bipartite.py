"""Edges between two node sets of the same ragged batch (e.g. pocket atoms -> ligand atoms), in pure torch."""
from __future__ import annotations

import torch
from torch import Tensor

from ..core.errors import InputError
from .graph import graph_ptr

__all__ = ["bipartite_edges"]


def bipartite_edges(batch_src: Tensor, batch_dst: Tensor, *, src_offset: int = 0, dst_offset: int = 0) -> Tensor:
    """(2, E) every pair (source j of set S, target i of set D) whose nodes belong to the same graph.

    batch_src (Ns,), batch_dst (Nd,): sorted graph index of each node of the two sets. Node numbers in the
    result are shifted by ``src_offset`` / ``dst_offset`` (the position of each set in a concatenated node list).
    Vectorised over graphs: no Python loop.
    """
    if batch_src.numel() == 0 or batch_dst.numel() == 0:
        return torch.zeros(2, 0, dtype=torch.long, device=batch_dst.device)
    n_graphs = int(max(int(batch_src.max()), int(batch_dst.max()))) + 1
    ps, pd = graph_ptr(batch_src), graph_ptr(batch_dst)
    ps = torch.cat([ps, ps[-1:].expand(n_graphs + 1 - ps.numel())])
    pd = torch.cat([pd, pd[-1:].expand(n_graphs + 1 - pd.numel())])
    cs, cd = ps[1:] - ps[:-1], pd[1:] - pd[:-1]
    if bool(((cs == 0) != (cd == 0)).any()):
        g = int(((cs == 0) != (cd == 0)).nonzero()[0])
        raise InputError(f"batch: graph {g} has nodes in only one of the two sets")
    n_pairs = cs * cd
    g = torch.repeat_interleave(torch.arange(n_graphs, device=batch_dst.device), n_pairs)
    start = torch.repeat_interleave(torch.cumsum(n_pairs, 0) - n_pairs, n_pairs)
    k = torch.arange(int(n_pairs.sum()), device=batch_dst.device) - start
    src = ps[g] + k // cd[g] + src_offset
    dst = pd[g] + k % cd[g] + dst_offset
    return torch.stack([src, dst])
