"""Task ``flow``: train (or load) a conditional flow on a toy distribution, generate, export, plot, measure W2.

The quickstart: a flow from N(0, I) to points on a 3-D helix whose pitch is the condition.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import torch
from pydantic import Field, field_validator, model_validator

from ...core.random import seeded
from ...core.registry import COUPLINGS, ODE_SOLVERS, PATHS
from ...core.training import TrainConfig
from ...core.trajectory import Trajectory
from ...data.toy import eight_gaussians, helix, moons
from ..checks import load_model, loaded_model
from ..context import RunContext
from ..registry import register_task
from ..schema import ModelPath, StrictModel, one_or_more, registered

__all__ = ["FlowTask", "run"]


class ToyData(StrictModel):
    kind: Literal["helix", "gaussians_to_moons"] = "helix"
    n: int = Field(8000, ge=16, description="training samples")
    pitch_range: tuple[float, float] = (0.5, 2.5)

    @field_validator("pitch_range")
    @classmethod
    def _range(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not (0 < v[0] < v[1]):
            raise ValueError(f"expected 0 < low < high, got {v}")
        return v


class ModelSettings(StrictModel):
    hidden: list[Annotated[int, Field(ge=1)]] = [128, 128, 128]
    path: registered(PATHS) = "linear"
    path_kwargs: dict[str, float] = {}
    coupling: registered(COUPLINGS) = "independent"
    coupling_kwargs: dict[str, float] = {}
    solver: Literal[ODE_SOLVERS] = "rk4"
    steps: int = Field(20, ge=1)

    @model_validator(mode="after")
    def _arguments(self) -> ModelSettings:
        """Build the path and the coupling once, so that missing or unknown arguments (``brownian_bridge``
        without ``sigma``) are refused at validation, not after the run has started."""
        for field, registry, name, kwargs in (("path_kwargs", PATHS, self.path, self.path_kwargs),
                                              ("coupling_kwargs", COUPLINGS, self.coupling, self.coupling_kwargs)):
            try:
                registry.build(name, **kwargs)
            except ValueError as e:
                raise ValueError(f"{field}: {e}") from None
        return self


class TrainSettings(StrictModel):
    steps: int = Field(3000, ge=0)
    lr: float = Field(2e-3, gt=0)
    batch_size: int = Field(256, ge=1)
    ema_decay: float | None = Field(0.999, ge=0, le=1)
    lr_schedule: Literal["constant", "cosine"] = "cosine"
    warmup_steps: int = Field(100, ge=0)


class GenerateSettings(StrictModel):
    n: int = Field(1000, ge=1, description="samples per condition")
    conditions: list[float] = [0.75, 1.5, 2.25]
    formats: one_or_more(Literal["npz", "xyz", "extxyz", "pdb", "dcd", "csv"],
                         "output format (npz, xyz, extxyz, pdb, dcd, csv)") = ["npz", "xyz", "pdb"]


class FlowTask(StrictModel):
    data: ToyData = ToyData()
    model: ModelSettings = ModelSettings()
    train: TrainSettings = TrainSettings()
    generate: GenerateSettings = GenerateSettings()
    weights: ModelPath | None = Field(None, description="a saved model to use instead of training")

    @model_validator(mode="after")
    def _generate_and_weights(self) -> FlowTask:
        # checked before the output folder is claimed: what is generated and written, and a saved model that
        # is a flow of the data's dimension and conditioning
        g = self.generate
        if self.data.kind == "helix":
            lo, hi = self.data.pitch_range
            if not g.conditions:
                raise ValueError("generate.conditions: name at least one pitch to generate helices for")
            keys: dict[str, float] = {}
            for c in g.conditions:
                if not lo <= c <= hi:
                    raise ValueError(f"generate.conditions: pitch {c:g} is outside data.pitch_range [{lo:g}, {hi:g}] "
                                     f"(the pitches the flow learns); widen pitch_range or drop it")
                if _key(c) in keys:
                    raise ValueError(f"generate.conditions: {keys[_key(c)]!r} and {c!r} would both write "
                                     f"samples/{_key(c)}.* (outputs are named by the pitch to 6 digits); keep one")
                keys[_key(c)] = c
        if self.weights is not None:
            from ...methods.flow import ConditionalFlow
            conf = load_model(ConditionalFlow, self.weights, "weights", owner=self).config()
            dim, cond_dim = _dims(self.data.kind)
            if (conf["dim"], conf["cond_dim"]) != (dim, cond_dim):
                raise ValueError(f"weights: {self.weights} is a {conf['dim']}-D flow with a condition of size "
                                 f"{conf['cond_dim']}; data.kind {self.data.kind} needs a {dim}-D flow with a "
                                 f"condition of size {cond_dim}")
        return self


def _dims(kind: str) -> tuple[int, int]:
    """(dim, cond_dim) of the flow for a data kind: the helix is 3-D with its pitch as condition."""
    return (3, 1) if kind == "helix" else (2, 0)


def _key(cond: float | None) -> str:
    """The name of a condition's outputs and resume marker."""
    return "unconditional" if cond is None else f"pitch_{cond:g}"


def _target(cfg: ToyData, n: int, cond: float | None, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor | None]:
    if cfg.kind == "helix":
        lo, hi = cfg.pitch_range
        pitch = torch.full((n,), float(cond)) if cond is not None else lo + (hi - lo) * torch.rand(n, generator=g)
        return helix(n, pitch, generator=g), pitch[:, None]
    return moons(n, generator=g), None


def _w2(a: torch.Tensor, b: torch.Tensor) -> float:
    import ot
    m = ot.dist(a.double(), b.double())
    w = torch.full((a.shape[0],), 1.0 / a.shape[0], dtype=torch.float64)
    v = torch.full((b.shape[0],), 1.0 / b.shape[0], dtype=torch.float64)
    return float(ot.emd2(w, v, m)) ** 0.5


def _plot_targets(cfg: FlowTask, cond: float | None, ctx: RunContext, key: str) -> torch.Tensor:
    """Target points for the plot, from a stream of their own: the same whether the item ran now or earlier."""
    return _target(cfg.data, cfg.generate.n, cond, ctx.generator(f"plot:{key}"))[0]


def _model(cfg: FlowTask, ctx: RunContext):
    from ...methods.flow import ConditionalFlow
    saved = ctx.output / "model.pt"
    if cfg.weights is not None:
        ctx.log(f"loading weights from {cfg.weights}")
        return loaded_model(cfg, ConditionalFlow, cfg.weights)
    # a model.pt counts only with this run's marker (a --fresh run interrupted in training leaves the old one)
    if ctx.is_done("model"):
        ctx.log(f"resuming: using the trained model at {saved}")
        return ConditionalFlow.load(saved)
    dim, cond_dim = _dims(cfg.data.kind)
    m = cfg.model
    # the initial weights come from the workflow's seed, not torch's global stream
    with seeded(ctx.stream_seed("init")):
        flow = ConditionalFlow(dim, cond_dim, hidden=m.hidden, path=m.path, path_kwargs=m.path_kwargs,
                               coupling=m.coupling, coupling_kwargs=m.coupling_kwargs, solver=m.solver,
                               steps=m.steps, batch_size=cfg.train.batch_size)
    g = ctx.generator("data")
    x1, cond = _target(cfg.data, cfg.data.n, None, g)
    data = {"x1": x1, "cond": cond}
    if cfg.data.kind == "gaussians_to_moons":
        data["x0"] = eight_gaussians(cfg.data.n, generator=g)
    t = cfg.train
    flow.fit(data, TrainConfig(steps=t.steps, lr=t.lr, ema_decay=t.ema_decay, lr_schedule=t.lr_schedule,
                               warmup_steps=min(t.warmup_steps, t.steps), seed=ctx.seed, desc="train flow"),
             device=str(ctx.device), checkpoint_path=str(ctx.state_path("train.pt")))
    if ctx.is_main:
        flow.save(saved)
        ctx.mark_done("model", files=[saved])
    return flow


def _generate(cfg: FlowTask, flow: Any, cond: float | None, key: str, ctx: RunContext
              ) -> tuple[Trajectory, torch.Generator]:
    """The samples of one condition from its item generator (the same whichever rank or run draws them), and
    that generator, which then draws the target sets."""
    g = ctx.item_generator(key)
    x0 = eight_gaussians(cfg.generate.n, generator=g) if cfg.data.kind == "gaussians_to_moons" else None
    traj = flow.generate(None if cond is None else torch.tensor([cond]), cfg.generate.n, generator=g, x0=x0,
                         device=ctx.device).cpu()
    return traj, g


def _plot_points(traj: Trajectory) -> dict[str, torch.Tensor]:
    """What the plot shows of a condition's samples: 40 flow lines and 400 end points."""
    return {"lines": traj.states[:, :40].cpu().float(), "last": traj.last[:400].cpu().float()}


def _plot(path: Path, panels: list[tuple[float | None, dict[str, torch.Tensor], torch.Tensor]]) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ...core.files import atomic_path
    n = len(panels)
    fig = plt.figure(figsize=(4.2 * n, 4.2))
    for k, (cond, points, truth) in enumerate(panels):
        lines, last = points["lines"], points["last"]
        ax = fig.add_subplot(1, n, k + 1, projection="3d" if lines.shape[-1] == 3 else None)
        for i in range(lines.shape[1]):
            ax.plot(*lines[:, i].T, color="0.6", lw=0.5, alpha=0.6)
        ax.scatter(*truth[:400].T, s=3, color="tab:blue", alpha=0.35, label="target")
        ax.scatter(*last.T, s=3, color="tab:red", alpha=0.6, label="generated")
        ax.set_title(f"pitch = {cond:g}" if cond is not None else "8 Gaussians -> moons")
        if k == 0:
            ax.legend(loc="upper left", fontsize=8)
    fig.suptitle("sciflow quickstart: flow trajectories from noise (grey) to samples (red)")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


@register_task("flow", FlowTask)
def run(cfg: FlowTask, ctx: RunContext) -> dict[str, Any]:
    from ...core.training import atomic_save, barrier, load_checkpoint
    flow = _model(cfg, ctx)
    conds: list[float | None] = list(cfg.generate.conditions) if cfg.data.kind == "helix" else [None]
    key_of = {_key(c): c for c in conds}
    for key in ctx.progress(ctx.shard(list(key_of)), desc="generate", unit="condition"):
        cond = key_of[key]
        if ctx.is_done(key):
            ctx.log(f"{key}: done in an earlier run, skipped")
            continue
        traj, g = _generate(cfg, flow, cond, key, ctx)
        truth, _ = _target(cfg.data, cfg.generate.n, cond, g)
        truth2, _ = _target(cfg.data, cfg.generate.n, cond, g)
        out = Trajectory(traj.times, traj.states,
                         extras={**traj.extras, "atomic_numbers": torch.full((traj.n_rows,), 6, dtype=torch.long)},
                         info=traj.info)
        files = [str(ctx.write_trajectory(f"samples/{key}.{fmt}", out)) for fmt in cfg.generate.formats]
        m = {"w2_generated": _w2(traj.last, truth), "w2_prior": _w2(traj.first, truth),
             "w2_two_target_sets": _w2(truth2, truth), "files": files}
        # the plotted points are kept with the run's state, so that a resumed run draws every condition
        # whichever formats it writes (the samples of a condition done earlier are not read back)
        atomic_save(_plot_points(traj), ctx.state_path(f"plot/{key}.pt"))
        ctx.mark_done(key, m)
        ctx.log(f"{key}: W2(generated, target) = {m['w2_generated']:.3f} "
                f"(two target sample sets: {m['w2_two_target_sets']:.3f}, prior: {m['w2_prior']:.3f})")
    barrier()
    from ...methods.base import find_model_file
    used = ctx.output / "model.pt" if cfg.weights is None else find_model_file(cfg.weights)
    summary: dict[str, Any] = {"model": str(used)}      # the file read or written, not one never made
    if ctx.is_main:
        summary["metrics"] = {key: ctx.done_info(key) for key in key_of}
        panels = []
        for key, cond in key_of.items():
            kept = ctx.state_path(f"plot/{key}.pt")
            # a condition done by a version that kept no points is drawn again from its item generator
            points = load_checkpoint(kept) if kept.is_file() else _plot_points(_generate(cfg, flow, cond, key,
                                                                                          ctx)[0])
            panels.append((cond, points, _plot_targets(cfg, cond, ctx, key)))
        _plot(ctx.path("quickstart.png"), panels)
        summary["plot"] = str(ctx.output / "quickstart.png")
    return {**summary, "train": flow.info.get("train", {})}
