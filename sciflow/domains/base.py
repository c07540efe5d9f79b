"""Domain adapters: the only home of domain knowledge (encode/decode, prior, projector, cost)."""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import torch
from torch import Tensor

from ..core.couplings import squared_euclidean
from ..core.trajectory import Trajectory

__all__ = ["DomainAdapter"]


class DomainAdapter(ABC):
    """Turns raw objects of a domain into tensors and sampled trajectories back into raw objects.

    Subclasses override ``encode`` and ``decode``; ``prior``, ``project`` and ``cost`` have neutral defaults.
    """

    #: The symmetry group of the domain's states (e.g. "E(3) x S_n" for molecules, "none" for flat vectors).
    symmetry: str = "none"

    @abstractmethod
    def encode(self, raw: Any) -> dict[str, Tensor]:
        """Raw object(s) -> named tensors (see ``sciflow.core.fields``)."""

    @abstractmethod
    def decode(self, traj: Trajectory) -> Any:
        """Trajectory -> raw objects of the domain."""

    def prior(self, cond: dict[str, Tensor], n: int, *, generator: torch.Generator | None = None) -> Tensor:
        """Draw n source states x0 given the encoded condition."""
        raise NotImplementedError(f"{type(self).__name__} has no prior")

    def project(self, x: Tensor, cond: dict[str, Tensor]) -> Tensor:
        """Map states onto the domain's constraint set (identity by default)."""
        return x

    def cost(self, x0: Tensor, x1: Tensor) -> Tensor:
        """(B0, B1) transport cost between states (squared Euclidean by default)."""
        return squared_euclidean(x0, x1)
