"""Distribution accuracy of the shipped CVAEs against larger Monte Carlo sets (companion of ``scattering.py``).

``scattering.py`` compares the CVAEs with MC sets of at most 400 walks per condition, so its noise floor (the W1
between two independent MC sets) and the MC standard error of the survival are large. This script repeats the
same per-condition metrics (``sciflow.methods.scattering.metrics.evaluate_condition``: survival E[albedo^N]
relative error over albedos 0.9 ... 0.9999, W1 of exit positions / directions against the W1 between two MC
sets of the same size) with ``--walks`` walks per MC set, full batches, for the optical radii given. A smaller
floor makes the W1 test stricter: a model error that hides under a 400-walk floor shows at 5,000 walks.

Run: ``OMP_NUM_THREADS=1 python benchmarks/scattering_large_sets.py --sigma-r 1 4 16 64 --walks 5000``
(writes benchmarks/results/scattering_large_sets.json and .md; about 8 min on one CPU thread).
"""
from __future__ import annotations

import argparse
import datetime as dt
import time
from pathlib import Path

import torch

from sciflow.core.files import atomic_write_json, atomic_write_text
from sciflow.methods.scattering.metrics import SURVIVAL_TOL, W1_FACTOR, evaluate_condition, simulate_sets
from sciflow.methods.scattering.model import ScatteringCVAEs

RESULTS = Path(__file__).resolve().parent / "results"
GS = (-0.5, 0.0, 0.5, 0.9)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sigma-r", type=float, nargs="+", default=[1.0, 4.0, 16.0, 64.0])
    ap.add_argument("--g", type=float, nargs="+", default=list(GS), help="anisotropies (default: the held-out grid's)")
    ap.add_argument("--walks", type=int, default=5000, help="walks per MC set (two sets per condition)")
    ap.add_argument("--model", default="models/scattering")
    ap.add_argument("--seed", type=int, default=777)
    ap.add_argument("--cache", default="runs/scattering/large_sets_cache",
                    help="folder for the MC sets (model-free; reused by later runs with the same settings)")
    ap.add_argument("--out", default=str(RESULTS / "scattering_large_sets"), help="output stem (.json, .md)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    model = ScatteringCVAEs.load(args.model)
    jobs = [(float(s), float(g), int(args.walks), args.seed + 7919 * i)
            for i, (s, g) in enumerate((s, g) for s in args.sigma_r for g in args.g)]
    mc = simulate_sets(jobs, cache=Path(args.cache), seed=args.seed)
    rows = []
    for s, g, n, sd in jobs:
        t0 = time.perf_counter()
        r = evaluate_condition(model, s, g, n_walks=n, seed=sd, mc=mc[(s, g)])
        r["seconds"] = time.perf_counter() - t0
        r["mc_rel_se_worst"] = max(v["mc_rel_se"] for v in r["survival"] if v["evaluated"])
        rows.append(r)
        print(f"sigma_r {s:g} g {g}: survival {r['survival_worst_rel_err']:.4f} "
              f"(MC s.e. {r['mc_rel_se_worst']:.4f}), W1 ratio pos {r['w1_exit_pos_ratio']:.2f} "
              f"dir {r['w1_exit_dir_ratio']:.2f}", flush=True)
    stamp = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    command = ("OMP_NUM_THREADS=1 python benchmarks/scattering_large_sets.py --sigma-r "
               + " ".join(f"{s:g}" for s in args.sigma_r) + f" --walks {args.walks}"
               + (" --g " + " ".join(f"{g:g}" for g in args.g) if list(args.g) != list(GS) else "")
               + (f" --model {args.model}" if args.model != "models/scattering" else ""))
    out = Path(args.out)
    atomic_write_json(out.with_suffix(".json"), {"rows": rows, "date": stamp, "command": command,
                                                 "walks_per_set": args.walks, "model": args.model,
                                                 "model_info": model.info, "model_config": model.config()})
    n_s = sum(r["meets_survival"] for r in rows)
    n_w = sum(r["meets_w1"] for r in rows)
    lines = ["# Scattering CVAEs against larger MC sets", "",
             f"Command: `{command}`; {stamp}; 2 shared CPU cores, one thread, no GPU.", "",
             (f"Two independent MC sets of {args.walks} walks per condition; same metrics as `scattering.py` "
              f"(survival rel. error target <= {SURVIVAL_TOL:g}, W1 target <= {W1_FACTOR:g}x the MC floor)."), "",
             ("| sigma_r | g | mean N (MC / CVAE) | survival worst rel. err (MC rel. s.e.) | W1 pos / floor (ratio) | "
              "W1 dir / floor (ratio) |"), "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['sigma_r']:g} | {r['g']:g} | {r['mean_events_mc']:.1f} / {r['mean_events_cvae']:.1f} | "
                     f"{r['survival_worst_rel_err']:.4f} ({r['mc_rel_se_worst']:.4f}) | "
                     f"{r['w1_exit_pos']:.3f} / {r['w1_exit_pos_floor']:.3f} ({r['w1_exit_pos_ratio']:.2f}) | "
                     f"{r['w1_exit_dir']:.3f} / {r['w1_exit_dir_floor']:.3f} ({r['w1_exit_dir_ratio']:.2f}) |")
    lines += ["", f"Survival target met on {n_s}/{len(rows)} conditions; W1 target met on {n_w}/{len(rows)}."]
    atomic_write_text(out.with_suffix(".md"), "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
