"""UnbindingFlow vs the RAMD molecular dynamics that produced its data, on held-out paths.

For each held-out set (replicas of the training complexes that the model never saw, and a complex absent from
training) the model draws paths from every held-out bound pose; we report clash rates (before / after the
projection, with and without guidance, and the MD's own under the same fixed-pocket test), success rate, exit-
direction W1 on the sphere against the MD directions (and between two halves of the MD set), path length and
exit-time distributions, and wall time per path against the measured MD wall time per dissociation event on the
same CPU (single thread both).

    python benchmarks/unbinding.py --model models/unbinding --data datasets/unbinding/heldout.h5 \
        --runs runs/unbinding_md --out benchmarks/results/unbinding

Writes ``<out>.json`` and ``<out>.md``. ``--w1-only`` runs only the guided + projected evaluation (exit-direction
W1 score, MD floor and ratio, clash and success rates) and skips the unguided ablation and the batched timing:

    python benchmarks/unbinding.py --w1-only --out benchmarks/results/unbinding_w1
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sciflow.core.files import atomic_write_json, atomic_write_text
from sciflow.core.random import make_generator
from sciflow.data.dissociation import read_dataset
from sciflow.methods.unbinding import UnbindingFlow
from sciflow.methods.unbinding.evaluate import evaluate_paths


def md_cost(trajs, runs: Path | None) -> dict[str, dict]:
    """Wall seconds per dissociation event of each complex: from the run folder's per-replica stats (failed
    replicas' time included) when present, else from the stats stored with each trajectory."""
    from sciflow.data.ramd import summarize
    out = {}
    for name in sorted({t.complex_name for t in trajs}):
        if runs is not None and (runs / name).is_dir():
            s = summarize(runs / name)
            out[name] = {"seconds_per_event": s["seconds_per_event"], "events": s["events"],
                         "replicas": s["replicas"], "simulated_ps": s["simulated_ps"], "source": str(runs / name)}
        else:
            st = [t.info["stats"] for t in trajs if t.complex_name == name and "stats" in t.info]
            out[name] = {"seconds_per_event": float(np.mean([s["wall_seconds"] for s in st])), "events": len(st),
                         "source": "trajectory info"}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="models/unbinding")
    ap.add_argument("--data", default="datasets/unbinding/heldout.h5")
    ap.add_argument("--runs", default="runs/unbinding_md", help="RAMD run folder (for the MD cost per event)")
    ap.add_argument("--train-complexes", nargs="*", default=None, help="default: from the model's training info")
    ap.add_argument("--n", type=int, default=4, help="paths per held-out bound pose")
    ap.add_argument("--max-conditions", type=int, default=12)
    ap.add_argument("--ablation-conditions", type=int, default=6)
    ap.add_argument("--batch", type=int, default=64, help="paths in the one-call throughput measurement")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="benchmarks/results/unbinding")
    ap.add_argument("--w1-only", action="store_true",
                    help="only the guided + projected evaluation (W1, clashes, success); no ablation, no batch timing")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)

    model = UnbindingFlow.load(args.model)
    trajs = read_dataset(args.data)
    seen = set(args.train_complexes or model.info.get("train", {}).get("complexes", []))
    runs = Path(args.runs) if args.runs else None
    cost = md_cost(trajs, runs)
    results: dict = {"model": args.model, "data": args.data, "device": "cpu, 1 thread (shared 2-core machine)",
                     "torch_threads": torch.get_num_threads(), "train_complexes": sorted(seen),
                     "w1_only": bool(args.w1_only), "sets": {}}
    out = Path(args.out)
    partial = out.with_suffix(".partial.json")
    if partial.exists():  # resume: sets finished by an interrupted run are kept
        done = json.loads(partial.read_text())
        if {k: done.get(k) for k in ("model", "data", "w1_only")} == {"model": args.model, "data": args.data,
                                                                      "w1_only": args.w1_only}:
            results["sets"] = done["sets"]
            results["seconds_before_resume"] = done.get("seconds", 0.0)
    start = time.perf_counter()
    for name in sorted({t.complex_name for t in trajs}):
        if name in results["sets"]:
            continue
        sub = [t for t in trajs if t.complex_name == name]
        row = {"seen_in_training": name in seen, "md_cost": cost[name]}
        m = evaluate_paths(model, sub, n_per_condition=args.n, max_conditions=args.max_conditions,
                           seed=args.seed)
        row["guided_projected"] = m["per_complex"][name]
        if args.w1_only:
            results["sets"][name] = row
            results["seconds"] = time.perf_counter() - start
            atomic_write_json(partial, results)
            print(name, json.dumps({k: row["guided_projected"][k] for k in (
                "exit_direction_w1", "exit_direction_w1_md_floor", "exit_direction_w1_ratio")}), flush=True)
            continue
        m0 = evaluate_paths(model, sub, n_per_condition=args.n, max_conditions=args.ablation_conditions,
                            seed=args.seed, guidance=0.0, project=False)
        row["unguided_raw"] = {k: m0["per_complex"][name][k] for k in
                               ("clash_rate", "success_rate", "exit_direction_w1", "seconds_per_path", "n_generated")}
        sp = m["per_complex"][name]["seconds_per_path"]
        row["speedup_vs_md"] = cost[name]["seconds_per_event"] / sp if sp > 0 else math.nan
        # throughput: one call for a batch of paths of one bound pose (what a user asking for an ensemble runs)
        t0 = time.perf_counter()
        batch = model.generate(sub[0].bound, args.batch, generator=make_generator(args.seed + 1))
        bs = (time.perf_counter() - t0) / args.batch
        row["batched"] = {"paths": args.batch, "seconds_per_path": bs,
                          "speedup_vs_md": cost[name]["seconds_per_event"] / bs,
                          "raw_clashing_paths": batch.info["raw_clashing_paths"],
                          "returned_clashing_paths": batch.info["returned_clashing_paths"]}
        results["sets"][name] = row
        results["seconds"] = time.perf_counter() - start
        atomic_write_json(partial, results)
        print(name, json.dumps({"clash": row["guided_projected"]["clash_rate"],
                                "raw": row["guided_projected"]["raw_clash_rate"],
                                "success": row["guided_projected"]["success_rate"],
                                "w1": row["guided_projected"]["exit_direction_w1"],
                                "w1_floor": row["guided_projected"]["exit_direction_w1_md_floor"],
                                "speedup": row["speedup_vs_md"]}), flush=True)
    results["seconds"] = time.perf_counter() - start + results.get("seconds_before_resume", 0.0)
    results["argv"] = sys.argv[1:] if argv is None else list(argv)
    results["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    atomic_write_json(out.with_suffix(".json"), results)
    partial.unlink(missing_ok=True)
    atomic_write_text(out.with_suffix(".md"), to_markdown(results))
    print(to_markdown(results))
    return 0


W1_NOTE = ("Exit W1: exact 1-Wasserstein distance on the unit sphere (great-circle metric) between exit "
           "directions, at one sample size: over 20 random splits of the MD directions into halves A and B, 'exit "
           "W1' is the mean W1(G, B) with G a random subsample of the generated directions of A's size (k), 'W1 MD "
           "floor' the mean W1(A, B), 'ratio' their quotient (about 1 for a generator drawing from the MD "
           "distribution). 'W1 all vs all MD' compares every generated with every MD direction; it is smaller for "
           "the same generator (more samples) and not comparable to the floor.")


def to_markdown(r: dict) -> str:
    if r.get("w1_only"):
        return w1_markdown(r)
    lines = [f"# UnbindingFlow vs RAMD MD (held-out paths; {r['device']})", "",
             ("| complex | in training | MD paths | generated | clash (returned) | clash raw (guided) | "
              "clash raw (unguided) | MD clash vs fixed pocket | success | exit W1 (rad) | W1 MD floor | W1 ratio | "
              "path length gen / MD (Å) | exit time gen / MD median (ps) | s per path | MD s per event | speed-up | "
              "s per path, batch | speed-up, batch |"),
             "|" + "---|" * 19]
    cmd = "python benchmarks/unbinding.py " + " ".join(r.get("argv", []))
    lines[1:1] = ["", (f"Command: `OMP_NUM_THREADS=1 {cmd.strip()}`; {r.get('date', '')}; "
                       f"benchmark wall time {r.get('seconds', 0.0) / 60:.1f} min."), ""]
    for name, row in r["sets"].items():
        g, u, c = row["guided_projected"], row["unguided_raw"], row["md_cost"]
        pl, pt = g["path_length_A"], g["path_time_ps"]
        lines.append(
            f"| {name} | {'yes' if row['seen_in_training'] else '**no**'} | {g['n_md']} | {g['n_generated']} | "
            f"{g['clash_rate']:.1%} | {g['raw_clash_rate']:.1%} | {u['clash_rate']:.1%} | "
            f"{g['md_clash_rate_fixed_pocket']:.1%} | {g['success_rate']:.1%} | {g['exit_direction_w1']:.3f} | "
            f"{g['exit_direction_w1_md_floor']:.3f} | {g['exit_direction_w1_ratio']:.2f} | {pl['generated_mean']:.1f} ± {pl['generated_std']:.1f} / "
            f"{pl['md_mean']:.1f} ± {pl['md_std']:.1f} | {pt['generated_median']:.1f} / {pt['md_median']:.1f} | "
            f"{g['seconds_per_path']:.2f} | {c['seconds_per_event']:.1f} | {row['speedup_vs_md']:.0f}x | "
            f"{row['batched']['seconds_per_path']:.3f} ({row['batched']['paths']}) | "
            f"{row['batched']['speedup_vs_md']:.0f}x |")
    note = ("Clash: a ligand heavy atom within 2.2 Å of a pocket heavy atom of the fixed bound pocket in any "
            "frame. Success: the ligand centre of mass ends at least the exit distance from the pocket centroid. "
            + W1_NOTE + " 's per path' is measured over the evaluation calls (n paths per held-out bound pose); 'batch' is one "
            "call drawing that many paths for one bound pose. MD s per event: measured wall time of the RAMD "
            "generator per dissociation event (failed replicas included) on the same machine, one thread.")
    lines += ["", note, ""]
    return "\n".join(lines)


def w1_markdown(r: dict) -> str:
    cmd = "python benchmarks/unbinding.py " + " ".join(r.get("argv", []))
    lines = [f"# UnbindingFlow exit-direction W1 vs RAMD MD (held-out paths; {r['device']})", "",
             (f"Command: `OMP_NUM_THREADS=1 {cmd.strip()}`; {r.get('date', '')}; wall time "
              f"{r.get('seconds', 0.0) / 60:.1f} min. Guided + projected sampling (the model's defaults)."), "",
             ("| complex | in training | MD paths | generated | k | exit W1 (rad) | W1 MD floor | ratio | "
              "W1 all vs all MD | clash (returned) | success |"), "|" + "---|" * 11]
    for name, row in r["sets"].items():
        g = row["guided_projected"]
        lines.append(
            f"| {name} | {'yes' if row['seen_in_training'] else '**no**'} | {g['n_md']} | {g['n_generated']} | "
            f"{g['exit_direction_w1_sample_size']} | {g['exit_direction_w1']:.3f} | "
            f"{g['exit_direction_w1_md_floor']:.3f} | {g['exit_direction_w1_ratio']:.2f} | "
            f"{g['exit_direction_w1_all_vs_all_md']:.3f} | {g['clash_rate']:.1%} | {g['success_rate']:.1%} |")
    lines += ["", W1_NOTE, ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
