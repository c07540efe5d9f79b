"""DiTree benchmark: DiTree vs the policy alone vs sciflow's SST vs OMPL's control-space RRT.

Same scenarios, same car dynamics, same collision checker (every integration step), same goal regions and the
same wall-clock budget for every planner; each run stops at its first solution. Scenarios: the training family
(forest, in distribution; seeds disjoint from the training maps) and out-of-distribution families (maze,
bugtrap; corridors optional), written to ``datasets/ditree/scenarios/<family>/`` on first use.

Runs are interleaved (seed -> scenario -> planner) so that the shared machine's load affects every planner
alike, appended to ``benchmarks/results/ditree_runs.jsonl`` as they finish and skipped when the script is run
again (resumable; a run is keyed by scenario, planner, seed, budget, for DiTree its sampling settings and weights, and
for every planner a digest of the planning code (``code_digest``), so a changed setting or changed code is re-run). The machine's 1-minute load average is recorded with every run and at the start
and end. The summary goes to ``benchmarks/results/ditree.json`` and ``ditree.md``.

    OMP_NUM_THREADS=1 python benchmarks/ditree.py --budget 5 --seeds 5 --n 20
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sciflow.core.files import atomic_path, atomic_write_json, atomic_write_text, read_json_lines
from sciflow.core.training import progress
from sciflow.data.robot_maps import make_scenario
from sciflow.domains.robots import load_scenario, save_scenario, scenario_files
from sciflow.methods.ditree import DiTree
from sciflow.methods.ditree.evaluate import run_once, success_curve, summarize
from sciflow.methods.ditree.method import baseline_planner

SEED0 = {"forest": 10_000, "maze": 0, "bugtrap": 0, "corridors": 0, "rooms": 0}
ID_FAMILY = "forest"
LABEL = {"ditree": "DiTree (ours)", "policy": "policy alone", "sst": "SST (sciflow)", "rrt": "OMPL RRT (control)",
         "rrt-torch": "RRT (sciflow, random controls)", "ditree-rf0": "DiTree, policy expansions only (random_frac 0)",
         "ditree-rf1": "DiTree tree, random expansions only (random_frac 1)",
         "ditree-unet": "DiTree, U-Net Euler sampler (no distilled head)"}
#: ablations: the same DiTree (same model, settings, seeds) with another random_frac, or sampling chunks with the
#: U-Net's Euler steps instead of the distilled flow map
VARIANTS = {"ditree-rf0": {"random_frac": 0.0}, "ditree-rf1": {"random_frac": 1.0}, "ditree-unet": {"head": False}}
#: budgets (s) at which the report reads the success rate off the runs (those up to --budget)
CURVE_BUDGETS = (0.25, 0.5, 1.0, 2.0, 5.0)


def weights_digest(model: DiTree) -> str:
    """First 8 hex digits of the SHA-256 of the policy's weights (tensors in name order; not the file, whose
    bytes also hold the config, versions and info)."""
    h = hashlib.sha256()
    for name, t in sorted(model.model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:8]


#: the code whose behaviour the runs measure: the planners, the car, the collision checker, the world's field,
#: and what they import from the core and the networks (random draws, solvers, flow matching, MLP, U-Net): all of
#: ``sciflow/core`` and ``sciflow/nn``, more than the planners use, so that no change they see can go unnoticed
CODE_FILES = ("sciflow/methods/ditree/*.py", "sciflow/methods/base.py", "sciflow/domains/robots/*.py",
              "sciflow/data/robot_maps.py", "sciflow/core/**/*.py", "sciflow/nn/**/*.py")


def code_digest() -> str:
    """First 8 hex digits of the SHA-256 of ``CODE_FILES`` (path and bytes, in path order). Every run's cache key
    ends with it, so that a rerun after a change to a planner or the checker runs again instead of reloading runs
    of the older code (``--code-tag`` overrides it, e.g. ``--code-tag ''`` for runs made before the key had it)."""
    h = hashlib.sha256()
    for f in sorted({q for pat in CODE_FILES for q in ROOT.glob(pat)}):
        h.update(str(f.relative_to(ROOT)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:8]


def scenario_set(family: str, n: int, budget: float) -> list:
    folder = ROOT / "datasets" / "ditree" / "scenarios" / family
    if folder.is_dir() and len(list(folder.glob("*.yaml"))) >= n:
        return [load_scenario(f) for f in scenario_files(folder)[:n]]
    out = []
    for k in range(n):
        sc = make_scenario(family, SEED0[family] + k, budget_s=budget)
        save_scenario(folder / f"{sc.name}.yaml", sc)
        out.append(sc)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--families", nargs="+", default=["forest", "maze", "bugtrap"])
    ap.add_argument("--planners", nargs="+", default=["ditree", "policy", "sst", "rrt"],
                    help="ditree | policy | sst | rrt | rrt-torch | ditree-rf0 | ditree-rf1 (mixed-expansion ablations) "
                         "| ditree-unet (sampler ablation)")
    ap.add_argument("--n", type=int, default=20, help="scenarios per family")
    ap.add_argument("--seeds", type=int, default=5, help="runs per scenario and planner")
    ap.add_argument("--budget", type=float, default=5.0, help="wall-clock seconds per run, same for all")
    ap.add_argument("--model", default=str(ROOT / "models" / "ditree"))
    ap.add_argument("--runs", default=str(ROOT / "benchmarks" / "results" / "ditree_runs.jsonl"))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "ditree"))
    ap.add_argument("--ompl-goal-bias", type=float, default=0.05)
    ap.add_argument("--code-tag", default=None,
                    help="suffix of every run's cache key (default: c + a digest of the planning code, see "
                         "code_digest; '' for runs recorded before the key had one)")
    ap.add_argument("--report-only", action="store_true")
    ap.add_argument("--kernel-cost", action="store_true",
                    help="instead of the benchmark: time OMPL RRT's scalar kernels, the previous ones "
                         "(Car.step_scalar, CollisionChecker.state_valid_scalar) against ompl_rrt.scalar_kernels, per "
                         "call and per OMPL propagation in solves of the first --n scenarios of each family "
                         "(interleaved); writes <--out>.json")
    ap.add_argument("--note", default=None, help="text for the report (kept by later --report-only runs)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)

    sets = {f: scenario_set(f, args.n, args.budget) for f in args.families}
    if args.kernel_cost:
        return kernel_cost(sets, args)
    runs_path = Path(args.runs)
    done: dict[tuple, dict] = {}
    for r in read_json_lines(runs_path, "--runs"):
        done[(r["scenario"], r["planner_key"], r["seed"], r["budget_s"], r.get("tag", ""))] = r
    model = DiTree.load(args.model) if {"ditree", "policy", *VARIANTS} & set(args.planners) else None
    tags = {p: "" for p in args.planners}
    if "rrt" in tags:          # OMPL RRT without intermediate states (runs with tag "" had them on: each motion
        tags["rrt"] = "is0"    # was propagated twice, see sciflow/methods/ditree/ompl_rrt.py)
    if model is not None:
        c = model.config()
        w = "-w" + weights_digest(model)           # the weights key the runs too
        head = c.get("use_head", False)

        def tag(frac: float, use_head: bool) -> str:
            sampler = "-head" if use_head else ""          # runs of the U-Net sampler keep their old tags
            return f"rf{frac:g}-fs{c['flow_steps']}-ex{c['execute']}-b{c['batch']}-gb{c['goal_bias']:g}{sampler}{w}"

        tags["ditree"] = tag(c["random_frac"], head)
        tags["policy"] = f"fs{c['flow_steps']}-ex{c['execute']}{'-head' if head else ''}{w}"
        for v, kw in VARIANTS.items():
            tags[v] = tag(kw.get("random_frac", c["random_frac"]), kw.get("head", head))
    args.code_tag = ("c" + code_digest()) if args.code_tag is None else args.code_tag
    if args.code_tag:
        tags = {p: f"{t}-{args.code_tag}" if t else args.code_tag for p, t in tags.items()}
    args.tags = tags
    load_start = os.getloadavg()[0]
    if not args.report_only:
        planners = {}
        for p in args.planners:
            if p in ("ditree", "policy"):
                planners[p] = model.planner(p)
            elif p in VARIANTS:
                planners[p] = model.planner("ditree", **VARIANTS[p])
            elif p == "rrt":
                planners[p] = baseline_planner("rrt", goal_bias=args.ompl_goal_bias)
            else:
                planners[p] = baseline_planner(p)
        todo = [(s, sc, p) for s in range(args.seeds) for f in args.families for sc in sets[f]
                for p in args.planners if (sc.name, p, s, args.budget, tags[p]) not in done]
        bar = progress(total=len(todo), desc="ditree bench", unit="run")
        runs_path.parent.mkdir(parents=True, exist_ok=True)
        with open(runs_path, "a") as fh:
            for s, sc, p in todo:
                m, _ = run_once(planners[p], sc, seed=s, budget_s=args.budget)
                m.update({"planner_key": p, "tag": tags[p], "load1": os.getloadavg()[0]})
                done[(sc.name, p, s, args.budget, tags[p])] = m
                fh.write(json.dumps(m) + "\n")
                fh.flush()
                bar.update(1)
        bar.close()
    args.load = {"start": load_start, "end": os.getloadavg()[0]}
    args.command = "OMP_NUM_THREADS=1 python benchmarks/ditree.py " + shlex.join(sys.argv[1:])
    prev = Path(args.out).with_suffix(".json")
    if args.report_only and prev.is_file():           # keep the command and loads of the run that made the runs
        old = json.loads(prev.read_text()).get("meta", {})
        args.command = old.get("command", args.command)
        args.load = old.get("load1_start_end", args.load)
        args.note = args.note if args.note is not None else old.get("note")
    args.ditree_config = model.config() if model is not None else None
    report(sets, args, done)
    return 0


def kernel_cost(sets: dict, args: argparse.Namespace) -> int:
    """Per-call and per-propagation cost of OMPL RRT's Python callbacks with the previous scalar kernels and with
    ``scalar_kernels``, measured in alternation so that both see the same load."""
    import random
    import statistics
    import timeit

    from sciflow.methods.ditree import ompl_rrt

    fast = ompl_rrt.scalar_kernels
    loads = [os.getloadavg()[0]]
    sc = next(iter(sets.values()))[0]
    car, chk = sc.car(), sc.checker()
    p, rng = car.p, random.Random(0)
    xmin, ymin, xmax, ymax = sc.world.bounds
    samples = [(rng.uniform(xmin, xmax), rng.uniform(ymin, ymax), rng.uniform(-math.pi, math.pi),
                rng.uniform(p.min_speed, p.max_speed), rng.uniform(-p.max_steer, p.max_steer),
                rng.uniform(-p.max_accel, p.max_accel), rng.uniform(-p.max_steer_rate, p.max_steer_rate))
               for _ in range(1000)]
    kernels = {"previous": (car.step_scalar, chk.state_valid_scalar), "new": fast(car, chk)}
    per_call: dict[str, list[float]] = {f"{k}_{w}": [] for k in kernels for w in ("step", "valid")}
    for _ in range(15):
        for k, (step, valid) in kernels.items():
            per_call[f"{k}_step"].append(timeit.timeit(lambda step=step: [step(*s) for s in samples], number=3)
                                         / (3 * len(samples)) * 1e6)
            per_call[f"{k}_valid"].append(timeit.timeit(lambda valid=valid: [valid(s[0], s[1], s[2]) for s in samples],
                                                        number=3) / (3 * len(samples)) * 1e6)
        loads.append(os.getloadavg()[0])
    solve: dict[str, list[float]] = {"previous": [], "new": []}
    planner = ompl_rrt.OMPLRRT(goal_bias=args.ompl_goal_bias)
    try:
        for scs in sets.values():
            for sc in scs:
                for k in ("previous", "new"):
                    ompl_rrt.scalar_kernels = fast if k == "new" else (
                        lambda car, chk: (car.step_scalar, chk.state_valid_scalar))
                    res = planner.solve(sc, budget_s=args.budget)
                    solve[k].append(1e6 * res.time_s / max(1, res.info["propagations"]))
                loads.append(os.getloadavg()[0])
    finally:
        ompl_rrt.scalar_kernels = fast
    out = {"per_call_us_median": {k: statistics.median(v) for k, v in per_call.items()},
           "per_call_us_min": {k: min(v) for k, v in per_call.items()},
           "us_per_propagation_median": {k: statistics.median(v) for k, v in solve.items()},
           "us_per_propagation_mean": {k: statistics.mean(v) for k, v in solve.items()},
           "solves": {k: len(v) for k, v in solve.items()}, "mean_load1": statistics.mean(loads),
           "command": "OMP_NUM_THREADS=1 python benchmarks/ditree.py " + shlex.join(sys.argv[1:]),
           "note": ("per call: 15 interleaved rounds of 3 x 1000 random states/controls on the first scenario; per "
                    "propagation: OMPL RRT solve wall time / propagate calls, the same callbacks with the previous "
                    "kernels or scalar_kernels, alternating per scenario"),
           "written": time.strftime("%Y-%m-%dT%H:%M:%S")}
    atomic_write_json(Path(args.out).with_suffix(".json"), out)
    print(json.dumps(out, indent=1))
    return 0


def _fmt(x: float, digits: int = 2) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if math.isinf(x):
        return "> budget"
    return f"{x:.{digits}f}"


def plot_curves(curves: dict, args: argparse.Namespace, path: Path) -> None:
    """One panel per family: the share of runs solved (verified plan) within each budget, per planner."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    grid = [args.budget * k / 200 for k in range(1, 201)]
    fig, axes = plt.subplots(1, len(curves), figsize=(4.2 * len(curves), 4.0), squeeze=False)
    for ax, (f, per) in zip(axes[0], curves.items()):
        for p, runs in per.items():
            ax.plot(grid, [100 * v for v in success_curve(runs, grid)], label=LABEL.get(p, p), lw=1.6)
        ax.set_title(f + (" (train family)" if f == ID_FAMILY else " (OOD)"))
        ax.set_xscale("log")
        ax.set_xlabel("budget (s, wall clock, 1 CPU thread)")
        ax.set_ylim(0, 102)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("runs solved (%)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 6), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def report(sets: dict, args: argparse.Namespace, done: dict) -> None:
    table, rows, curves = {}, [], {}
    budgets = [b for b in CURVE_BUDGETS if b <= args.budget]
    for f, scs in sets.items():
        names = {sc.name for sc in scs}
        for p in args.planners:
            runs = [r for (n, pk, s, b, tag), r in done.items() if n in names and pk == p and b == args.budget
                    and s < args.seeds and tag == args.tags[p]]
            if not runs:
                continue
            summ = summarize(runs)
            summ["mean_load1"] = sum(r.get("load1", 0) for r in runs) / len(runs)
            summ["success_within"] = dict(zip(map(str, budgets), success_curve(runs, budgets)))
            curves.setdefault(f, {})[p] = runs
            table.setdefault(f, {})[p] = summ
            rows.append((f, p, summ))
    targets = {}
    ood = [f for f in sets if f != ID_FAMILY]
    for f in ood:
        t = table.get(f, {})
        if "ditree" in t and "rrt" in t:
            d, r = t["ditree"], t["rrt"]
            targets[f] = {"success_gain_points": 100 * (d["success_rate"] - r["success_rate"]),
                          "success_target_met": 100 * (d["success_rate"] - r["success_rate"]) >= 30,
                          "median_time_ratio": (d["median_time_s"] / r["median_time_s"]
                                                if r["median_time_s"] and not math.isnan(r["median_time_s"])
                                                else float("nan")),
                          "median_time_all_ratio": (d["median_time_all_s"] / r["median_time_all_s"]
                                                    if math.isfinite(r["median_time_all_s"]) else float("nan"))}
            targets[f]["time_target_met"] = bool(targets[f]["median_time_ratio"] <= 1 / 3)
    meta = {"budget_s": args.budget, "seeds": args.seeds, "n_per_family": args.n, "families": list(sets),
            "id_family": ID_FAMILY, "planners": args.planners, "ompl_goal_bias": args.ompl_goal_bias,
            "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(), "machine": platform.machine(),
            "python": platform.python_version(), "torch": torch.__version__,
            "command": args.command,
            "ditree_config": args.ditree_config, "tags": args.tags, "code_tag": args.code_tag, "load1_start_end": args.load, "note": args.note,
            "written": time.strftime("%Y-%m-%dT%H:%M:%S")}
    atomic_write_json(Path(args.out).with_suffix(".json"), {"meta": meta, "summary": table, "targets": targets})
    lines = [(f"# DiTree benchmark (budget {args.budget:g} s wall clock per run, {args.seeds} seeds x "
             f"{args.n} scenarios per family, 1 CPU thread)"), "",
             ("| family | planner | success | median time to solution (s, successes) | median time, failures = inf "
             "(s) | median plan duration (s) | median path length (m) | median tree size | mean load |"),
             "|---|---|---|---|---|---|---|---|---|"]
    for f, p, s in rows:
        fam = f + (" (train family)" if f == ID_FAMILY else " (OOD)")
        lines.append(f"| {fam} | {LABEL.get(p, p)} | {100 * s['success_rate']:.0f}% ({s['n_success']}/{s['n_runs']})"
                     f" | {_fmt(s['median_time_s'])} | {_fmt(s['median_time_all_s'])} | "
                     f"{_fmt(s['median_duration_s'], 1)} | {_fmt(s['median_length_m'], 1)} | "
                     f"{_fmt(s['median_tree_size'], 0)} | {s['mean_load1']:.1f} |")
    if targets:
        lines += ["", "Targets on OOD families (DiTree vs OMPL RRT): success >= +30 points, median time <= 1/3.", "",
                  "| family | success gain (points) | met | median time ratio (successes) | met |", "|---|---|---|---|---|"]
        for f, t in targets.items():
            lines.append(f"| {f} | {t['success_gain_points']:+.0f} | {'yes' if t['success_target_met'] else 'no'} | "
                         f"{_fmt(t['median_time_ratio'])} | {'yes' if t['time_target_met'] else 'no'} |")
    if budgets:
        lines += ["", ("Success within a shorter budget, read off the same runs (each run stops at its first solution "
                       "and the budget only stops it, so a run solved at t <= b s would have been solved with budget "
                       f"b): `{Path(args.out).name}_success_vs_budget.png`."), "",
                  "| family | planner | " + " | ".join(f"<= {b:g} s" for b in budgets) + " |",
                  "|---|---|" + "---|" * len(budgets)]
        for f, p, s in rows:
            lines.append(f"| {f} | {LABEL.get(p, p)} | "
                         + " | ".join(f"{100 * v:.0f}%" for v in s["success_within"].values()) + " |")
        plot_curves(curves, args, Path(str(args.out) + "_success_vs_budget.png"))
    lines += ["", f"Command: `{meta['command']}`", ""]
    if args.note:
        lines += [args.note, ""]
    atomic_write_text(Path(args.out).with_suffix(".md"), "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    raise SystemExit(main())
