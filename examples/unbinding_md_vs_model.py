"""Run a few real RAMD dissociation replicas of a host-guest complex with OpenMM (CPU, one thread), then compare
the shipped UnbindingFlow's paths with them (clashes, success, exit directions, time per path).

    python examples/unbinding_md_vs_model.py --complex benzene-toluene --replicas 4
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sciflow.data.ramd import RAMDSettings, generate_replicas, host_guest_sources, load_events
from sciflow.methods.unbinding import UnbindingFlow
from sciflow.methods.unbinding.evaluate import evaluate_paths

ap = argparse.ArgumentParser()
ap.add_argument("--complex", default="benzene-toluene", choices=sorted(host_guest_sources()))
ap.add_argument("--replicas", type=int, default=4)
ap.add_argument("--out", default="outputs/unbinding_md_example")
args = ap.parse_args()
if args.replicas < 2:
    ap.error("--replicas: at least 2 (the exit-direction W1 floor compares two halves of the MD set)")

# the dataset's settings: 16 kcal/mol/Å for the cucurbituril complexes, 2 for the benzene-toluene dimer
force, exit_distance = (2.0, 10.0) if args.complex == "benzene-toluene" else (16.0, 12.0)
settings = RAMDSettings(force=force, friction=25.0, timestep_fs=4.0, hydrogen_mass=3.0, check_every_ps=1.0,
                        min_displacement=0.4, exit_distance=exit_distance, max_time_ps=150.0)
md = generate_replicas(host_guest_sources()[args.complex], settings, args.replicas, args.out, seed=123)
print("MD:", json.dumps(md, indent=1))
events = load_events(Path(args.out) / args.complex)
metrics = evaluate_paths(UnbindingFlow.load("models/unbinding"), events, n_per_condition=4, seed=0)
print("model vs these MD paths:", json.dumps({k: v for k, v in metrics.items() if k != "per_complex"}, indent=1))
print(f"speed-up per path: {md['seconds_per_event'] / metrics['seconds_per_path']:.0f}x (same CPU)")
