"""The robot's local observation: an egocentric occupancy crop plus the target in the robot frame.

The crop is ``size`` x ``size`` cells of ``cell`` metres centred on the rear-axle point and rotated with the
heading: column j runs along the heading (forward = larger j), row i to the robot's left (left = larger i).
A cell is marked occupied when the map's distance raster, read at the cell centre, is below half the cell
diagonal. The raster may read up to its own ``margin`` (half a raster-cell diagonal, 3.5 cm by default) above the
true distance, so an obstacle that only clips a cell's corner by less than that can be left out of the crop;
a wall crossing the crop still marks the cells it passes near the centre of. The crop is the policy's input only:
collision checks use the conservative clearance, never the crop. (The shipped policy was trained on crops made by
this rule: changing it means new demonstrations and retraining.)
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from .car import CarParams
from .world import World

__all__ = ["PROPRIO_DIM", "TARGET_FEATURES", "LocalObservation"]

#: [cos(bearing), sin(bearing), min(distance, max_range) / max_range] of the target in the robot frame.
TARGET_FEATURES = 3
#: speed / max_speed, steer / max_steer, then the target features.
PROPRIO_DIM = 2 + TARGET_FEATURES


class LocalObservation:
    """Computes crops and robot-frame features for batches of states.

    Args:
        size: cells per side (the paper uses 20). cell: cell size, m (the paper uses 0.2).
        max_range: distance at which target distances saturate, m.
    """

    def __init__(self, size: int = 20, cell: float = 0.2, max_range: float = 5.0) -> None:
        self.size, self.cell, self.max_range = int(size), float(cell), float(max_range)
        c = (torch.arange(self.size, dtype=torch.float64) + 0.5 - self.size / 2) * self.cell
        left, fwd = torch.meshgrid(c, c, indexing="ij")                     # (size, size)
        self._fwd = fwd.to(torch.float32)
        self._left = left.to(torch.float32)
        self.threshold = self.cell * math.sqrt(0.5)
        self._offsets: dict = {}

    def crop(self, world: World, states: Tensor) -> Tensor:
        """(B, >=3) states -> (B, size, size) float occupancy in {0, 1}."""
        key = (states.device, states.dtype)
        if key not in self._offsets:                   # (size, size) cell centres, forward and left of the robot
            self._offsets[key] = (self._fwd.to(*key), self._left.to(*key))
        fwd, left = self._offsets[key]
        x, y, th = states[:, 0:1, None], states[:, 1:2, None], states[:, 2:3, None]
        c, s = torch.cos(th), torch.sin(th)
        # the same arithmetic, in the same order, as the crops the policy was trained on: a reordered sum (e.g.
        # one batched matrix product) rounds differently and moves ~1 cell in 10 million across a cell boundary
        pts = torch.stack([x + fwd * c - left * s, y + fwd * s + left * c], dim=-1)
        return world.occupancy(pts, self.threshold)

    def target_features(self, states: Tensor, targets: Tensor) -> Tensor:
        """(B, >=3) states, (B, 2) target positions -> (B, 3) bearing cos/sin and saturated distance."""
        d = targets - states[:, :2]                 # the same differences, in one call
        dx, dy = d[:, 0], d[:, 1]
        c, s = torch.cos(states[:, 2]), torch.sin(states[:, 2])
        # dy c - dx s is -dx s + dy c exactly (negation is exact and IEEE addition commutes), one call fewer
        fx, fy = dx * c + dy * s, dy * c - dx * s
        dist = torch.hypot(fx, fy)
        safe = dist.clamp(min=1e-6)
        return torch.stack([fx / safe, fy / safe, dist.clamp(max=self.max_range) / self.max_range], dim=-1)

    def proprio(self, params: CarParams, states: Tensor, targets: Tensor) -> Tensor:
        """(B, 5) states, (B, 2) targets -> (B, PROPRIO_DIM)."""
        if states.dtype not in (torch.float32, torch.float64):     # half precision: scalar divisions, as before
            own = torch.stack([states[:, 3] / params.max_speed, states[:, 4] / params.max_steer], dim=-1)
            return torch.cat([own, self.target_features(states, targets)], dim=-1)
        key = (states.device, states.dtype, params.max_speed, params.max_steer)
        if key not in self._offsets:                   # one division by [max_speed, max_steer]: the same quotients
            self._offsets[key] = torch.tensor([params.max_speed, params.max_steer], device=states.device,
                                              dtype=states.dtype)
        own = states[:, 3:5] / self._offsets[key]
        return torch.cat([own, self.target_features(states, targets)], dim=-1)

    def config(self) -> dict:
        return {"size": self.size, "cell": self.cell, "max_range": self.max_range}
