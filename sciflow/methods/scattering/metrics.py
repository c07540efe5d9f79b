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
from ...domains.photons.conditions import check_conditions, expected_events
from ...domains.photons.fields import EXIT_DIR, EXIT_POS, N_EVENTS
from ...domains.photons.walks import simulate_walks
from .model import ScatteringCVAEs, _check_trained_range

__all__ = ["ALBEDOS", "HELD_OUT_G", "HELD_OUT_SIGMA", "evaluate_condition", "evaluate_grid", "w1"]

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


def _cache_path(cache: Path | None, sigma_r: float, g: float, n: int, seed: int, batch: str) -> Path | None:
    return cache / f"mc_s{sigma_r:g}_g{g:g}_n{n}_seed{seed}_{batch}.npz" if cache is not None else None


def _batch_key(jobs: Sequence[tuple[float, float, int, int]], seed: int) -> str:
    """The walks of a job depend on the whole batch it was simulated in and on the batch's seed: the cache is
    keyed by both, so a cached run returns exactly the walks an uncached one would."""
    import hashlib
    text = repr((int(seed), [(float(s), float(g), int(n), int(sd)) for s, g, n, sd in jobs]))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _write_sets(path: Path, a: dict, b: dict, walks_per_s: float) -> None:
    from ...core.files import atomic_path
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez(tmp, walks_per_s=walks_per_s, **{f"{i}_{k}": d[k].cpu().numpy() for i, d in enumerate((a, b))
                                                  for k in (N_EVENTS, EXIT_POS, EXIT_DIR)})


def simulate_sets(jobs: Sequence[tuple[float, float, int, int]], *, device: str = "cpu", cache: Path | None = None,
                  seed: int = 0, progress: bool = True) -> dict[tuple[float, float], tuple[dict, dict, float]]:
    """MC sets A and B for every (sigma_r, g, n, seed) job in ONE batched run (one tail for all conditions).

    Each condition's throughput is reported as walks per second = (events per second of the whole run) /
    (mean events per walk at that condition), i.e. what a full batch of such walks achieves on this device.
    """
    out, todo = {}, []
    batch = _batch_key(jobs, seed)
    for s, g, n, sd in jobs:
        path = _cache_path(cache, s, g, n, sd, batch)
        if path is not None and path.is_file():
            with np.load(path) as f:
                sets = [{k: torch.from_numpy(f[f"{i}_{k}"]) for k in (N_EVENTS, EXIT_POS, EXIT_DIR)} for i in (0, 1)]
                out[(s, g)] = (sets[0], sets[1], float(f["walks_per_s"]))
        else:
            todo.append((s, g, n, sd))
    if todo:
        todo = list(jobs)                    # a partial hit (an interrupted write): the whole batch again
        out = {}
        sig = torch.cat([torch.full((2 * n,), float(s), dtype=torch.float64) for s, g, n, sd in todo])
        gg = torch.cat([torch.full((2 * n,), float(g), dtype=torch.float64) for s, g, n, sd in todo])
        t0 = time.perf_counter()
        w = simulate_walks(sig, gg, torch.ones_like(sig), generator=make_generator(seed, device), device=device,
                           progress=progress, desc="MC reference walks")
        seconds = time.perf_counter() - t0
        eps = float(w[N_EVENTS].double().sum()) / seconds
        start = 0
        for s, g, n, sd in todo:
            a = {k: w[k][start:start + n].cpu() for k in (N_EVENTS, EXIT_POS, EXIT_DIR)}
            b = {k: w[k][start + n:start + 2 * n].cpu() for k in (N_EVENTS, EXIT_POS, EXIT_DIR)}
            start += 2 * n
            wps = eps / float(torch.cat([a[N_EVENTS], b[N_EVENTS]]).double().mean())
            out[(s, g)] = (a, b, wps)
            path = _cache_path(cache, s, g, n, sd, batch)
            if path is not None:
                _write_sets(path, a, b, wps)
    return out


def _check_grid(sigma_r: Sequence[float], g: Sequence[float]) -> None:
    """Conditions the CVAEs can be scored at (finite, |g| < 1, 0 <= sigma_r <= the trained SIGMA_MAX), refused
    before any MC walk is simulated (a large sigma_r takes hours of walks)."""
    check_conditions(list(sigma_r), list(g))
    _check_trained_range(torch.tensor([float(s) for s in sigma_r], dtype=torch.float64))


def evaluate_condition(model: ScatteringCVAEs, sigma_r: float, g: float, *, n_walks: int, seed: int,
                       albedos: Sequence[float] = ALBEDOS, n_model_survival: int = 100_000,
                       device: str = "cpu", cache: str | Path | None = None,
                       mc: tuple[dict, dict, float] | None = None) -> dict[str, Any]:
    """Metrics at one condition; MC sets come from ``mc`` or are simulated (and cached in ``cache``)."""
    _check_grid([sigma_r], [g])
    gen = make_generator(seed + 1, device)
    if mc is None:
        mc = simulate_sets([(float(sigma_r), float(g), int(n_walks), seed)], device=device,
                           cache=Path(cache) if cache is not None else None, seed=seed, progress=False)[
            (float(sigma_r), float(g))]
    a, b, mc_wps = mc
    sig = torch.full((n_model_survival,), float(sigma_r))
    gg = torch.full((n_model_survival,), float(g))
    t0 = time.perf_counter()
    c = model.sample(sig, gg, torch.ones(n_model_survival, dtype=torch.float64), generator=gen)
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()            # the kernels run asynchronously: time them, not their launch
    t_cvae = time.perf_counter() - t0
    c = {k: v.cpu() if torch.is_tensor(v) else v for k, v in c.items()}    # metrics are taken on the host
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
    out: dict[str, Any] = {"sigma_r": float(sigma_r), "g": float(g), "n_walks": m,
                           "mc_walks_per_s": mc_wps, "cvae_walks_per_s": n_model_survival / t_cvae,
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
    Conditions outside the trained range (sigma_r > SIGMA_MAX) are refused before any walk is simulated.
    """
    from ...core.training.progress import progress as bar
    sigmas = list(sigma_r) if sigma_r else list(HELD_OUT_SIGMA)
    gs = list(g) if g else list(HELD_OUT_G)
    _check_grid(sigmas, gs)
    rows = []
    grid = [(float(s), float(gg)) for s in sigmas for gg in gs]
    jobs = [(s, gg, walks_per_set(n_walks, s, gg, events_budget), seed + 7919 * i) for i, (s, gg) in enumerate(grid)]
    mc = simulate_sets(jobs, device=device, cache=Path(cache) if cache is not None else None, seed=seed,
                       progress=progress)
    for s, gg, n, sd in bar(jobs, desc="held-out grid", enabled=progress, unit="cond"):
        rows.append(evaluate_condition(model, s, gg, n_walks=n, seed=sd, device=device, mc=mc[(s, gg)]))
    summary = {
        "conditions": len(rows), "n_walks_per_set": int(n_walks), "events_budget": events_budget,
        "survival_met": sum(r["meets_survival"] for r in rows), "w1_met": sum(r["meets_w1"] for r in rows),
        "worst_survival_rel_err": max(r["survival_worst_rel_err"] for r in rows),
        "worst_w1_pos_ratio": max(r["w1_exit_pos_ratio"] for r in rows),
        "worst_w1_dir_ratio": max(r["w1_exit_dir_ratio"] for r in rows),
        "targets": {"survival_rel_err": SURVIVAL_TOL, "w1_over_floor": W1_FACTOR},
    }
    return {"summary": summary, "rows": rows}
