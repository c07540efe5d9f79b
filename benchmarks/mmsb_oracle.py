"""What the true simulator scores under the MMSB benchmark's protocol (companion of ``mmsb.py``).

The held-out metric of ``mmsb.py`` (exact W2 in data units between 200 predicted particles, pushed from the
t = 0 snapshot, and the 200 observed particles at t = 1, 3, 5, 7, 9) has a floor set by the finite samples:
even the simulator that made the data, with its true parameters and noise, does not score 0. This script
measures that floor by pushing the t = 0 snapshot through the published simulators (sciflow's drifts and noise
models, MMSB's Itô-Heun ``simulate``, dt = 1e-3, keeping only the held-out times) and scoring them exactly as ``mmsb.py`` scores the methods.

Run: ``OMP_NUM_THREADS=1 python benchmarks/mmsb_oracle.py [--seeds 5]`` (writes
benchmarks/results/mmsb_oracle.json and .md; about a minute on one CPU thread).
"""
from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mmsb import DATA, w2_distance

from sciflow.core.files import atomic_write_json, atomic_write_text
from sciflow.core.random import make_generator
from sciflow.data.snapshots import read_snapshots
from sciflow.domains.cells import LotkaVolterra, MultiplicativeNoise, Repressilator
from sciflow.methods.mmsb.predict import simulate

RESULTS = Path(__file__).resolve().parent / "results"
# the generators' settings as documented with the data (../shared/data/snapshots/README.md)
TRUTH = {
    "LV": ("LV_data.npz", lambda: LotkaVolterra(alpha=1.0, beta=0.4, gamma=0.4, delta=0.1), 0.02),
    "repressilator": ("Repressilatormrna_data.npz", lambda: Repressilator(beta=10.0, n=3.0, k=1.0, gamma=1.0), 0.02),
}


def oracle(problem: str, seed: int, dt_max: float = 1e-3, replicas: int = 1) -> list[float]:
    fname, make_drift, sigma = TRUTH[problem]
    snaps = read_snapshots(DATA / fname)
    drift, noise = make_drift().double(), MultiplicativeNoise(sigma)
    odd = list(range(1, snaps.n_snapshots, 2))
    tr = simulate(lambda x, t: drift(x), noise, snaps.samples[0].double().repeat(replicas, 1),
                  float(snaps.times[0]), [float(snaps.times[k]) for k in odd], dt=dt_max,
                  generator=make_generator(seed))
    return [w2_distance(tr.states[i], snaps.samples[k].double()) for i, k in enumerate(odd)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--replicas", type=int, default=1,
                    help="simulated particles per observed t = 0 cell (1: 200 particles, as in mmsb.py)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = []
    for problem in TRUTH:
        per_seed = [oracle(problem, s, replicas=args.replicas) for s in range(args.seeds)]
        means = [statistics.mean(w) for w in per_seed]
        per_time = [statistics.mean(w[j] for w in per_seed) for j in range(len(per_seed[0]))]
        rows.append({"problem": problem, "seeds": args.seeds, "w2_mean": statistics.mean(means),
                     "w2_sd": statistics.stdev(means) if len(means) > 1 else 0.0, "w2_per_time": per_time})
        print(problem, rows[-1], flush=True)
    stamp = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    tag = "" if args.replicas == 1 else f"_x{args.replicas}"
    atomic_write_json(RESULTS / f"mmsb_oracle{tag}.json",
                      {"rows": rows, "date": stamp, "seeds": args.seeds, "replicas": args.replicas,
                       "sd": "w2_sd: sample standard deviation over seeds (ddof = 1)"})
    lines = ["# MMSB benchmark: the true simulator's score (the metric's floor)", "",
             f"Command: `OMP_NUM_THREADS=1 python benchmarks/mmsb_oracle.py --seeds {args.seeds}"
             + (f" --replicas {args.replicas}" if args.replicas != 1 else "") + f"`; {stamp}; "
             "2 shared CPU cores, one thread.", "",
             ("The t = 0 snapshot pushed through the simulator that made the data (true parameters and noise, "
             f"Itô-Heun, dt = 1e-3; {args.replicas} simulated particle(s) per observed t = 0 cell), scored as in "
             "`mmsb.py`: exact W2 in data units against the 200 observed particles, mean over t = 1, 3, 5, 7, 9, "
             "mean ± sample sd (ddof = 1) over seeds."), "",
             "| problem | W2, true simulator | t=1 | t=3 | t=5 | t=7 | t=9 |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['problem']} | {r['w2_mean']:.3f} ± {r['w2_sd']:.3f} | "
                     + " | ".join(f"{w:.3f}" for w in r["w2_per_time"]) + " |")
    atomic_write_text(RESULTS / f"mmsb_oracle{tag}.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
