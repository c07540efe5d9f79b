"""Workflow task ``scattering``: render a scene with the learned (cvae) or brute-force (volpath) integrator."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from ...domains.photons.conditions import MIN_SIGMA_R, SIGMA_MAX
from ..checks import load_model, loaded_model
from ..context import RunContext
from ..registry import register_task
from ..schema import ModelPath, StrictModel, one_or_more


class ScatteringTask(StrictModel):
    scene: Literal["sphere", "box", "blob"] = "sphere"
    integrators: one_or_more(Literal["cvae", "volpath"], "integrator (cvae, volpath)") = Field(default_factory=lambda: ["cvae"])
    spp: int = Field(16, ge=1)
    sigma_r: float = Field(64.0, gt=0, description="optical radius of the shape (sigma_t * radius)")
    g: float = Field(0.5, gt=-1, lt=1)
    albedo: float = Field(0.999, ge=0, le=1)
    width: int = Field(64, ge=1, le=4096)
    height: int = Field(64, ge=1, le=4096)
    model: ModelPath = "models/scattering"
    min_sigma_r: float = Field(MIN_SIGMA_R, gt=0)
    walks: int = Field(0, ge=0, le=10_000_000,
                       description="learned walks at (sigma_r, g, albedo) written to walks.npz (0: none)")

    @model_validator(mode="after")
    def _model_and_range(self) -> ScatteringTask:
        # checked before the output folder is claimed: the model that the cvae integrator or the walks read is
        # a saved ScatteringCVAEs, and the walks' medium lies in the CVAEs' training range (the renderer caps a
        # larger sphere at its max_sigma_r, the walks cannot)
        if "cvae" not in self.integrators and not self.walks:
            return self
        from ...methods.scattering import ScatteringCVAEs
        load_model(ScatteringCVAEs, self.model, "model", owner=self)
        if "cvae" in self.integrators:
            import inspect

            from ...methods.scattering.render import SphereTracingCVAETracer
            largest = inspect.signature(SphereTracingCVAETracer.__init__).parameters["max_sigma_r"].default
            if self.min_sigma_r > largest:
                raise ValueError(f"min_sigma_r: the learned tracer jumps in spheres of {self.min_sigma_r:g} to "
                                 f"{largest:g} mean free paths; min_sigma_r must be <= {largest:g}")
        if self.walks and self.sigma_r > SIGMA_MAX:
            raise ValueError(f"sigma_r: the CVAEs were trained on sigma_r <= {SIGMA_MAX:g} mean free paths, and "
                             f"walks: {self.walks} draws learned walks at sigma_r = {self.sigma_r:g}; lower sigma_r "
                             f"or set walks: 0 (the renders split a larger medium into smaller spheres)")
        return self


@register_task("scattering", ScatteringTask)
def run(cfg: ScatteringTask, ctx: RunContext) -> dict:
    import time

    import numpy as np

    from ...domains.photons.scene import make_scene
    from ...methods.scattering import ScatteringCVAEs
    from ...methods.scattering.api import make_tracer, save_image

    scene = make_scene(cfg.scene, sigma_r=cfg.sigma_r, albedo=cfg.albedo, g=cfg.g, width=cfg.width,
                       height=cfg.height)
    # read at validation, on the CPU (the tracer moves the CVAEs to the render's device)
    model = loaded_model(cfg, ScatteringCVAEs, cfg.model) if "cvae" in cfg.integrators or cfg.walks else None
    for name in ctx.shard(cfg.integrators):
        key = f"{cfg.scene}_{name}"
        if ctx.is_done(key):
            continue
        kw = {"min_sigma_r": cfg.min_sigma_r} if name == "cvae" else {}
        tracer = make_tracer(scene, name, model if name == "cvae" else None, **kw)
        t0 = time.perf_counter()
        res = tracer.render(cfg.spp, generator=ctx.item_generator(key), device=ctx.device)
        info = {**res.summary(), "wall_seconds": time.perf_counter() - t0, "samples": int(res.paths),
                "png": f"{key}.png", "radiance": f"{key}.npy"}
        from ...core.files import atomic_path
        with atomic_path(ctx.path(f"{key}.npy"), suffix=".npy") as tmp:
            np.save(tmp, res.image)
        save_image(ctx.path(f"{key}.png"), res.image)
        ctx.mark_done(key, info)
        ctx.log(f"{key}: {res.paths} paths in {res.seconds:.1f} s")
    if cfg.walks and ctx.is_main and not ctx.is_done("walks"):
        ctx.mark_done("walks", _write_walks(cfg, ctx, model))
    done = ctx.gather([*(f"{cfg.scene}_{name}" for name in cfg.integrators), "walks"])   # every rank's renders
    results = {name: done[f"{cfg.scene}_{name}"] for name in cfg.integrators if f"{cfg.scene}_{name}" in done}
    out = {"scene": cfg.scene, "spp": cfg.spp, "sigma_r": cfg.sigma_r, "results": results}
    if cfg.walks and "walks" in done:
        out["walks"] = {k: v for k, v in done["walks"].items() if k != "key"}
    return out


def _write_walks(cfg: ScatteringTask, ctx: RunContext, model: Any) -> dict:
    """CVAE walks in the unit sphere at the scene's medium, as a two-frame trajectory (entry, exit) in npz
    (``model``: the CVAEs on the CPU, read again onto another run device)."""
    import torch

    from ...io import write_trajectory
    from ...methods.scattering import ScatteringCVAEs

    if torch.device(ctx.device).type != "cpu":
        model = ScatteringCVAEs.load(cfg.model, map_location=ctx.device)
    traj = model.generate({"sigma_r": cfg.sigma_r, "g": cfg.g, "albedo": cfg.albedo}, cfg.walks,
                          generator=ctx.item_generator("walks"))
    write_trajectory(ctx.path("walks.npz"), traj.to("cpu"))
    n = traj.extras["n_events"].double()
    return {"file": "walks.npz", "n": cfg.walks, "mean_events": float(n.mean()),
            "mean_survival": float(traj.extras["survival"].double().mean())}
