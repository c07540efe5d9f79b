"""Plan one scenario with the shipped DiTree policy, export the plan and draw map, tree and plan.

    python examples/ditree_plan.py datasets/ditree/scenarios/bugtrap/bugtrap-0000.yaml

Writes outputs/ditree_example.png and, when a plan is found, outputs/ditree_example.csv and .npz.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sciflow.commands.script import run_script


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenario", nargs="?", default="datasets/ditree/scenarios/bugtrap/bugtrap-0000.yaml",
                    help="scenario YAML (default: %(default)s)")
    return ap.parse_args(argv)


def run(args: argparse.Namespace) -> None:
    import torch

    from sciflow.core.random import make_generator
    from sciflow.domains.robots import load_scenario, verify_plan
    from sciflow.methods.ditree import DiTree, plan_trajectory
    from sciflow.methods.ditree.export import export_plan
    from sciflow.methods.ditree.plot import save_plan_png

    torch.set_num_threads(1)
    scenario = load_scenario(args.scenario)
    model = DiTree.load("models/ditree")
    result = model.solve(scenario, generator=make_generator(0), keep_tree=True)
    print(result.metrics())
    Path("outputs").mkdir(parents=True, exist_ok=True)
    save_plan_png("outputs/ditree_example.png", scenario, result)
    print("wrote outputs/ditree_example.png")
    if result.success:
        print("re-simulated:", verify_plan(scenario, result.states, result.controls))
        traj = plan_trajectory(result, scenario=scenario.name)          # times (T,), states (T, 1, 5), controls
        export_plan("outputs/ditree_example.csv", traj)
        export_plan("outputs/ditree_example.npz", traj)
        print("wrote outputs/ditree_example.csv and .npz")


def main(argv: list[str] | None = None) -> None:
    run_script(run, parse_args(argv))


if __name__ == "__main__":
    main()
