"""Plan one scenario with the shipped DiTree policy, export the plan and draw map, tree and plan.

    python examples/ditree_plan.py datasets/ditree/scenarios/bugtrap/bugtrap-0000.yaml
"""
import sys

import torch

from sciflow.core.random import make_generator
from sciflow.domains.robots import load_scenario, verify_plan
from sciflow.methods.ditree import DiTree, plan_trajectory
from sciflow.methods.ditree.export import export_plan
from sciflow.methods.ditree.plot import save_plan_png

torch.set_num_threads(1)
path = sys.argv[1] if len(sys.argv) > 1 else "datasets/ditree/scenarios/bugtrap/bugtrap-0000.yaml"
scenario = load_scenario(path)
model = DiTree.load("models/ditree")
result = model.solve(scenario, generator=make_generator(0), keep_tree=True)
print(result.metrics())
save_plan_png("outputs/ditree_example.png", scenario, result)
print("wrote outputs/ditree_example.png")
if result.success:
    print("re-simulated:", verify_plan(scenario, result.states, result.controls))
    traj = plan_trajectory(result, scenario=scenario.name)          # times (T,), states (T, 1, 5), controls
    export_plan("outputs/ditree_example.csv", traj)
    export_plan("outputs/ditree_example.npz", traj)
    print("wrote outputs/ditree_example.csv and .npz")
