"""Interleaved speed check of sciflow's core against TorchCFM (companion of ``core_cfm.py``).

On a machine shared with other jobs a single timing per library and seed is noisy: a load spike during one
library's run shows up as a speed difference. Here the two libraries' training loops (the same ones as in
``core_cfm.py``: same data, network, initial weights, optimiser, batch size and steps) alternate A, B, B, A, ...
``--repeats`` times per problem and coupling, and the median process CPU time of each
library is reported with the median of the per-pair ratios sciflow / TorchCFM.

Run: ``python benchmarks/core_cfm_timing.py`` (writes benchmarks/results/core_cfm_timing.json and .md).
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import core_cfm
import torch
from core_cfm import RESULTS, lv_problem, moons_problem, run_sciflow, run_torchcfm
from torch import nn

from sciflow.core.files import atomic_write_json, atomic_write_text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=600, help="training steps per run")
    ap.add_argument("--repeats", type=int, default=6, help="runs per library and coupling")
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    core_cfm.w2 = lambda a, b: float("nan")  # only training time is measured here; skip the 2000 x 2000 W2
    torch.optim.Adam(nn.Linear(1, 1).parameters())  # one-off lazy imports before any clock
    rows, runs = [], []
    for p, coupling in [(maker(0, args.steps), c) for maker in (moons_problem, lv_problem)
                        for c in ("independent", "exact_ot")]:
        cpu: dict[str, list[float]] = {"sciflow": [], "torchcfm": []}
        wall: dict[str, list[float]] = {"sciflow": [], "torchcfm": []}
        for k in range(args.repeats):
            order = [("torchcfm", run_torchcfm), ("sciflow", run_sciflow)]
            if k % 2:
                order.reverse()
            for lib, fn in order:
                r = fn(p, coupling, 0, 10, 1)
                cpu[lib].append(r["train_cpu_s"])
                wall[lib].append(r["train_wall_s"])
                runs.append({"problem": p.name, "coupling": coupling, "repeat": k, "library": lib, "train_cpu_s": r["train_cpu_s"],
                             "train_wall_s": r["train_wall_s"], "final_loss": r["final_loss"]})
                print(f"{p.name} {coupling} {k} {lib}: {r['train_cpu_s']:.2f} s CPU", flush=True)
        pair = [s / t for s, t in zip(cpu["sciflow"], cpu["torchcfm"])]
        rows.append({"problem": p.name, "batch_size": p.batch_size, "coupling": coupling, "steps": args.steps, "repeats": args.repeats,
                     "sciflow_cpu_s_median": statistics.median(cpu["sciflow"]),
                     "torchcfm_cpu_s_median": statistics.median(cpu["torchcfm"]),
                     "sciflow_wall_s_median": statistics.median(wall["sciflow"]),
                     "torchcfm_wall_s_median": statistics.median(wall["torchcfm"]),
                     "cpu_ratio_median": statistics.median(pair), "cpu_ratio_min": min(pair),
                     "cpu_ratio_max": max(pair)})
    import torchcfm
    env = {"machine": f"{platform.machine()}, {os.cpu_count()} cores shared with other jobs", "torch": torch.__version__,
           "torchcfm": torchcfm.__version__, "threads": torch.get_num_threads(), "date": time.strftime("%Y-%m-%d %H:%M")}
    cmd = "python benchmarks/core_cfm_timing.py" + ("" if (args.steps, args.repeats) == (600, 6)
                                                    else f" --steps {args.steps} --repeats {args.repeats}")
    out = Path(args.out)
    atomic_write_json(out / "core_cfm_timing.json", {"command": cmd, "environment": env, "summary": rows,
                                                      "runs": runs})
    lines = ["# Training speed, sciflow vs TorchCFM, interleaved runs", "",
             f"Command: `{cmd}`  ",
             f"Machine: {env['machine']}, torch {env['torch']} (1 thread), torchcfm {env['torchcfm']}; {env['date']}.",
             "", (f"The training loops of core_cfm.py (8-Gaussians -> moons, batch 256; LV t0 -> t10, batch 128), "
                  f"{args.steps} training steps per run, {args.repeats} runs per library, problem and coupling, "
                  "alternating which library runs first. CPU = process CPU time of the training loop."), "",
             ("| problem | coupling | sciflow CPU s (median) | TorchCFM CPU s (median) | sciflow / TorchCFM per pair: median "
              "[min, max] | sciflow wall s | TorchCFM wall s |"),
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['problem']} | {r['coupling']} | {r['sciflow_cpu_s_median']:.2f} | {r['torchcfm_cpu_s_median']:.2f} "
                     f"| {r['cpu_ratio_median']:.3f} [{r['cpu_ratio_min']:.3f}, {r['cpu_ratio_max']:.3f}] "
                     f"| {r['sciflow_wall_s_median']:.1f} | {r['torchcfm_wall_s_median']:.1f} |")
    text = "\n".join(lines) + "\n"
    atomic_write_text(out / "core_cfm_timing.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
