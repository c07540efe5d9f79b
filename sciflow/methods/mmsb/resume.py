"""Round-level checkpoints of an MMSB fit: ``MMSB.fit(snapshots, checkpoint=path)``.

A fit is a fixed sequence of stages: the shooting init, the bridge/refinement rounds (in SQUAREM cycles of three
for parametric references), with an automatic noise its selection and the refit rounds, and the energy
calibration. After each round and each stage, ``FitCheckpoint.save`` writes (atomically, ``atomic_save``) what
the fit needs to go on: the weights (reference drift and bridge drift), the noise model, the history, the state
of the fit's generator, the round counter and stage, the start points of an unfinished SQUAREM cycle, the time
spent so far, and the fingerprint of the fit: its settings (all but the device and predict_dt), seed, the generator's state
when the fit began, a digest of the snapshots and the names and shapes of the model's weights.

Inside the two long stages, the shooting init (stage ``init``) and the calibration (stage ``calibrate``), a
``StageLog`` records what each finished expensive step returned: each start's L-BFGS run of the init (its loss and
end point), each objective evaluation of the calibration (its value and gradient), each with the parameters it
started from; the checkpoint is written after every such step, with the weights and generator state of the stage's
start. A resumed stage runs again from that start, draws the same random numbers, and takes the finished steps'
results from the log instead of computing them (the optimisers' own arithmetic, microseconds, is redone), so it
reaches the point where it stopped in the same state, bit for bit, and goes on from there.

A fit started again with the same fingerprint continues after the last saved round (a finished fit's checkpoint
gives the finished model at once) and ends with the same weights, noise and history, bit for bit, as an
uninterrupted fit: every random draw comes from the saved generator or from seeds derived from ``seed`` and the
round counter, the float64 weights are restored exactly, and nothing else carries over from one round to the next
(each round's L-BFGS or AdamW optimiser starts afresh). Torch's kernels are only repeatable on the same kind of
device with the same number of threads, which holds for two uninterrupted fits as well. Only the timings differ.

A checkpoint of another fit (other settings, data, seed or generator) is refused with an ``InputError`` naming
what differs, and so is an unreadable one (a truncated file cannot come from ``atomic_save``, which renames a
complete file into place); the remedy is to remove it, or to re-run a workflow or ``sciflow mmsb fit`` with ``--fresh``.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ...core.errors import InputError
from ...core.files import changed_keys, check_writable, plain_json
from ...core.training import atomic_save, load_checkpoint, package_versions
from ...domains.cells.dynamics import make_noise
from ...domains.cells.snapshots import Snapshots

__all__ = ["FORMAT", "STAGES", "FitCheckpoint", "StageLog", "cpu_state", "data_digest", "fit_fingerprint"]

#: the ``format`` entry of a fit checkpoint
FORMAT = "sciflow.mmsb-fit/1"
#: ``init``: inside the shooting init; ``rounds``: the first rounds; ``refit``: noise selected, refit rounds;
#: ``calibrate``: inside the calibration; ``done``: calibrated
STAGES = ("init", "rounds", "refit", "calibrate", "done")
#: settings that do not change what a fit computes (a fit may resume on another machine, or with another step
#: for the simulations that follow it)
_PLACE_KEYS = ("device", "predict_dt")


def cpu_state(module: nn.Module) -> dict[str, Tensor]:
    """A detached CPU copy of ``module``'s state dict (what a checkpoint stores)."""
    return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}


def _digest(*tensors: Tensor) -> str:
    h = hashlib.sha256()
    for t in tensors:
        t = t.detach().cpu().contiguous()
        h.update(f"{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def data_digest(snapshots: Snapshots) -> str:
    """SHA-256 of the snapshots' times and values (float64) and of which snapshot each row belongs to."""
    x, idx = snapshots.stacked()
    return _digest(snapshots.times.double(), x.double(), idx)


def fit_fingerprint(config: dict[str, Any], snapshots: Snapshots, seed: int, generator: torch.Generator,
                    weights: nn.Module) -> dict[str, Any]:
    """What makes one fit differ from another; call it before the fit draws from ``generator``. ``weights``: the
    model's modules (their parameter names and shapes; a custom reference's values come from the checkpoint)."""
    return {"config": plain_json({k: v for k, v in config.items() if k not in _PLACE_KEYS}),
            "seed": int(seed), "generator": _digest(generator.get_state()), "data": data_digest(snapshots),
            "weights": {k: list(v.shape) for k, v in weights.state_dict().items()}}


class FitCheckpoint:
    """The checkpoint file of one fit, identified by its ``fingerprint`` (``fit_fingerprint``)."""

    def __init__(self, path: str | os.PathLike, fingerprint: dict[str, Any]) -> None:
        self.path = check_writable(path, "checkpoint")        # before the fit's first round, not after it
        self.fingerprint = fingerprint
        self.versions = package_versions()

    def load(self) -> dict[str, Any] | None:
        """The saved state, or None when there is no file yet; ``InputError`` for a file that is unreadable, not a
        fit checkpoint, or one of another fit."""
        if not self.path.exists():
            return None
        remedy = "remove it (or run the workflow or `sciflow mmsb fit` again with --fresh) to fit from the start"
        try:
            ck = load_checkpoint(self.path)
        except InputError as e:
            raise InputError(f"{e}; {remedy}") from None
        missing = [k for k in ("fingerprint", "stage", "done", "model", "generator", "history") if k not in ck]
        if ck.get("format") != FORMAT or missing or ck.get("stage") not in STAGES:
            raise InputError(f"checkpoint: {self.path} is not an MMSB fit checkpoint (format {ck.get('format')!r}"
                             f"{', lacks ' + ', '.join(missing) if missing else ''}); {remedy}")
        saved = dict(ck["fingerprint"])
        if isinstance(saved.get("config"), dict):      # settings that do not change a fit are not compared
            saved["config"] = {k: v for k, v in saved["config"].items() if k not in _PLACE_KEYS}
        changed = changed_keys(saved, self.fingerprint)
        if changed:
            raise InputError(f"checkpoint: {self.path} was saved by another fit (changed: {', '.join(changed[:8])}); "
                             f"fit with the same settings, snapshots, seed and generator to resume, or {remedy}")
        return ck

    def save(self, model: Any, *, stage: str, done: int, generator: torch.Generator, cycle: dict[str, Tensor],
             seconds: float, cpu_seconds: float, log: StageLog | None = None) -> Path:
        """Write ``model``'s state after ``done`` rounds of ``stage`` atomically (``cycle``: the start points
        ``t0``, ``t1`` of an unfinished SQUAREM cycle); inside a stage, the weights and generator state of its
        start and the steps finished so far come from ``log``."""
        return atomic_save({
            "format": FORMAT, "fingerprint": self.fingerprint, "stage": stage, "done": int(done),
            "model": log.weights if log is not None else cpu_state(model.model),
            "noise": model.noise.name, "sigma": float(model.noise.sigma), "history": model.history,
            "generator": log.generator if log is not None else generator.get_state(),
            "partial": log.entries if log is not None else [], "cycle": {k: v.cpu() for k, v in cycle.items()},
            "seconds": float(seconds), "cpu_seconds": float(cpu_seconds), "versions": self.versions,
        }, self.path)

    @staticmethod
    def restore(model: Any, ck: dict[str, Any], generator: torch.Generator) -> tuple[str, int, dict[str, Tensor],
                                                                                     float, float]:
        """Put a loaded state back into ``model`` and ``generator``; returns (stage, done, cycle, seconds,
        cpu seconds) of the interrupted fit (``ck["partial"]``: the steps an interrupted stage finished)."""
        device = model.device
        model.model.load_state_dict({k: v.to(device) for k, v in ck["model"].items()})
        model.noise = make_noise(ck["noise"], float(ck["sigma"]))
        model.history = [dict(h) for h in ck["history"]]
        generator.set_state(ck["generator"])
        cycle = {k: v.to(device) for k, v in dict(ck.get("cycle") or {}).items()}
        return ck["stage"], int(ck["done"]), cycle, float(ck.get("seconds", 0.0)), float(ck.get("cpu_seconds", 0.0))


class StageLog:
    """The finished expensive steps of one stage (``init``, ``calibrate``), in order, for a resumed stage to replay.

    Made at the stage's start from ``weights`` (the fit's modules) and ``generator``, whose states the checkpoint
    keeps while the stage runs; ``entries``: the steps a checkpoint holds. A step calls ``replay(key)`` with the
    inputs it starts from (a list of tensors): the saved result of the next finished step, or None once all are
    replayed (or when ``key`` differs from the saved one, which drops the rest: then it is computed again).
    ``add(key, **result)`` records a computed step and calls ``save`` after every ``every``-th one."""

    def __init__(self, weights: nn.Module, generator: torch.Generator, entries: list[dict[str, Any]] | None = None,
                 save: Any = None, every: int = 1) -> None:
        self.weights, self.generator = cpu_state(weights), generator.get_state()
        self.entries = list(entries or [])
        self.save, self.every = save, max(1, int(every))
        self.replayed = self.added = 0

    def replay(self, key: list[Tensor]) -> dict[str, Any] | None:
        if self.replayed >= len(self.entries):
            return None
        entry = self.entries[self.replayed]
        saved = entry["key"]
        if len(saved) != len(key) or not all(torch.equal(a.to(b.device), b) for a, b in zip(saved, key)):
            del self.entries[self.replayed:]
            return None
        self.replayed += 1
        return entry

    def add(self, key: list[Tensor], **result: Any) -> None:
        self.entries.append({"key": [k.detach().cpu().clone() for k in key], **result})
        self.replayed = len(self.entries)
        self.added += 1
        if self.save is not None and self.added % self.every == 0:
            self.save()
