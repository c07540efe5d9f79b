"""One thin trainer for every method: AdamW, warm-up + cosine LR, clipping, EMA, autocast, checkpoints, DDP.

The caller supplies ``loss_fn(model, batch, generator) -> loss`` (or ``(loss, logs)``) and
``sample_batch(generator) -> batch``. All randomness flows through the trainer's generator, whose state is
checkpointed, so an interrupted run resumes to exactly the weights of an uninterrupted one.
"""
from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..errors import InputError, SciflowError, check_count, check_in_range
from ..files import changed_keys, check_writable, plain_json
from ..interrupts import Deferred
from ..random import make_generator
from .checkpoint import atomic_save, load_checkpoint, package_versions, plain
from .device import check_device
from .distributed import all_finite, barrier, gather_objects, init_distributed
from .ema import EMA
from .progress import progress

__all__ = ["TrainConfig", "TrainResult", "Trainer", "move_to"]

LossFn = Callable[[nn.Module, Any, torch.Generator], "Tensor | tuple[Tensor, Mapping[str, float]]"]
BatchFn = Callable[[torch.Generator], Any]


@dataclass
class TrainConfig:
    """Optimisation settings (typed; YAML lives only in workflows)."""

    steps: int = 1000
    lr: float = 1e-3
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 0
    lr_schedule: str = "constant"          # "constant" | "cosine"
    min_lr_ratio: float = 0.0
    grad_clip: float | None = 1.0
    ema_decay: float | None = 0.999
    amp: str | None = None                 # None | "bf16" | "fp16" (used on CUDA only)
    compile: bool = False
    seed: int = 0
    checkpoint_every: int = 0              # 0: only at the end (and on interruption)
    progress: bool = True
    desc: str = "train"

    def __post_init__(self) -> None:
        self.steps = check_count("steps", self.steps, 0)
        self.warmup_steps = check_count("warmup_steps", self.warmup_steps, 0)
        self.checkpoint_every = check_count("checkpoint_every", self.checkpoint_every, 0)
        check_in_range("lr", self.lr, 0.0, low_open=True)
        check_in_range("weight_decay", self.weight_decay, 0.0)
        check_in_range("min_lr_ratio", self.min_lr_ratio, 0.0, 1.0)
        if len(tuple(self.betas)) != 2:
            raise InputError(f"betas: expected two numbers, got {self.betas!r}")
        for i, b in enumerate(self.betas):
            check_in_range(f"betas[{i}]", b, 0.0, 1.0, high_open=True)
        if self.lr_schedule not in ("constant", "cosine"):
            raise InputError(f"lr_schedule: expected 'constant' or 'cosine', got {self.lr_schedule!r}")
        if self.amp not in (None, "bf16", "fp16"):
            raise InputError(f"amp: expected null, 'bf16' or 'fp16', got {self.amp!r}")
        if self.grad_clip is not None:
            check_in_range("grad_clip", self.grad_clip, 0.0, low_open=True)
        if self.ema_decay is not None:
            check_in_range("ema_decay", self.ema_decay, 0.0, 1.0)
        self.betas = tuple(self.betas)


@dataclass
class TrainResult:
    steps: int
    seconds: float
    history: list[float] = field(default_factory=list)   # mean loss of each logging window
    final_loss: float = float("nan")
    # mean of each value loss_fn logged (``(loss, logs)``) over the same windows ({} where it logged nothing)
    logs: list[dict[str, float]] = field(default_factory=list)


def move_to(batch: Any, device: torch.device) -> Any:
    """Move tensors inside dicts, lists, tuples (named ones too) and objects with ``.to`` to ``device``."""
    if torch.is_tensor(batch):
        return batch if batch.device == device else batch.to(device)
    if hasattr(batch, "to") and not isinstance(batch, (str, bytes, nn.Module)):
        return batch.to(device)
    if isinstance(batch, Mapping):
        return {k: move_to(v, device) for k, v in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):     # a NamedTuple takes its fields as arguments
        return type(batch)(*(move_to(v, device) for v in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(move_to(v, device) for v in batch)
    return batch


class Trainer:
    """Train ``model`` by minimising ``loss_fn`` on batches from ``sample_batch``.

    Args:
        model: the network; its weights are updated in place (EMA weights are kept apart, see ``ema``).
        loss_fn: (model, batch, generator) -> scalar loss, or (loss, {name: float}) for extra logs.
        config: optimisation settings.
        device: where to train (default: CUDA if available, else CPU).
        checkpoint_path: file to save to and resume from (resumes automatically when it exists).
        run_config: the caller's resolved configuration, stored in every checkpoint.
    """

    def __init__(self, model: nn.Module, loss_fn: LossFn, config: TrainConfig, *,
                 device: torch.device | str | None = None, checkpoint_path: str | os.PathLike | None = None,
                 run_config: Mapping[str, Any] | None = None) -> None:
        # checked before the model moves and before step 0 (not found at the final save, after all the training)
        self.device = check_device(device) if device is not None else torch.device(
            "cuda" if torch.cuda.is_available() else "cpu")
        if checkpoint_path is not None:
            check_writable(checkpoint_path, "checkpoint_path")
        self.dist = init_distributed(self.device)
        if self.dist.enabled and self.device.type == "cuda":
            self.device = torch.device("cuda", self.dist.local_rank)
        self.config = config
        self.model = model.to(self.device)
        self.loss_fn = loss_fn
        self.checkpoint_path = Path(checkpoint_path) if checkpoint_path is not None else None
        self.run_config = plain(dict(run_config or {}))
        self.optimizer = _adamw(self.model, config)
        self.ema = EMA(self.model, config.ema_decay) if config.ema_decay is not None else None
        self.generator = make_generator(config.seed + 1_000_003 * self.dist.rank, self.device)
        self.step = 0
        self._step_rng: dict[str, Tensor | None] | None = None   # RNG states at the start of an unfinished step
        self._deferred = Deferred()
        self.history: list[float] = []
        self._window: list[float] = []        # losses of the logging window in progress (checkpointed)
        self.log_history: list[dict[str, float]] = []        # window means of loss_fn's logs, beside history
        self._log_window: list[dict[str, float]] = []
        self._raw: list[Tensor] | None = None  # the training weights while averaged_model() has the EMA ones in
        self._saved_step: int | None = None    # step of the checkpoint at checkpoint_path (None: none yet)
        use_amp = config.amp is not None and self.device.type == "cuda"
        self.amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(config.amp) if use_amp else None
        self.scaler = torch.amp.GradScaler("cuda") if self.amp_dtype == torch.float16 else None
        self.train_model: nn.Module = self.model
        if self.dist.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.train_model = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        if config.compile:
            self.train_model = torch.compile(self.train_model)
        if self.checkpoint_path is not None and self.checkpoint_path.is_file():
            self.load(self.checkpoint_path)

    # -- learning rate -----------------------------------------------------------------------
    def lr_at(self, step: int) -> float:
        c = self.config
        if c.warmup_steps and step < c.warmup_steps:
            return c.lr * (step + 1) / c.warmup_steps
        if c.lr_schedule == "cosine":
            span = max(1, c.steps - c.warmup_steps)
            frac = min(1.0, (step - c.warmup_steps) / span)
            return c.lr * (c.min_lr_ratio + (1 - c.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * frac)))
        return c.lr

    # -- checkpoints -------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "format": "sciflow.checkpoint/1",
            "step": self.step,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            # inside an unfinished step (Ctrl-C, a non-finite loss) the streams as that step found them, so a
            # resumed run draws the same batch for it
            **(self._step_rng if self._step_rng is not None else self._rng_states()),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "history": list(self.history),
            "window": list(self._window),
            "log_history": [dict(d) for d in self.log_history],
            "log_window": [dict(d) for d in self._log_window],
            "train_config": plain(asdict(self.config)),
            "run_config": self.run_config,
            "versions": package_versions(),
            "seed": self.config.seed,
        }

    def _rng_states(self) -> dict[str, Tensor | None]:
        """The trainer's generator, the global CPU stream and, on a GPU, the global CUDA stream (dropout and other
        layers that draw without the trainer's generator)."""
        return {"generator": self.generator.get_state(), "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None}

    def save(self, path: str | os.PathLike | None = None) -> Path | None:
        """Write a checkpoint atomically (main rank writes; under torchrun every rank must call this, as each
        rank's random streams are gathered into the file)."""
        path = Path(path) if path is not None else self.checkpoint_path
        if path is None:
            return None
        ranks = gather_objects({k: (v.cpu() if v is not None else None) for k, v in
                                (self._step_rng if self._step_rng is not None else self._rng_states()).items()})
        if self.dist.is_main:
            with self._training_weights():
                state = self.state_dict()
                if self.dist.enabled:
                    state["rank_rng"] = ranks
                atomic_save(state, path)
        if path == self.checkpoint_path:
            self._saved_step = self.step
        barrier()
        return path

    def load(self, path: str | os.PathLike) -> None:
        """Resume model, optimiser, EMA, step, RNG states and loss history from a checkpoint made with the same
        settings (a changed optimisation setting or run configuration is refused, naming it). Only ``lr`` and
        ``grad_clip`` may differ, with a warning: the remedy for a run that stopped on a non-finite loss or
        gradient is to resume it with a lower learning rate or a tighter clip."""
        ck = load_checkpoint(path, map_location=self.device)
        missing = [k for k in ("model", "optimizer", "step", "generator", "torch_rng") if k not in ck]
        if ck.get("format") != "sciflow.checkpoint/1" or missing:
            raise InputError(f"checkpoint: {path} is not a training checkpoint (format {ck.get('format')!r}"
                             f"{', lacks ' + ', '.join(missing) if missing else ''}); a saved model is not a "
                             f"checkpoint to resume from")
        ignore = ("progress", "desc", "checkpoint_every", "compile")
        now = {k: v for k, v in plain(asdict(self.config)).items() if k not in ignore}
        before = {k: v for k, v in dict(ck.get("train_config") or {}).items() if k not in ignore}
        retuned = [k for k in _RETUNABLE if k in before and plain_json(before[k]) != plain_json(now.get(k))]
        for k in retuned:
            before[k] = now.get(k)
        changed = [f"train.{k}" for k in changed_keys(plain_json(before), plain_json(now))] + \
                  [f"run.{k}" for k in changed_keys(plain_json(ck.get("run_config") or {}),
                                                    plain_json(self.run_config))]
        if changed:
            raise InputError(f"checkpoint: {path} was made with other settings ({', '.join(changed[:8])}); resume "
                             f"with the same settings (only lr and grad_clip may change), or remove the checkpoint "
                             f"to start over")
        if retuned:
            old = dict(ck.get("train_config") or {})
            warnings.warn(f"checkpoint {path}: resuming with "
                          f"{', '.join(f'{k}={now.get(k)!r} (was {old[k]!r})' for k in retuned)}; the weights will "
                          f"differ from those of an uninterrupted run", stacklevel=3)
        try:
            self.model.load_state_dict(ck["model"])
            self.optimizer.load_state_dict(ck["optimizer"])
        except (RuntimeError, ValueError, KeyError) as e:
            raise InputError(f"checkpoint: {path} does not fit this model "
                             f"({str(e).splitlines()[0][:160]})") from None
        if self.ema is not None and ck.get("ema") is not None:
            self.ema.load_state_dict(ck["ema"])
        rng = dict(ck)
        ranks = ck.get("rank_rng")
        own = isinstance(ranks, list) and len(ranks) == self.dist.world_size
        if self.dist.enabled and own:
            rng = ranks[self.dist.rank]      # every rank continues its own streams
        derived = self.config.seed + 1_000_003 * self.dist.rank + 7919 * int(ck["step"])
        if self.dist.rank == 0 or own:
            try:
                self.generator.set_state(rng["generator"].cpu())
            except RuntimeError:  # a stream of another device type (a GPU run resumed on the CPU, or back)
                warnings.warn(f"checkpoint {path}: its random stream belongs to another device type; training "
                              "continues on a stream derived from the seed and step (the same weights as an "
                              "uninterrupted run are no longer guaranteed)", stacklevel=2)
                self.generator.manual_seed(derived)
        else:  # a checkpoint of another world size: other ranks continue on a stream derived from the step
            self.generator.manual_seed(derived)
        torch.set_rng_state(rng["torch_rng"].cpu())
        if rng.get("cuda_rng") is not None and self.device.type == "cuda":
            torch.cuda.set_rng_state(rng["cuda_rng"].cpu(), self.device)
        if self.scaler is not None and ck.get("scaler") is not None:
            self.scaler.load_state_dict(ck["scaler"])
        self.step = int(ck["step"])
        self.history = list(ck.get("history", []))
        self._window = list(ck.get("window", []))
        logs = ck.get("log_history")      # absent from checkpoints of earlier versions
        self.log_history = [dict(d) for d in logs] if logs is not None else [{} for _ in self.history]
        logs = ck.get("log_window")
        self._log_window = [dict(d) for d in logs] if logs is not None else [{} for _ in self._window]
        self._raw = None
        if Path(path) == self.checkpoint_path:
            self._saved_step = self.step

    # -- training ----------------------------------------------------------------------------
    def fit(self, sample_batch: BatchFn, *, stop_at: int | None = None, log_every: int = 50) -> TrainResult:
        """Train until ``config.steps`` (or ``stop_at``, to split a run) steps are done; checkpoint at the end.

        A KeyboardInterrupt saves a checkpoint first, so re-running resumes where it stopped, with the same
        weights as an uninterrupted run: an unfinished step is redone from its own RNG states, and a SIGINT or
        SIGTERM arriving during a step's update (optimiser, EMA, step count, loss log) is acted on once the update
        is complete.
        After ``averaged_model()``, training continues from the training weights, not the averaged ones.
        """
        self._restore_training_weights()
        end = self.config.steps if stop_at is None else min(int(stop_at), self.config.steps)
        start_time, last = time.perf_counter(), float("nan")
        self.train_model.train()
        bar = progress(total=self.config.steps, initial=self.step, desc=self.config.desc,
                       enabled=self.config.progress, unit="step")
        try:
            with self._deferred:             # signals during a step's update wait for its end (``_one_step``)
                while self.step < end:
                    last = self._one_step(sample_batch, log_every)
                    if not bar.disable:
                        bar.set_postfix(loss=f"{last:.4g}", lr=f"{self.lr_at(self.step - 1):.2e}", refresh=False)
                    bar.update(1)
                    if self.config.checkpoint_every and self.step % self.config.checkpoint_every == 0:
                        self.save()
        except KeyboardInterrupt:
            self.save()
            raise
        finally:
            bar.close()
        self.save()
        return TrainResult(steps=self.step, seconds=time.perf_counter() - start_time,
                           history=list(self.history), final_loss=last,
                           logs=[dict(d) for d in self.log_history])

    def _one_step(self, sample_batch: BatchFn, log_every: int) -> float:
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr_at(self.step)
        self._step_rng = self._rng_states()
        batch = move_to(sample_batch(self.generator), self.device)
        # an autocast context costs time on every step even when disabled: enter one only for AMP
        with (torch.autocast(self.device.type, dtype=self.amp_dtype) if self.amp_dtype is not None
              else nullcontext()):
            out = self.loss_fn(self.train_model, batch, self.generator)
        loss, (logs, pending) = ((out[0], _split_logs(out[1] if len(out) > 1 else None)) if isinstance(out, tuple)
                                 else (out, ({}, {})))
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
        else:
            loss.backward()
        params = [p for p in self.model.parameters() if p.grad is not None]
        norm = None
        if self.config.grad_clip is not None:
            norm = nn.utils.clip_grad_norm_(params, self.config.grad_clip)
        elif self.scaler is None and params:
            norm = _total_norm([p.grad for p in params])
        # a finite loss can still have a non-finite gradient (sqrt or norm at 0, ...): one optimiser step with
        # it would make every weight NaN, so it is checked before the step. fp16's GradScaler skips such steps
        # itself (and lowers its scale). One host sync per step, shared by both checks and the log.
        # (and the tensors loss_fn logged: read back in the same sync, not one each)
        check_norm = norm is not None and self.scaler is None
        read = [loss.detach().float().reshape(())]
        if check_norm:
            read.append(norm.detach().float().to(loss.device))
        read += [v.detach().float().reshape(()).to(loss.device) for v in pending.values()]
        values = torch.stack(read).tolist() if len(read) > 1 else [float(read[0])]
        value, norm_value = values[0], (values[1] if check_norm else 0.0)
        logs.update(zip(pending, values[1 + check_norm:]))
        if not all_finite(value):      # under torchrun: True only if every rank's loss is finite
            where = f"is {value}" if not math.isfinite(value) else "is not finite on another rank"
            raise SciflowError(f"training: loss {where} at step {self.step}; {self._stop_on_non_finite()}")
        # under DDP the gradients are all-reduced already: every rank sees the same norm and stops together
        if not math.isfinite(norm_value):
            raise SciflowError(f"training: gradient norm is {norm_value} at step {self.step} (the loss, {value:.6g}, "
                               f"is finite; look for an operation without a finite gradient, such as sqrt or norm "
                               f"at 0); the step was not taken; {self._stop_on_non_finite()}")
        # the update, as one piece: a checkpoint holds the state before it (redone from _step_rng) or after it,
        # never the new weights with the old step count
        with self._deferred.hold():
            if self.scaler is not None:
                self.scaler.step(self.optimizer)
                self.scaler.update()
            else:
                self.optimizer.step()
            if self.ema is not None:
                self.ema.update(self.model)
            self.step += 1
            self._step_rng = None
            self._window.append(value)
            self._log_window.append(logs)
            # windows close every log_every steps and at the end of the run (not at a stop_at split), so a
            # split run logs the same history as an uninterrupted one
            if len(self._window) >= log_every or self.step == self.config.steps:
                self.history.append(sum(self._window) / len(self._window))
                self.log_history.append(_mean_logs(self._log_window))
                self._window, self._log_window = [], []
        return value

    def _stop_on_non_finite(self) -> str:
        """Checkpoint a step that met a non-finite loss or gradient when the weights are still finite (the state
        at the start of that step); never overwrite the last checkpoint with non-finite weights. Returns what to
        do next, for the error message."""
        tensors = list(self.model.state_dict().values()) + (list(self.ema.shadow) if self.ema is not None else [])
        finite = all(bool(torch.isfinite(v).all()) for v in tensors if v.is_floating_point())
        advice = "check the data, or resume with a lower lr or grad_clip (both may change on resume)"
        if self.checkpoint_path is None:
            return "check the data, or lower lr or grad_clip"
        if finite:
            self.save()
            return f"{advice}; checkpoint of step {self.step} saved to {self.checkpoint_path}"
        kept = (f"the checkpoint of step {self._saved_step} at {self.checkpoint_path} is kept"
                if self._saved_step is not None else "no checkpoint was written")
        return f"the weights are not finite, so {kept}; {advice}"

    def averaged_model(self) -> nn.Module:
        """The model with the EMA weights copied in (the model itself when EMA is off), for sampling or saving.
        The training weights are kept aside: a later ``fit()`` (and any checkpoint) uses them, not the average."""
        if self.ema is not None:
            if self._raw is None:
                self._raw = self.ema.swap_in(self.model)
            else:
                self.ema.copy_to(self.model)
        return self.model

    def _restore_training_weights(self) -> None:
        if self._raw is not None:
            EMA.put_back(self.model, self._raw)
            self._raw = None

    @contextmanager
    def _training_weights(self) -> Iterator[None]:
        """The training weights in the model for the duration (a checkpoint written after averaged_model())."""
        if self._raw is None:
            yield
            return
        raw = self._raw
        self._restore_training_weights()
        try:
            yield
        finally:
            self.averaged_model()
            self._raw = raw


_RETUNABLE = ("lr", "grad_clip")    # settings a resumed run may change (the remedy for a non-finite stop)


def _split_logs(logs: Any) -> tuple[dict[str, float], dict[str, Tensor]]:
    """The numbers of a mapping loss_fn returned beside its loss: (plain numbers, one-element tensors, read back
    later with the loss in the step's one host sync); others are let be, as before logs were kept."""
    plain: dict[str, float] = {}
    pending: dict[str, Tensor] = {}
    if isinstance(logs, Mapping):
        for k, v in logs.items():
            if torch.is_tensor(v) and v.numel() == 1:
                pending[str(k)] = v
            elif isinstance(v, (int, float)) and not isinstance(v, bool):
                plain[str(k)] = float(v)
    return plain, pending


def _mean_logs(window: list[dict[str, float]]) -> dict[str, float]:
    """Per name, the mean over the steps of the window that logged it."""
    sums: dict[str, list[float]] = {}
    for logs in window:
        for k, v in logs.items():
            sums.setdefault(k, []).append(v)
    return {k: sum(v) / len(v) for k, v in sums.items()}


def _total_norm(grads: list[Tensor]) -> Tensor:
    """The 2-norm of all gradients together (what clip_grad_norm_ measures), without clipping."""
    total = getattr(nn.utils, "get_total_norm", None)     # torch >= 2.6
    if total is not None:
        return total(grads)
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))


def _adamw(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW, fused into one kernel per step where the device and dtypes allow it (CPU and CUDA float
    parameters): the same update as the per-tensor loop, several times faster for small networks."""
    params = list(model.parameters())
    kw = {"lr": config.lr, "betas": config.betas, "weight_decay": config.weight_decay}
    if params and all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params):
        try:
            return torch.optim.AdamW(params, fused=True, **kw)
        except (RuntimeError, ValueError, TypeError):
            pass
    return torch.optim.AdamW(params, **kw)
