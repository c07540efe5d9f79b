"""Population snapshots: unpaired samples of a population at several times (cells, particles, animals).

Snapshot k is an (N_k, d) sample at time t_k; no individual is followed from one snapshot to the next, and
the sizes N_k may differ (ragged snapshots).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ...core.errors import InputError
from ...core.trajectory import Trajectory
from ..base import DomainAdapter

__all__ = ["MIN_SAMPLES", "SNAPSHOT_INDEX", "SNAPSHOT_POINTS", "SNAPSHOT_TIMES", "SnapshotAdapter", "Snapshots",
           "Standardizer"]

#: (M, d) float, data units. All snapshot samples stacked (M = sum of N_k).
SNAPSHOT_POINTS = "snapshot_points"
#: (M,) int64. Index k of the snapshot that each stacked row belongs to.
SNAPSHOT_INDEX = "snapshot_index"
#: (K,) float, data time unit. Observation time of each snapshot, strictly increasing.
SNAPSHOT_TIMES = "snapshot_times"
#: Fewest samples a snapshot may hold (a population's spread cannot be seen in one sample).
MIN_SAMPLES = 2


def _as_float_tensor(name: str, x: Any, dtype: torch.dtype) -> Tensor:
    try:
        t = torch.as_tensor(np.asarray(x, dtype=np.float64), dtype=dtype)
    except (TypeError, ValueError) as e:
        raise InputError(f"{name}: cannot be read as numbers ({e})") from None
    return t


@dataclass(frozen=True)
class Snapshots:
    """K >= 2 snapshots: ``samples[k]`` is (N_k, d), observed at ``times[k]`` (strictly increasing).

    Construct with ``Snapshots.from_arrays(samples, times)``, which validates everything and names the
    offending field: fewer than two snapshots, fewer than two samples or no feature in a snapshot, non-increasing
    times, NaN/inf values, mismatched dimensions.
    """

    times: Tensor
    samples: tuple[Tensor, ...]

    @classmethod
    def from_arrays(cls, samples: Sequence[Any] | np.ndarray | Tensor, times: Sequence[float] | np.ndarray | Tensor,
                    *, dtype: torch.dtype = torch.float64) -> Snapshots:
        """``samples``: a (K, N, d) array or a list of K arrays (N_k, d); ``times``: K observation times."""
        if isinstance(samples, (np.ndarray, Tensor)):
            if samples.ndim != 3:
                raise InputError(f"Xs: expected a (K, N, d) array, got shape {tuple(samples.shape)}")
            samples = [samples[k] for k in range(samples.shape[0])]
        samples = list(samples)
        t = _as_float_tensor("times", times, torch.float64).reshape(-1)
        if len(samples) < 2:
            raise InputError(f"snapshots: need at least 2 snapshots, got {len(samples)}")
        if t.numel() != len(samples):
            raise InputError(f"times: expected {len(samples)} times (one per snapshot), got {t.numel()}")
        if not bool(torch.isfinite(t).all()):
            raise InputError(f"times: must be finite, got {t.tolist()}")
        if not bool((t[1:] > t[:-1]).all()):
            raise InputError(f"times: must be strictly increasing, got {t.tolist()}")
        out, dim = [], None
        for k, s in enumerate(samples):
            x = _as_float_tensor(f"snapshot[{k}]", s, dtype)
            if x.dim() == 1:
                x = x[:, None]
            if x.dim() != 2 or x.shape[0] < MIN_SAMPLES or x.shape[1] < 1:
                # one sample per time leaves no spread to couple or fit a noise level to (the OT step only
                # warned "problem infeasible"); zero features is no data at all
                raise InputError(f"snapshot[{k}]: expected an (N, d) array with N >= {MIN_SAMPLES} samples and "
                                 f"d >= 1 features, got shape {tuple(x.shape)}")
            if dim is None:
                dim = x.shape[1]
            elif x.shape[1] != dim:
                raise InputError(f"snapshot[{k}]: has dimension {x.shape[1]}, but snapshot[0] has {dim}")
            bad = ~torch.isfinite(x)
            if bool(bad.any()):
                row = int(bad.any(1).nonzero()[0])
                raise InputError(f"snapshot[{k}]: holds {int(bad.sum())} NaN/inf value(s), first in row {row}")
            out.append(x)
        return cls(times=t.to(dtype), samples=tuple(out))

    # -- sizes ---------------------------------------------------------------------------------
    @property
    def n_snapshots(self) -> int:
        return len(self.samples)

    @property
    def dim(self) -> int:
        return int(self.samples[0].shape[1])

    @property
    def sizes(self) -> list[int]:
        return [int(s.shape[0]) for s in self.samples]

    @property
    def ragged(self) -> bool:
        return len(set(self.sizes)) > 1

    def __len__(self) -> int:
        return self.n_snapshots

    def __getitem__(self, k: int) -> Tensor:
        return self.samples[k]

    # -- transforms ------------------------------------------------------------------------------
    def subset(self, indices: Sequence[int]) -> Snapshots:
        """The snapshots ``indices`` (e.g. the even-indexed ones of a held-out split)."""
        idx = [int(i) for i in indices]
        for i in idx:
            if not 0 <= i < self.n_snapshots:
                raise InputError(f"indices: {i} is out of range for {self.n_snapshots} snapshots")
        return Snapshots.from_arrays([self.samples[i] for i in idx], self.times[idx], dtype=self.samples[0].dtype)

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> Snapshots:
        return Snapshots(times=self.times.to(device=device, dtype=dtype),
                         samples=tuple(s.to(device=device, dtype=dtype) for s in self.samples))

    def map(self, fn: Any) -> Snapshots:
        """Apply ``fn`` ((N, d) -> (N, d')) to every snapshot."""
        return Snapshots.from_arrays([fn(s) for s in self.samples], self.times, dtype=self.samples[0].dtype)

    def stacked(self) -> tuple[Tensor, Tensor]:
        """(M, d) all rows and (M,) their snapshot index."""
        idx = torch.cat([torch.full((n,), k, dtype=torch.long) for k, n in enumerate(self.sizes)])
        return torch.cat(list(self.samples)), idx

    def dense(self) -> Tensor:
        """(K, N, d) array; only when every snapshot has the same size."""
        if self.ragged:
            raise InputError(f"snapshots: sizes differ ({self.sizes}); a dense (K, N, d) array needs equal sizes")
        return torch.stack(list(self.samples))

    def __repr__(self) -> str:
        return f"Snapshots(K={self.n_snapshots}, d={self.dim}, sizes={self.sizes}, times={self.times.tolist()})"


class Standardizer:
    """Per-dimension affine map z = (x - mean) / scale with statistics pooled over every snapshot.

    A drift f in data units becomes f / scale in standard units and a diffusion g becomes g / scale; times
    are unchanged. ``identity`` keeps data units (used for mechanistic references whose parameters have a
    meaning in the data's units).
    """

    def __init__(self, mean: Tensor, scale: Tensor) -> None:
        self.mean = torch.as_tensor(mean, dtype=torch.float64).reshape(-1)
        self.scale = torch.as_tensor(scale, dtype=torch.float64).reshape(-1)
        if self.mean.shape != self.scale.shape:
            raise InputError(f"scale: shape {tuple(self.scale.shape)} differs from mean {tuple(self.mean.shape)}")
        if not bool((self.scale > 0).all()):
            raise InputError(f"scale: must be > 0 in every dimension, got {self.scale.tolist()}")

    @classmethod
    def fit(cls, snapshots: Snapshots) -> Standardizer:
        x, _ = snapshots.stacked()
        x = x.to(torch.float64)
        scale = x.std(0, unbiased=False)
        scale = torch.where(scale > 0, scale, torch.ones_like(scale))
        return cls(x.mean(0), scale)

    @classmethod
    def identity(cls, dim: int) -> Standardizer:
        return cls(torch.zeros(dim, dtype=torch.float64), torch.ones(dim, dtype=torch.float64))

    @property
    def is_identity(self) -> bool:
        return bool((self.mean == 0).all() and (self.scale == 1).all())

    @property
    def dim(self) -> int:
        return self.mean.numel()

    def _check(self, x: Tensor, name: str) -> None:
        if x.dim() == 0 or x.shape[-1] != self.dim:
            raise InputError(f"{name}: last axis has {x.shape[-1] if x.dim() else 'no'} dimensions (shape "
                             f"{tuple(x.shape)}), the standardizer {self.dim}; fit the standardizer on data of "
                             "the same dimension")

    def transform(self, x: Tensor, name: str = "x") -> Tensor:
        """Data units -> standard units (any leading shape, last axis d)."""
        self._check(x, name)
        return (x - self.mean.to(x)) / self.scale.to(x)

    def inverse(self, z: Tensor, name: str = "z") -> Tensor:
        """Standard units -> data units."""
        self._check(z, name)
        return z * self.scale.to(z) + self.mean.to(z)

    def transform_snapshots(self, snapshots: Snapshots) -> Snapshots:
        return snapshots.map(self.transform)

    def state_dict(self) -> dict[str, Tensor]:
        return {"mean": self.mean.clone(), "scale": self.scale.clone()}

    @classmethod
    def from_state_dict(cls, d: dict[str, Tensor]) -> Standardizer:
        return cls(d["mean"], d["scale"])


class SnapshotAdapter(DomainAdapter):
    """Snapshots <-> tensors. ``encode`` stacks the (ragged) snapshots, standardised when a ``Standardizer``
    is given; ``decode`` maps a trajectory back to data units as a (T, B, d) array; ``prior`` draws rows of
    the first snapshot (every simulation starts from the first observed population)."""

    symmetry = "none"

    def __init__(self, standardizer: Standardizer | None = None) -> None:
        self.standardizer = standardizer

    def encode(self, raw: Snapshots) -> dict[str, Tensor]:
        if not isinstance(raw, Snapshots):
            raise InputError(f"snapshots: expected a Snapshots object, got {type(raw).__name__}")
        snaps = raw.map(lambda x: self.standardizer.transform(x, "snapshots")) if self.standardizer is not None \
            else raw
        x, idx = snaps.stacked()
        return {SNAPSHOT_POINTS: x, SNAPSHOT_INDEX: idx, SNAPSHOT_TIMES: snaps.times}

    def decode(self, traj: Trajectory) -> np.ndarray:
        states = traj.states
        if self.standardizer is not None:
            states = self.standardizer.inverse(states.to(torch.float64), "traj.states")
        return states.detach().cpu().numpy()

    def prior(self, cond: dict[str, Tensor], n: int, *, generator: torch.Generator | None = None) -> Tensor:
        from ...core.random import randint
        first = cond[SNAPSHOT_POINTS][cond[SNAPSHOT_INDEX] == 0]
        return first[randint(first.shape[0], (n,), generator=generator).to(first.device)]
