"""DiTree on a GPU: the benchmark's scenarios, seeds and budget, planners run on the device.

OMPL's RRT has no GPU path, so the reference rows are the CPU runs of ``benchmarks/ditree.py`` on the same
scenarios and seeds (read from its runs file, one CPU thread); the table says which device ran what. DiTree's
tree, its policy and the collision checks run on ``--device``. Scenarios are made in memory by the same
generator and seeds as the benchmark's files (no YAML needed on the GPU machine).

    python benchmarks/ditree_gpu.py --out DIR [--device cuda] [--seeds 1] [--quick]

Defaults (the OOD families; DiTree with its distilled flow map, the same model sampling with its U-Net, and
its random-expansion tree; one seed: 180 runs of at most 5 s, about 1-2 min at the CPU's ninth-session median
times) fit one short call of a lent GPU with room for the rest of a GPU check.

Writes DIR/ditree_gpu.json, DIR/ditree_gpu.md and every run to DIR/ditree_gpu_runs.jsonl.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.ditree import LABEL, SEED0, VARIANTS, _fmt
from sciflow.data.robot_maps import make_scenario
from sciflow.methods.ditree import DiTree
from sciflow.methods.ditree.evaluate import run_once, success_curve, summarize
from sciflow.methods.ditree.method import baseline_planner


def cpu_rows(path: Path, names: set[str], seeds: int) -> dict[tuple[str, str], list[dict]]:
    """(family, planner key) -> the CPU benchmark's runs on these scenarios and seeds."""
    out: dict[tuple[str, str], list[dict]] = {}
    if not path.is_file():
        return out
    for line in path.read_text().splitlines():
        r = json.loads(line) if line.strip() else None
        if r and r["scenario"] in names and r["seed"] < seeds:
            out.setdefault((r["family"], r["planner_key"]), []).append(r)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    p.add_argument("--device", default="cuda")
    p.add_argument("--families", nargs="+", default=["maze", "bugtrap", "corridors"])
    p.add_argument("--planners", nargs="+", default=["ditree", "ditree-unet", "ditree-rf1"])
    p.add_argument("--n", type=int, default=20, help="scenarios per family")
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--budget", type=float, default=5.0)
    p.add_argument("--cpu-runs", default=str(ROOT / "benchmarks" / "results" / "ditree_runs.jsonl"))
    p.add_argument("--quick", action="store_true", help="2 scenarios per family, 1 seed, 1 s (a dry run)")
    args = p.parse_args()
    if args.quick:
        args.n, args.seeds, args.budget = 2, 1, 1.0
    dev = torch.device(args.device)
    model = DiTree.load(ROOT / "models" / "ditree")
    model.model.to(dev).eval()
    planners = {}
    for k in args.planners:
        if k == "ditree":
            planners[k] = model.planner("ditree")
        elif k in VARIANTS:
            planners[k] = model.planner("ditree", **VARIANTS[k])
        else:
            planners[k] = baseline_planner(k)
    sets = {f: [make_scenario(f, SEED0[f] + k, budget_s=args.budget) for k in range(args.n)] for f in args.families}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    warm = sets[args.families[0]][0]
    for pl in planners.values():                                  # CUDA context, kernels, allocator
        run_once(pl, warm, seed=99, budget_s=min(1.0, args.budget), device=dev)
    runs: list[dict] = []
    with open(out / "ditree_gpu_runs.jsonl", "w") as fh:
        for s in range(args.seeds):
            for f, scs in sets.items():
                for sc in scs:
                    for k, pl in planners.items():
                        m, _ = run_once(pl, sc, seed=s, budget_s=args.budget, device=dev)
                        m.update({"planner_key": k, "device": str(dev)})
                        runs.append(m)
                        fh.write(json.dumps(m) + "\n")
                        fh.flush()
                print(f"seed {s} {f}: {sum(r['success'] for r in runs)} / {len(runs)} solved so far", flush=True)
    names = {sc.name for scs in sets.values() for sc in scs}
    cpu = cpu_rows(Path(args.cpu_runs), names, args.seeds)
    budgets = [b for b in (0.25, 0.5, 1.0, 2.0, 5.0) if b <= args.budget]
    device_name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    table = []
    for f in sets:
        for k in args.planners:
            rs = [r for r in runs if r["family"] == f and r["planner_key"] == k]
            table.append({"family": f, "planner": k, "device": device_name, **summarize(rs),
                          "success_within": dict(zip(map(str, budgets), success_curve(rs, budgets)))})
        for k in ("ditree", "rrt"):
            rs = cpu.get((f, k), [])
            if rs and all(r["budget_s"] == args.budget for r in rs):
                table.append({"family": f, "planner": k, "device": "cpu (benchmarks/ditree.py runs)",
                              **summarize(rs), "success_within": dict(zip(map(str, budgets),
                                                                          success_curve(rs, budgets)))})
    res = {"command": "python benchmarks/ditree_gpu.py " + " ".join(sys.argv[1:]), "torch": torch.__version__,
           "device": device_name, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "table": table}
    (out / "ditree_gpu.json").write_text(json.dumps(res, indent=1))
    head = (f"Command: `{res['command']}`; {device_name}; torch {res['torch']}; {res['date']}. {args.n} scenarios "
            f"per family x {args.seeds} seeds, {args.budget:g} s budget.")
    lines = ["# DiTree on the device", "", head, "",
             "| family | planner | device | success | median time (s, successes) | median tree size | "
             + " | ".join(f"<= {b:g} s" for b in budgets) + " |", "|---|---|---|---|---|---|" + "---|" * len(budgets)]
    for r in table:
        lines.append(f"| {r['family']} | {LABEL.get(r['planner'], r['planner'])} | {r['device']} | "
                     f"{100 * r['success_rate']:.0f}% ({r['n_success']}/{r['n_runs']}) | {_fmt(r['median_time_s'])} | "
                     f"{_fmt(r['median_tree_size'], 0)} | "
                     + " | ".join(f"{100 * v:.0f}%" for v in r["success_within"].values()) + " |")
    (out / "ditree_gpu.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
