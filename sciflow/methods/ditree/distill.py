"""Distil the policy's Euler sampler into a one-call flow map (``FlowMapHead``).

Why: on a CPU the U-Net is about half of a DiTree iteration, although with the shipped single Euler step its
output hardly depends on the noise (the one-step flow from t = 0 is the conditional mean chunk). A small MLP
that maps (noise, condition) to the sampler's chunk costs a fraction of that.

How: run DiTree with the U-Net sampler (the teacher) on maps of the training family and record the condition
vectors of the policy's queries (the states, targets and crops the tree really asks about); draw one noise
chunk per condition, integrate it with the teacher's Euler steps, and fit the head to those chunks by mean
squared error with the core ``Trainer``. The crop encoder and condition network are shared and stay fixed.
"""
from __future__ import annotations

import os
import time
from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor

from ...core.errors import InputError
from ...core.random import make_generator, randint, randn
from ...core.training import TrainConfig, Trainer
from ...domains.robots import Scenario
from .planners import TreePlanner
from .policy import ChunkPolicyNet, FlowMapHead, PolicySampler, integrate_chunks
from .problem import MixedSampler, Problem

__all__ = ["collect_conditions", "distill_head", "euler_chunks"]


def euler_chunks(net: ChunkPolicyNet, x0: Tensor, cond: Tensor, steps: int, rows: int = 4096) -> Tensor:
    """``integrate_chunks`` over many rows, ``rows`` at a time, without gradients."""
    with torch.no_grad():
        return torch.cat([integrate_chunks(net, x0[i:i + rows], cond[i:i + rows], int(steps))
                          for i in range(0, x0.shape[0], rows)])


class _RecordingSampler(PolicySampler):
    """The U-Net sampler, keeping every condition vector it was asked for."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.seen: list[Tensor] = []

    def conditions(self, problem: Problem, states: Tensor, targets: Tensor, nodes: Tensor | None = None) -> Tensor:
        cond = super().conditions(problem, states, targets, nodes)
        self.seen.append(cond.detach().cpu())
        return cond


def collect_conditions(method: Any, scenarios: Iterable[Scenario], *, iterations: int = 50, seed: int = 0,
                       random_frac: float | None = None, budget_s: float = 600.0, progress: bool = True) -> Tensor:
    """(N, cond_dim) condition vectors of the policy queries made by DiTree (U-Net sampler, the method's
    settings) on ``scenarios``: each run stops at its first solution or after ``iterations`` iterations (not
    at a wall-clock budget, so the rows do not depend on the machine's speed; ``budget_s`` is only a safety
    stop); run k is seeded with ``seed + k``."""
    from ...core.training.progress import progress as bar
    cfg = method.config()
    frac = cfg["random_frac"] if random_frac is None else float(random_frac)
    rec = _RecordingSampler(method.model.eval(), method.obs, cfg["execute"], cfg["flow_steps"], head=False)
    planner = TreePlanner(MixedSampler(rec, frac) if frac > 0 else rec, goal_bias=cfg["goal_bias"],
                          batch=cfg["batch"], name="ditree")
    scenarios = list(scenarios)
    for k, sc in enumerate(bar(scenarios, desc="collect", enabled=progress, unit="map")):
        rec.reset()
        planner.solve(Problem.from_scenario(sc), budget_s=budget_s, generator=make_generator(seed + k),
                      max_iterations=int(iterations))
    if not rec.seen:
        raise InputError("scenarios: no policy query was made (empty list, or no iteration)")
    return torch.cat(rec.seen)


def distill_head(method: Any, conds: Tensor, *, teacher_steps: int = 1, hidden: tuple[int, ...] = (256, 256),
                 steps: int = 20_000, batch_size: int = 1024, lr: float = 1e-3, seed: int = 0,
                 checkpoint_path: str | os.PathLike | None = None, progress: bool = True) -> dict[str, Any]:
    """Fit a new ``FlowMapHead`` on ``method.model`` to the teacher's ``teacher_steps``-step Euler sampler at
    the conditions ``conds`` (N, cond_dim); one noise draw per condition. Attaches the head to the method
    (``DiTree.attach_head``; sampling keeps its default until ``set_sampling(use_head=True)``) and returns a summary that is also kept in ``method.info["distill"]``."""
    net: ChunkPolicyNet = method.model.eval()
    width = net.cond[-1].out_features
    if conds.dim() != 2 or conds.shape[1] != width or conds.shape[0] < 20:
        raise InputError(f"conds: expected (N >= 20, {width}) condition vectors, got {tuple(conds.shape)}")
    if int(teacher_steps) < 1:
        raise InputError(f"teacher_steps: must be >= 1, got {teacher_steps}")
    g = make_generator(seed)
    t0 = time.perf_counter()
    x0 = randn((conds.shape[0], net.horizon, 2), generator=g, dtype=conds.dtype)
    target = euler_chunks(net, x0, conds, teacher_steps)
    teacher_s = time.perf_counter() - t0
    n_val = max(1, conds.shape[0] // 20)                     # the last 5 % are held out
    train = slice(0, conds.shape[0] - n_val)
    head = FlowMapHead(net.horizon, conds.shape[1], tuple(hidden))

    def batch(gen: torch.Generator) -> dict[str, Tensor]:
        i = randint(conds.shape[0] - n_val, (int(batch_size),), generator=gen)
        return {"x0": x0[train][i], "cond": conds[train][i], "target": target[train][i]}

    def loss_fn(model: FlowMapHead, b: dict[str, Tensor], gen: torch.Generator) -> Tensor:
        return ((model(b["x0"], b["cond"]) - b["target"]) ** 2).mean()

    cfg = TrainConfig(steps=int(steps), lr=float(lr), warmup_steps=min(200, int(steps) // 10), lr_schedule="cosine",
                      min_lr_ratio=0.02, ema_decay=0.999, seed=int(seed), progress=progress, desc="distill")
    trainer = Trainer(head, loss_fn, cfg, device="cpu", checkpoint_path=checkpoint_path,
                      run_config={"method": "ditree-distill", "teacher_steps": int(teacher_steps),
                                  "hidden": list(hidden), "rows": int(conds.shape[0])})
    result = trainer.fit(batch)
    trainer.averaged_model()
    head.eval()
    with torch.no_grad():
        val = slice(conds.shape[0] - n_val, None)
        err = ((head(x0[val], conds[val]) - target[val]) ** 2).mean().item()
        spread = ((target[val] - target[val].mean(0)) ** 2).mean().item()
    method.attach_head(head)
    summary = {"teacher_steps": int(teacher_steps), "hidden": list(hidden), "rows": int(conds.shape[0]),
               "steps": result.steps, "seconds": round(result.seconds + teacher_s, 1),
               "final_loss": result.final_loss, "heldout_mse": err, "heldout_target_variance": spread}
    method.info["distill"] = summary
    return summary
