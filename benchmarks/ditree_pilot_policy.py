"""Pilot that picks DiTree's settings (flow steps, controls executed per chunk, expansions per iteration) for a
trained policy on scenarios disjoint from the benchmark's (forest seeds 20000+, maze/bugtrap seeds 500+).

    OMP_NUM_THREADS=1 python benchmarks/ditree_pilot_policy.py outputs/ditree/model_v1 \
        > benchmarks/results/ditree_pilot_policy.json                          # steps x execute, batch 32
    OMP_NUM_THREADS=1 python benchmarks/ditree_pilot_policy.py models/ditree 3,8,32 3,8,128 \
        > benchmarks/results/ditree_pilot_batch.json                           # expansions per iteration
"""
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sciflow.data.robot_maps import make_scenario
from sciflow.methods.ditree import DiTree
from sciflow.methods.ditree.evaluate import run_once, summarize
from sciflow.methods.ditree.planners import TreePlanner

torch.set_num_threads(1)
SETTINGS = [(3, 8, 32), (2, 16, 32), (2, 8, 32)]     # (flow steps, executed controls, batch)
FAMILIES = [("forest", 20000), ("maze", 500), ("bugtrap", 500)]
N, BUDGET = 6, 5.0
model = DiTree.load(sys.argv[1])
if len(sys.argv) > 2:
    SETTINGS = [tuple(int(v) for v in a.split(",")) for a in sys.argv[2:]]
cfg = model.config()
out = []
for steps, execute, batch in SETTINGS:
    pl = TreePlanner(model.sampler(flow_steps=steps, execute=execute), goal_bias=cfg["goal_bias"],
                     batch=batch, name="ditree")
    runs = [run_once(pl, make_scenario(f, s0 + k), seed=0, budget_s=BUDGET)[0] for f, s0 in FAMILIES for k in range(N)]
    s = summarize(runs)
    by = {f: summarize([r for r in runs if r["family"] == f])["success_rate"] for f, _ in FAMILIES}
    out.append({"flow_steps": steps, "execute": execute, "batch": batch, "success_rate": s["success_rate"],
                "median_time_s": s["median_time_s"], "by_family": by})
    print(json.dumps(out[-1]), file=sys.stderr, flush=True)
print(json.dumps({"budget_s": BUDGET, "n_per_family": N, "settings": out}, indent=1))
