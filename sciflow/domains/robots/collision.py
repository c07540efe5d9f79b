"""Batched collision checks of the car footprint against a world, at every integration step of an edge."""
from __future__ import annotations

import math

import torch
from torch import Tensor

from .car import Car
from .world import World

__all__ = ["CollisionChecker"]


class CollisionChecker:
    """Checks footprints (the car's covering discs, widened by ``CarParams.sweep_margin``) against a world's
    certified clearance.

    ``states_valid`` works on any batch of states; ``first_collision`` scans whole propagated edges
    (B, T, 5) and reports the first colliding step of each, so that a planner keeps only valid edges or their
    valid prefix. ``state_valid_scalar`` is the same test on Python floats (for OMPL callbacks).
    """

    def __init__(self, car: Car, world: World) -> None:
        self.car, self.world = car, world
        self._params = None

    @property
    def radius(self) -> float:
        """The covering discs' radius plus how far the body sweeps outside them between two integration steps, so
        that clear discs at every step mean a clear body all along the edge (not only at the steps); follows the
        car's current parameters."""
        if self.car.p is not self._params:
            self._sync()
        return self._radius

    @property
    def _offsets(self) -> tuple[float, ...]:
        if self.car.p is not self._params:
            self._sync()
        return self._disc_offsets

    def _sync(self) -> None:
        p = self.car.p
        self._radius, self._disc_offsets, self._params = p.disc_radius + p.sweep_margin, p.disc_offsets, p

    def clearance(self, states: Tensor) -> Tensor:
        """(..., 5) -> (...,) certified clearance of the footprint (min over discs of clearance - radius), m."""
        c = self.car.disc_centres(states)
        return (self.world.clearance(c) - self.radius).min(dim=-1).values

    def exact_clearance(self, states: Tensor) -> Tensor:
        """(..., 5) -> (...,) exact footprint clearance (float64, from the world's exact distance, not its
        conservative field): what a plan is verified against (``verify_plan``), m."""
        c = self.car.disc_centres(states.to(torch.float64))
        return (self.world.exact_distance(c).to(torch.float64) - self.radius).min(dim=-1).values

    def states_valid(self, states: Tensor, margin: float = 0.0) -> Tensor:
        """(..., 5) -> (...,) bool, footprint collision-free (with at least ``margin`` m of clearance)."""
        return self.clearance(states) >= margin

    def first_collision(self, edge_states: Tensor, margin: float = 0.0) -> Tensor:
        """(B, T, 5) -> (B,) index of the first state of each edge with less than ``margin`` m of clearance (T when
        every state is free)."""
        bad = self._bad(self.car.disc_centres(edge_states), float(margin)).any(dim=-1)
        t = edge_states.shape[1]
        return torch.where(bad, torch.arange(t, device=edge_states.device), t).min(dim=1).values

    def _bad(self, centres: Tensor, margin: float) -> Tensor:
        """(..., 2) disc centres -> (...,) bool: ``world.clearance - radius < margin`` at each centre, read off a cached
        raster of that comparison. The comparison is made on the distance raster's own float values by the same
        operations ``clearance`` applies to the values it reads, so each entry is the one a read would give (and
        a state is valid exactly when none of its discs is bad, as with the min over discs)."""
        w = self.world
        dist_key = (centres.device, centres.dtype, "distance")
        key = (centres.device, centres.dtype, "bad", margin, self.radius, w.margin)
        if key not in w._rasters:
            dist = w._raster(dist_key, lambda: w.field.to(centres.device, centres.dtype), 0.0)
            w._rasters[key] = ~(((dist - w.margin) - self.radius) >= margin)
        return w._read(w._rasters[key], centres)

    def edges_valid(self, edge_states: Tensor) -> Tensor:
        """(B, T, 5) -> (B,) bool, every state of the edge collision-free."""
        return self.states_valid(edge_states).all(dim=1)

    def state_valid_scalar(self, x: float, y: float, heading: float) -> bool:
        c, s = math.cos(heading), math.sin(heading)
        if self.car.p is not self._params:
            self._sync()
        radius, clearance = self._radius, self.world.clearance_scalar
        for off in self._disc_offsets:
            if clearance(x + off * c, y + off * s) < radius:
                return False
        return True
