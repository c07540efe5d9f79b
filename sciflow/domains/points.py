"""Flat Euclidean point clouds: samples of R^d with an optional condition vector."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..core.errors import InputError, check_finite
from ..core.fields import COND
from ..core.random import randn
from ..core.trajectory import Trajectory
from .base import DomainAdapter

__all__ = ["POINTS", "PointsAdapter"]

#: (B, d) float. States of a flat point cloud.
POINTS = "points"


class PointsAdapter(DomainAdapter):
    """Points in R^dim; the prior is N(0, prior_std^2 I)."""

    symmetry = "none"

    def __init__(self, dim: int, prior_std: float = 1.0) -> None:
        if int(dim) < 1:
            raise InputError(f"dim: must be >= 1, got {dim}")
        self.dim = int(dim)
        self.prior_std = float(prior_std)

    def encode(self, raw: Any) -> dict[str, Tensor]:
        x = torch.as_tensor(np.asarray(raw), dtype=torch.float32)
        if x.dim() != 2 or x.shape[1] != self.dim:
            raise InputError(f"points: expected shape (n, {self.dim}), got {tuple(x.shape)}")
        return {POINTS: check_finite("points", x)}

    def decode(self, traj: Trajectory) -> np.ndarray:
        """(T, B, dim) numpy array of the states."""
        return traj.states.detach().cpu().numpy()

    def prior(self, cond: dict[str, Tensor], n: int, *, generator: torch.Generator | None = None) -> Tensor:
        device = cond[COND].device if COND in cond else torch.device("cpu")
        return self.prior_std * randn((n, self.dim), generator=generator, device=device)
