"""Exact nearest tree node in the plane for a batch of targets, in about O(B log N) instead of O(B N).

A growing tree only appends nodes, so a k-d tree (scipy) built over the nodes at some moment stays valid for
them; the nodes added since are compared by brute force, and the nearer answer of the two wins. The k-d tree
is rebuilt when that unindexed tail outgrows a fraction of the tree, which keeps both parts cheap: on a tree
of 7,000 nodes a batch of 128 targets costs ~0.3 ms instead of ~2 ms of full ``cdist`` on one CPU thread.
Small trees and trees on a GPU use brute force (there it is one small kernel).
"""
from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["NearestNodes"]


class NearestNodes:
    """``index(targets (B, 2), points (N, 2)) -> (B,)`` nearest point per target; ``points`` must only grow
    (rows already seen never change), as a tree's node table does. One object per search.

    Args:
        min_tail: brute force below this many points, and the tail may always hold this many.
        tail_fraction: rebuild the k-d tree when the tail exceeds this fraction of the indexed points.
    """

    def __init__(self, min_tail: int = 512, tail_fraction: float = 0.125) -> None:
        self.min_tail, self.tail_fraction = int(min_tail), float(tail_fraction)
        self._kd = None
        self._built = 0

    def index(self, targets: Tensor, points: Tensor) -> Tensor:
        n = int(points.shape[0])
        if points.device.type != "cpu" or n <= self.min_tail:
            # min(dim).indices is argmin (the first minimum) but several times faster on the CPU
            return torch.cdist(targets, points).min(dim=1).indices
        if self._kd is None or n - self._built > max(self.min_tail, self.tail_fraction * self._built):
            from scipy.spatial import cKDTree
            self._kd = cKDTree(points.detach().to(torch.float64).numpy())
            self._built = n
        q = targets.detach().to(torch.float64)
        dist, idx = self._kd.query(q.numpy())
        best = torch.from_numpy(idx).to(torch.long)
        if self._built < n:
            tail_d, tail_i = torch.cdist(q, points[self._built:].to(torch.float64)).min(dim=1)
            nearer = tail_d < torch.from_numpy(dist)          # strict: an indexed (earlier) node wins a tie
            best = torch.where(nearer, tail_i + self._built, best)
        return best
