"""Pilot that picks OMPL RRT's settings (goal bias, control duration range) on scenarios disjoint from the
benchmark's (forest seeds 20000+, maze/bugtrap seeds 500+), so the baseline runs at its best setting.

    OMP_NUM_THREADS=1 python benchmarks/ditree_pilot_ompl.py > benchmarks/results/ditree_pilot_ompl.json
"""
import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sciflow.data.robot_maps import make_scenario
from sciflow.methods.ditree.evaluate import run_once, summarize
from sciflow.methods.ditree.ompl_rrt import OMPLRRT

ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
ap.add_argument("--n", type=int, default=6, help="scenarios per family")
ap.add_argument("--budget", type=float, default=5.0, help="seconds per run")
args = ap.parse_args()
torch.set_num_threads(1)
SETTINGS = [(0.05, 2, 10), (0.15, 2, 10), (0.05, 2, 20), (0.15, 2, 20), (0.3, 2, 20)]
FAMILIES = [("forest", 20000), ("maze", 500), ("bugtrap", 500)]
N, BUDGET = args.n, args.budget
out = []
for gb, lo, hi in SETTINGS:
    pl = OMPLRRT(goal_bias=gb, min_controls=lo, max_controls=hi)
    runs = [run_once(pl, make_scenario(f, s0 + k), seed=0, budget_s=BUDGET)[0] for f, s0 in FAMILIES for k in range(N)]
    s = summarize(runs)
    by = {f: summarize([r for r in runs if r["family"] == f])["success_rate"] for f, _ in FAMILIES}
    out.append({"goal_bias": gb, "min_controls": lo, "max_controls": hi, "success_rate": s["success_rate"],
                "median_time_s": s["median_time_s"], "by_family": by})
    print(json.dumps(out[-1]), file=sys.stderr, flush=True)
print(json.dumps({"budget_s": BUDGET, "n_per_family": N, "settings": out}, indent=1))
