"""Python API: render a named scene with either integrator and write PNG + .npy radiance."""
from __future__ import annotations

import inspect
import time
from pathlib import Path
from typing import Any

import numpy as np

from ...core.errors import InputError, check_in_range
from ...core.files import atomic_path, atomic_write_json
from ...core.random import make_generator
from ...core.training.device import check_device
from ...domains.photons.scene import Scene, make_scene
from ...domains.photons.volpath import RenderResult, VolumePathTracer

__all__ = ["INTEGRATORS", "make_tracer", "render", "render_scene", "save_image"]

INTEGRATORS = ("cvae", "volpath")


def _options(*classes: type) -> list[str]:
    """Keyword options of tracer constructors (besides the scene and the model)."""
    return sorted({p.name for c in classes for p in inspect.signature(c).parameters.values()
                   if p.kind is p.KEYWORD_ONLY})


def make_tracer(scene: Scene, integrator: str, model: Any = None, **kw: Any) -> VolumePathTracer:
    if not isinstance(scene, Scene):
        raise InputError(f"scene: expected a Scene (sciflow.domains.photons.scene.make_scene), got "
                         f"{type(scene).__name__}")
    if integrator not in INTEGRATORS:
        raise InputError(f"integrator: expected one of {', '.join(INTEGRATORS)}, got {integrator!r}")
    if integrator == "volpath":
        known = _options(VolumePathTracer)
    else:
        from .model import ScatteringCVAEs
        from .render import SphereTracingCVAETracer
        known = _options(VolumePathTracer, SphereTracingCVAETracer)
    unknown = sorted(set(kw) - set(known))
    if unknown:
        raise InputError(f"{integrator}: unknown option(s) {', '.join(unknown)}; known: {', '.join(known)}")
    if integrator == "volpath":
        return VolumePathTracer(scene, **kw)
    if model is None or isinstance(model, (str, Path)):
        model = ScatteringCVAEs.load(model or "models/scattering")
    if not isinstance(model, ScatteringCVAEs):
        raise InputError(f"model: expected a ScatteringCVAEs or the path of a saved one, got {type(model).__name__}")
    return SphereTracingCVAETracer(scene, model, **kw)


def render(scene: Scene, integrator: str = "cvae", *, spp: int | None = 16, time_budget: float | None = None,
           model: Any = None, seed: int = 0, device: str = "cpu", progress: bool = True, **kw: Any) -> RenderResult:
    """Render ``scene``; returns the radiance image, samples per pixel, time and event counts. ``device``:
    ``cpu``, ``cuda``, ``cuda:N`` or ``mps``; one this machine lacks is an ``InputError`` before any work."""
    device = check_device(device)
    tracer = make_tracer(scene, integrator, model, **kw)
    return tracer.render(spp, time_budget=time_budget, generator=make_generator(seed, device), device=device,
                         progress=progress)


def save_image(path: str | Path, image: np.ndarray, *, exposure: float | None = None) -> Path:
    """Tone-mapped (gamma 2.2) PNG of a radiance image, written atomically; ``exposure`` (the radiance shown as
    white) defaults to the 99.5th percentile of the finite pixels; non-finite pixels are drawn black."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    image = np.asarray(image, dtype=np.float64)
    finite = np.isfinite(image)
    if exposure is not None:
        scale = check_in_range("exposure", exposure, 0.0, low_open=True)
    else:
        scale = float(np.percentile(image[finite], 99.5)) if finite.any() else 1.0
        scale = scale if scale > 0 else 1.0
    img = np.clip(np.where(finite, image, 0.0) / scale, 0, 1) ** (1 / 2.2)
    with atomic_path(path, suffix=".png") as tmp:
        plt.imsave(tmp, img, cmap="gray", vmin=0, vmax=1, format="png")
    return Path(path)


def render_scene(name: str = "sphere", *, integrator: str = "cvae", spp: int = 16, sigma_r: float = 64.0,
                 g: float = 0.5, albedo: float = 0.999, width: int = 64, height: int = 64, model: Any = None,
                 out: str | Path | None = None, seed: int = 0, device: str = "cpu",
                 time_budget: float | None = None) -> dict[str, Any]:
    """Render a named scene and (with ``out``) write ``<out>/<scene>_<integrator>.png`` / ``.npy`` and a JSON."""
    check_device(device)
    if out is not None:                     # a folder that cannot be made fails now, not after the rendering
        for folder in (Path(out).absolute(), *Path(out).absolute().parents):
            if folder.exists():
                if not folder.is_dir():
                    raise InputError(f"out: cannot write into {out}, {folder} is a file, not a folder")
                break
    scene = make_scene(name, sigma_r=sigma_r, albedo=albedo, g=g, width=width, height=height)
    t0 = time.perf_counter()
    res = render(scene, integrator, spp=spp, time_budget=time_budget, model=model, seed=seed, device=device)
    summary = {"scene": name, "integrator": integrator, "sigma_r": sigma_r, "g": g, "albedo": albedo,
               "width": width, "height": height, "spp": spp, **res.summary(),
               "wall_seconds": time.perf_counter() - t0}
    if out is not None:
        out = Path(out)
        stem = out / f"{name}_{integrator}"
        with atomic_path(stem.with_suffix(".npy"), suffix=".npy") as tmp:
            np.save(tmp, res.image)
        save_image(stem.with_suffix(".png"), res.image)
        atomic_write_json(stem.with_suffix(".json"), summary)
        summary["files"] = [str(stem.with_suffix(s)) for s in (".png", ".npy", ".json")]
    return summary
