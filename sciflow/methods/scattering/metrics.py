"""Distribution accuracy of the CVAEs against Monte Carlo on a held-out grid of conditions.

For each (sigma_r, g): two independent MC sets A and B of M walks, one CVAE set of M walks (plus a larger one
for survival). W1 (exact optimal transport, Euclidean cost, POT) is measured between CVAE and A and between
B and A: the latter is the noise floor of W1 at this sample size. Survival E[albedo^N] is compared for a set of
albedos, where MC survival is at least 1 % (below that the contribution is negligible in a render).
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...core.random import make_generator
from ...domains.photons.fields import EXIT_DIR, EXIT_POS, N_EVENTS
from ...domains.photons.conditions import expected_events
from ...domains.photons.walks import simulate_walks
from .model import ScatteringCVAEs

__all__ = ["HELD_OUT_SIGMA", "HELD_OUT_G", "ALBEDOS", "evaluate_condition", "evaluate_grid", "w1"]

HELD_OUT_SIGMA = (1.0, 4.0, 16.0, 64.0, 256.0)
HELD_OUT_G = (-0.5, 0.0, 0.5, 0.9)
ALBEDOS = (0.9, 0.99, 0.999, 0.9999)
SURVIVAL_TOL, W1_FACTOR = 0.02, 2.0


def w1(a: np.ndarray, b: np.ndarray) -> float:
    """Exact W1 between two equal-weight point sets (n, d) with Euclidean ground cost."""
    import ot
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.ndim == 1:
        return float(ot.wasserstein_1d(a, b, p=1))
    cost = ot.dist(a, b, metric="euclidean")
    return float(ot.emd2(np.full(len(a), 1 / len(a)), np.full(len(b), 1 / len(b)), cost, numItermax=2_000_000))


def walks_per_set(n_walks: int, sigma_r: float, g: float, events_budget: float | None) -> int:
    """``n_walks``, lowered so that one MC set costs at most ``events_budget`` expected events (>= 64 walks)."""
    if events_budget is None:
        return int(n_walks)
    e0 = float(expected_events(torch.tensor(float(sigma_r)), torch.tensor(float(g))))
    return int(max(64, min(int(n_walks), events_budget // e0)))


def _mc_sets(sigma_r: float, g: float, n: int, seed: int, device: str, cache: Path | None):
    path = cache / f"mc_s{sigma_r:g}_g{g:g}_n{n}_seed{seed}.npz" if cache is not None else None
    if path is not None and path.is_file():
        with np.load(path) as f:
            sets = [{k: torch.from_numpy(f[f"{i}_{k}"]) for k in (N_EVENTS, EXIT_POS, EXIT_DIR)} for i in (0, 1)]
            return sets[0], sets[1], float(f["seconds"])
    gen = make_generator(seed, device)
    t0 = time.perf_counter()
    a = simulate_walks(sigma_r, g, 1.0, n, generator=gen, device=device)
    t_mc = time.perf_counter() - t0
    b = simulate_walks(sigma_r, g, 1.0, n, generator=gen, device=device)
    if path is not None:
        from ...core.files import atomic_path
        with atomic_path(path, suffix=".npz") as tmp:
            np.savez(tmp, seconds=t_mc, **{f"{i}_{k}": d[k].cpu().numpy() for i, d in enumerate((a, b))
                                             for k in (N_EVENTS, EXIT_POS, EXIT_DIR)})
    return a, b, t_mc


def evaluate_condition(model: ScatteringCVAEs, sigma_r: float, g: float, *, n_walks: int, seed: int,
                       albedos: Sequence[float] = ALBEDOS, n_model_survival: int = 100_000,
                       device: str = "cpu", cache: str | Path | None = None) -> dict[str, Any]:
    """Metrics at one condition; MC sets are read from / written to ``cache`` when given."""
    gen = make_generator(seed + 1, device)
    a, b, t_mc = _mc_sets(float(sigma_r), float(g), int(n_walks), seed, device,
                          Path(cache) if cache is not None else None)
    sig = torch.full((n_model_survival,), float(sigma_r))
    gg = torch.full((n_model_survival,), float(g))
    t0 = time.perf_counter()
    c = model.sample(sig, gg, torch.ones(n_model_survival, dtype=torch.float64), generator=gen)
    t_cvae = time.perf_counter() - t0
    n_mc = torch.cat([a[N_EVENTS], b[N_EVENTS]]).double()
    n_cv = c[N_EVENTS].double()
    surv = []
    for alb in albedos:
        s_mc = float((alb ** n_mc).mean())
        s_a, s_b = float((alb ** a[N_EVENTS].double()).mean()), float((alb ** b[N_EVENTS].double()).mean())
        s_cv = float((alb ** n_cv).mean())
        se = float((alb ** n_mc).std() / np.sqrt(len(n_mc)))
        ok = s_mc >= 0.01
        surv.append({"albedo": alb, "mc": s_mc, "cvae": s_cv, "rel_err": abs(s_cv - s_mc) / s_mc if ok else None,
                     "mc_rel_se": se / s_mc if s_mc > 0 else None, "mc_split_rel_diff": abs(s_a - s_b) / s_mc
                     if ok else None, "evaluated": ok})
    m = int(n_walks)
    out: dict[str, Any] = {"sigma_r": float(sigma_r), "g": float(g), "n_walks": m, "mc_seconds_per_set": t_mc,
                           "mc_walks_per_s": m / t_mc, "cvae_walks_per_s": n_model_survival / t_cvae,
                           "mean_events_mc": float(n_mc.mean()), "mean_events_cvae": float(n_cv.mean()),
                           "survival": surv}
    for key, name in ((EXIT_POS, "exit_pos"), (EXIT_DIR, "exit_dir")):
        A, B, C = a[key].cpu().numpy(), b[key].cpu().numpy(), c[key][:m].cpu().numpy()
        model_w1, floor = w1(C, A), w1(B, A)
        out[f"w1_{name}"] = model_w1
        out[f"w1_{name}_floor"] = floor
        out[f"w1_{name}_ratio"] = model_w1 / max(floor, 1e-12)
    la, lb = np.log(a[N_EVENTS].double().numpy()), np.log(b[N_EVENTS].double().numpy())
    out["w1_log_n"], out["w1_log_n_floor"] = w1(np.log(n_cv[:m].numpy()), la), w1(lb, la)
    worst = max([s["rel_err"] for s in surv if s["rel_err"] is not None], default=0.0)
    out["survival_worst_rel_err"] = worst
    out["meets_survival"] = worst <= SURVIVAL_TOL
    out["meets_w1"] = out["w1_exit_pos_ratio"] <= W1_FACTOR and out["w1_exit_dir_ratio"] <= W1_FACTOR
    return out


def evaluate_grid(model: ScatteringCVAEs, *, n_walks: int = 1000, seed: int = 12345,
                  sigma_r: Sequence[float] | None = None, g: Sequence[float] | None = None,
                  device: str = "cpu", progress: bool = True, events_budget: float | None = None,
                  cache: str | Path | None = None) -> dict[str, Any]:
    """Metrics on every (sigma_r, g) of the held-out grid; fresh MC walks (seed differs from training's).

    ``events_budget`` caps the expected scattering events of one MC set (fewer walks at high density).
    """
    from ...core.training.progress import progress as bar
    sigmas = list(sigma_r) if sigma_r else list(HELD_OUT_SIGMA)
    gs = list(g) if g else list(HELD_OUT_G)
    rows = []
    grid = [(s, gg) for s in sigmas for gg in gs]
    for i, (s, gg) in enumerate(bar(grid, desc="held-out grid", enabled=progress, unit="cond")):
        n = walks_per_set(n_walks, s, gg, events_budget)
        rows.append(evaluate_condition(model, s, gg, n_walks=n, seed=seed + 7919 * i, device=device, cache=cache))
    summary = {
        "conditions": len(rows), "n_walks_per_set": int(n_walks), "events_budget": events_budget,
        "survival_met": sum(r["meets_survival"] for r in rows), "w1_met": sum(r["meets_w1"] for r in rows),
        "worst_survival_rel_err": max(r["survival_worst_rel_err"] for r in rows),
        "worst_w1_pos_ratio": max(r["w1_exit_pos_ratio"] for r in rows),
        "worst_w1_dir_ratio": max(r["w1_exit_dir_ratio"] for r in rows),
        "targets": {"survival_rel_err": SURVIVAL_TOL, "w1_over_floor": W1_FACTOR},
    }
    return {"summary": summary, "rows": rows}
