"""UnbindingFlow: whole-path flow matching of ligand dissociation paths, conditioned on the bound complex.

Whole path, not frame blocks: a path here is short (``n_frames`` frames up to the exit distance), so one ODE solve
draws every frame jointly. That keeps each path globally consistent (one exit channel, no drift accumulated
frame block after frame block), costs one network call per solver step for all frames at once, and lets clash
guidance see the whole path. The path's exit time is drawn jointly with its shape (one extra scalar per sample).

Composition: Gaussian prior on displacements from the bound pose + linear (cond-OT) path + independent
coupling + ``PathVelocity`` (EGNN) + a core ODE solver, trained with the core ``FlowMatcher`` and ``Trainer``.
"""
from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ...core.errors import InputError, SciflowError, check_bool, check_count, check_in_range
from ...core.fields import BATCH
from ...core.flow_matching import FlowMatcher
from ...core.random import randint, randn
from ...core.registry import PATHS, SOLVERS, check_ode_solver
from ...core.training import TrainConfig, TrainResult, check_device
from ...core.trajectory import Trajectory
from ...domains.molecules.complexes import CLASH_DISTANCE, COM_DISTANCE, Complex, element_index
from ..base import Method
from .encoding import EncodedPath, batch_complexes, encode_complex, encode_path, place_hydrogens
from .guidance import enforce_exit, frame_min_distance, guided_field, pair_index
from .metrics import centre_distances
from .network import PathVelocity

__all__ = ["ELEMENT_INDEX", "PATH_TIME", "UnbindingFlow"]

#: (n_samples,) float, ps. Generated time for the ligand to reach the exit distance (extras of the Trajectory).
PATH_TIME = "path_time_ps"
#: (rows,) int64. Index into ``ELEMENT_TYPES`` of each ligand atom row.
ELEMENT_INDEX = "element_index"


#: Å added to (ligand radius + pocket offset + exit distance) for the receptor atoms guidance and projection see:
#: room for the stretch of ``enforce_exit`` (up to 5 Å past the exit distance) and the clash distance
_REACH_PAD = 8.0


def _reachable(receptor: Tensor, anchor: Tensor, radius: float, n: int) -> tuple[Tensor, Tensor]:
    """Receptor atoms (M, 3) within ``radius`` + the clash distance of ``anchor`` (at least the nearest one), as
    the batched (positions, sample index) of ``n`` samples of one complex. Ligand atoms within ``radius`` of the
    anchor cannot clash with any atom left out."""
    d = (receptor - anchor).norm(dim=-1)
    keep = d <= max(float(radius) + CLASH_DISTANCE, float(d.min()))
    sel = receptor[keep]
    batch = torch.arange(n, device=receptor.device).repeat_interleave(sel.shape[0])
    return sel.repeat(n, 1), batch


class UnbindingFlow(Method):
    """Generate ensembles of ligand dissociation paths for a bound complex.

    ``generate(complex, n)`` returns a Trajectory whose states are (n_frames + 1, n * n_ligand_atoms, 3) Å:
    frame 0 the bound pose, the last frame beyond the exit distance, in the input complex's frame; rows are
    grouped by sample (``extras["batch"]``); ``extras["path_time_ps"]`` (n,) holds each path's exit time and
    frame k is at time k / n_frames of it; ``step_extras["com_distance"]`` (T, n) the ligand-pocket distance.
    """

    name = "unbinding"

    def __init__(self, n_frames: int = 12, *, hidden: int = 64, n_vectors: int = 16, n_layers: int = 4,
                 n_rbf: int = 12, cutoff: float = 12.0, scale: float = 5.0, prior_std: float = 1.0,
                 solver: str = "euler", steps: int = 20, guidance: float = 1.0, project: bool = True,
                 batch_size: int = 16, exit_distance: float = 12.0,
                 exit_distances: dict[str, float] | None = None) -> None:
        super().__init__()
        if int(n_frames) < 2:
            raise InputError(f"n_frames: must be >= 2, got {n_frames}")
        check_in_range("scale", scale, 0.0, low_open=True)
        check_in_range("guidance", guidance, 0.0)
        check_in_range("exit_distance", exit_distance, 0.0, low_open=True)
        if exit_distances is not None and not isinstance(exit_distances, dict):
            raise InputError(f"exit_distances: expected a mapping of complex name to Å, got {exit_distances!r:.60}")
        exit_distances = {str(k): check_in_range(f"exit_distances.{k}", v, 0.0, low_open=True)
                          for k, v in (exit_distances or {}).items()}
        self._config = {"n_frames": int(n_frames), "hidden": hidden, "n_vectors": n_vectors,
                        "n_layers": n_layers, "n_rbf": n_rbf, "cutoff": cutoff, "scale": scale,
                        "prior_std": prior_std, "solver": solver, "steps": steps, "guidance": guidance,
                        "project": project, "batch_size": batch_size, "exit_distance": exit_distance,
                        "exit_distances": exit_distances}
        check_ode_solver(solver, "UnbindingFlow")
        self.n_frames, self.scale, self.prior_std = int(n_frames), float(scale), float(prior_std)
        self.model = PathVelocity(self.n_frames, hidden=hidden, n_vectors=n_vectors, n_layers=n_layers,
                                  n_rbf=n_rbf, cutoff=cutoff, scale=scale)
        self.matcher = FlowMatcher(PATHS.build("linear"))
        self.tau_mean, self.tau_std = 3.0, 1.0

    def config(self) -> dict[str, Any]:
        return dict(self._config)

    def extra_state(self) -> dict[str, Any]:
        return {"tau_mean": self.tau_mean, "tau_std": self.tau_std}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.tau_mean = float(state.get("tau_mean", self.tau_mean))
        self.tau_std = float(state.get("tau_std", self.tau_std))

    # -- training ----------------------------------------------------------------------------
    def encode_dataset(self, trajectories: Sequence[Any]) -> list[EncodedPath]:
        if not trajectories:
            raise InputError("dataset: no trajectory to train on")
        return [encode_path(t, self.n_frames) for t in trajectories]

    def _target(self, p: EncodedPath) -> Tensor:
        disp = (p.frames - p.cond.ligand_pos.unsqueeze(0)) / self.scale               # (F, Nl, 3)
        tau = (math.log(p.duration) - self.tau_mean) / self.tau_std
        nl = disp.shape[1]
        return torch.cat([disp.permute(1, 0, 2).reshape(nl, -1), torch.full((nl, 1), tau)], dim=1)

    def fit(self, dataset: Sequence[Any], config: TrainConfig, *, device: str | None = None,
            checkpoint_path: str | None = None, stop_at: int | None = None) -> TrainResult:
        """Train on ``DissociationTrajectory`` objects (exited replicas) or already encoded paths."""
        paths = [p if isinstance(p, EncodedPath) else encode_path(p, self.n_frames) for p in dataset]
        if not paths:
            raise InputError("dataset: no trajectory to train on")
        # each complex's paths are learned up to the exit distance its data used: generate to that by default
        exits: dict[str, float] = {}
        for t, p in zip(dataset, paths):
            d = getattr(t, "info", {}).get("settings", {}).get("exit_distance") if not isinstance(t, EncodedPath) \
                else None
            if d is not None:
                exits[p.cond.name] = max(float(d), exits.get(p.cond.name, 0.0))
        self._config["exit_distances"] = {**self._config["exit_distances"], **exits}
        logs = np.log([p.duration for p in paths])
        self.tau_mean, self.tau_std = float(logs.mean()), float(max(logs.std(), 0.1))
        targets = [self._target(p) for p in paths]
        bs = int(self._config["batch_size"])

        def sample_batch(g: torch.Generator) -> dict[str, Any]:
            idx = randint(len(paths), (bs,), generator=g).tolist()
            cond = batch_complexes([paths[i].cond for i in idx])
            return {"x1": torch.cat([targets[i] for i in idx]), "cond": cond}

        def loss_fn(model: torch.nn.Module, batch: dict[str, Any], g: torch.Generator) -> Tensor:
            x1, cond = batch["x1"], batch["cond"]
            x0 = self.prior_std * randn(x1.shape, generator=g, device=x1.device, dtype=x1.dtype)
            return self.matcher.loss(model, x0, x1, cond=cond, batch=cond["ligand_batch"], generator=g)

        result = self.train_model(loss_fn, sample_batch, config, device=device, checkpoint_path=checkpoint_path,
                                  stop_at=stop_at, n_paths=len(paths),
                                  complexes=sorted({p.cond.name for p in paths}))
        return result

    def exit_distance_for(self, name: str) -> float:
        """The exit distance (Å) paths of complex ``name`` are generated to by default: the one its training paths
        used (recorded by ``fit``), else the model's ``exit_distance``."""
        return float(self._config.get("exit_distances", {}).get(str(name), self._config["exit_distance"]))

    # -- sampling ----------------------------------------------------------------------------
    def generate(self, condition: Complex, n: int, *, generator: torch.Generator | None = None,
                 steps: int | None = None, solver: str | None = None, guidance: float | None = None,
                 project: bool | None = None, exit_distance: float | None = None,
                 device: str | torch.device = "cpu") -> Trajectory:
        """n dissociation paths of the ligand of ``condition`` (see the class docstring for the layout).

        With ``project`` (default on) two constraints are enforced after sampling and counted in ``info``:
        no clash with the fixed receptor (``condition.clash_atoms()``: every receptor heavy atom the complex was
        loaded with, from a PDB or an HDF5 file's ``receptor`` field, else only its pocket), and the ligand ends
        at least ``exit_distance`` Å (default: ``exit_distance_for`` the complex, the distance its training paths
        used, else the model's) from the pocket centroid (a path that stops short is stretched along its own exit direction, the
        stretch growing linearly from 0 at the bound pose; stretch and projection repeat until both hold, see
        ``enforce_exit``). ``info["returned_short_paths"]`` counts paths whose ligand centre of mass still ends
        short of the exit distance."""
        device = check_device(device)
        self.warn_if_untrained()
        if not isinstance(condition, Complex):
            raise InputError(f"condition: expected a sciflow Complex, got {type(condition).__name__}")
        n = check_count("n", n)
        steps = None if steps is None else check_count("steps", steps)
        solver = check_ode_solver(solver or self._config["solver"], "UnbindingFlow")
        if project is not None:
            check_bool("project", project)
        if exit_distance is not None:
            check_in_range("exit_distance", exit_distance, 0.0, low_open=True)
        if guidance is not None:
            check_in_range("guidance", guidance, 0.0)
        start = time.perf_counter()
        enc = encode_complex(condition)
        cond = batch_complexes([enc] * int(n), device)
        nl, f = enc.ligand_pos.shape[0], self.n_frames
        self.model.to(device).eval()
        w = self._config["guidance"] if guidance is None else float(guidance)
        exit_d = float(self.exit_distance_for(enc.name) if exit_distance is None else exit_distance)
        receptor = torch.as_tensor(condition.clash_atoms(), dtype=torch.float32, device=device)
        anchor = enc.ligand_pos.to(device).mean(0)           # bound ligand centre: paths start around it
        reach = float((enc.ligand_pos.to(device) - anchor).norm(dim=-1).max() + (enc.centroid.to(device) - anchor).norm())
        base = reach + exit_d + _REACH_PAD                   # what guidance and projection must see at least
        guide_set = _reachable(receptor, anchor, base, n)
        # the graph and the guidance pairs depend on the batch only: built once here, not at every solver step
        guide_pairs = pair_index(cond["ligand_batch"], guide_set[1])
        field = guided_field(self.model, n_frames=f, scale=self.scale, strength=w, clash=guide_set, pairs=guide_pairs)
        x0 = self.prior_std * randn((n * nl, 3 * f + 1), generator=generator, device=device)
        step_cond = {**cond, **self.model.graph(cond["ligand_batch"], cond["pocket_batch"])}
        out = FlowMatcher.sample(field, x0, SOLVERS.build(solver),
                                 steps=steps or self._config["steps"], cond=step_cond, generator=generator,
                                 keep="last")
        y = out.last
        if not bool(torch.isfinite(y).all()):
            n_steps = steps or self._config["steps"]
            raise SciflowError(f"steps: the guided sampler diverged with {n_steps} steps and guidance {w:g} (clash "
                               "guidance takes large steps when there are few); use more steps (the model's default "
                               f"is {self._config['steps']}) or a lower guidance")
        heavy = cond["ligand_pos"].unsqueeze(1) + self.scale * y[:, : 3 * f].reshape(n * nl, f, 3)
        heavy = torch.cat([cond["ligand_pos"].unsqueeze(1), heavy], dim=1)             # (n Nl, F+1, 3)
        seen = max(float((heavy - anchor).norm(dim=-1).max()), base)
        rec_pos, rec_batch = guide_set if seen == base else _reachable(receptor, anchor, seen, n)
        pairs = guide_pairs if seen == base else pair_index(cond["ligand_batch"], rec_batch)
        mind = frame_min_distance(heavy, rec_pos, pairs, cond["ligand_batch"], n)
        raw_clash = (mind[:, 1:] < CLASH_DISTANCE).any(dim=1)
        do_project = self._config["project"] if project is None else bool(project)
        centre = enc.centroid.to(heavy)
        lig_w = torch.as_tensor(condition.topology.masses[enc.ligand_heavy_index])         # heavy-atom masses
        masses = torch.as_tensor(condition.topology.masses[condition.topology.is_ligand])
        centroid = torch.as_tensor(condition.pocket_centroid())

        ends = place_hydrogens(condition, heavy[:, -1].reshape(n, nl, 3).cpu().to(torch.float64),
                               enc.ligand_heavy_index)                # the success measure: all atoms, by mass
        raw_short = centre_distances(ends, masses, centroid) < exit_d
        if do_project:
            heavy, _ = enforce_exit(heavy, rec_pos, cond["ligand_batch"], rec_batch, lig_w.repeat(n), centre, exit_d)
            pushed = float((heavy - anchor).norm(dim=-1).max())
            if pushed > seen:
                # pushed beyond the atoms the projection saw: count against every atom the frames can reach
                rec_pos, rec_batch = _reachable(receptor, anchor, pushed, n)
                pairs = pair_index(cond["ligand_batch"], rec_batch)
            mind = frame_min_distance(heavy, rec_pos, pairs, cond["ligand_batch"], n)
        final_clash = (mind[:, 1:] < CLASH_DISTANCE).any(dim=1)
        frames = heavy.reshape(n, nl, f + 1, 3).permute(0, 2, 1, 3).cpu().to(torch.float64)  # (n, T, Nl, 3)
        all_atoms = place_hydrogens(condition, frames.reshape(n * (f + 1), nl, 3), enc.ligand_heavy_index)
        all_atoms = all_atoms.reshape(n, f + 1, -1, 3)                                          # (n, T, N_all, 3)
        n_all = all_atoms.shape[2]
        states = all_atoms.permute(1, 0, 2, 3).reshape(f + 1, n * n_all, 3).to(torch.float32)
        dist = centre_distances(all_atoms.reshape(-1, n_all, 3), masses, centroid).reshape(n, f + 1).T.float()
        tau = y.reshape(n, nl, -1)[:, :, -1].mean(1).cpu()
        seconds = time.perf_counter() - start
        types = torch.as_tensor(element_index(condition.topology.elements[condition.topology.is_ligand]))
        extras = {BATCH: torch.arange(n).repeat_interleave(n_all), ELEMENT_INDEX: types.repeat(n),
                  PATH_TIME: torch.exp(tau * self.tau_std + self.tau_mean).to(torch.float32)}
        info = {**out.info, "method": self.name, "complex": condition.name, "n_paths": int(n),
                "times": "fraction of each path's exit time (extras['path_time_ps'])",
                "raw_clashing_paths": int(raw_clash.sum()), "returned_clashing_paths": int(final_clash.sum()),
                "raw_short_paths": int(raw_short.sum()), "returned_short_paths": int((dist[-1] < exit_d).sum()),
                "exit_distance": exit_d, "clash_atoms": int(receptor.shape[0]),
                "guidance": w, "projected": bool(do_project), "seconds": seconds, "seconds_per_path": seconds / n}
        return Trajectory(torch.linspace(0, 1, f + 1), states, extras=extras, step_extras={COM_DISTANCE: dist},
                          info=info)
