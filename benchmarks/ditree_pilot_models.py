"""Pilot: two policy weights side by side on validation scenarios (disjoint from the benchmark's: forest seeds
20000+, the other families 500+), DiTree at each model's saved settings, DiTree with policy expansions only
(random_frac 0) and the policy alone, interleaved per scenario so machine load hits them alike. Models with a
distilled head (``sciflow ditree distill``) also run with their U-Net sampler (``ditree-unet*`` kinds).

    OMP_NUM_THREADS=1 python benchmarks/ditree_pilot_models.py --models models/ditree outputs/ditree/model_v2 \
        --out benchmarks/results/ditree_pilot_models.json
"""
import argparse
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sciflow.core.files import atomic_write_json
from sciflow.data.robot_maps import make_scenario
from sciflow.methods.ditree import DiTree
from sciflow.methods.ditree.evaluate import run_once, summarize

FIRST_SEED = {"forest": 20000, "maze": 500, "bugtrap": 500, "corridors": 500}
KINDS = {"ditree": {}, "ditree-rf0": {"random_frac": 0.0}, "ditree-rf25": {"random_frac": 0.25},
         "ditree-unet": {"head": False}, "ditree-unet-rf0": {"head": False, "random_frac": 0.0},
         "ditree-b64": {"batch": 64}, "ditree-b256": {"batch": 256},
         "ditree-gb05": {"goal_bias": 0.05}, "ditree-gb30": {"goal_bias": 0.3}, "policy": {}}

ap = argparse.ArgumentParser()
ap.add_argument("--models", nargs="+", required=True)
ap.add_argument("--kinds", nargs="+", default=list(KINDS), choices=list(KINDS))
ap.add_argument("--families", nargs="+", default=list(FIRST_SEED))
ap.add_argument("--n", type=int, default=10)
ap.add_argument("--seeds", type=int, default=1)
ap.add_argument("--budget", type=float, default=5.0)
ap.add_argument("--out", required=True)
args = ap.parse_args()
torch.set_num_threads(1)
planners = {}
for path in args.models:
    model = DiTree.load(path)
    for kind in args.kinds:
        planners[(path, kind)] = model.planner("policy" if kind == "policy" else "ditree", **KINDS[kind])
runs = {key: [] for key in planners}
for f in args.families:
    for k in range(args.n):
        sc = make_scenario(f, FIRST_SEED[f] + k, budget_s=args.budget)
        for seed in range(args.seeds):
            for key, pl in planners.items():
                m, _ = run_once(pl, sc, seed=seed, budget_s=args.budget)
                m["load1"] = os.getloadavg()[0]
                runs[key].append(m)
                print(key, sc.name, seed, m["success"], round(m["time_s"], 2), m["tree_size"], file=sys.stderr,
                      flush=True)
out = []
for (path, kind), rs in runs.items():
    by = {}
    for f in args.families:
        fs = summarize([r for r in rs if r["family"] == f])
        by[f] = {"success_rate": fs["success_rate"], "median_time_s": fs["median_time_s"],
                 "median_tree_size": fs["median_tree_size"], "n_runs": fs["n_runs"]}
    out.append({"model": path, "planner": kind, "by_family": by, "runs": rs})
    print(path, kind, {f: (round(v["success_rate"], 2), v["median_time_s"]) for f, v in by.items()})
atomic_write_json(args.out, {"command": " ".join(sys.argv), "budget_s": args.budget, "results": out})
