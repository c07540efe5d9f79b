"""Side-by-side report of `sciflow tsgen evaluate --xtb --xtb-all-samples` runs (Sella check from every sample).

    python benchmarks/tsgen_saddle_report.py --run "LABEL=metrics.json" [--run ...] --out benchmarks/results/NAME

Per run: order-1 saddles from the medoid and from every generated TS, per sample position, at least one of n per
reaction, on the first 20 reactions (the xTB subset of benchmarks/results/tsgen.md), mean Sella steps and the
median seconds per check. Writes NAME.json (summaries and per-reaction flags) and NAME.md.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sciflow.core.files import atomic_write_json, atomic_write_text


def summary(label: str, path: Path) -> dict:
    d = json.loads(path.read_text())
    if "xtb_all_samples" not in d:
        raise SystemExit(f"{path}: no xtb_all_samples (run evaluate with --xtb --xtb-all-samples)")
    every = d["xtb_all_samples"]                         # [sample position][reaction]: medoid first
    flags = np.array([[bool(it["saddle"]) for it in its] for its in every])          # (n, R)
    flat = [it for its in every for it in its]
    return {"label": label, "file": str(path), "n_reactions": int(flags.shape[1]), "n_samples": int(flags.shape[0]),
            "exact_hessian": d.get("sella_exact_hessian", False),
            "saddle_medoid": float(flags[0].mean()), "saddle_every_ts": float(flags.mean()),
            "saddle_per_sample_position": flags.mean(1).tolist(), "saddle_any_of_n": float(flags.any(0).mean()),
            "saddle_first20_medoid": float(flags[0, :20].mean()), "saddle_first20_every_ts": float(flags[:, :20].mean()),
            "sella_steps_mean": float(np.mean([it["saddle_steps"] for it in flat])),
            "seconds_per_check_median": float(np.median([it["seconds"] for it in flat])),
            "rmsd_medoid_mean": d["rmsd_ranked_mean"], "rmsd_medoid_median": d["rmsd_ranked_median"],
            "rxn_ids": [it["rxn_id"] for it in every[0]], "saddle_flags": flags.astype(int).tolist()}


def markdown(rows: list[dict], command: str) -> str:
    def pct(v: float) -> str:
        return f"{100 * v:.1f} %"
    lines = ["# TS-GEN: Sella saddle check from every generated TS, side by side", "",
             f"Report: `{command}` ({time.strftime('%Y-%m-%d')}). Each run: `OMP_NUM_THREADS=1 python -m sciflow "
             "tsgen evaluate --data runs/SPLIT.npz --out metrics.json --n-samples 4 --xtb --xtb-all-samples "
             "[--no-sella-hessian]` (shipped model, seed 0, Euler 2 steps; Sella order 1 in internal coordinates, "
             "<= 50 steps, fmax 0.05 eV/Å, a fresh GFN2-xTB calculator per search; success = converged with exactly "
             "one imaginary mode). One shared CPU thread; seconds per check include the guess and reference "
             "energies, the search and the final finite-difference Hessian.", "",
             "| run | medoid | every generated TS | sample 1 / 2 / 3 / 4 | >= 1 of 4 per reaction | first 20: medoid / "
             "every TS | mean Sella steps | median s per check |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        n, per = r["n_reactions"], " / ".join(f"{100 * v:.1f}" for v in r["saddle_per_sample_position"])
        lines.append(f"| {r['label']} | {pct(r['saddle_medoid'])} ({round(r['saddle_medoid'] * n)}/{n}) | "
                     f"{pct(r['saddle_every_ts'])} ({round(r['saddle_every_ts'] * n * r['n_samples'])}/"
                     f"{n * r['n_samples']}) | {per} | {pct(r['saddle_any_of_n'])} | "
                     f"{pct(r['saddle_first20_medoid'])} / {pct(r['saddle_first20_every_ts'])} | "
                     f"{r['sella_steps_mean']:.1f} | {r['seconds_per_check_median']:.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--run", action="append", required=True, help="LABEL=path of an evaluate metrics JSON")
    p.add_argument("--out", required=True, help="output path without suffix")
    args = p.parse_args()
    rows = []
    for item in args.run:
        label, _, path = item.partition("=")
        rows.append(summary(label, Path(path)))
    command = "python benchmarks/tsgen_saddle_report.py " + " ".join(f'--run "{r}"' for r in args.run)
    out = Path(args.out)
    atomic_write_json(out.with_suffix(".json"), {"command": command, "rows": rows})
    atomic_write_text(out.with_suffix(".md"), markdown(rows, command + f" --out {args.out}"))
    print(markdown(rows, command))


if __name__ == "__main__":
    main()
