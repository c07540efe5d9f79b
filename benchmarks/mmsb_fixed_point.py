"""Where MMSB's bridge/refinement rounds settle on the repressilator, by fine step h (companion of ``mmsb.py``).

The rounds are started from the simulator's true rates (``init="given"``) on the benchmark's training snapshots
(even-indexed times of ``Repressilatormrna_data.npz``), with the benchmark's settings otherwise and no
calibration, and the rates they settle at are recorded for each fine step h of the bridge paths. A drift of the
fixed point with h points at a discretisation bias in the bridge/refinement step.

Run: ``OMP_NUM_THREADS=1 python benchmarks/mmsb_fixed_point.py [--h 0.01 0.0025 0.001]`` (about 4 min on one
thread); writes benchmarks/results/mmsb_fixed_point.json and .md.
"""
from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mmsb import DATA, RESULTS, TRUE_PARAMS

from sciflow.core.files import atomic_write_json, atomic_write_text
from sciflow.data.snapshots import read_snapshots
from sciflow.methods.mmsb import MMSB
from sciflow.methods.mmsb.evaluate import heldout_split


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--h", type=float, nargs="+", default=[0.01, 0.0025, 0.001])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    truth = TRUE_PARAMS["repressilator"]
    train, _ = heldout_split(read_snapshots(DATA / "Repressilatormrna_data.npz"))
    rows = []
    for h in args.h:
        t0 = time.perf_counter()
        model = MMSB(reference="repressilator", sigma=0.02, noise="multiplicative", rounds=6, n_paths=500, h=h,
                     init="given", reference_kwargs=truth, calibrate="none")
        model.fit(train, seed=args.seed, show_progress=False)
        rows.append({"h": h, "params": model.reference_params, "seconds": time.perf_counter() - t0})
        print(rows[-1], flush=True)
    stamp = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    atomic_write_json(RESULTS / "mmsb_fixed_point.json", {"rows": rows, "truth": truth, "date": stamp,
                                                          "seed": args.seed})
    lines = ["# MMSB: the rounds' fixed point on the repressilator against the fine step h", "",
             f"Command: `OMP_NUM_THREADS=1 python benchmarks/mmsb_fixed_point.py --h {' '.join(map(str, args.h))}`; "
             f"{stamp}; one CPU thread. Started from the true rates "
             + ", ".join(f"{k} = {v:g}" for k, v in truth.items())
             + "; 6 rounds, 500 paths, no calibration, seed " + str(args.seed) + ".", "",
             "| h | " + " | ".join(truth) + " | seconds |", "|---|" + "---|" * (len(truth) + 1)]
    for r in rows:
        lines.append(f"| {r['h']:g} | " + " | ".join(f"{r['params'][k]:.4f}" for k in truth)
                     + f" | {r['seconds']:.0f} |")
    atomic_write_text(RESULTS / "mmsb_fixed_point.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
