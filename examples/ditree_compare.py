"""DiTree vs OMPL's control-space RRT and sciflow's SST on one out-of-distribution scenario, same budget.

Side by side, one panel per planner; OMPL's planner is ``ompl.control.RRT`` (sciflow planner name "rrt").

    python examples/ditree_compare.py datasets/ditree/scenarios/maze/maze-0003.yaml 5

Runs the planners "ditree", "sst" and "rrt" (OMPL) with the same wall-clock budget (seconds, the second argument)
and writes outputs/ditree_compare.png, one panel per planner titled with what ran. When the ``ompl`` package
cannot be imported, the third panel is sciflow's torch RRT ("rrt-torch") instead, and the script says so.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sciflow.commands.script import positive, run_script

TITLES = {"ditree": "DiTree", "sst": "SST (sciflow)", "rrt": "OMPL control RRT", "rrt-torch": "RRT (sciflow, torch)"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenario", nargs="?", default="datasets/ditree/scenarios/maze/maze-0003.yaml",
                    help="scenario YAML (default: %(default)s)")
    ap.add_argument("budget", nargs="?", type=positive(), default=5.0,
                    help="planning budget per planner in seconds (default: %(default)s)")
    return ap.parse_args(argv)


def ompl_available() -> bool:
    try:
        import ompl.control  # noqa: F401
    except (ImportError, OSError):          # missing package or a broken binary wheel
        return False
    return True


def run(args: argparse.Namespace) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from sciflow.core.random import make_generator
    from sciflow.domains.robots import load_scenario
    from sciflow.methods.ditree import DiTree
    from sciflow.methods.ditree.plot import draw_scenario

    torch.set_num_threads(1)
    planners = ["ditree", "sst", "rrt"]
    if not ompl_available():
        planners[-1] = "rrt-torch"
        print("note: the ompl package cannot be imported; running sciflow's torch RRT ('rrt-torch') instead of "
              "OMPL's control-space RRT")
    sc = load_scenario(args.scenario)
    model = DiTree.load("models/ditree")
    budget = args.budget
    fig, axes = plt.subplots(1, len(planners), figsize=(13, 4.6))
    for ax, name in zip(axes, planners):
        res = model.solve(sc, planner=name, budget_s=budget, generator=make_generator(0), keep_tree=True)
        state = f"{res.time_s:.2f} s, {res.tree_size} nodes" if res.success else f"no plan in {budget:g} s"
        print(f"{TITLES[name]} ({name!r}): {state}")
        draw_scenario(ax, sc, res, title=f"{TITLES[name]}: {state}")
    fig.tight_layout()
    out = Path("outputs/ditree_compare.png")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    print(f"wrote {out}")


def main(argv: list[str] | None = None) -> None:
    run_script(run, parse_args(argv))


if __name__ == "__main__":
    main()
