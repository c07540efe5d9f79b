"""Run a few real RAMD dissociation replicas of a host-guest complex with OpenMM (CPU, one thread), then compare
the shipped UnbindingFlow's paths with them (clashes, success, exit directions, time per path).

    python examples/unbinding_md_vs_model.py --complex benzene-toluene --replicas 4

--replicas must be at least 4: the exit-direction W1 figures compare two random halves of the MD exit directions
(at least 2 each). When fewer than 4 replicas exit within the time limit, those figures are left out with a note.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sciflow.commands.script import run_script

#: the exit-direction W1 (``equal_size_w1``) needs two halves of at least 2 MD exit directions each
MIN_MD_EVENTS = 4


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from sciflow.data.ramd import host_guest_sources

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--complex", default="benzene-toluene", choices=sorted(host_guest_sources()))
    ap.add_argument("--replicas", type=int, default=4,
                    help=f"RAMD replicas to run, >= {MIN_MD_EVENTS} (default: %(default)s)")
    ap.add_argument("--out", default="outputs/unbinding_md_example")
    args = ap.parse_args(argv)
    if args.replicas < MIN_MD_EVENTS:
        ap.error(f"argument --replicas: at least {MIN_MD_EVENTS}, got {args.replicas} (the exit-direction W1 "
                 "compares two random halves of the MD exit directions, 2 or more each)")
    return args


def run(args: argparse.Namespace) -> None:
    from sciflow.data.ramd import RAMDSettings, generate_replicas, host_guest_sources, load_events
    from sciflow.methods.unbinding import UnbindingFlow
    from sciflow.methods.unbinding.evaluate import evaluate_paths

    # the dataset's settings: 16 kcal/mol/Å for the cucurbituril complexes, 2 for the benzene-toluene dimer
    force, exit_distance = (2.0, 10.0) if args.complex == "benzene-toluene" else (16.0, 12.0)
    settings = RAMDSettings(force=force, friction=25.0, timestep_fs=4.0, hydrogen_mass=3.0, check_every_ps=1.0,
                            min_displacement=0.4, exit_distance=exit_distance, max_time_ps=150.0)
    md = generate_replicas(host_guest_sources()[args.complex], settings, args.replicas, args.out, seed=123)
    print("MD:", json.dumps(md, indent=1))
    events = load_events(Path(args.out) / args.complex)
    if not events:
        print(f"{Path(__file__).name}: no MD replica exited within {settings.max_time_ps:g} ps, so there is "
              "nothing to compare the model with; run more --replicas", file=sys.stderr)
        raise SystemExit(1)
    metrics = evaluate_paths(UnbindingFlow.load("models/unbinding"), events, n_per_condition=4, seed=0)
    shown = {k: v for k, v in metrics.items() if k != "per_complex"}
    if len(events) < MIN_MD_EVENTS:
        left_out = [k for k, v in shown.items() if k.startswith("exit_direction_w1")
                    or (isinstance(v, float) and not math.isfinite(v))]
        shown = {k: v for k, v in shown.items() if k not in left_out}
        print(f"note: only {len(events)} MD replica(s) exited (of those under {args.out}/{args.complex}); the "
              f"exit-direction W1 figures need at least {MIN_MD_EVENTS} MD exit directions and are left out "
              f"({', '.join(left_out)}); run more --replicas for them")
    print("model vs these MD paths:", json.dumps(shown, indent=1))
    print(f"speed-up per path: {md['seconds_per_event'] / metrics['seconds_per_path']:.0f}x (same CPU)")


def main(argv: list[str] | None = None) -> None:
    run_script(run, parse_args(argv), errors=())


if __name__ == "__main__":
    main()
