"""The DiTree method: train the action-chunk policy on expert demonstrations, then plan with it inside RRT.

    >>> from sciflow.methods.ditree import DiTree
    >>> from sciflow.domains.robots import load_scenario
    >>> model = DiTree.load("models/ditree")
    >>> traj = model.plan(load_scenario("scenario.yaml"))          # Trajectory: times (T,), states (T, 1, 5)
    >>> traj.extras["controls"].shape                              # (1, T - 1, 2), one per integration step

Training draws windows from demonstrations: the crop and state at a control step, a target that is either the
demonstration's goal (probability ``goal_prob``) or the position the expert reached 0.4 to 4 s later (hindsight
relabelling, so the policy learns to steer towards arbitrary targets as RRT asks it to), and the next
``horizon`` controls (zero controls past the end). Each window is mirrored across the heading axis with
probability 1/2 (the car is left-right symmetric). The loss is the core ``FlowMatcher`` loss on a linear path
from N(0, I) to the normalised chunk, optimised by the core ``Trainer``.
"""
from __future__ import annotations

import inspect
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ...core.errors import InputError, SciflowError, check_bool, check_count, check_in_range
from ...core.flow_matching import FlowMatcher
from ...core.paths import LinearPath
from ...core.random import make_generator, rand, randint, randn_like
from ...core.training import TrainConfig, TrainResult, check_device
from ...core.trajectory import Trajectory
from ...domains.robots import CarParams, LocalObservation, Scenario, load_scenario
from ..base import Method
from .planners import TreePlanner
from .policy import ChunkPolicyNet, FlowMapHead, PolicySampler
from .problem import MixedSampler, Problem, RandomControls, check_budget, check_scenario
from .rollout import PolicyRollout
from .sst import SSTPlanner
from .tree import PlanResult, plan_trajectory

__all__ = ["PLANNERS", "DiTree", "PlanningFailed"]

#: planner names accepted by ``DiTree.planner`` (``rrt`` is OMPL's control-space RRT).
PLANNERS = ("ditree", "policy", "sst", "rrt", "rrt-torch")
#: keyword options of the planners built here (``sst`` and ``rrt`` take their class's constructor arguments)
_PLANNER_OPTIONS = {"ditree": ("random_frac", "flow_steps", "execute", "head", "goal_bias", "batch"),
                    "policy": ("head",), "rrt-torch": ("goal_bias", "batch")}


def _check_options(kind: str, kw: Mapping[str, Any], known: Sequence[str]) -> None:
    """``InputError`` naming keyword options a planner does not have (a typo would otherwise be ignored)."""
    unknown = sorted(set(kw) - set(known))
    if unknown:
        raise InputError(f"planner {kind!r}: unknown option(s) {', '.join(unknown)}; known: "
                         f"{', '.join(sorted(known)) or 'none'}")


class PlanningFailed(SciflowError):
    """No plan was found within the budget."""


def _as_scenario(scenario: Any) -> Scenario:
    """A Scenario (checked again, as it may have changed since it was made), or one read from a scenario file
    path; anything else is an ``InputError``."""
    if isinstance(scenario, Scenario):
        return check_scenario(scenario)
    if isinstance(scenario, (str, os.PathLike)):
        return load_scenario(scenario)
    raise InputError(f"scenario: expected a Scenario or the path of a scenario file, got {type(scenario).__name__}")


class DiTree(Method):
    """Flow-matching action-chunk policy + RRT over the true dynamics.

    Args:
        horizon: controls per chunk (0.1 s each by default). execute: controls propagated per expansion.
        widths, kernel_size, blocks: the temporal U-Net (widths per level, residual blocks per level). map_dim, cond_dim: condition encoder sizes.
        flow_steps: Euler steps when sampling a chunk. goal_bias: probability of the goal as target.
        random_frac: fraction of each iteration's expansions that use uniformly random held controls (as
            kinodynamic RRT does) instead of policy chunks (mixed expansion; 0 = policy only).
        batch: expansions per iteration. obs_size, obs_cell, max_range: the local observation.
        robot: CarParams the policy was trained for (a dict).
        batch_size, goal_prob, hindsight: training batch, goal-target probability, hindsight offsets
            (control steps).
        head_hidden: hidden widths of a distilled flow map (``FlowMapHead``, made by ``distill``); None: none.
        use_head: sample chunks with the distilled flow map (one MLP call) instead of the U-Net's Euler steps.
    """

    name = "ditree"

    def __init__(self, horizon: int = 16, execute: int = 8, widths: Sequence[int] = (32, 64), kernel_size: int = 3,
                 map_dim: int = 64, cond_dim: int = 64, blocks: int = 1, flow_steps: int = 1, goal_bias: float = 0.15,
                 batch: int = 128, obs_size: int = 20, obs_cell: float = 0.2, max_range: float = 5.0,
                 robot: Mapping[str, Any] | None = None, batch_size: int = 128, goal_prob: float = 0.3,
                 hindsight: Sequence[int] = (4, 40), random_frac: float = 0.5,
                 head_hidden: Sequence[int] | None = None, use_head: bool = False) -> None:
        super().__init__()
        if not 0.0 <= float(random_frac) <= 1.0:
            raise InputError(f"random_frac: must be in [0, 1], got {random_frac}")
        if execute > horizon or execute < 1:
            raise InputError(f"execute: must be in [1, horizon={horizon}], got {execute}")
        if horizon % (2 ** (len(widths) - 1)):
            raise InputError(f"horizon: {horizon} must be divisible by {2 ** (len(widths) - 1)} for {len(widths)} "
                             "U-Net levels")
        if use_head and not head_hidden:
            raise InputError("use_head: needs a distilled head (head_hidden); make one with `sciflow ditree distill`")
        check_count("flow_steps", flow_steps)
        check_in_range("goal_bias", goal_bias, 0.0, 1.0)
        check_count("batch", batch)
        self.robot = CarParams.from_dict(robot)
        self._config = {"horizon": horizon, "execute": execute, "widths": list(widths), "kernel_size": kernel_size,
                        "map_dim": map_dim, "cond_dim": cond_dim, "blocks": blocks, "flow_steps": flow_steps,
                        "goal_bias": goal_bias, "batch": batch, "obs_size": obs_size, "obs_cell": obs_cell,
                        "max_range": max_range, "robot": self.robot.to_dict(), "batch_size": batch_size,
                        "goal_prob": goal_prob, "hindsight": list(hindsight), "random_frac": float(random_frac),
                        "head_hidden": list(head_hidden) if head_hidden else None, "use_head": bool(use_head)}
        self.obs = LocalObservation(obs_size, obs_cell, max_range)
        self.model = ChunkPolicyNet(horizon, obs_size, tuple(widths), kernel_size, map_dim, cond_dim, blocks,
                                    tuple(head_hidden) if head_hidden else None)
        self.matcher = FlowMatcher(LinearPath())

    def config(self) -> dict[str, Any]:
        return dict(self._config)

    # -- training ------------------------------------------------------------------------------
    def _windows(self, demos: Mapping[str, Any]) -> dict[str, Tensor]:
        for key in ("states", "controls", "crops", "offsets", "goals"):
            if key not in demos:
                raise InputError(f"dataset.{key}: missing (expected a demos file from sciflow.data.robot_demos)")
        size = self._config["obs_size"]
        meta = demos.get("meta")
        made = meta.get("observation") if isinstance(meta, Mapping) else None
        if made is not None:          # crops cut with other cells or range would be another input distribution
            ours = self.obs.config()
            if any(k in made and not math.isclose(float(made[k]), float(v)) for k, v in ours.items()):
                raise InputError(f"dataset.meta.observation: the demonstrations' crops were made with {made}, "
                                 f"this model observes with {ours}; make demos with the model's settings")
        crops = torch.as_tensor(np.asarray(demos["crops"]))
        if crops.dim() != 3 or tuple(crops.shape[1:]) != (size, size):
            raise InputError(f"dataset.crops: expected (N, {size}, {size}), got {tuple(crops.shape)}")
        offsets = torch.as_tensor(np.asarray(demos["offsets"]), dtype=torch.long)
        n = int(offsets[-1])
        demo = torch.repeat_interleave(torch.arange(len(offsets) - 1), offsets[1:] - offsets[:-1])
        if n == 0:
            raise InputError("dataset: holds no demonstrations")
        return {"states": torch.as_tensor(np.asarray(demos["states"]), dtype=torch.float32),
                "controls": self.robot_car().normalize_controls(
                    torch.as_tensor(np.asarray(demos["controls"]), dtype=torch.float32)),
                "crops": crops.to(torch.uint8), "demo": demo, "end": offsets[1:][demo],
                "goals": torch.as_tensor(np.asarray(demos["goals"]), dtype=torch.float32)[:, :2]}

    def robot_car(self):
        from ...domains.robots import Car
        return Car(self.robot)

    def sample_batch(self, data: dict[str, Tensor], n: int, g: torch.Generator) -> dict[str, Tensor]:
        """n training windows (see the module docstring)."""
        h = self._config["horizon"]
        lo, hi = self._config["hindsight"]
        total = data["states"].shape[0]
        i = randint(total, (n,), generator=g)
        end = data["end"][i]
        idx = i[:, None] + torch.arange(h)[None, :]
        inside = idx < end[:, None]
        chunk = data["controls"][idx.clamp(max=total - 1)] * inside[..., None]
        j = torch.minimum(i + lo + randint(hi - lo + 1, (n,), generator=g), end - 1)
        use_goal = rand((n,), generator=g) < self._config["goal_prob"]
        target = torch.where(use_goal[:, None], data["goals"][data["demo"][i]], data["states"][j, :2])
        states = data["states"][i]
        proprio = self.obs.proprio(self.robot, states, target)
        crop = data["crops"][i].to(torch.float32)
        flip = rand((n,), generator=g) < 0.5                    # mirror across the heading axis
        crop = torch.where(flip[:, None, None], crop.flip(1), crop)
        sign = torch.where(flip, -1.0, 1.0)
        proprio = proprio * torch.stack([torch.ones(n), sign, torch.ones(n), sign, torch.ones(n)], dim=1)
        chunk = chunk * torch.stack([torch.ones(n), sign], dim=1)[:, None, :]
        return {"chunk": chunk, "crop": crop, "proprio": proprio}

    def fit(self, dataset: Mapping[str, Any], config: TrainConfig, *, device: str | None = None,
            checkpoint_path: str | os.PathLike | None = None) -> TrainResult:
        """dataset: a demos dict (``sciflow.data.robot_demos.load_demos``)."""
        data = self._windows(dataset)
        bs = int(self._config["batch_size"])

        def loss_fn(model: ChunkPolicyNet, batch: dict[str, Tensor], g: torch.Generator) -> Tensor:
            cond = model.encode(batch["crop"], batch["proprio"])
            x1 = batch["chunk"]
            return self.matcher.loss(model, randn_like(x1, generator=g), x1, cond={"cond": cond}, generator=g)

        result = self.train_model(loss_fn, lambda g: self.sample_batch(data, bs, g), config, device=device,
                                  checkpoint_path=checkpoint_path, windows=int(data["states"].shape[0]),
                                  demos=int(data["goals"].shape[0]))
        self.info["train"]["history"] = result.history
        self.model.eval()
        return result

    # -- planning ------------------------------------------------------------------------------
    def sampler(self, *, flow_steps: int | None = None, execute: int | None = None,
                head: bool | None = None) -> PolicySampler:
        """The policy's chunk sampler; ``head`` (default: the model's ``use_head``) picks the distilled flow map."""
        horizon = self._config["horizon"]
        if execute is None:
            execute = self._config["execute"]
        elif check_count("execute", execute) > horizon:
            raise InputError(f"execute: must be in [1, horizon={horizon}], got {execute}")
        flow_steps = self._config["flow_steps"] if flow_steps is None else check_count("flow_steps", flow_steps)
        head = self._config["use_head"] if head is None else check_bool("head", head)
        self.model.eval()
        return PolicySampler(self.model, self.obs, execute, flow_steps, head, robot=self.robot)

    def attach_head(self, head: FlowMapHead) -> None:
        """Give the policy a distilled flow map (``distill.distill_head``); its widths are saved with the model.
        Sampling keeps its current default until ``set_sampling(use_head=True)``."""
        if head.horizon != self.model.horizon:
            raise InputError(f"head: made for horizon {head.horizon}, the policy's is {self.model.horizon}")
        self.model.head = head
        self._config["head_hidden"] = list(head.hidden)

    def set_sampling(self, *, use_head: bool | None = None, random_frac: float | None = None) -> None:
        """Change the sampling defaults saved with the model (checked like the constructor's)."""
        if use_head and self.model.head is None:
            raise InputError("use_head: this model has no distilled head; make one with `sciflow ditree distill`")
        if random_frac is not None and not 0.0 <= float(random_frac) <= 1.0:
            raise InputError(f"random_frac: must be in [0, 1], got {random_frac}")
        if use_head is not None:
            self._config["use_head"] = bool(use_head)
        if random_frac is not None:
            self._config["random_frac"] = float(random_frac)

    def planner(self, kind: str = "ditree", **kw: Any) -> Any:
        """A planner object with ``solve(scenario, budget_s=..., generator=...) -> PlanResult``."""
        if kind in ("ditree", "policy"):
            _check_options(kind, kw, _PLANNER_OPTIONS[kind])
        if kind == "ditree":
            frac = check_in_range("random_frac", kw.get("random_frac", self._config["random_frac"]), 0.0, 1.0)
            sampler = self.sampler(flow_steps=kw.get("flow_steps"), execute=kw.get("execute"), head=kw.get("head"))
            if frac > 0:
                sampler = MixedSampler(sampler, frac)
            return TreePlanner(sampler, goal_bias=kw.get("goal_bias", self._config["goal_bias"]),
                               batch=kw.get("batch", self._config["batch"]), name="ditree")
        if kind == "policy":
            return PolicyRollout(self.sampler(head=kw.get("head")))
        return baseline_planner(kind, **kw)

    def _check_robot(self, sc: Scenario) -> None:
        sc.check_robot(self.robot)

    def solve(self, scenario: Scenario | str | os.PathLike, *, planner: str = "ditree", budget_s: float | None = None,
              generator: torch.Generator | None = None, keep_tree: bool = False,
              device: str | torch.device = "cpu") -> PlanResult:
        """Plan once; the full result (success, time, tree size, edges for pictures). ``scenario``: a Scenario
        or the path of a scenario file."""
        budget_s = check_budget(budget_s)
        device = check_device(device)
        scenario = _as_scenario(scenario)
        if planner in ("ditree", "policy"):
            self._check_robot(scenario)
            self.warn_if_untrained()
            self.model.to(device)
        pl = self.planner(planner)
        problem = Problem.from_scenario(scenario, device) if planner != "rrt" else scenario
        return pl.solve(problem, budget_s=budget_s, generator=generator, keep_tree=keep_tree)

    def plan(self, scenario: Scenario | str | os.PathLike, *, planner: str = "ditree", budget_s: float | None = None,
             generator: torch.Generator | None = None, device: str | torch.device = "cpu") -> Trajectory:
        """A feasible plan as a Trajectory (times s, states (T, 1, 5), extras["controls"] (1, T - 1, 2));
        raises ``PlanningFailed`` when none is found within the budget. ``scenario``: a Scenario or a file."""
        budget_s = check_budget(budget_s)
        device = check_device(device)
        scenario = _as_scenario(scenario)
        res = self.solve(scenario, planner=planner, budget_s=budget_s, generator=generator, device=device)
        if not res.success:
            raise PlanningFailed(f"{planner}: no plan for scenario {scenario.name} within "
                                 f"{scenario.budget_s if budget_s is None else budget_s} s ({res.tree_size} nodes)")
        return plan_trajectory(res, scenario=scenario.name)

    def generate(self, condition: Scenario, n: int, *, generator: torch.Generator | None = None,
                 device: str | torch.device = "cpu") -> Trajectory:
        """n independent DiTree plans of one scenario, padded to a common length by holding the last state
        (planned on ``device``, returned on the CPU).

        extras: ``controls`` (n, T - 1, 2) (zero after the end), ``length`` (n,) frames of each plan,
        ``success`` (n,) bool (failed rows hold the start state).
        """
        n = check_count("n", n)
        device = check_device(device)
        g = generator if generator is not None else make_generator(0)
        condition = _as_scenario(condition)
        results = [self.solve(condition, generator=g, device=device) for _ in range(n)]
        lens = [r.states.shape[0] if r.success else 1 for r in results]
        t = max(lens)
        states = torch.zeros(t, n, 5)
        controls = torch.zeros(n, max(t - 1, 0), 2)
        for k, r in enumerate(results):
            s = r.states.detach().cpu() if r.success else torch.tensor([condition.start], dtype=torch.float32)
            states[: s.shape[0], k] = s
            states[s.shape[0]:, k] = s[-1]
            if r.success:
                controls[k, : r.controls.shape[0]] = r.controls.detach().cpu()
        return Trajectory(times=torch.arange(t, dtype=torch.float64) * condition.robot.dt, states=states,
                          extras={"controls": controls, "length": torch.tensor(lens),
                                  "success": torch.tensor([r.success for r in results])},
                          info={"method": self.name, "scenario": condition.name})


def baseline_planner(kind: str, **kw: Any) -> Any:
    """Planners that need no policy: ``rrt`` (OMPL control RRT), ``sst`` and ``rrt-torch`` (sciflow)."""
    if kind == "rrt":
        from .ompl_rrt import OMPLRRT
        _check_options(kind, kw, list(inspect.signature(OMPLRRT).parameters))
        return OMPLRRT(**kw)
    if kind == "sst":
        _check_options(kind, kw, list(inspect.signature(SSTPlanner).parameters))
        return SSTPlanner(**kw)
    if kind == "rrt-torch":
        _check_options(kind, kw, _PLANNER_OPTIONS[kind])
        return TreePlanner(RandomControls(), goal_bias=kw.get("goal_bias", 0.05), batch=kw.get("batch", 128))
    raise InputError(f"planner: unknown planner {kind!r}; known: {', '.join(PLANNERS)}")
