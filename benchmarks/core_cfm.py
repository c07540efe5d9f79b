"""sciflow's core against TorchCFM: independent CFM and OT-CFM, side by side, on the same inputs.

Problems:
  * ``8gaussians->moons``: source = 8 Gaussians, target = two moons (``sciflow.data.toy``), 20 000-sample
    training pools, 2 000 held-out source points pushed through the learnt flow and compared with 2 000
    held-out target points.
  * ``LV t0->t10``: the stochastic Lotka-Volterra snapshots (``/work/shared/data/snapshots/LV_data.npz``),
    learning the flow from the first snapshot (t = 0) to the last (t = 10). The 200 particles of each
    snapshot are split 100 train / 100 held-out (a different split per seed); held-out t = 0 particles are
    pushed through the flow and compared with held-out t = 10 particles.

Both libraries get the same data, the same network (TorchCFM's MLP: [x, t] -> 64 -> 64 -> 64 -> d, SELU, with
identical initial weights), Adam(lr=1e-3) with no clipping, EMA or schedule, the same batch size, number of
training steps and path noise sigma, and the same number of Euler steps for sampling (TorchCFM through
torchdyn's NeuralODE, as in its tutorials). Quality is the exact 2-Wasserstein distance (POT ``emd2``)
between generated and held-out true samples; the "floor" row is W2 between two independent true samples of the
same sizes (the noise level of the metric). Times are wall clock and process CPU time on one thread; the
libraries alternate which one runs first per seed so machine load drifts hit both.

Run: ``python benchmarks/core_cfm.py [--quick]`` (writes benchmarks/results/core_cfm.json and .md).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import ot
import torch
from torch import nn

from sciflow.core.files import atomic_write_json, atomic_write_text
from sciflow.core.random import make_generator, randperm
from sciflow.core.training import TrainConfig, progress
from sciflow.data.toy import eight_gaussians, moons
from sciflow.methods.flow import ConditionalFlow

LV_PATH = Path(os.environ.get("SCIFLOW_SNAPSHOTS", "/work/shared/data/snapshots")) / "LV_data.npz"
RESULTS = Path(__file__).resolve().parent / "results"


# -- problems ------------------------------------------------------------------------------------
@dataclass
class Problem:
    name: str
    x0_train: torch.Tensor
    x1_train: torch.Tensor
    x0_test: torch.Tensor
    x1_test: torch.Tensor
    x1_ref: torch.Tensor      # an independent true target sample, same size as x1_test (metric floor)
    sigma: float
    steps: int
    batch_size: int


def moons_problem(seed: int, steps: int) -> Problem:
    g = make_generator(10_000 + seed)
    return Problem("8gaussians->moons", eight_gaussians(20_000, generator=g), moons(20_000, generator=g),
                   eight_gaussians(2_000, generator=g), moons(2_000, generator=g), moons(2_000, generator=g),
                   sigma=0.1, steps=steps, batch_size=256)


def lv_problem(seed: int, steps: int) -> Problem:
    with np.load(LV_PATH) as d:
        xs = torch.as_tensor(d["Xs"], dtype=torch.float32)        # (11, 200, 2)
    g = make_generator(20_000 + seed)
    p0, p1 = randperm(xs.shape[1], generator=g), randperm(xs.shape[1], generator=g)
    half = xs.shape[1] // 2
    x0, x1 = xs[0][p0], xs[-1][p1]
    # floor: W2 between the two halves of the t = 10 snapshot (100 vs 100, as for the generated sample)
    return Problem("LV t0->t10", x0[:half], x1[:half], x0[half:], x1[half:], x1[:half], sigma=0.0, steps=steps,
                   batch_size=128)


def w2(a: torch.Tensor, b: torch.Tensor) -> float:
    """Exact 2-Wasserstein distance between two empirical measures (uniform weights)."""
    a64, b64 = a.detach().double().numpy(), b.detach().double().numpy()
    m = ot.dist(a64, b64)  # squared Euclidean
    return float(np.sqrt(ot.emd2(ot.unif(len(a64)), ot.unif(len(b64)), m, numItermax=10_000_000)))


class Clock:
    """Wall and process CPU seconds of a block."""

    def __enter__(self):
        self.w, self.c = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall, self.cpu = time.perf_counter() - self.w, time.process_time() - self.c


def median_time(fn, repeats: int) -> tuple[float, float, object]:
    walls, cpus, out = [], [], None
    for _ in range(repeats):
        with Clock() as c:
            out = fn()
        walls.append(c.wall)
        cpus.append(c.cpu)
    return statistics.median(walls), statistics.median(cpus), out


# -- TorchCFM side (its documented training loop and sampler) ---------------------------------------
def torchcfm_mlp(dim: int) -> nn.Module:
    try:
        from torchcfm.models.models import MLP
        return MLP(dim, w=64, time_varying=True)
    except ImportError:  # the same layers, in the same order, as torchcfm.models.models.MLP
        return nn.Sequential(nn.Linear(dim + 1, 64), nn.SELU(), nn.Linear(64, 64), nn.SELU(), nn.Linear(64, 64),
                             nn.SELU(), nn.Linear(64, dim))


class TimeWrapper(nn.Module):
    """TorchCFM's ``torch_wrapper``: f(t, x) = model([x, t]) for torchdyn; counts evaluations."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model, self.nfe = model, 0

    def forward(self, t: torch.Tensor, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        self.nfe += 1
        return self.model(torch.cat([x, t.repeat(x.shape[0])[:, None]], 1))


def run_torchcfm(p: Problem, coupling: str, seed: int, euler_steps: int, repeats: int) -> dict:
    from torchcfm.conditional_flow_matching import (
        ConditionalFlowMatcher,
        ExactOptimalTransportConditionalFlowMatcher,
    )
    torch.manual_seed(seed)
    np.random.seed(seed)  # TorchCFM's OT sampler draws pairs with numpy's global generator
    model = torchcfm_mlp(p.x0_train.shape[1])
    init = [t.detach().clone() for t in model.parameters()]
    fm = (ExactOptimalTransportConditionalFlowMatcher(sigma=p.sigma) if coupling == "exact_ot"
          else ConditionalFlowMatcher(sigma=p.sigma))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    with Clock() as train:
        n0, n1 = p.x0_train.shape[0], p.x1_train.shape[0]
        for _ in range(p.steps):
            opt.zero_grad()
            x0 = p.x0_train[torch.randint(n0, (p.batch_size,))]
            x1 = p.x1_train[torch.randint(n1, (p.batch_size,))]
            t, xt, ut = fm.sample_location_and_conditional_flow(x0, x1)
            vt = model(torch.cat([xt, t[:, None]], dim=-1))
            loss = torch.mean((vt - ut) ** 2)
            loss.backward()
            opt.step()
    wrapped = TimeWrapper(model)
    span = torch.linspace(0, 1, euler_steps + 1)
    try:
        from torchdyn.core import NeuralODE
        node = NeuralODE(wrapped, solver="euler", sensitivity="adjoint")
        sampler = "torchdyn NeuralODE(solver='euler')"

        def sample() -> torch.Tensor:
            with torch.no_grad():
                return node.trajectory(p.x0_test, t_span=span)
    except ImportError:
        from torchdiffeq import odeint
        sampler = "torchdiffeq odeint(method='euler')"

        def sample() -> torch.Tensor:
            with torch.no_grad():
                return odeint(wrapped, p.x0_test, span, method="euler")
    wrapped.nfe = 0
    s_wall, s_cpu, traj = median_time(sample, repeats)
    return {"train_wall_s": train.wall, "train_cpu_s": train.cpu, "sample_wall_s": s_wall, "sample_cpu_s": s_cpu,
            "nfe": wrapped.nfe // repeats, "final_loss": loss.item(), "w2": w2(traj[-1], p.x1_test),
            "sampler": sampler, "init": init, "samples": traj[-1].detach()}


# -- sciflow side (the public ConditionalFlow method) ---------------------------------------------
def run_sciflow(p: Problem, coupling: str, seed: int, euler_steps: int, repeats: int) -> dict:
    torch.manual_seed(seed)  # the network's initial weights, drawn exactly as TorchCFM's are
    flow = ConditionalFlow(p.x0_train.shape[1], hidden=(64, 64, 64), activation="selu", time_embedding="raw",
                           path="linear", path_kwargs={"sigma": p.sigma}, coupling=coupling,
                           solver="euler", steps=euler_steps, batch_size=p.batch_size)
    init = [t.detach().clone() for t in flow.model.parameters()]
    with Clock() as train:
        result = flow.fit({"x0": p.x0_train, "x1": p.x1_train},
                          TrainConfig(steps=p.steps, lr=1e-3, grad_clip=None, ema_decay=None, seed=seed,
                                      progress=False), device="cpu")
    info = {}

    def sample() -> torch.Tensor:
        traj = flow.generate(None, p.x0_test.shape[0], x0=p.x0_test, generator=make_generator(seed))
        info.update(traj.info)
        return traj.states
    s_wall, s_cpu, states = median_time(sample, repeats)
    return {"train_wall_s": train.wall, "train_cpu_s": train.cpu, "sample_wall_s": s_wall, "sample_cpu_s": s_cpu,
            "nfe": info.get("nfe"), "final_loss": result.final_loss, "w2": w2(states[-1], p.x1_test),
            "sampler": f"sciflow {info.get('solver')}", "init": init, "samples": states[-1]}


# -- driver --------------------------------------------------------------------------------------
def mean_sd(xs: list[float]) -> tuple[float, float]:
    return float(np.mean(xs)), (float(np.std(xs, ddof=1)) if len(xs) > 1 else 0.0)


def summarise(runs: list[dict]) -> list[dict]:
    rows = []
    for prob, coup, lib in sorted({(r["problem"], r["coupling"], r["library"]) for r in runs}):
        sel = [r for r in runs if (r["problem"], r["coupling"], r["library"]) == (prob, coup, lib)]
        row = {"problem": prob, "coupling": coup, "library": lib, "seeds": len(sel)}
        for k in ("w2", "train_wall_s", "train_cpu_s", "sample_wall_s", "sample_cpu_s", "floor_w2"):
            row[k + "_mean"], row[k + "_sd"] = mean_sd([r[k] for r in sel])
        rows.append(row)
    return rows


def paired_w2(runs: list[dict]) -> dict[tuple[str, str], tuple[float, float]]:
    """Mean and sd over seeds of W2(sciflow) - W2(TorchCFM), paired by seed (same data and initial weights)."""
    by: dict[tuple[str, str, int], dict[str, float]] = {}
    for r in runs:
        by.setdefault((r["problem"], r["coupling"], r["seed"]), {})[r["library"]] = r["w2"]
    diffs: dict[tuple[str, str], list[float]] = {}
    for (prob, coup, _), v in by.items():
        if {"sciflow", "torchcfm"} <= set(v):
            diffs.setdefault((prob, coup), []).append(v["sciflow"] - v["torchcfm"])
    return {k: mean_sd(v) for k, v in diffs.items()}


def ratios(rows: list[dict], runs: list[dict]) -> list[dict]:
    paired = paired_w2(runs)
    out = []
    for prob, coup in sorted({(r["problem"], r["coupling"]) for r in rows}):
        s = next(r for r in rows if (r["problem"], r["coupling"], r["library"]) == (prob, coup, "sciflow"))
        t = next(r for r in rows if (r["problem"], r["coupling"], r["library"]) == (prob, coup, "torchcfm"))
        pooled = max(1e-12, float(np.sqrt((s["w2_sd"] ** 2 + t["w2_sd"] ** 2) / 2)))
        out.append({"problem": prob, "coupling": coup, "w2_ratio": s["w2_mean"] / t["w2_mean"],
                    "w2_diff_in_sd": (s["w2_mean"] - t["w2_mean"]) / pooled,
                    "w2_paired_diff_mean": paired[(prob, coup)][0], "w2_paired_diff_sd": paired[(prob, coup)][1],
                    "train_cpu_ratio": s["train_cpu_s_mean"] / t["train_cpu_s_mean"],
                    "train_wall_ratio": s["train_wall_s_mean"] / t["train_wall_s_mean"],
                    "sample_cpu_ratio": s["sample_cpu_s_mean"] / t["sample_cpu_s_mean"]})
    return out


def markdown(cfg: dict, rows: list[dict], runs: list[dict], env: dict) -> str:
    lines = [
        "# sciflow core vs TorchCFM (conditional flow matching)", "",
        f"Command: `{cfg['command']}`  ",
        (f"Machine: {env['machine']}, torch {env['torch']} ({env['threads']} thread), torchcfm {env['torchcfm']}, "
         f"POT {env['pot']}; {env['date']}."), "",
        (f"Seeds: {cfg['seeds']} ({cfg['seeds_moons_exact_ot']} for OT-CFM on moons; the seeds column gives "
         f"the count per row). Training steps: 8gaussians->moons {cfg['steps']['moons']} (batch 256, path "
        f"sigma 0.1), LV t0->t10 {cfg['steps']['lv']} (batch 128, sigma 0); Adam lr 1e-3, no clipping, EMA or "
        f"schedule; the same MLP with the same initial weights; Euler sampling with {cfg['euler_steps']} steps. "
        "W2: exact 2-Wasserstein (POT emd2) of generated vs held-out true samples (2000 vs 2000 for moons, "
        "100 vs 100 for LV); floor: W2 between two independent true samples of the same sizes. Times: mean ± sd "
        "over seeds, wall clock and process CPU on one thread; the machine is shared with other jobs, so CPU "
        "time is the steadier of the two."), "",
        ("| problem | coupling | library | seeds | W2 (mean ± sd) | W2 floor | train wall s | train CPU s "
         "| sample wall ms | sample CPU ms |"),
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['problem']} | {r['coupling']} | {r['library']} | {r['seeds']} | {r['w2_mean']:.4f} ± {r['w2_sd']:.4f} "
            f"| {r['floor_w2_mean']:.4f} | {r['train_wall_s_mean']:.1f} ± {r['train_wall_s_sd']:.1f} "
            f"| {r['train_cpu_s_mean']:.1f} ± {r['train_cpu_s_sd']:.1f} "
            f"| {1e3 * r['sample_wall_s_mean']:.1f} ± {1e3 * r['sample_wall_s_sd']:.1f} "
            f"| {1e3 * r['sample_cpu_s_mean']:.1f} ± {1e3 * r['sample_cpu_s_sd']:.1f} |")
    lines += ["", "sciflow / TorchCFM (means over seeds; a ratio below 1 means sciflow is faster or closer):", "",
              ("| problem | coupling | W2 ratio | W2 difference / pooled sd | paired W2 difference (mean ± sd) "
               "| train CPU ratio | train wall ratio | sample CPU ratio |"),
              "|---|---|---|---|---|---|---|---|"]
    for q in ratios(rows, runs):
        lines.append(f"| {q['problem']} | {q['coupling']} | {q['w2_ratio']:.3f} | {q['w2_diff_in_sd']:+.2f} "
                     f"| {q['w2_paired_diff_mean']:+.4f} ± {q['w2_paired_diff_sd']:.4f} "
                     f"| {q['train_cpu_ratio']:.3f} | {q['train_wall_ratio']:.3f} | {q['sample_cpu_ratio']:.3f} |")
    return "\n".join(lines) + "\n"


def plot(samples: dict, problems: dict, path: Path) -> None:
    """Generated samples of seed 0 next to the held-out truth, one row per problem and coupling."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    keys = sorted({(k[0], k[1]) for k in samples})
    fig, axes = plt.subplots(len(keys), 3, figsize=(10, 3.2 * len(keys)), squeeze=False)
    for row, (prob, coup) in zip(axes, keys):
        truth = problems[prob].x1_test
        row[0].scatter(truth[:, 0], truth[:, 1], s=2, c="k")
        row[0].set_title(f"{prob}: held-out truth", fontsize=9)
        for ax, lib in zip(row[1:], ("torchcfm", "sciflow")):
            x = samples.get((prob, coup, lib))
            if x is not None:
                ax.scatter(x[:, 0], x[:, 1], s=2, c="tab:blue" if lib == "sciflow" else "tab:orange")
            ax.set_title(f"{lib}, {coup}", fontsize=9)
        lims = [ax.get_xlim() + ax.get_ylim() for ax in row]
        for ax in row:
            ax.set_xlim(min(v[0] for v in lims), max(v[1] for v in lims))
            ax.set_ylim(min(v[2] for v in lims), max(v[3] for v in lims))
    fig.tight_layout()
    from sciflow.core.files import atomic_path
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="few steps and 2 seeds (a smoke run, minutes)")
    ap.add_argument("--seeds", type=int, default=None, help="number of seeds (default 3, quick 2)")
    ap.add_argument("--out", default=str(RESULTS), help="folder for core_cfm.json, .md and .png")
    ap.add_argument("--moons-ot-seeds", type=int, default=None,
                    help="fewer seeds for OT-CFM on 8gaussians->moons, the slowest cell (default: all seeds)")
    ap.add_argument("--render", action="store_true",
                    help="only rebuild the summary and the .md from the runs in an existing core_cfm.json")
    ap.add_argument("--fresh", action="store_true", help="ignore finished runs of an interrupted earlier call")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    torch.optim.Adam(nn.Linear(1, 1).parameters())  # pay torch.optim's one-off lazy imports before any clock
    seeds = list(range(args.seeds if args.seeds else (2 if args.quick else 3)))
    steps = {"moons": 300, "lv": 300} if args.quick else {"moons": 5000, "lv": 3000}
    euler_steps, repeats = 100, 5
    ot_seeds = seeds[:args.moons_ot_seeds] if args.moons_ot_seeds else seeds
    command = "python benchmarks/core_cfm.py" + (" --quick" if args.quick else "") + (
        f" --seeds {args.seeds}" if args.seeds else "") + (
        f" --moons-ot-seeds {args.moons_ot_seeds}" if args.moons_ot_seeds else "")
    cfg = {"command": command, "seeds": seeds, "seeds_moons_exact_ot": ot_seeds,
           "steps": steps, "euler_steps": euler_steps, "sample_repeats": repeats,
           "lv": "flow from snapshot t=0 to snapshot t=10, 100 train / 100 held-out particles each"}
    import torchcfm
    env = {"machine": f"{platform.machine()}, {os.cpu_count()} cores shared with other jobs",
           "python": platform.python_version(), "torch": torch.__version__, "torchcfm": torchcfm.__version__,
           "pot": ot.__version__, "threads": torch.get_num_threads(), "date": time.strftime("%Y-%m-%d %H:%M")}
    out = Path(args.out)
    name = "core_cfm_quick" if args.quick else "core_cfm"
    if args.render:
        saved = json.loads((out / f"{name}.json").read_text())
        rows = summarise(saved["runs"])
        atomic_write_json(out / f"{name}.json", {**saved, "summary": rows,
                                                 "ratios_sciflow_over_torchcfm": ratios(rows, saved["runs"])})
        atomic_write_text(out / f"{name}.md", markdown(saved["config"], rows, saved["runs"], saved["environment"]))
        return 0
    partial = out / f".{name}.partial.json"      # finished runs, so that a killed call resumes
    done: dict[str, list[dict]] = {}
    if partial.is_file() and not args.fresh:
        saved = json.loads(partial.read_text())
        if saved.get("config") == cfg:
            done = saved["jobs"]
    jobs = [(maker, key, coupling, seed) for maker, key in ((moons_problem, "moons"), (lv_problem, "lv"))
            for coupling in ("independent", "exact_ot")
            for seed in (ot_seeds if (key, coupling) == ("moons", "exact_ot") else seeds)]
    runs: list[dict] = []
    samples: dict = {}
    problems: dict = {}
    bar = progress(total=2 * len(jobs), desc="core_cfm", unit="run")
    for maker, key, coupling, seed in jobs:
        job = f"{key}/{coupling}/{seed}"
        p = maker(seed, steps[key])
        problems.setdefault(p.name, p)
        if job in done:
            runs += [{k: v for k, v in r.items() if k != "samples_seed0"} for r in done[job]]
            for r in done[job]:
                if "samples_seed0" in r:
                    samples[(p.name, coupling, r["library"])] = torch.tensor(r["samples_seed0"])
            bar.update(2)
            continue
        floor = w2(p.x1_ref, p.x1_test)
        order = [("torchcfm", run_torchcfm), ("sciflow", run_sciflow)]
        if seed % 2:
            order.reverse()
        inits, these = {}, []
        for lib, fn in order:
            bar.set_postfix_str(f"{p.name} {coupling} seed {seed} {lib}")
            r = fn(p, coupling, seed, euler_steps, repeats)
            inits[lib] = r.pop("init")
            x = r.pop("samples")
            if seed == seeds[0]:
                samples[(p.name, coupling, lib)] = x
            these.append({"problem": p.name, "coupling": coupling, "seed": seed, "library": lib, "steps": p.steps,
                          "batch_size": p.batch_size, "sigma": p.sigma, "floor_w2": floor, **r})
            bar.update(1)
        same = all(torch.equal(a, b) for a, b in zip(inits["torchcfm"], inits["sciflow"]))
        for r in these:
            r["same_init"] = same
        runs += these
        # the first seed's samples travel with the finished job so that a resumed call can still plot them
        done[job] = [dict(r, samples_seed0=samples[(p.name, coupling, r["library"])].tolist())
                     if seed == seeds[0] else r for r in these]
        atomic_write_json(partial, {"config": cfg, "jobs": done})
    bar.close()
    rows = summarise(runs)
    atomic_write_json(out / f"{name}.json", {"config": cfg, "environment": env, "summary": rows,
                                             "ratios_sciflow_over_torchcfm": ratios(rows, runs), "runs": runs})
    atomic_write_text(out / f"{name}.md", markdown(cfg, rows, runs, env))
    if samples:
        plot(samples, problems, out / f"{name}.png")
    partial.unlink(missing_ok=True)
    print(markdown(cfg, rows, runs, env))
    return 0


if __name__ == "__main__":
    sys.exit(main())
