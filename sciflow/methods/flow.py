"""ConditionalFlow: conditional flow matching on flat vectors (the core's reference method and the quickstart)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from ..core.errors import InputError, check_finite
from ..core.fields import COND
from ..core.flow_matching import FlowMatcher
from ..core.random import randint
from ..core.registry import COUPLINGS, PATHS, SOLVERS
from ..core.training import TrainConfig, TrainResult
from ..core.trajectory import Trajectory
from ..domains.points import PointsAdapter
from ..nn.mlp import TimeConditionedMLP
from .base import Method

__all__ = ["ConditionalFlow"]


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
        if "x1" not in dataset:
            raise InputError("dataset: needs 'x1' (n, dim) target samples")
        data = {k: check_finite(f"dataset.{k}", torch.as_tensor(v, dtype=torch.float32))
                for k, v in dataset.items() if v is not None}
        dim, cd = self._config["dim"], self._config["cond_dim"]
        if data["x1"].dim() != 2 or data["x1"].shape[1] != dim:
            raise InputError(f"dataset.x1: expected shape (n, {dim}), got {tuple(data['x1'].shape)}")
        if "x0" in data and (data["x0"].dim() != 2 or data["x0"].shape[1] != dim):
            raise InputError(f"dataset.x0: expected shape (m, {dim}), got {tuple(data['x0'].shape)}")
        if cd and (COND not in data or data[COND].shape != (data["x1"].shape[0], cd)):
            raise InputError(f"dataset.cond: expected shape ({data['x1'].shape[0]}, {cd})")
        return data

    def fit(self, dataset: Mapping[str, Tensor], config: TrainConfig, *, device: str | None = None,
            checkpoint_path: str | None = None) -> TrainResult:
        """dataset: ``x1`` (n, dim) targets, optional ``x0`` (m, dim) source samples (else the Gaussian
        prior) and ``cond`` (n, cond_dim) conditions of the targets."""
        data = self._check_dataset(dataset)
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
        cd = self._config["cond_dim"]
        cond = None
        if cd:
            if condition is None:
                raise InputError(f"condition: this flow needs a condition of size {cd}")
            cond = torch.as_tensor(condition, dtype=torch.float32, device=device)
            cond = cond.expand(n, cd) if cond.dim() == 1 else cond
            if cond.shape != (n, cd):
                raise InputError(f"condition: expected ({cd},) or ({n}, {cd}), got {tuple(cond.shape)}")
            check_finite("condition", cond)
        if x0 is None:
            x0 = self.adapter.prior({COND: cond} if cond is not None else {}, n, generator=generator).to(device)
        self.model.to(device).eval()
        solver_obj = SOLVERS.build(solver or self.solver_name)
        traj = FlowMatcher.sample(self.velocity, x0.to(device), solver_obj, steps=steps or self.steps,
                                  cond={"cond": cond} if cond is not None else None, generator=generator, keep=keep)
        extras = {COND: cond} if cond is not None else {}
        return Trajectory(traj.times, traj.states, extras=extras, info={**traj.info, "method": self.name})
