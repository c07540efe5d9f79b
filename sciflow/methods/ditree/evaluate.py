"""Run planners on folders of scenarios and summarise: success rate within the budget, time to the first
solution, plan duration and length, tree size. Every successful plan is re-simulated and checked."""
from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch

from ...core.random import make_generator
from ...domains.robots import Scenario, verify_plan
from .problem import Problem

__all__ = ["evaluate", "run_once", "run_seed", "success_curve", "summarize"]


def run_seed(scenario: Scenario, planner: str, seed: int) -> int:
    """A stable seed per (scenario, planner, run) so that runs are reproducible and resumable."""
    h = 0
    for ch in f"{scenario.name}|{planner}|{seed}":
        h = (h * 131 + ord(ch)) % 2_147_483_629
    return h


def run_once(planner_obj: Any, scenario: Scenario, *, seed: int, budget_s: float,
             device: str | torch.device = "cpu", keep_tree: bool = False) -> tuple[dict[str, Any], Any]:
    """One planning run; returns (metrics, PlanResult). Metrics include the re-simulation check."""
    name = getattr(planner_obj, "name", "planner")
    # OMPL plans on the CPU; the torch planners draw their random numbers on the planning device (a CPU
    # generator there would mean a host draw and an upload per iteration)
    g = make_generator(run_seed(scenario, name, seed), "cpu" if name == "ompl-rrt" else device)
    target = scenario if name == "ompl-rrt" else Problem.from_scenario(scenario, device)
    res = planner_obj.solve(target, budget_s=budget_s, generator=g, keep_tree=keep_tree)   # overruns fail there
    m = {"scenario": scenario.name, "family": scenario.family, "seed": int(seed), "budget_s": float(budget_s),
         **res.metrics()}
    if res.success:
        v = verify_plan(scenario, res.states, res.controls)
        m.update({"verified": v["ok"], "resim_error": v["resim_error"]})
    return m, res


def _median(xs: Sequence[float]) -> float:
    return float(statistics.median(xs)) if xs else float("nan")


def _solved(run: dict[str, Any]) -> bool:
    """A run's plan was returned within the budget and passed ``verify_plan``."""
    return bool(run["success"] and run.get("verified", False))


def summarize(runs: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Aggregate run metrics. A run succeeds when its planner returned a plan within the budget and the plan
    passed ``verify_plan`` (a plan that does not verify counts as a failure; ``all_verified`` says whether every
    returned plan did). ``median_time_s`` is over successful runs; ``median_time_all_s`` counts failures as
    infinite (it is infinite unless more than half of the runs succeed: with an even count the median averages
    the two middle values, and one of them is then infinite)."""
    runs = list(runs)
    claimed = [r for r in runs if r["success"]]
    ok = [r for r in claimed if _solved(r)]
    times_all = sorted([r["time_s"] for r in ok] + [math.inf] * (len(runs) - len(ok)))
    med_all = _median(times_all) if runs else float("nan")
    return {
        "n_runs": len(runs),
        "n_success": len(ok),
        "success_rate": len(ok) / len(runs) if runs else float("nan"),
        "median_time_s": _median([r["time_s"] for r in ok]),
        "mean_time_s": float(sum(r["time_s"] for r in ok) / len(ok)) if ok else float("nan"),
        "median_time_all_s": med_all,
        "median_duration_s": _median([r["duration_s"] for r in ok]),
        "median_length_m": _median([r["length_m"] for r in ok]),
        "median_tree_size": _median([float(r["tree_size"]) for r in runs]),
        "all_verified": all(r.get("verified", False) for r in claimed),
    }


def success_curve(runs: Iterable[dict[str, Any]], budgets: Sequence[float]) -> list[float]:
    """Fraction of ``runs`` that found a verified plan within each budget (s): the anytime success curve of
    planners that stop at their first solution. Budgets above the runs' own budget cannot be read off them."""
    runs = list(runs)
    if not runs:
        return [float("nan")] * len(budgets)
    top = min(float(r["budget_s"]) for r in runs)
    if any(float(b) > top + 1e-9 for b in budgets):
        raise ValueError(f"budgets: at most the runs' own budget ({top:g} s), got {max(budgets):g}")
    times = [r["time_s"] for r in runs if _solved(r)]
    return [sum(t <= b for t in times) / len(runs) for b in budgets]


def evaluate(scenarios: Sequence[Scenario], make_planner: Callable[[], Any], *, seeds: int = 5,
             budget_s: float | None = None, device: str | torch.device = "cpu",
             on_run: Callable[[dict[str, Any]], None] | None = None,
             done: Callable[[str, int], dict[str, Any] | None] | None = None,
             progress_bar: bool = True) -> dict[str, Any]:
    """Every scenario x seed; ``done(name, seed)`` may return an earlier run's metrics (resume)."""
    from ...core.training import progress
    planner_obj = make_planner()
    runs = []
    bar = progress(total=len(scenarios) * seeds, desc=getattr(planner_obj, "name", "plan"), enabled=progress_bar,
                   unit="run")
    for sc in scenarios:
        for s in range(seeds):
            prev = done(sc.name, s) if done is not None else None
            if prev is None:
                prev, _ = run_once(planner_obj, sc, seed=s, budget_s=budget_s or sc.budget_s, device=device)
                if on_run is not None:
                    on_run(prev)
            runs.append(prev)
            bar.update(1)
    bar.close()
    return {**summarize(runs), "runs": runs}
