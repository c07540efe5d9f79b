"""TSGen: transition states from reactant and product by E(3)-equivariant conditional flow matching.

Composition: molecules adapter (common R/P frame, Gaussian prior of width ``prior_std`` around the R/P midpoint)
+ linear path + the core's ``FlowMatcher`` + ``TSVelocityNet`` (multi-channel EGNN) + an ODE solver.
The network predicts the displacement d = x1_hat - x_t to the TS; the velocity is d / (1 - t), and training
weights the flow-matching loss by (1 - t)^2, which makes it exactly ||x1_hat - x1||^2 (a well-scaled target
at every t). The last Euler step lands on the network's TS estimate.
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ...core.errors import InputError, SciflowError, check_count
from ...core.fields import ATOMIC_NUMBERS, BATCH, POS_PRODUCT, POS_REACTANT, POS_TS
from ...core.flow_matching import FlowMatcher, uniform_time
from ...core.paths import LinearPath
from ...core.registry import SOLVERS, check_ode_solver
from ...core.training import TrainConfig, TrainResult, check_device
from ...core.trajectory import Trajectory
from ...data.reactions import ReactionSet
from ...domains.molecules.adapter import POS_MIDPOINT, MoleculesAdapter, check_distinct, replicate_graphs
from ...domains.molecules.elements import SYMBOLS
from ...domains.molecules.geometry import kabsch_rmsd, n_graphs
from ..base import Method, check_train_config
from .data import EDGE_ATTR, prepare_reactions, training_digest
from .network import TSVelocityNet, reaction_edge_attr

__all__ = ["T_EPS", "TSGen", "check_not_diverged"]

#: smallest 1 - t used to turn the displacement into a velocity: solvers that evaluate the field at t = 1
#: (Heun, RK4, Dopri5) see a bounded field; Euler grids of up to 20 steps never reach it
T_EPS = 0.05


def _weight(t: Tensor) -> Tensor:
    return (1.0 - t).clamp_min(T_EPS).pow(2)


def power_time(power: float):
    """t = u^power, u uniform: power > 1 puts training weight near t = 0, where the TS must be inferred from R
    and P alone (later times only refine); power = 1 is uniform."""
    def draw(n: int, generator: torch.Generator | None, device: torch.device, dtype: torch.dtype) -> Tensor:
        return uniform_time(n, generator, device, dtype).pow(power)
    return draw


def check_not_diverged(traj: Trajectory, what: str = "reaction") -> None:
    """Refuse samples that diverged (``traj.info["non_finite_graphs"]``, set by ``TSGen.sample``): the geometry
    of ``what`` is far outside the training data, and NaN coordinates are no result."""
    failed = traj.info.get("non_finite_graphs") or []
    if failed:
        raise SciflowError(f"{what}: {len(failed)} of {traj.info['n_per_reaction']} samples diverged (non-finite "
                           f"coordinates); the reactant/product geometry is far outside what the model was trained "
                           f"on (distances, displacements)")


class TSGen(Method):
    """Generates transition-state geometries from atom-mapped reactant/product pairs.

    Example::

        ts = TSGen.load("models/tsgen")
        atoms = ts.generate(reactant_atoms, product_atoms, n=4, return_atoms=True)   # 4 ase.Atoms
        traj = ts.generate(reactant_atoms, product_atoms, n=4)                       # a Trajectory
    """

    name = "tsgen"

    def __init__(self, elements: Sequence[int] = (1, 6, 7, 8), *, hidden: int = 96, n_vectors: int = 16,
                 n_layers: int = 5, element_dim: int = 32, time_dim: int = 16, n_rbf: int = 16,
                 cutoff: float = 6.0, prior_std: float = 0.1, solver: str = "euler", steps: int = 8,
                 batch_size: int = 32, reverse_augment: bool = True, time_power: float = 1.0) -> None:
        super().__init__()
        if int(steps) < 1:
            raise InputError(f"steps: must be >= 1, got {steps}")
        self._config = {"elements": sorted(int(z) for z in elements), "hidden": hidden, "n_vectors": n_vectors,
                        "n_layers": n_layers, "element_dim": element_dim, "time_dim": time_dim, "n_rbf": n_rbf,
                        "cutoff": cutoff, "prior_std": prior_std, "solver": solver, "steps": steps,
                        "batch_size": batch_size, "reverse_augment": reverse_augment, "time_power": time_power}
        SOLVERS.get(solver)
        self.adapter = MoleculesAdapter(prior_std=prior_std, scope="TS-GEN and its xTB checks")
        self.model = TSVelocityNet(elements, hidden=hidden, n_vectors=n_vectors, n_layers=n_layers,
                                   element_dim=element_dim, time_dim=time_dim, n_rbf=n_rbf, cutoff=cutoff)
        self.matcher = FlowMatcher(LinearPath(), time_sampler=power_time(float(time_power)), weighting=_weight)
        self.solver_name, self.steps, self.batch_size = solver, int(steps), int(batch_size)

    def config(self) -> dict[str, Any]:
        return dict(self._config)

    # -- the field ------------------------------------------------------------------------------
    @staticmethod
    def field_of(model: torch.nn.Module):
        """The velocity v(x, t, **cond) = model displacement / (1 - t) of a given network (EMA or training copy)."""
        def v(x: Tensor, t: Tensor, **cond: Tensor) -> Tensor:
            d = model(x, t, **cond)
            return d / (1.0 - t).clamp_min(T_EPS).unsqueeze(-1)
        return v

    # -- training -------------------------------------------------------------------------------
    def fit(self, dataset: ReactionSet, config: TrainConfig, *, device: str | None = None,
            checkpoint_path: str | None = None, stop_at: int | None = None) -> TrainResult:
        """Train on reactions with reference TSs (``dataset.pos_ts``); resumes from ``checkpoint_path``.
        ``config``: a TrainConfig (a dict or None is refused: build ``TrainConfig(**d)``)."""
        config = check_train_config(config)
        if device is not None:
            check_device(device)
        if not isinstance(dataset, ReactionSet):
            raise InputError(f"dataset: expected a ReactionSet (sciflow.data.reactions), got {type(dataset).__name__}")
        unknown = sorted(set(np.unique(dataset.atomic_numbers).tolist()) - set(self._config["elements"]))
        if unknown:
            raise InputError(f"dataset: holds elements {unknown} outside the model's {self._config['elements']}")
        prepared = prepare_reactions(dataset, self.adapter, reverse=self._config["reverse_augment"])
        bs = self.batch_size

        def sample_batch(g: torch.Generator) -> dict[str, Tensor]:
            return prepared.random_batch(bs, g)

        def loss_fn(model: torch.nn.Module, batch: dict[str, Tensor], g: torch.Generator) -> Tensor:
            x1 = batch[POS_TS]
            x0 = self.adapter.prior(batch, generator=g)
            cond = {k: v for k, v in batch.items() if k not in (POS_TS, POS_MIDPOINT)}
            return self.matcher.loss(self.field_of(model), x0, x1, cond=cond, batch=batch[BATCH], generator=g)

        # the checkpoint keeps a digest of the reactions: resuming on others (another file or split) is refused
        return self.train_model(loss_fn, sample_batch, config, device=device, checkpoint_path=checkpoint_path,
                                stop_at=stop_at, run_identity={"training_data": training_digest(dataset)},
                                n_reactions=len(dataset), reverse_augment=self._config["reverse_augment"])

    # -- sampling -------------------------------------------------------------------------------
    def condition(self, reactions: ReactionSet | Sequence[tuple[Any, Any]], names: Sequence[str] | None = None
                  ) -> dict[str, Tensor]:
        """Reactions (a ReactionSet or (reactant, product) pairs) -> the checked condition batch. Errors name a
        reaction by ``names[i]`` (pairs; default ``reactions[i]``) or by its id (a ReactionSet); a reaction whose
        product is its reactant (the same geometry, e.g. one file passed as both) is refused."""
        if isinstance(reactions, ReactionSet):
            z = torch.as_tensor(reactions.atomic_numbers, dtype=torch.long)
            labels = [str(r) for r in reactions.rxn_id]
            cond = self.adapter.reaction_batch(z, torch.as_tensor(reactions.pos_reactant, dtype=torch.float64),
                                               torch.as_tensor(reactions.pos_product, dtype=torch.float64),
                                               reactions.batch_index(), labels=labels)
        else:
            cond = self.adapter.encode_reactions(list(reactions), names)
            labels = list(names) if names is not None else [f"reactions[{i}]" for i in range(len(reactions))]
        known = torch.as_tensor(self._config["elements"], dtype=torch.long)
        bad = ~torch.isin(cond[ATOMIC_NUMBERS], known)           # unknown elements fail before any work
        if bool(bad.any()):
            row = int(bad.nonzero()[0])
            g = int(cond[BATCH][row])
            atom = row - int((cond[BATCH] < g).sum())
            z = int(cond[ATOMIC_NUMBERS][row])
            raise InputError(f"{labels[g]}: atom {atom} is {SYMBOLS[z] if 0 < z < len(SYMBOLS) else z}, an element "
                             f"this model was not trained on (it knows "
                             f"{', '.join(SYMBOLS[e] for e in self._config['elements'])})")
        # neutral with an odd electron count (the sum of the atomic numbers) is a radical, whatever the input states
        electrons = torch.zeros(len(labels), dtype=torch.long).index_add_(0, cond[BATCH], cond[ATOMIC_NUMBERS])
        if bool((electrons % 2).any()):
            g = int((electrons % 2).nonzero()[0])
            raise InputError(f"{labels[g]}: has an odd number of electrons ({int(electrons[g])}) as a neutral "
                             f"molecule, so it is a radical (open shell; a hydrogen missing or extra?); "
                             f"{self.adapter.scope}: neutral closed-shell molecules only (as in the training data)")
        check_distinct(cond[POS_REACTANT], cond[POS_PRODUCT], cond[BATCH], labels)
        return cond

    def sample(self, cond: dict[str, Tensor], n: int = 1, *, generator: torch.Generator | None = None,
               steps: int | None = None, solver: str | None = None, solver_kwargs: dict[str, Any] | None = None,
               keep: str = "last", device: str | torch.device = "cpu", x0: Tensor | None = None) -> Trajectory:
        """n samples per reaction of a condition batch. Graph g of the result is sample g % n of reaction
        g // n. States (T, n * N, 3) Å; extras: batch, atomic_numbers, pos_reactant, pos_product.
        ``x0`` (n * N, 3) replaces the prior draw (e.g. drawn per reaction with its own generator)."""
        self.warn_if_untrained()
        n = check_count("n", n)
        device = check_device(device)
        steps = None if steps is None else check_count("steps", steps)
        name = check_ode_solver(solver or self.solver_name, "TS-GEN")
        rep = replicate_graphs(cond, n) if n > 1 else dict(cond)
        graphs = n_graphs(rep[BATCH])                # read here (the condition is usually still on the host)
        rep = {k: v.to(device) for k, v in rep.items()}
        if x0 is None:
            x0 = self.adapter.prior(rep, generator=generator)
        elif x0.shape != rep[POS_REACTANT].shape:
            raise InputError(f"x0: expected shape {tuple(rep[POS_REACTANT].shape)}, got {tuple(x0.shape)}")
        x0 = x0.to(device=device, dtype=rep[POS_REACTANT].dtype)
        rep["edge_index"] = self.adapter.edge_index(rep)
        rep[EDGE_ATTR] = reaction_edge_attr(rep[ATOMIC_NUMBERS], rep[POS_REACTANT], rep[POS_PRODUCT],
                                            rep["edge_index"])
        model_cond = {**{k: v for k, v in rep.items() if k != POS_MIDPOINT}, "n_graphs": graphs}
        self.model.to(device).eval()
        solver_obj = SOLVERS.build(name, **(solver_kwargs or {}))
        # the atoms are the same at every solver step: their elements are checked once, here, not at each call
        with self.model.elements.checked(model_cond[ATOMIC_NUMBERS]):
            traj = FlowMatcher.sample(self.field_of(self.model), x0, solver_obj, steps=steps or self.steps,
                                      cond=model_cond, generator=generator, keep=keep)
        extras = {BATCH: rep[BATCH], ATOMIC_NUMBERS: rep[ATOMIC_NUMBERS], POS_REACTANT: rep[POS_REACTANT],
                  POS_PRODUCT: rep[POS_PRODUCT]}
        # a geometry far outside the training data (e.g. an atom 20 Å from the rest) can make the network
        # diverge; such samples are NaN/inf and listed here, by graph (sample g % n of reaction g // n)
        bad = ~torch.isfinite(traj.last).all(dim=1)
        failed = sorted(set(rep[BATCH][bad].tolist())) if bool(bad.any()) else []
        return Trajectory(traj.times, traj.states, extras=extras,
                          info={**traj.info, "method": self.name, "n_per_reaction": n, "units": "angstrom",
                                "non_finite_graphs": failed})

    def generate(self, reactant: Any, product: Any = None, n: int = 1, *, generator: torch.Generator | None = None,
                 steps: int | None = None, solver: str | None = None, keep: str = "last",
                 device: str | torch.device = "cpu", return_atoms: bool = False) -> Trajectory | list[Any]:
        """n TS samples for one reaction (reactant and product: ase.Atoms, RDKit Mol, XYZ/SDF path or
        (elements, positions); same atoms in the same order). Also callable as ``generate((R, P), n)``.

        Returns a Trajectory (graph k = sample k, frames from the prior to the TS, in the reactant's frame with
        the reactant centred), or with ``return_atoms`` a list of n ase.Atoms.
        """
        check_device(device)                          # before any file is read or tensor moved
        if product is None or isinstance(product, (int, float, np.integer, np.floating)):
            if not (isinstance(reactant, (tuple, list)) and len(reactant) == 2):
                raise InputError("condition: expected generate(reactant, product, n) or generate((reactant, "
                                 "product), n)")
            n = n if product is None else check_count("n", product)   # a number here is n, never a product
            reactant, product = reactant
        cond = self.condition([(reactant, product)], names=["reaction"])
        traj = self.sample(cond, n, generator=generator, steps=steps, solver=solver, keep=keep, device=device)
        check_not_diverged(traj, "reaction")
        return self.adapter.decode(traj) if return_atoms else traj

    def predict(self, reactions: ReactionSet, n: int = 1, *, generator: torch.Generator | None = None,
                steps: int | None = None, solver: str | None = None, batch_reactions: int = 256,
                device: str | torch.device = "cpu") -> tuple[np.ndarray, float]:
        """TS samples for every reaction of a set, batched: ((n, N_atoms_total, 3) positions in each reaction's
        R/P frame, seconds spent in sampling)."""
        if not isinstance(reactions, ReactionSet):
            raise InputError(f"reactions: expected a ReactionSet (sciflow.data.reactions), got "
                             f"{type(reactions).__name__}; use generate() for one (reactant, product) pair")
        n = check_count("n", n)
        batch_reactions = check_count("batch_reactions", batch_reactions)
        device = check_device(device)
        out = np.zeros((n, len(reactions.atomic_numbers), 3), dtype=np.float32)
        seconds = 0.0
        for start in range(0, len(reactions), batch_reactions):
            idx = np.arange(start, min(start + batch_reactions, len(reactions)))
            part = reactions.subset(idx)
            cond = self.condition(part)
            t0 = time.perf_counter()
            traj = self.sample(cond, n, generator=generator, steps=steps, solver=solver, device=device)
            if device.type == "cuda":
                torch.cuda.synchronize()
            seconds += time.perf_counter() - t0
            x = traj.last.detach().cpu().numpy()
            counts = part.n_atoms
            rows = np.split(x, np.cumsum(np.repeat(counts, n))[:-1])
            a, b = int(reactions.offsets[idx[0]]), int(reactions.offsets[idx[-1] + 1])
            block = np.zeros((n, b - a, 3), dtype=np.float32)
            loc = np.concatenate([[0], np.cumsum(counts)])
            for i in range(len(idx)):
                for k in range(n):
                    block[k, loc[i]:loc[i + 1]] = rows[i * n + k]
            out[:, a:b] = block
        return out, seconds

    def rmsd_to_reference(self, reactions: ReactionSet, pred: np.ndarray) -> np.ndarray:
        """(n, R) Kabsch RMSD of each sample to the reference TS of its reaction."""
        if reactions.pos_ts is None:
            raise InputError("data: the reference TSs (pos_ts) are needed for RMSD")
        b = reactions.batch_index()
        ref = torch.as_tensor(reactions.pos_ts, dtype=torch.float64)
        return np.stack([kabsch_rmsd(torch.as_tensor(p, dtype=torch.float64), ref, b).numpy() for p in pred])

    @classmethod
    def load(cls, path: str | Path = "models/tsgen", map_location: str | torch.device = "cpu") -> TSGen:
        """Load saved weights (default: the shipped model in ``models/tsgen``)."""
        return super().load(path, map_location)  # type: ignore[return-value]


