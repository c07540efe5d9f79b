"""The Generator protocol that every sciflow method implements (flows, bridges, CVAEs, planners)."""
from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch

from .trajectory import Trajectory

__all__ = ["Generator"]


@runtime_checkable
class Generator(Protocol):
    """Anything that turns a condition into n sampled trajectories."""

    def generate(self, condition: Any, n: int, *, generator: torch.Generator | None = None) -> Trajectory:
        """Draw ``n`` samples for ``condition``; all randomness comes from ``generator``."""
        ...
