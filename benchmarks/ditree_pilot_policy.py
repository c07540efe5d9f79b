"""Pilot that picks DiTree's settings (flow steps, controls executed per chunk, expansions per iteration) for a
trained policy on scenarios disjoint from the benchmark's (forest seeds 20000+, maze/bugtrap seeds 500+).

    OMP_NUM_THREADS=1 python benchmarks/ditree_pilot_policy.py outputs/ditree/model_v1 \
        > benchmarks/results/ditree_pilot_policy.json                          # steps x execute, batch 32
    OMP_NUM_THREADS=1 python benchmarks/ditree_pilot_policy.py models/ditree 3,8,32 3,8,128 \
        > benchmarks/results/ditree_pilot_batch.json                           # expansions per iteration
"""
import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sciflow.data.robot_maps import make_scenario
from sciflow.methods.ditree import DiTree
from sciflow.methods.ditree.evaluate import run_once, summarize
from sciflow.methods.ditree.planners import TreePlanner


def setting(text: str) -> tuple[int, int, int]:
    try:
        steps, execute, batch = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected STEPS,EXECUTE,BATCH (three whole numbers), got {text!r}") from None
    return steps, execute, batch


ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
ap.add_argument("model", help="folder or file of a trained DiTree model (e.g. models/ditree)")
ap.add_argument("settings", nargs="*", type=setting, default=[(3, 8, 32), (2, 16, 32), (2, 8, 32)],
                help="STEPS,EXECUTE,BATCH: flow steps, controls executed per chunk, expansions per iteration")
ap.add_argument("--n", type=int, default=6, help="scenarios per family")
ap.add_argument("--budget", type=float, default=5.0, help="seconds per run")
args = ap.parse_args()
torch.set_num_threads(1)
SETTINGS = args.settings
FAMILIES = [("forest", 20000), ("maze", 500), ("bugtrap", 500)]
N, BUDGET = args.n, args.budget
model = DiTree.load(args.model)
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
