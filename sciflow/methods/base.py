"""What every method shares: the fit / generate / save / load surface and safe persistence."""
from __future__ import annotations

import inspect
import os
import warnings
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from ..core.errors import InputError, UntrainedWarning
from ..core.training import TrainConfig, Trainer, atomic_save, load_checkpoint, package_versions, plain
from ..core.trajectory import Trajectory

__all__ = ["Method", "check_train_config", "find_model_file", "resolve_model_file"]

MODEL_FILE = "model.pt"
#: the ``format`` entry ``Method.save`` writes and ``Method.load`` reads
METHOD_FORMAT = "sciflow.method/1"
#: the project folder that holds ``models/`` with the shipped weights (an editable install or a checkout)
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def resolve_model_file(path: str | os.PathLike) -> Path:
    """A folder means ``folder/model.pt``; a file is used as given."""
    p = Path(path)
    return p / MODEL_FILE if (p.is_dir() or p.suffix == "") else p


def find_model_file(path: str | os.PathLike) -> Path:
    """The model file to read for ``path`` (a folder or a file). A relative path that does not exist from the
    working folder is looked up in the project folder, so that the defaults (``models/tsgen`` and so on) find
    the shipped weights from anywhere (a path that exists here is never replaced); a missing model is an
    ``InputError`` naming where it was looked for."""
    target = resolve_model_file(path)
    if target.is_file():
        return target
    shipped = None
    if not Path(path).exists() and not Path(path).is_absolute():
        shipped = resolve_model_file(PROJECT_ROOT / path)
        if shipped.is_file():
            return shipped
    also = f" (nor at {shipped})" if shipped is not None and shipped != target.resolve() else ""
    raise InputError(f"model: no file at {target}{also}")


def check_train_config(config: Any, field: str = "config") -> TrainConfig:
    """``config`` if it is a ``TrainConfig``, else an InputError naming ``field``. ``fit`` takes the typed settings
    only (configuration lives at the edges: a dict or YAML is turned into a TrainConfig by its caller); there is no
    implicit default either (``None`` would silently train 1000 steps), so ``None`` and a dict are refused, the
    message showing how to build one."""
    if isinstance(config, TrainConfig):
        return config
    hint = "TrainConfig(**config)" if isinstance(config, dict) else "TrainConfig(steps=..., lr=...)"
    raise InputError(f"{field}: expected a TrainConfig (from sciflow.core.training import TrainConfig; pass "
                     f"{hint}), got {type(config).__name__}")


class Method(ABC):
    """A generator built from core + nn + a domain.

    Subclasses set ``name``, build ``self.model`` in ``__init__`` from plain keyword arguments, and return
    those arguments from ``config()`` so that ``load`` can rebuild the object.
    """

    name: ClassVar[str] = "method"
    #: constructor arguments that files written before they existed lack, with the value those files meant
    legacy_config: ClassVar[dict[str, Any]] = {}
    model: nn.Module

    def __init__(self) -> None:
        self.info: dict[str, Any] = {}

    @abstractmethod
    def config(self) -> dict[str, Any]:
        """Constructor keyword arguments (plain values) that rebuild this method."""

    @abstractmethod
    def fit(self, dataset: Any, config: Any) -> Any:
        """Train on ``dataset``; returns a training summary."""

    @abstractmethod
    def generate(self, condition: Any, n: int, *, generator: torch.Generator | None = None) -> Trajectory:
        """Draw n samples for ``condition`` (the Generator protocol)."""

    def train_model(self, loss_fn: Any, sample_batch: Any, config: Any, *, device: str | torch.device = "cpu",
                    checkpoint_path: str | os.PathLike | None = None, stop_at: int | None = None,
                    run_identity: dict[str, Any] | None = None, **info: Any) -> Any:
        """Train ``self.model`` with the core Trainer (resumable through ``checkpoint_path``), keep the EMA
        weights, move the model back to the CPU and record the run in ``self.info["train"]`` (plus ``info``).
        ``run_identity``: what else a resumed run must share with the checkpoint besides ``config()`` (e.g. a
        digest of the training data); a checkpoint that differs in it is refused, naming the key.
        A run of no step (``TrainConfig(steps=0)``) records nothing: the weights are not trained by it, so
        ``trained`` stays what it was (and sampling from fresh weights still warns)."""
        config = check_train_config(config)
        trainer = Trainer(self.model, loss_fn, config, device=device, checkpoint_path=checkpoint_path,
                          run_config={"method": self.name, **self.config(), **(run_identity or {})})
        result = trainer.fit(sample_batch, stop_at=stop_at)
        trainer.averaged_model()
        self.model.cpu()
        if result.steps < 1:
            return result
        self.info["train"] = {"steps": result.steps, "seconds": result.seconds, "final_loss": result.final_loss,
                              **info}
        return result

    @property
    def trained(self) -> bool:
        """Whether the weights come from training (``fit`` here, or a saved model that records its training);
        a freshly constructed method holds random weights."""
        return "train" in self.info

    def warn_if_untrained(self) -> None:
        """Warn (once per object) that sampling uses random weights: the output would look like a result."""
        if self.trained or getattr(self, "_warned_untrained", False):
            return
        self._warned_untrained = True
        warnings.warn(f"{self.name}: sampling with untrained (randomly initialised) weights; call fit(...) or "
                      f"load trained weights ({type(self).__name__}.load(path))", UntrainedWarning, stacklevel=3)

    def extra_state(self) -> dict[str, Any]:
        """Tensors or plain values besides the model weights (normalisation statistics, ...)."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what ``extra_state`` returned."""

    def save(self, path: str | os.PathLike) -> Path:
        """Write weights, config, versions and info atomically; a folder gets ``model.pt``."""
        target = resolve_model_file(path)
        payload = {"format": METHOD_FORMAT, "method": self.name, "config": plain(self.config()),
                   "state_dict": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
                   "extra": plain(self.extra_state()), "versions": package_versions(), "info": plain(self.info)}
        return atomic_save(payload, target)

    @classmethod
    def read_saved(cls, path: str | os.PathLike, map_location: str | torch.device = "cpu"
                   ) -> tuple[Path, dict[str, Any]]:
        """(file, payload) of a saved model of this method, checked: the format ``save`` writes, this method's
        name, and a config and state_dict (``weights_only`` loading: no code runs from the file)."""
        file = find_model_file(path)
        ck = load_checkpoint(file, map_location=map_location)
        if ck.get("format") != METHOD_FORMAT:
            raise InputError(f"model: {file} has format {ck.get('format')!r}; this version of sciflow reads "
                             f"{METHOD_FORMAT!r} (files written by Method.save)")
        if ck.get("method") != cls.name:
            raise InputError(f"model: {path} holds a {ck.get('method')!r} model, not {cls.name!r}")
        missing = [k for k in ("config", "state_dict") if not isinstance(ck.get(k), dict)]
        if missing:
            raise InputError(f"model: {file} lacks {', '.join(missing)} (or holds no mapping there); it is not a "
                             f"complete {cls.name!r} model file")
        return file, ck

    def restore(self, file: Path, ck: dict[str, Any]) -> None:
        """Load a checked payload's weights, extra state and info into this (freshly built) method."""
        try:
            self.model.load_state_dict(ck["state_dict"])
        except RuntimeError as e:
            raise InputError(f"model: {file} does not fit the {self.name!r} model its config builds "
                             f"({str(e).splitlines()[-1].strip()[:200]})") from None
        self.load_extra_state(ck.get("extra", {}))
        self.info = dict(ck.get("info", {}))

    @classmethod
    def saved_config(cls, file: Path, config: dict[str, Any]) -> dict[str, Any]:
        """The constructor keywords of a saved config (``legacy_config`` filling what older files lack), checked
        against ``__init__``: a key it does not take (a file from a newer sciflow, or edited) or a required
        argument missing is an InputError naming the file, the key(s) and the expected keys."""
        kwargs = {**cls.legacy_config, **config}
        params = inspect.signature(cls.__init__).parameters
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            return kwargs
        named = [k for k, p in params.items() if k != "self" and p.kind in (
            inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)]
        unknown = sorted(str(k) for k in kwargs if k not in named)
        missing = [k for k in named if k not in kwargs and params[k].default is inspect.Parameter.empty]
        if unknown or missing:
            what = (f"has unknown key(s) {unknown} (written by a newer or different version of sciflow?)" if unknown
                    else f"lacks required key(s) {missing}")
            raise InputError(f"model: the config in {file} {what}; {cls.__name__} takes {', '.join(named)}")
        return kwargs

    @classmethod
    def load(cls, path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Method:
        """Rebuild a saved method (``weights_only`` loading: no code runs from the file)."""
        file, ck = cls.read_saved(path, map_location)
        obj = cls(**cls.saved_config(file, ck["config"]))
        obj.restore(file, ck)
        obj.model.to(map_location)
        return obj
