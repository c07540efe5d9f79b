"""ConditionalFlow: conditional flow matching on flat vectors (the core's reference method and the quickstart)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..core.errors import InputError, check_count, check_finite, check_in_range
from ..core.fields import COND
from ..core.flow_matching import FlowMatcher
from ..core.random import randint
from ..core.registry import COUPLINGS, PATHS, SOLVERS, check_ode_solver
from ..core.training import TrainConfig, TrainResult, check_device
from ..core.trajectory import Trajectory
from ..domains.points import PointsAdapter
from ..nn.mlp import TimeConditionedMLP
from .base import Method, check_train_config

__all__ = ["ConditionalFlow"]

_DATASET_KEYS = ("x1", "x0", COND)


def _check_hidden(hidden: Any) -> list[int]:
    """The hidden layer widths: a sequence of integers >= 1 (an empty one makes a linear net)."""
    if isinstance(hidden, (str, bytes)) or not isinstance(hidden, Sequence):
        raise InputError(f"hidden: expected a sequence of layer widths (integers >= 1) such as (64, 64), got "
                         f"{type(hidden).__name__} {hidden!r}")
    for i, w in enumerate(hidden):
        if isinstance(w, bool) or not isinstance(w, (int, np.integer)) or int(w) < 1:
            raise InputError(f"hidden: layer widths must be integers >= 1, got {w!r} at hidden[{i}] "
                             f"(hidden={tuple(hidden)!r})")
    return [int(w) for w in hidden]


class ConditionalFlow(Method):
    """Flow matching from a source (Gaussian prior or given samples) to data in R^dim, optionally conditioned
    on a vector of size ``cond_dim``. Path, coupling and solver are chosen by registry name.
    ``time_embedding``: "sinusoidal" (``time_dim`` features) or "raw" (t itself as one input, TorchCFM's MLP).

    Example: ``ConditionalFlow(2, coupling="exact_ot").fit({"x1": moons}, TrainConfig(steps=2000))``.
    """

    name = "flow"

    def __init__(self, dim: int, cond_dim: int = 0, *, hidden: Sequence[int] = (64, 64, 64), time_dim: int = 16,
                 activation: str = "selu", time_embedding: str = "sinusoidal", path: str = "linear",
                 path_kwargs: Mapping[str, Any] | None = None,
                 coupling: str = "independent", coupling_kwargs: Mapping[str, Any] | None = None,
                 solver: str = "euler", steps: int = 20, prior_std: float = 1.0, batch_size: int = 256) -> None:
        super().__init__()
        dim, cond_dim = check_count("dim", dim), check_count("cond_dim", cond_dim, 0)
        steps, batch_size = check_count("steps", steps), check_count("batch_size", batch_size)
        prior_std = check_in_range("prior_std", prior_std, 0.0, low_open=True)
        hidden = _check_hidden(hidden)
        check_ode_solver(solver, "a flow")
        self._config = dict(dim=dim, cond_dim=cond_dim, hidden=list(hidden), time_dim=time_dim,
                            activation=activation, time_embedding=time_embedding, path=path,
                            path_kwargs=dict(path_kwargs or {}),
                            coupling=coupling, coupling_kwargs=dict(coupling_kwargs or {}), solver=solver,
                            steps=steps, prior_std=prior_std, batch_size=batch_size)
        self.adapter = PointsAdapter(dim, prior_std)
        self.model = TimeConditionedMLP(dim, cond_dim, hidden, time_dim, activation, time_embedding)
        self.matcher = FlowMatcher(PATHS.build(path, **(path_kwargs or {})),
                                   COUPLINGS.build(coupling, **(coupling_kwargs or {})))
        self.solver_name, self.steps, self.batch_size = solver, int(steps), int(batch_size)

    def config(self) -> dict[str, Any]:
        return dict(self._config)

    def velocity(self, x: Tensor, t: Tensor, cond: Tensor | None = None) -> Tensor:
        return self.model(x, t, cond)

    # -- training ----------------------------------------------------------------------------
    def _check_dataset(self, dataset: Mapping[str, Tensor]) -> dict[str, Tensor]:
        if not isinstance(dataset, Mapping):
            raise InputError(f"dataset: expected a mapping with 'x1' (and 'x0', 'cond'), got {type(dataset).__name__}")
        unknown = sorted(str(k) for k in dataset if k not in _DATASET_KEYS)
        if unknown:
            raise InputError(f"dataset: unknown key(s) {unknown}; known: {', '.join(_DATASET_KEYS)}")
        if "x1" not in dataset:
            raise InputError("dataset: needs 'x1' (n, dim) target samples")
        if not self._config["cond_dim"] and dataset.get(COND) is not None:
            raise InputError("dataset.cond: this flow is unconditional (cond_dim=0); build it with cond_dim to "
                             "train on conditions")
        data = {k: check_finite(f"dataset.{k}", torch.as_tensor(v, dtype=torch.float32))
                for k, v in dataset.items() if v is not None}
        dim, cd = self._config["dim"], self._config["cond_dim"]
        if data["x1"].dim() != 2 or data["x1"].shape[1] != dim:
            raise InputError(f"dataset.x1: expected shape (n, {dim}), got {tuple(data['x1'].shape)}")
        if "x0" in data and (data["x0"].dim() != 2 or data["x0"].shape[1] != dim):
            raise InputError(f"dataset.x0: expected shape (m, {dim}), got {tuple(data['x0'].shape)}")
        for key in ("x1", "x0"):
            if key in data and data[key].shape[0] == 0:
                raise InputError(f"dataset.{key}: holds no samples (0 rows)")
        if cd and (COND not in data or data[COND].shape != (data["x1"].shape[0], cd)):
            raise InputError(f"dataset.cond: expected shape ({data['x1'].shape[0]}, {cd})")
        return data

    def fit(self, dataset: Mapping[str, Tensor], config: TrainConfig, *, device: str | None = None,
            checkpoint_path: str | None = None) -> TrainResult:
        """dataset: ``x1`` (n, dim) targets, optional ``x0`` (m, dim) source samples (else the Gaussian
        prior) and ``cond`` (n, cond_dim) conditions of the targets. ``config``: a TrainConfig (a dict or None
        is refused: build ``TrainConfig(**d)``)."""
        config = check_train_config(config)
        data = self._check_dataset(dataset)
        if device is not None:
            check_device(device)
        n1, bs = data["x1"].shape[0], self.batch_size

        def sample_batch(g: torch.Generator) -> dict[str, Tensor]:
            i = randint(n1, (bs,), generator=g)
            out = {"x1": data["x1"][i]}
            if COND in data:
                out[COND] = data[COND][i]
            if "x0" in data:
                out["x0"] = data["x0"][randint(data["x0"].shape[0], (bs,), generator=g)]
            return out

        def loss_fn(model: torch.nn.Module, batch: dict[str, Tensor], g: torch.Generator) -> Tensor:
            x1 = batch["x1"]
            x0 = batch.get("x0")
            if x0 is None:
                x0 = self.adapter.prior({COND: x1}, x1.shape[0], generator=g)
            cond = {"cond": batch[COND]} if COND in batch else {}
            return self.matcher.loss(model, x0, x1, cond=cond, generator=g)

        result = self.train_model(loss_fn, sample_batch, config, device=device, checkpoint_path=checkpoint_path)
        return result

    # -- sampling ----------------------------------------------------------------------------
    def generate(self, condition: Tensor | None, n: int, *, generator: torch.Generator | None = None,
                 x0: Tensor | None = None, steps: int | None = None, solver: str | None = None,
                 keep: str = "all", device: str | torch.device = "cpu") -> Trajectory:
        """n samples; ``condition`` is (cond_dim,) shared by all or (n, cond_dim). Returns T = steps + 1
        frames from the source (t=0) to samples (t=1), with ``extras["cond"]`` when conditioned."""
        self.warn_if_untrained()
        n = check_count("n", n)
        steps = self.steps if steps is None else check_count("steps", steps)
        solver_obj = SOLVERS.build(check_ode_solver(self.solver_name if solver is None else solver, "a flow"))
        device = check_device(device)
        cd, dim = self._config["cond_dim"], self._config["dim"]
        cond = None
        if not cd and condition is not None:
            raise InputError("condition: this flow is unconditional (cond_dim=0); pass None")
        if cd:
            if condition is None:
                raise InputError(f"condition: this flow needs a condition of size {cd}")
            try:
                cond = torch.as_tensor(condition, dtype=torch.float32, device=device)
            except (TypeError, ValueError, RuntimeError):
                raise InputError(f"condition: expected numbers of shape ({cd},) or ({n}, {cd}), got "
                                 f"{type(condition).__name__}") from None
            if cond.shape not in ((cd,), (n, cd)):
                raise InputError(f"condition: expected shape ({cd},) or ({n}, {cd}), got {tuple(cond.shape)}")
            cond = cond.expand(n, cd) if cond.dim() == 1 else cond
            check_finite("condition", cond)
        dtype = next(self.model.parameters()).dtype
        if x0 is None:
            x0 = self.adapter.prior({COND: cond} if cond is not None else {}, n, generator=generator).to(device)
        else:
            if not (torch.is_tensor(x0) or isinstance(x0, np.ndarray)):
                raise InputError(f"x0: expected a ({n}, {dim}) tensor, got {type(x0).__name__}")
            x0 = torch.as_tensor(x0)
            if x0.is_meta:
                raise InputError("x0: is a meta tensor (it holds no values)")
            if not x0.is_floating_point():
                raise InputError(f"x0: expected floating-point values, got {x0.dtype}")
            if tuple(x0.shape) != (n, dim):
                raise InputError(f"x0: expected shape ({n}, {dim}) (n samples of dim {dim}), got {tuple(x0.shape)}")
            x0 = check_finite("x0", x0.to(device=device, dtype=dtype))
        self.model.to(device).eval()
        traj = FlowMatcher.sample(self.velocity, x0.to(device), solver_obj, steps=steps,
                                  cond={"cond": cond} if cond is not None else None, generator=generator, keep=keep,
                                  non_finite="raise")
        extras = {COND: cond} if cond is not None else {}
        return Trajectory(traj.times, traj.states, extras=extras, info={**traj.info, "method": self.name})
