"""DiTree vs OMPL's control-space RRT on one out-of-distribution scenario, same budget, side by side.

    python examples/ditree_compare.py datasets/ditree/scenarios/maze/maze-0003.yaml 5
"""
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch

from sciflow.core.random import make_generator
from sciflow.domains.robots import load_scenario
from sciflow.methods.ditree import DiTree
from sciflow.methods.ditree.plot import draw_scenario

torch.set_num_threads(1)
path = sys.argv[1] if len(sys.argv) > 1 else "datasets/ditree/scenarios/maze/maze-0003.yaml"
budget = float(sys.argv[2]) if len(sys.argv) > 2 else 5.0
sc = load_scenario(path)
model = DiTree.load("models/ditree")
fig, axes = plt.subplots(1, 3, figsize=(13, 4.6))
for ax, name in zip(axes, ["ditree", "sst", "rrt-torch"]):
    res = model.solve(sc, planner=name, budget_s=budget, generator=make_generator(0), keep_tree=True)
    state = f"{res.time_s:.2f} s, {res.tree_size} nodes" if res.success else f"no plan in {budget:g} s"
    draw_scenario(ax, sc, res, title=f"{name}: {state}")
fig.tight_layout()
fig.savefig("outputs/ditree_compare.png")
print("wrote outputs/ditree_compare.png")
