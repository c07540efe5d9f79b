"""Workflow task ``ditree``: train the policy (or load shipped weights), plan every scenario of a folder,
write plans (npz/CSV), pictures (PNG) and metrics; resumes per (scenario, seed) and shards over ranks."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, PrivateAttr, model_validator

from ...core.errors import InputError
from ..checks import field_errors, load_model, loaded_model, writable_model_target
from ..context import RunContext
from ..registry import register_task
from ..schema import ExistingPath, StrictModel, one_or_more

__all__ = ["DiTreeTask", "DiTreeTrain", "run"]


class DiTreeTrain(StrictModel):
    """Train a policy before planning (omit the block to load ``model``)."""

    demos: ExistingPath = Field(description="demonstrations .npz (sciflow ditree demos)")
    steps: int = Field(4000, ge=1)
    lr: float = Field(1e-3, gt=0)
    batch_size: int = Field(128, ge=1)
    widths: list[Annotated[int, Field(ge=1)]] = Field(default_factory=lambda: [32, 64])
    horizon: int = Field(16, ge=1)
    execute: int = Field(8, ge=1)
    checkpoint_every: int = Field(250, ge=0)

    @model_validator(mode="after")
    def _chunk(self) -> DiTreeTrain:
        if self.execute > self.horizon:
            raise ValueError(f"execute: must be <= horizon ({self.horizon}), got {self.execute}")
        return self


class DiTreeTask(StrictModel):
    model: str | None = Field(None, description="trained model folder to read (default: the shipped "
                              "models/ditree), or to write when training (default: OUTPUT/model)")
    train: DiTreeTrain | None = None
    scenarios: str = Field(description="folder of scenario files (.yaml/.yml/.json)")
    planner: Literal["ditree", "policy", "sst", "rrt", "rrt-torch"] = "ditree"
    seeds: int = Field(1, ge=1, description="plans per scenario")
    budget_s: float | None = Field(None, gt=0, description="override each scenario's budget_s")
    batch: int = Field(8, ge=1, description="scenarios loaded and planned per batch")
    formats: one_or_more(Literal["npz", "csv"], "output format (npz, csv)") = Field(default_factory=lambda: ["npz", "csv"])
    pictures: bool = True
    threads: int = Field(1, ge=1)
    _robot: Any = PrivateAttr(None)          # the policy's CarParams, for a policy planner
    _scenarios: Any = PrivateAttr(None)      # {file: ((mtime_ns, size), Scenario)} read at validation, for run

    @model_validator(mode="after")
    def _model_and_demos(self) -> DiTreeTask:
        # checked before the output folder is claimed: a model to read (no train block, a policy planner) is a
        # saved DiTree; with a train block the network its settings build can be made, the demos file is a
        # demonstrations file made with the model's observation, and the model target (a folder or a .pt file)
        # is writable and holds no other file that training would overwrite
        from ...methods.ditree import DiTree
        uses_policy = self.planner in ("ditree", "policy")
        if self.train is None:
            if uses_policy:
                self._robot = load_model(DiTree, self.model or "models/ditree", "model", owner=self).robot
            return self
        t = self.train
        try:
            policy = DiTree(widths=tuple(t.widths), horizon=t.horizon, execute=t.execute, batch_size=t.batch_size)
        except InputError as e:         # horizon: must be divisible by 2 ** (levels - 1)
            raise ValueError(f"train.{e}") from None
        with field_errors("train.demos", replace=("demos",)):
            _check_demos(Path(t.demos), policy.obs.config())
        if self.model is not None:
            writable_model_target(self.model, DiTree, "model")
        self._robot = policy.robot if uses_policy else None
        return self

    @model_validator(mode="after")
    def _scenario_files(self) -> DiTreeTask:
        # every file is read here, so a malformed one, or one for another car than the policy's, stops `validate`
        # and `run` before any work; `run` plans the scenarios read here (each file is read once)
        from ...domains.robots import load_scenario, scenario_files
        names: dict[str, Path] = {}
        kept = {}
        with field_errors("scenarios", replace=("scenarios",)):
            for f in scenario_files(self.scenarios):
                sc = load_scenario(f)
                if self._robot is not None:
                    sc.check_robot(self._robot, str(f))
                if sc.name in names:   # outputs and resume markers are named by it: one would never be planned
                    raise InputError(f"{names[sc.name]} and {f} are both scenario {sc.name!r} (outputs are named by "
                                     f"it); rename one")
                names[sc.name] = f
                kept[f] = (_stamp(f), sc)
        self._scenarios = kept
        return self

    def input_paths(self) -> dict[str, Path]:
        from ...methods.base import find_model_file
        out = {**super().input_paths(), "scenarios": Path(self.scenarios)}
        if self.train is None and self.planner in ("ditree", "policy"):      # a model read, not written
            out["model"] = find_model_file(self.model or "models/ditree")
        return out


def _stamp(f: Path) -> tuple[int, int]:
    st = f.stat()
    return st.st_mtime_ns, st.st_size


def _scenarios(cfg: DiTreeTask, files: list[Path]) -> dict:
    """{file: Scenario}: those read at validation (handed over once, if unchanged since), the others read now."""
    from ...domains.robots import load_scenario
    kept, cfg._scenarios = cfg._scenarios or {}, None
    return {f: kept[f][1] if f in kept and kept[f][0] == _stamp(f) else load_scenario(f) for f in files}


def _check_demos(path: Path, observation: dict[str, Any]) -> None:
    """The demos file's header (its format, its observation settings and its count), without its crops."""
    import math

    from ...data.robot_demos import demos_header
    meta, offsets = demos_header(path)
    made = meta["observation"]
    if any(k in made and not math.isclose(float(made[k]), float(v)) for k, v in observation.items()):
        raise InputError(f"demos: the crops of {path} were made with {made}, the policy observes with "
                         f"{observation}; make demos with the model's settings")
    if offsets.ndim != 1 or offsets.size < 2 or int(offsets[-1]) <= 0:
        raise InputError(f"demos: {path} holds no demonstrations")


def _writer(ctx: RunContext):
    try:
        from ...io import write_trajectory  # noqa: F401
    except ImportError:
        return None
    return lambda path, traj: ctx.write_trajectory(Path(path).relative_to(ctx.output), traj)


@register_task("ditree", DiTreeTask, resume_free=("batch", "threads", "seeds"))
def run(cfg: DiTreeTask, ctx: RunContext) -> dict[str, Any]:
    import torch

    from ...domains.robots import scenario_files
    from ...methods.ditree import DiTree
    from ...methods.ditree.evaluate import run_once, summarize
    from ...methods.ditree.export import export_plan
    from ...methods.ditree.method import baseline_planner
    from ...methods.ditree.plot import save_plan_png
    from ...methods.ditree.tree import plan_trajectory

    torch.set_num_threads(cfg.threads)
    files = scenario_files(cfg.scenarios)
    summary: dict[str, Any] = {"planner": cfg.planner, "scenarios": len(files)}
    model = None
    if cfg.train is not None:
        from ...core.random import seeded
        from ...core.training import TrainConfig
        from ...data.robot_demos import load_demos
        from ...methods.base import resolve_model_file
        t = cfg.train
        target = cfg.model or ctx.output / "model"      # never over the shipped weights unless asked to
        saved = resolve_model_file(target)
        if ctx.is_done("model"):     # this run's model: planning goes on with it
            model = DiTree.load(target)
            summary["train"] = {**ctx.done_info("model").get("train", {}), "resumed": True}
        else:
            with seeded(ctx.stream_seed("init")):        # initial weights from the workflow seed
                model = DiTree(widths=tuple(t.widths), horizon=t.horizon, execute=t.execute,
                               batch_size=t.batch_size)
            res = model.fit(load_demos(t.demos), TrainConfig(steps=t.steps, lr=t.lr, seed=ctx.seed,
                                                            checkpoint_every=t.checkpoint_every, desc="ditree"),
                            device=str(ctx.device), checkpoint_path=ctx.state_path("train/checkpoint.pt"))
            summary["train"] = {"steps": res.steps, "final_loss": res.final_loss, "model": str(target)}
            if ctx.is_main:
                model.save(target)
                ctx.mark_done("model", {"train": summary["train"]}, files=[saved])
    if cfg.planner in ("ditree", "policy"):
        model = model or loaded_model(cfg, DiTree, cfg.model or "models/ditree")
        planner = model.planner(cfg.planner)
    else:
        planner = baseline_planner(cfg.planner)
    writer = _writer(ctx)
    scenarios = _scenarios(cfg, files)      # every rank needs every name for the summary's keys
    if cfg.planner in ("ditree", "policy"):
        for f, sc in scenarios.items():    # before the first plan: the policy's car is the scenarios' car
            sc.check_robot(model.robot, str(f))
    mine = ctx.shard(files)
    bar = ctx.progress(total=len(mine) * cfg.seeds, desc=f"plan ({cfg.planner})", unit="plan")
    for b in range(0, len(mine), cfg.batch):
        for f in mine[b:b + cfg.batch]:
            sc = scenarios[f]
            for seed in range(cfg.seeds):
                key = f"{sc.name}|{cfg.planner}|{seed}"
                if ctx.is_done(key):
                    bar.update(1)
                    continue
                m, res = run_once(planner, sc, seed=seed, budget_s=cfg.budget_s or sc.budget_s,
                                  device=ctx.device, keep_tree=cfg.pictures and seed == 0)
                stem = f"{sc.name}-{cfg.planner}-s{seed}"
                if m["success"] and m.get("verified", False):     # a plan past the budget is not exported
                    traj = plan_trajectory(res, scenario=sc.name)
                    for fmt in cfg.formats:
                        export_plan(ctx.path(f"plans/{stem}.{fmt}"), traj, writer=writer if fmt == "npz" else None)
                if cfg.pictures and seed == 0:
                    save_plan_png(ctx.path(f"pictures/{stem}.png"), sc, res)
                ctx.mark_done(key, {"metrics": m})
                bar.update(1)
    bar.close()
    keys = [f"{sc.name}|{cfg.planner}|{seed}" for sc in scenarios.values() for seed in range(cfg.seeds)]
    runs = [info["metrics"] for info in ctx.gather(keys).values()]      # every rank's plans
    if ctx.is_main:
        ctx.write_json("metrics.json", {**summarize(runs), "runs": runs})
    summary.update({k: v for k, v in summarize(runs).items()})
    return summary
