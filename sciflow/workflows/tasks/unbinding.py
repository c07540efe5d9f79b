"""Workflow task ``unbinding``: a folder of bound complexes -> n dissociation paths each -> PDB/DCD + PNG.

```yaml
version: 1
task: unbinding
output: outputs/unbinding
unbinding:
  model: models/unbinding
  complexes: datasets/unbinding/complexes   # .pdb (ligand by selection) or .h5 (first bound frame) files
  ligand: resname LIG
  n_paths: 8
```
Per complex ``<output>/<name>/``: ``path_###.pdb`` (multi-model PDB, pocket + ligand), ``topology.pdb`` +
``path_###.dcd`` (when ``dcd`` is in ``formats``), ``paths.png`` (exit channels + distance profile) and
``paths.json`` (clash counts, exit times, timing). Finished complexes are skipped when the run is repeated.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from ...core.errors import InputError
from ...core.fields import BATCH
from ...core.files import listed_files
from ..checks import field_errors, load_model, loaded_model
from ..context import RunContext
from ..registry import register_task
from ..schema import ModelPath, StrictModel, one_or_more


class UnbindingTask(StrictModel):
    model: ModelPath = Field("models/unbinding", description="folder or file of a saved UnbindingFlow")
    complexes: str = Field("datasets/unbinding/complexes", description="a folder of .pdb/.h5 complexes, or one")
    ligand: str = Field("resname LIG", description="mdtraj selection of the ligand in PDB inputs")
    pocket_cutoff: float = Field(10.0, gt=0, description="Å; receptor residues this close to the ligand (the "
                                 "network's input; clashes are tested against every receptor heavy atom)")
    n_paths: int = Field(8, ge=1, le=10_000)
    steps: int | None = Field(None, ge=1, description="ODE steps (default: the model's)")
    guidance: float | None = Field(None, ge=0, description="clash guidance weight (default: the model's)")
    exit_distance: float | None = Field(None, gt=0, description="Å, drawn in the profile (default: model's)")
    formats: one_or_more(Literal["pdb", "dcd"], "output format (pdb, dcd)") = Field(default_factory=lambda: ["pdb", "dcd"])

    @model_validator(mode="after")
    def _complexes_and_model_load(self) -> UnbindingTask:
        # every complex is read once here (the ligand selection and pocket included), and the model is loaded, so
        # that a missing folder, a file of another kind, a selection that matches nothing or a model of another
        # method stops `validate` and `run` before the output folder is claimed
        # (and its bound pose checked as generate checks it: ligand atoms apart, ligand in its pocket)
        from ...data.dissociation import load_complex
        from ...methods.unbinding import UnbindingFlow
        from ...methods.unbinding.encoding import encode_complex
        with field_errors("complexes", replace=("complexes", "complex"), keep=("ligand", "pocket_cutoff")):
            for f in _inputs(self.complexes):
                cx = load_complex(f, ligand=self.ligand, pocket_cutoff=self.pocket_cutoff)
                try:
                    encode_complex(cx)
                except InputError as e:
                    raise InputError(f"{f}: {e}") from None
        load_model(UnbindingFlow, self.model, "model", owner=self)
        return self

    def input_paths(self) -> dict[str, Path]:
        return {**super().input_paths(), "complexes": Path(self.complexes)}


def _inputs(folder: str) -> list[Path]:
    p = Path(folder)
    if p.is_file():
        return [p]
    if not p.is_dir():
        raise InputError(f"complexes: no file or folder at {p}")
    files = listed_files(p, (".pdb", ".h5", ".hdf5"))
    if not files:
        raise InputError(f"complexes: no .pdb or .h5 file in {p}")
    stems = [f.stem for f in files]
    twice = sorted({s for s in stems if stems.count(s) > 1})
    if twice:       # outputs are named by the stem: X.pdb and X.h5 would write into the same folder
        raise InputError(f"complexes: two files in {p} share the name {twice[:5]} (outputs are named by "
                         f"it); rename or move one")
    return files


def closest_distances(cx: Any, frames: np.ndarray) -> list[np.ndarray]:
    """Per path of ligand frames (n, T, n_lig, 3) Å: the (T,) closest ligand-receptor heavy-atom distance, against
    every receptor heavy atom of the complex (``Complex.clash_atoms``), not only the pocket's (one path at a time:
    a whole protein times every frame of every path would be large)."""
    import torch

    from ...domains.molecules.complexes import min_pair_distance
    receptor = torch.as_tensor(cx.clash_atoms(), dtype=torch.float64)
    lig_heavy = cx.topology.is_heavy[cx.topology.is_ligand]
    return [min_pair_distance(torch.as_tensor(np.asarray(f)[:, lig_heavy], dtype=torch.float64), receptor).numpy()
            for f in frames]


@register_task("unbinding", UnbindingTask)
def run(cfg: UnbindingTask, ctx: RunContext) -> dict[str, Any]:
    import torch

    from ...data.dissociation import load_complex, paths_to_trajectories, write_mdtraj
    from ...methods.unbinding import PATH_TIME, UnbindingFlow
    from ...methods.unbinding.plots import plot_paths

    files = _inputs(cfg.complexes)
    complexes = {f.stem: load_complex(f, ligand=cfg.ligand, pocket_cutoff=cfg.pocket_cutoff) for f in files}
    model = loaded_model(cfg, UnbindingFlow, cfg.model, ctx.device)
    for name in ctx.progress(ctx.shard(sorted(complexes)), desc="unbinding", unit="complex"):
        if ctx.is_done(name):
            continue
        cx = complexes[name]
        traj = model.generate(cx, cfg.n_paths, generator=ctx.item_generator(name), steps=cfg.steps,
                              guidance=cfg.guidance, exit_distance=cfg.exit_distance, device=ctx.device).cpu()
        exit_d = float(traj.info["exit_distance"])       # the workflow's, else the complex's from training
        n_lig = int(cx.topology.is_ligand.sum())
        frames = np.stack([traj.states[:, traj.extras[BATCH] == k].numpy() for k in range(cfg.n_paths)])
        times = traj.times.numpy()[None] * traj.extras[PATH_TIME].numpy()[:, None]      # (n, T) ps
        paths = paths_to_trajectories(cx, frames, times)
        for k, p in enumerate(paths):
            if "pdb" in cfg.formats:
                write_mdtraj(p, ctx.path(f"{name}/path_{k:03d}.pdb"))
            if "dcd" in cfg.formats:
                write_mdtraj(p, ctx.path(f"{name}/topology.pdb"), ctx.path(f"{name}/path_{k:03d}.dcd"))
        m = torch.as_tensor(cx.topology.masses[cx.topology.is_ligand]).numpy()
        tracks = [(f * m[:, None]).sum(1) / m.sum() for f in frames]
        heavy = cx.topology.is_heavy
        pocket = cx.positions[~cx.topology.is_ligand & heavy]
        mind = closest_distances(cx, frames)
        plot_paths(pocket, tracks, ctx.path(f"{name}/paths.png"), title=f"{name}: {cfg.n_paths} generated paths",
                   exit_distance=exit_d, min_distances=mind)
        info = {"n_paths": cfg.n_paths, "n_ligand_atoms": n_lig,
                "raw_clashing_paths": traj.info["raw_clashing_paths"],
                "returned_clashing_paths": traj.info["returned_clashing_paths"],
                "returned_short_paths": traj.info["returned_short_paths"],
                "exit_time_ps": traj.extras[PATH_TIME].tolist(),
                "final_distance_A": traj.step_extras["com_distance"][-1].tolist(),
                "seconds": traj.info["seconds"]}
        ctx.write_json(f"{name}/paths.json", info)
        ctx.mark_done(name, info)
    results = {name: {k: v for k, v in info.items() if k != "key"}                 # every rank's complexes
               for name, info in ctx.gather(sorted(complexes)).items()}
    return {"complexes": len(results), "paths": sum(r["n_paths"] for r in results.values()),
            "returned_clashing_paths": sum(r["returned_clashing_paths"] for r in results.values()),
            "returned_short_paths": sum(r.get("returned_short_paths", 0) for r in results.values()),
            "raw_clashing_paths": sum(r["raw_clashing_paths"] for r in results.values()), "per_complex": results}
