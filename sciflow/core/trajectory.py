"""``Trajectory``: the one currency that every generator returns and every writer reads."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .errors import InputError
from .fields import ATOMIC_NUMBERS, BATCH

__all__ = ["Trajectory"]

#: extras that are per row by definition (``sciflow.core.fields``): their first axis must be B
_PER_ROW = (BATCH, ATOMIC_NUMBERS)


@dataclass(frozen=True)
class Trajectory:
    """States of a batch of samples along a time grid.

    Attributes:
        times: (T,) time of each frame (the unit is the producer's: flow time in [0, 1], ps, s, ...); finite and
            strictly increasing or decreasing (all equal, e.g. zeros, for frames that carry no time).
        states: (T, B, ...) state of each of the B rows at each frame. For a ragged graph batch the rows
            are nodes (atoms) and ``extras["batch"]`` maps each row to its sample.
        extras: per-row tensors whose first axis is B (e.g. ``"batch"`` (B,), atomic numbers (B,)),
            or global tensors whose first axis is not B.
        step_extras: per-frame tensors whose first axis is T (e.g. ``"energy"`` (T, n_samples)).
        info: plain metadata (solver name, number of field evaluations, units).
    """

    times: Tensor
    states: Tensor
    extras: dict[str, Tensor] = field(default_factory=dict)
    step_extras: dict[str, Tensor] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not torch.is_tensor(self.times) or self.times.dim() != 1:
            raise InputError(f"Trajectory.times: expected a 1-D tensor (T,), got "
                             f"{tuple(self.times.shape) if torch.is_tensor(self.times) else type(self.times).__name__}")
        if not torch.is_tensor(self.states) or self.states.dim() < 2:
            raise InputError("Trajectory.states: expected a tensor (T, B, ...) with at least 2 dimensions")
        if self.states.shape[0] != self.times.shape[0]:
            raise InputError(f"Trajectory.states: first axis {self.states.shape[0]} != len(times) "
                             f"{self.times.shape[0]}")
        for key, value in self.extras.items():
            if not torch.is_tensor(value):
                raise InputError(f"Trajectory.extras[{key!r}]: expected a tensor, got {type(value).__name__}")
            if key in _PER_ROW and (value.dim() != 1 or value.shape[0] != self.n_rows):
                raise InputError(f"Trajectory.extras[{key!r}]: one value per row, expected shape ({self.n_rows},), "
                                 f"got {tuple(value.shape)}")
        for key, value in self.step_extras.items():
            if not torch.is_tensor(value) or value.dim() == 0 or value.shape[0] != self.times.shape[0]:
                raise InputError(f"Trajectory.step_extras[{key!r}]: first axis must be T={self.n_frames}")
        _check_times(self.times)

    # -- sizes -------------------------------------------------------------------------------
    @property
    def n_frames(self) -> int:
        """T, the number of frames."""
        return int(self.times.shape[0])

    @property
    def n_rows(self) -> int:
        """B, the number of rows (samples, or nodes of a graph batch)."""
        return int(self.states.shape[1])

    @property
    def n_samples(self) -> int:
        """Number of samples: graphs for a graph batch, rows otherwise."""
        if BATCH in self.extras:
            b = self.extras[BATCH]
            return int(b.max()) + 1 if b.numel() else 0
        return self.n_rows

    @property
    def first(self) -> Tensor:
        """(B, ...) states at the first frame."""
        return self.states[0]

    @property
    def last(self) -> Tensor:
        """(B, ...) states at the last frame."""
        return self.states[-1]

    @property
    def device(self) -> torch.device:
        return self.states.device

    # -- transforms --------------------------------------------------------------------------
    def _replace(self, **kw: Any) -> Trajectory:
        base = dict(times=self.times, states=self.states, extras=dict(self.extras),
                    step_extras=dict(self.step_extras), info=dict(self.info))
        base.update(kw)
        return Trajectory(**base)

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> Trajectory:
        """Move every tensor to ``device``; floating tensors also to ``dtype`` (a floating dtype) when given."""
        if dtype is not None and not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
            raise InputError(f"dtype: expected a floating torch dtype (torch.float32, torch.float64, ...), got "
                             f"{dtype!r}; integer or bool states would silently truncate")
        def mv(x: Tensor) -> Tensor:
            x = x.to(device) if device is not None else x
            return x.to(dtype) if dtype is not None and x.is_floating_point() else x
        return self._replace(times=mv(self.times), states=mv(self.states),
                             extras={k: mv(v) for k, v in self.extras.items()},
                             step_extras={k: mv(v) for k, v in self.step_extras.items()})

    def cpu(self) -> Trajectory:
        return self.to("cpu")

    def detach(self) -> Trajectory:
        return self._replace(states=self.states.detach(), times=self.times.detach(),
                             extras={k: v.detach() for k, v in self.extras.items()},
                             step_extras={k: v.detach() for k, v in self.step_extras.items()})

    def frames(self, index: int | slice | Sequence[int] | Tensor) -> Trajectory:
        """Keep the frames ``index`` (an int keeps one frame, as a length-1 trajectory)."""
        index = _one_as_slice(index, self.n_frames, "frames", "frame")
        if not isinstance(index, slice) and self.n_frames > 1 and not bool((self.times == self.times[0]).all()):
            kept = torch.arange(self.n_frames)[_cpu_index(index)]
            if kept.unique().numel() != kept.numel():   # two frames at one time: no longer a trajectory in time
                twice = sorted(set(kept[kept.bincount()[kept] > 1].tolist()))[:5]
                raise InputError(f"frames: the index repeats frame(s) {twice} of a trajectory with times; each "
                                 f"frame may be kept once")
        info = dict(self.info)
        notes = info.get("comments")
        if isinstance(notes, (list, tuple)) and len(notes) == self.n_frames:     # one comment per frame
            info["comments"] = [notes[k] for k in torch.arange(self.n_frames)[_cpu_index(index)].tolist()]
        return self._replace(times=self.times[index], states=self.states[index],
                             step_extras={k: v[index] for k, v in self.step_extras.items()}, info=info)

    def rows(self, index: int | slice | Sequence[int] | Tensor) -> Trajectory:
        """Keep the rows ``index`` of a flat (non-graph) batch; per-row extras follow (an int keeps one row, as
        a batch of one)."""
        if BATCH in self.extras:
            raise InputError("Trajectory.rows: not defined for a graph batch; use Trajectory.samples")
        b = self.n_rows
        index = _one_as_slice(index, b, "rows", "row")
        extras = {k: (v[index] if v.dim() and v.shape[0] == b else v) for k, v in self.extras.items()}
        steps = {k: (v[:, index] if v.dim() > 1 and v.shape[1] == b else v) for k, v in self.step_extras.items()}
        return self._replace(states=self.states[:, index], extras=extras, step_extras=steps)

    def samples(self, index: Sequence[int] | Tensor) -> Trajectory:
        """Keep whole samples ``index`` (graphs for a graph batch, rows otherwise), renumbered 0..k-1."""
        idx = torch.as_tensor(index, dtype=torch.long).reshape(-1)
        n = self.n_samples
        if idx.numel() and (int(idx.min()) < -n or int(idx.max()) >= n):
            raise IndexError(f"Trajectory.samples: indices {idx.tolist()[:8]} are out of range for {n} samples")
        idx = idx % max(n, 1)
        if idx.unique().numel() != idx.numel():
            raise InputError(f"Trajectory.samples: repeated sample indices {idx.tolist()[:8]}; each sample can be "
                             f"kept once")
        if BATCH not in self.extras:
            return self.rows(idx)
        batch = self.extras[BATCH]
        idx = idx.to(batch.device)
        keep = torch.isin(batch, idx)
        remap = torch.full((n,), -1, dtype=torch.long, device=batch.device)
        remap[idx] = torch.arange(len(idx), device=batch.device)
        # rows of a graph batch must stay grouped by sample in the order asked
        order = torch.argsort(remap[batch[keep]], stable=True)
        rows = keep.nonzero().squeeze(1)[order]
        extras = {}
        for k, v in self.extras.items():
            if k == BATCH:
                extras[k] = remap[batch[rows]]
            elif v.dim() and v.shape[0] == self.n_rows:
                extras[k] = v[rows]
            else:
                extras[k] = v
        steps = {k: (v[:, idx] if v.dim() > 1 and v.shape[1] == n else v) for k, v in self.step_extras.items()}
        return self._replace(states=self.states[:, rows], extras=extras, step_extras=steps)

    @staticmethod
    def cat(trajs: Sequence[Trajectory]) -> Trajectory:
        """Concatenate batches along the row axis. Times must agree; graph indices are offset."""
        if not trajs:
            raise InputError("Trajectory.cat: needs at least one trajectory")
        t0 = trajs[0]
        for i, tr in enumerate(trajs[1:], 1):
            if tr.times.shape != t0.times.shape or not _same_times(tr.times.to(t0.times), t0.times):
                raise InputError(f"Trajectory.cat: times of trajectory {i} differ from trajectory 0")
            if set(tr.extras) != set(t0.extras) or set(tr.step_extras) != set(t0.step_extras):
                raise InputError(f"Trajectory.cat: extras keys of trajectory {i} differ from trajectory 0")
            if tr.states.shape[2:] != t0.states.shape[2:]:
                raise InputError(f"Trajectory.cat: states of trajectory {i} are {tuple(tr.states.shape)}, trajectory "
                                 f"0's {tuple(t0.states.shape)}; only the row axis (1) may differ")
        extras: dict[str, Tensor] = {}
        for k in t0.extras:
            if k == BATCH:
                parts, offset = [], 0
                for tr in trajs:
                    parts.append(tr.extras[BATCH] + offset)
                    offset += tr.n_samples
                extras[k] = torch.cat(parts)
            elif all(tr.extras[k].dim() and tr.extras[k].shape[0] == tr.n_rows for tr in trajs):
                extras[k] = torch.cat([tr.extras[k] for tr in trajs], dim=0)     # per row
            else:
                extras[k] = _shared(f"extras[{k!r}]", [tr.extras[k] for tr in trajs])
        steps: dict[str, Tensor] = {}
        for k in t0.step_extras:
            vals = [tr.step_extras[k] for tr in trajs]
            if all(v.dim() > 1 and v.shape[1] == tr.n_samples for v, tr in zip(vals, trajs)):
                steps[k] = torch.cat(vals, dim=1)                                  # (T, samples, ...)
            elif all(v.dim() == 1 and tr.n_samples == 1 for v, tr in zip(vals, trajs)):
                steps[k] = torch.stack(vals, dim=1)      # (T,) of a single-sample trajectory: that sample's
            else:
                steps[k] = _shared(f"step_extras[{k!r}]", vals)
        return Trajectory(times=t0.times, states=torch.cat([tr.states for tr in trajs], dim=1),
                          extras=extras, step_extras=steps, info=dict(t0.info))

    # -- persistence (plain tensors, loadable with torch.load(weights_only=True)) ---------------
    def state_dict(self) -> dict[str, Any]:
        return {"times": self.times, "states": self.states, "extras": dict(self.extras),
                "step_extras": dict(self.step_extras), "info": _plain(self.info)}

    @classmethod
    def from_state_dict(cls, d: Mapping[str, Any]) -> Trajectory:
        if not isinstance(d, Mapping) or "times" not in d or "states" not in d:
            got = sorted(map(str, d)) if isinstance(d, Mapping) else type(d).__name__
            raise InputError(f"Trajectory.from_state_dict: expected a mapping with 'times' and 'states' (as "
                             f"Trajectory.state_dict() writes), got {got}")
        return cls(times=d["times"], states=d["states"], extras=dict(d.get("extras", {})),
                   step_extras=dict(d.get("step_extras", {})), info=dict(d.get("info", {})))

    def __repr__(self) -> str:
        ex = ", ".join(f"{k}{tuple(v.shape)}" for k, v in self.extras.items())
        st = ", ".join(f"{k}{tuple(v.shape)}" for k, v in self.step_extras.items())
        return (f"Trajectory(T={self.n_frames}, states={tuple(self.states.shape)}, extras=[{ex}], "
                f"step_extras=[{st}], info={self.info})")


def _one_as_slice(index: Any, n: int, method: str, what: str) -> Any:
    """An integer index (an int, a numpy integer or a 0-d integer tensor) as the slice keeping that one entry,
    range-checked (indexing with it would drop the axis, and a Python int would pass through ``v[index]`` on
    tensors of other layouts unnoticed); anything else unchanged."""
    integer_tensor = isinstance(index, Tensor) and index.dim() == 0 and not index.is_floating_point() \
        and index.dtype != torch.bool
    if integer_tensor or isinstance(index, np.integer):
        index = int(index)
    if not isinstance(index, int) or isinstance(index, bool):
        return index
    if not -n <= index < n:
        raise IndexError(f"Trajectory.{method}: {what} {index} is out of range for {n} {what}s")
    return slice(index, index + 1 if index != -1 else None)


def _cpu_index(index: Any) -> Any:
    """``index`` as an index into a CPU tensor (a tensor index may live on another device)."""
    return index.cpu() if isinstance(index, Tensor) else index


def _check_times(times: Tensor) -> None:
    """Times must be finite and strictly monotone (increasing, or decreasing for a backward solve); all equal
    (e.g. zeros) is accepted for frames that carry no time."""
    d = times[1:] - times[:-1]
    finite = torch.isfinite(times).all()
    if bool(finite & ((d > 0).all() | (d < 0).all() | (d == 0).all())):        # one sync
        return
    if not bool(finite):
        raise InputError(f"Trajectory.times: holds non-finite values, got {times.tolist()[:8]}")
    raise InputError(f"Trajectory.times: must be strictly increasing or strictly decreasing (or all equal for "
                     f"frames without times), got {times.tolist()[:8]}")


def _equal(values: Sequence[Tensor]) -> bool:
    return all(v.shape == values[0].shape and torch.equal(v.to(values[0]), values[0]) for v in values[1:])


def _shared(name: str, values: Sequence[Tensor]) -> Tensor:
    """A global (not per-row or per-sample) extra of trajectories being concatenated: kept once if equal."""
    if not _equal(values):
        raise InputError(f"Trajectory.cat: {name} is neither per row / per sample in every trajectory nor the same "
                         f"in all of them")
    return values[0]


def _same_times(a: Tensor, b: Tensor) -> bool:
    """Equal to a millionth of the smallest step between frames (to 1e-12 for a single frame)."""
    gaps = (b[1:] - b[:-1]).abs()
    tol = 1e-6 * float(gaps.min()) if gaps.numel() else 1e-12 * max(1.0, float(b.abs().max()))
    return bool(((a - b).abs() <= tol).all())


def _plain(obj: Any) -> Any:
    """Reduce metadata to types ``torch.load(weights_only=True)`` accepts."""
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, (str, int, float, bool)) or obj is None or torch.is_tensor(obj):
        return obj
    if isinstance(obj, np.generic) and obj.dtype.kind in "biuf":      # numpy scalars keep their value and type
        return obj.item()
    return str(obj)
