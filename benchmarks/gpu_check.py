"""GPU throughput of the methods whose issues name a GPU figure, in one short run (H100 when lent).

    python benchmarks/gpu_check.py --out DIR [--device cuda] [--quick]

1. TS-GEN: transition states per second, batched (every reaction of runs/test.npz x n samples, Euler, the
   shipped model's steps), after a warm-up call.
2. Scattering: learned walks per second (the three CVAEs) against Monte Carlo walks per second on the same device,
   per sigma_r (g = 0, albedo 0.999).
3. Scattering renders: brute-force and learned tracers on the benchmark's sphere at equal time budgets on the
   device, relative RMSE against the cached CPU reference renders of benchmarks/scattering.py
   (runs/scattering/bench_cache).
Needs no ase / rdkit / mdtraj. Writes DIR/gpu_check.json and DIR/gpu_check.md.
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

from benchmarks.scattering import combine_reference, rmse
from sciflow.core.random import make_generator
from sciflow.data.reactions import load_triplets
from sciflow.domains.photons.scene import make_scene
from sciflow.domains.photons.walks import simulate_walks
from sciflow.methods.scattering import ScatteringCVAEs
from sciflow.methods.scattering.api import render
from sciflow.methods.tsgen import TSGen

ROOT = Path(__file__).resolve().parents[1]


def sync(device: str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def tsgen_throughput(device: str, ns: list[int]) -> list[dict]:
    model = TSGen.load(ROOT / "models" / "tsgen", map_location=device)
    data = load_triplets(ROOT / "runs" / "test.npz")
    model.predict(data, 2, generator=make_generator(0, device), device=device)          # warm-up
    rows = []
    for n in ns:
        _, seconds = model.predict(data, n, generator=make_generator(1, device), device=device,
                                   batch_reactions=len(data))
        rows.append({"reactions": len(data), "samples_per_reaction": n, "ts": len(data) * n, "seconds": seconds,
                     "ts_per_second": len(data) * n / seconds, "steps": model.steps, "solver": model.solver_name})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def walks_throughput(device: str, sigmas: dict[float, int], n_cvae: int) -> list[dict]:
    model = ScatteringCVAEs.load(ROOT / "models" / "scattering", map_location=device)
    rows = []
    for s, n_mc in sigmas.items():
        sig = torch.full((n_cvae,), s, device=device)
        g = torch.zeros(n_cvae, device=device)
        alb = torch.full((n_cvae,), 0.999, dtype=torch.float64, device=device)
        model.sample(sig[:1000], g[:1000], alb[:1000], generator=make_generator(0, device))          # warm-up
        sync(device)
        t0 = time.perf_counter()
        model.sample(sig, g, alb, generator=make_generator(1, device))
        sync(device)
        t_cvae = time.perf_counter() - t0
        simulate_walks(s, 0.0, 0.999, 256, generator=make_generator(2, device), device=device)      # warm-up
        sync(device)
        t0 = time.perf_counter()
        w = simulate_walks(s, 0.0, 0.999, n_mc, generator=make_generator(3, device), device=device, slots=262144)
        sync(device)
        t_mc = time.perf_counter() - t0
        mean_n = float(w["n_events"].double().mean())
        rows.append({"sigma_r": s, "cvae_walks": n_cvae, "cvae_walks_per_s": n_cvae / t_cvae, "mc_walks": n_mc,
                     "mc_walks_per_s": n_mc / t_mc, "mc_mean_events": mean_n, "mc_events_per_s": n_mc * mean_n / t_mc,
                     "speedup": (n_cvae / t_cvae) / (n_mc / t_mc)})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def reference(scene, s: float, device: str, ref_seconds: float, slots: int) -> tuple[dict, float, str]:
    """Two independent brute-force halves on the device (ref_seconds > 0), else the cached CPU reference of
    benchmarks/scattering.py; returns the halves, the reference's relative noise and where it came from."""
    if ref_seconds > 0:
        rs = [render(scene, "volpath", spp=None, time_budget=ref_seconds / 2, seed=1000 * k + int(s), device=device,
                     progress=False, slots=slots) for k in (1, 2)]
        f = {"i1": rs[0].image, "i2": rs[1].image, "w1": rs[0].samples_per_pixel.astype(float),
             "w2": rs[1].samples_per_pixel.astype(float)}
        where = f"device, {rs[0].seconds + rs[1].seconds:.0f} s"
    else:
        cache = ROOT / "runs" / "scattering" / "bench_cache" / f"ref_s{s:g}_g0.5_a0.999_r24_t200.npz"
        with np.load(cache) as z:
            f = {k: z[k] for k in ("i1", "i2", "w1", "w2")}
        where = "cached CPU reference, 200 s"
    ref, noise = combine_reference(f["i1"], f["i2"], f["w1"], f["w2"])
    return ref, noise, where


def renders(device: str, sigmas: list[float], seconds: float, slots: int, ref_seconds: float = 0.0) -> list[dict]:
    model = ScatteringCVAEs.load(ROOT / "models" / "scattering", map_location=device)
    rows = []
    for s in sigmas:
        scene = make_scene("sphere", sigma_r=s, albedo=0.999, g=0.5, width=24, height=24)
        ref, noise, where = reference(scene, s, device, ref_seconds, slots)
        row = {"sigma_r": s, "ref_rel_noise": noise, "reference": where, "slots": slots, "budget_s": seconds}
        print(json.dumps({"sigma_r": s, "reference": where, "ref_rel_noise": noise}), flush=True)
        render(scene, "cvae", spp=1, model=model, device=device, progress=False, slots=slots)          # warm-up
        for name in ("volpath", "cvae"):
            r = render(scene, name, spp=None, time_budget=seconds, model=model, seed=3000 + int(s), device=device,
                       progress=False, slots=slots)
            row[name] = {"seconds": r.seconds, "paths": r.paths, "paths_per_second": r.paths / r.seconds,
                         "rel_rmse": rmse(r.image, ref),
                         "mean_ratio": float(r.image.mean() / ref.mean()),
                         "path_rel_variance": r.relative_path_variance(ref)}
        bf, cv = row["volpath"], row["cvae"]
        row["rmse_ratio_bf_over_cvae"] = bf["rel_rmse"] * math.sqrt(bf["seconds"] / cv["seconds"]) / cv["rel_rmse"]
        rm = [math.sqrt(max(d["rel_rmse"] ** 2 - noise ** 2, 0.0)) for d in (bf, cv)]
        row["rmse_ratio_ref_noise_removed"] = rm[0] * math.sqrt(bf["seconds"] / cv["seconds"]) / max(rm[1], 1e-12)
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def markdown(res: dict) -> str:
    head = f"Command: `{res['command']}`; device: {res['device_name']}; torch {res['torch']}; {res['date']}."
    lines = ["# GPU check", "", head, ""]
    if res.get("tsgen"):
        lines += ["## TS-GEN, batched (test split)", "", "| reactions x samples | TS | seconds | TS per second |",
                  "|---|---|---|---|"]
        lines += [f"| {r['reactions']} x {r['samples_per_reaction']} | {r['ts']} | {r['seconds']:.3f} | "
                  f"{r['ts_per_second']:.3g} |" for r in res["tsgen"]]
    if res.get("walks"):
        lines += ["", "## Scattering walks per second (g = 0, albedo 0.999, same device)", "",
                  "| sigma_r | CVAE walks/s | MC walks/s | MC mean N | MC events/s | CVAE / MC |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {r['sigma_r']:g} | {r['cvae_walks_per_s']:.3g} | {r['mc_walks_per_s']:.3g} | "
                  f"{r['mc_mean_events']:.1f} | {r['mc_events_per_s']:.3g} | {r['speedup']:.3g}x |"
                  for r in res["walks"]]
    if res.get("render"):
        lines += ["", "## Sphere renders on the device (24 x 24, g = 0.5, albedo 0.999), equal time budgets", "",
                  ("| sigma_r | reference (rel. noise) | brute force: s, paths/s, rel. RMSE | learned: s, paths/s, "
                   "rel. RMSE, mean ratio | path variance brute / learned | RMSE ratio at equal time | "
                   "reference noise removed |"),
                  "|---|---|---|---|---|---|---|"]
        for r in res["render"]:
            b, c = r["volpath"], r["cvae"]
            lines.append(f"| {r['sigma_r']:g} | {r['reference']} ({r['ref_rel_noise']:.4f}) | {b['seconds']:.1f}, "
                         f"{b['paths_per_second']:.3g}, {b['rel_rmse']:.3f} | "
                         f"{c['seconds']:.1f}, {c['paths_per_second']:.3g}, {c['rel_rmse']:.3f}, {c['mean_ratio']:.3f} | "
                         f"{b['path_rel_variance']:.2f} / {c['path_rel_variance']:.2f} | "
                         f"{r['rmse_ratio_bf_over_cvae']:.2f}x | {r['rmse_ratio_ref_noise_removed']:.2f}x |")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--device", default="cuda")
    p.add_argument("--quick", action="store_true", help="tiny sizes (a dry run of the script on a CPU)")
    p.add_argument("--render-seconds", type=float, default=15.0)
    p.add_argument("--slots", type=int, default=262144)
    p.add_argument("--ref-seconds", type=float, default=0.0,
                   help="> 0: brute-force reference rendered on the device for this long (two halves)")
    p.add_argument("--only-render", action="store_true", help="skip the TS-GEN and walk throughput parts")
    args = p.parse_args()
    dev = args.device
    q = args.quick
    res = {"command": "python benchmarks/gpu_check.py " + " ".join(sys.argv[1:]), "torch": torch.__version__,
           "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "device_name": torch.cuda.get_device_name() if torch.device(dev).type == "cuda" else "cpu"}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if not args.only_render:
        res["tsgen"] = tsgen_throughput(dev, [4] if q else [64, 256, 1024])
        res["walks"] = walks_throughput(dev, {1.0: 2000, 64.0: 20} if q else
                                        {1.0: 4_000_000, 16.0: 1_000_000, 64.0: 500_000},
                                        2000 if q else 2_000_000)
        (out / "gpu_check.json").write_text(json.dumps(res, indent=1))
    res["render"] = renders(dev, [64.0] if q else [64.0, 256.0], 1.0 if q else args.render_seconds,
                            2048 if q else args.slots, ref_seconds=args.ref_seconds)
    (out / "gpu_check.json").write_text(json.dumps(res, indent=1))
    (out / "gpu_check.md").write_text(markdown(res))
    print(markdown(res))


if __name__ == "__main__":
    main()
