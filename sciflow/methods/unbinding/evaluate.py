"""Generated paths against held-out MD paths of the same complexes: clashes, success, exit channels, timing.

For each complex in the held-out set, every MD trajectory's bound frame is a condition; the model draws
``n_per_condition`` paths for it. Exit directions (pocket centroid -> ligand centre of mass in the last frame)
of MD and generated paths are expressed in one reference frame per complex (the first trajectory's pocket, by
Kabsch on the pocket heavy atoms) and compared with the exact W1 on the sphere at one sample size: over random
splits of the MD directions into halves A and B, the score is the mean W1(G, B) with G a random subsample of the
generated directions of A's size, the floor the mean W1(A, B) (``metrics.equal_size_w1``); a generator drawing
from the MD distribution scores a ratio of about 1. The W1 of all generated against all MD directions is kept as
``exit_direction_w1_all_vs_all_md``; it is smaller than the score for the same generator (more samples) and not
comparable to the floor.
"""
from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ...core.errors import InputError
from ...core.fields import BATCH
from ...core.random import make_generator
from ...domains.molecules.complexes import CLASH_DISTANCE, align_frames, kabsch_rotation, min_pair_distance
from .encoding import encode_path
from .method import PATH_TIME, UnbindingFlow
from .metrics import equal_size_w1, path_length, sphere_w1

__all__ = ["evaluate_paths", "exit_distance_of"]


def exit_distance_of(traj: Any, default: float | None = None) -> float:
    """The exit distance a trajectory was generated with (its RAMD settings), else ``default``."""
    value = traj.info.get("settings", {}).get("exit_distance", default)
    if value is None:
        raise InputError(f"exit_distance: trajectory {traj.name!r} does not record one; pass --exit-distance")
    return float(value)


def _heavy_track_length(frames: torch.Tensor) -> float:
    """Å travelled by the heavy-atom centroid along frames (T, n_heavy, 3)."""
    return path_length(frames, torch.ones(frames.shape[1], dtype=frames.dtype))


def _md_summary(traj: Any, rot: torch.Tensor, pc: torch.Tensor, qc: torch.Tensor, n_frames: int) -> dict[str, Any]:
    topo = traj.topology
    frames = torch.as_tensor(traj.positions, dtype=torch.float64)
    pocket_heavy = torch.as_tensor(~topo.is_ligand & topo.is_heavy)
    aligned = align_frames(frames, frames[0], pocket_heavy)
    lig = aligned[:, torch.as_tensor(topo.is_ligand)]
    m = torch.as_tensor(topo.masses[topo.is_ligand])
    centroid = aligned[0, pocket_heavy].mean(0)
    com = (lig[-1] * m[:, None]).sum(0) / m.sum()
    direction = ((com - centroid) / (com - centroid).norm()) @ rot.T
    heavy = torch.as_tensor(topo.is_heavy[topo.is_ligand])
    lig_heavy = lig[:, heavy]
    # against the pocket as it moves in the MD (physical), and against the fixed bound receptor (what the
    # generated paths are drawn and checked against: every receptor heavy atom the file stores, else the pocket;
    # frames are superposed on frame 0, the frame those atoms are stored in)
    moving = min_pair_distance(lig_heavy, aligned[:, pocket_heavy]) < CLASH_DISTANCE
    fixed = torch.as_tensor(traj.bound.clash_atoms(), dtype=torch.float64)
    rigid = min_pair_distance(lig_heavy, fixed) < CLASH_DISTANCE
    return {"direction": direction.numpy(), "final_distance": float((com - centroid).norm()),
            "length": _md_length(traj, n_frames), "time": float(traj.times[-1] - traj.times[0]),
            "clash": bool(moving.any()), "clash_rigid": bool(rigid.any())}


def _md_length(traj: Any, n_frames: int) -> float:
    """MD path length on the model's frame grid (bound pose + n_frames equal time fractions), so that thermal
    jitter between saved frames does not inflate it relative to generated paths."""
    p = encode_path(traj, n_frames)
    return _heavy_track_length(torch.cat([p.cond.ligand_pos.unsqueeze(0), p.frames]).to(torch.float64))


def evaluate_paths(model: UnbindingFlow, trajectories: Sequence[Any], *, n_per_condition: int = 4,
                   max_conditions: int | None = None, exit_distance: float | None = None,
                   seed: int = 0, device: str = "cpu", guidance: float | None = None,
                   project: bool | None = None, steps: int | None = None) -> dict[str, Any]:
    """Metrics over all complexes (top-level keys) and per complex (``per_complex``); ``steps``, ``guidance``
    and ``project`` override the model's sampling settings. Each complex draws from its own generator seeded
    with ``seed``, so its metrics do not depend on which other complexes the data holds."""
    if not trajectories:
        raise InputError("data: no held-out trajectory to evaluate on")
    if max_conditions is not None and int(max_conditions) < 1:
        raise InputError(f"max_conditions: must be >= 1 (or None for all), got {max_conditions}")
    if int(n_per_condition) < 1:
        raise InputError(f"n_per_condition: must be >= 1, got {n_per_condition}")
    groups: dict[str, list[Any]] = defaultdict(list)
    for t in trajectories:
        groups[t.complex_name].append(t)
    per: dict[str, Any] = {}
    tot = defaultdict(float)
    for name, trajs in sorted(groups.items()):
        ref = trajs[0]
        rtopo = ref.topology
        ref_pocket = torch.as_tensor(ref.positions[0][~rtopo.is_ligand & rtopo.is_heavy], dtype=torch.float64)
        md, gen_dirs, gen_len, gen_time, gen_final = [], [], [], [], []
        raw, returned, short, n_gen, seconds = 0, 0, 0, 0, 0.0
        exit_d = exit_distance if exit_distance is not None else exit_distance_of(ref)
        generator = make_generator(seed)
        for i, traj in enumerate(trajs):
            topo = traj.topology
            pocket = torch.as_tensor(traj.positions[0][~topo.is_ligand & topo.is_heavy], dtype=torch.float64)
            if pocket.shape != ref_pocket.shape:
                raise InputError(f"data: trajectories of complex {name!r} have different pocket atoms")
            rot, pc, qc = kabsch_rotation(pocket, ref_pocket)
            md.append(_md_summary(traj, rot, pc, qc, model.n_frames))
            if max_conditions is not None and i >= max_conditions:
                continue
            cx = traj.bound
            start = time.perf_counter()
            out = model.generate(cx, n_per_condition, generator=generator, device=device, guidance=guidance,
                                 project=project, exit_distance=exit_d, steps=steps)
            seconds += time.perf_counter() - start
            raw += out.info["raw_clashing_paths"]
            returned += out.info["returned_clashing_paths"]
            short += out.info["raw_short_paths"]
            n_gen += n_per_condition
            lig_m = torch.as_tensor(topo.masses[topo.is_ligand])
            heavy = torch.as_tensor(topo.is_heavy[topo.is_ligand])
            centroid = torch.as_tensor(cx.pocket_centroid())
            states = out.states.to(torch.float64)
            for k in range(n_per_condition):
                fr = states[:, out.extras[BATCH] == k]
                com = (fr[-1] * lig_m[:, None]).sum(0) / lig_m.sum()
                d = com - centroid
                gen_dirs.append(((d / d.norm()) @ rot.T).numpy())
                gen_final.append(float(d.norm()))
                gen_len.append(_heavy_track_length(fr[:, heavy]))
            gen_time.extend(out.extras[PATH_TIME].tolist())
        md_dirs = np.stack([m["direction"] for m in md])
        w1_all = sphere_w1(np.stack(gen_dirs), md_dirs)
        w1 = equal_size_w1(np.stack(gen_dirs), md_dirs, generator=torch.Generator().manual_seed(0))
        per[name] = {
            "n_md": len(md), "n_generated": n_gen, "exit_distance_A": exit_d,
            "clash_rate": returned / n_gen, "raw_clash_rate": raw / n_gen,
            "success_rate": float(np.mean([d >= exit_d for d in gen_final])),
            "raw_success_rate": 1.0 - short / n_gen,
            "md_success_rate": float(np.mean([m["final_distance"] >= exit_d - 1e-6 for m in md])),
            "md_clash_rate": float(np.mean([m["clash"] for m in md])),
            "md_clash_rate_fixed_pocket": float(np.mean([m["clash_rigid"] for m in md])),
            "exit_direction_w1": w1["score"], "exit_direction_w1_md_floor": w1["floor"],
            "exit_direction_w1_ratio": w1["ratio"], "exit_direction_w1_sample_size": w1["size"],
            "exit_direction_w1_all_vs_all_md": w1_all,
            "path_length_A": {"generated_mean": float(np.mean(gen_len)), "generated_std": float(np.std(gen_len)),
                              "md_mean": float(np.mean([m["length"] for m in md])),
                              "md_std": float(np.std([m["length"] for m in md]))},
            "path_time_ps": {"generated_mean": float(np.mean(gen_time)), "generated_median": float(np.median(gen_time)),
                             "md_mean": float(np.mean([m["time"] for m in md])),
                             "md_median": float(np.median([m["time"] for m in md]))},
            "seconds_per_path": seconds / n_gen,
        }
        tot["n"] += n_gen
        tot["raw"] += raw
        tot["returned"] += returned
        tot["seconds"] += seconds
        tot["success"] += per[name]["success_rate"] * n_gen
        tot["short"] += short
    def mean_of(key: str) -> float:       # over the complexes that have a value (NaN: fewer than 4 MD paths)
        vals = [p[key] for p in per.values() if not math.isnan(p[key])]
        return float(np.mean(vals)) if vals else math.nan

    return {
        "clash_rate": tot["returned"] / tot["n"], "raw_clash_rate": tot["raw"] / tot["n"],
        "success_rate": tot["success"] / tot["n"], "raw_success_rate": 1.0 - tot["short"] / tot["n"],
        "exit_direction_w1": mean_of("exit_direction_w1"), "exit_direction_w1_md_floor": mean_of(
            "exit_direction_w1_md_floor"), "exit_direction_w1_ratio": mean_of("exit_direction_w1_ratio"),
        "exit_direction_w1_all_vs_all_md": float(np.mean([p["exit_direction_w1_all_vs_all_md"] for p in per.values()])),
        "seconds_per_path": tot["seconds"] / tot["n"], "n_generated": int(tot["n"]),
        "clash_distance_A": CLASH_DISTANCE, "per_complex": per,
    }
