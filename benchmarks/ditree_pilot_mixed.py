"""Pilot for DiTree's mixed expansion (fraction of random-control expansions) and cheaper policy calls, on
validation scenarios disjoint from the benchmark's (forest seeds 20000+, maze and bugtrap seeds 500+; the
benchmark uses forest 10000+ and maze/bugtrap 0-19). Settings are interleaved per scenario so machine load hits
them alike; one run per scenario and setting.

    OMP_NUM_THREADS=1 python benchmarks/ditree_pilot_mixed.py --settings 0,2,8,128 0.5,2,8,128 \
        --out benchmarks/results/ditree_pilot_mixed.json

A setting is ``random_frac,flow_steps,execute,batch``.
"""
import argparse
import json
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sciflow.core.files import atomic_write_json
from sciflow.data.robot_maps import make_scenario
from sciflow.methods.ditree import DiTree
from sciflow.methods.ditree.evaluate import run_once, summarize

FAMILIES = {"forest": 20000, "maze": 500, "bugtrap": 500, "corridors": 500}

ap = argparse.ArgumentParser()
ap.add_argument("--model", default="models/ditree")
ap.add_argument("--settings", nargs="+", required=True)
ap.add_argument("--families", nargs="+", default=list(FAMILIES))
ap.add_argument("--n", type=int, default=6)
ap.add_argument("--first", type=int, default=0, help="first scenario offset within each family's seed range")
ap.add_argument("--budget", type=float, default=5.0)
ap.add_argument("--out", required=True)
args = ap.parse_args()
torch.set_num_threads(1)
model = DiTree.load(args.model)
settings = [tuple(float(v) for v in s.split(",")) for s in args.settings]
planners = {s: model.planner("ditree", random_frac=s[0], flow_steps=int(s[1]), execute=int(s[2]), batch=int(s[3]))
            for s in settings}
runs = {s: [] for s in settings}
for f in args.families:
    for k in range(args.first, args.first + args.n):
        sc = make_scenario(f, FAMILIES[f] + k, budget_s=args.budget)
        for s in settings:
            m, _ = run_once(planners[s], sc, seed=0, budget_s=args.budget)
            m["load1"] = os.getloadavg()[0]
            runs[s].append(m)
            print(s, sc.name, m["success"], round(m["time_s"], 2), m["tree_size"], file=sys.stderr, flush=True)
out = []
for s in settings:
    by = {}
    for f in args.families:
        fs = summarize([r for r in runs[s] if r["family"] == f])
        by[f] = {"success_rate": fs["success_rate"], "median_time_s": fs["median_time_s"],
                 "median_tree_size": fs["median_tree_size"]}
    a = summarize(runs[s])
    out.append({"random_frac": s[0], "flow_steps": int(s[1]), "execute": int(s[2]), "batch": int(s[3]),
                "success_rate": a["success_rate"], "median_time_s": a["median_time_s"], "by_family": by,
                "all_verified": a["all_verified"], "runs": runs[s]})
    print(json.dumps({k: v for k, v in out[-1].items() if k != "runs"}), flush=True)
atomic_write_json(args.out, {"budget_s": args.budget, "n_per_family": args.n, "first": args.first,
                             "model": args.model, "settings": out})
