"""Where the learned tracer's extra noise per path comes from: the variance of one path's radiance estimate.

    OMP_NUM_THREADS=1 python benchmarks/scattering_path_variance.py [--sigma-r 64 256] [--spp 400] [--res 12]

Renders the benchmark's sphere (g = 0.5, albedo = 0.999) with a fixed number of paths per pixel and, per
tracer, reports the variance of a single path's estimate (from the paths' own spread, over the pixel value
squared, averaged over pixels above 5 % of the brightest), paths per second and events per path:

- brute force (every scattering event);
- the learned tracer with the shipped CVAEs, one next-event estimate per jump (the default) and eight;
- the same sphere-jump tracer with exact Monte Carlo walks in place of the CVAEs (slow: each jump simulates the
  walk), which separates the estimator's own noise from the models' errors.
Writes benchmarks/results/scattering_path_variance.json and .md.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.scattering import combine_reference
from sciflow.core.files import atomic_write_json, atomic_write_text
from sciflow.core.random import make_generator
from sciflow.domains.photons.scene import make_scene
from sciflow.domains.photons.volpath import VolumePathTracer
from sciflow.domains.photons.walks import MonteCarloWalkSampler
from sciflow.methods.scattering import ScatteringCVAEs
from sciflow.methods.scattering.render import SphereTracingCVAETracer

RESULTS = Path(__file__).resolve().parent / "results"


def run(label: str, tracer, spp: int, seed: int, ref: np.ndarray | None = None) -> dict:
    r = tracer.render(spp, generator=make_generator(seed), progress=False)
    lit = r.image > 0.05 * r.image.max()
    rel = r.path_variance[lit] / r.image[lit] ** 2
    extra = {"mean_ratio_to_reference": float(r.image.mean() / ref.mean())} if ref is not None else {}
    return {**extra, "tracer": label, "seconds": r.seconds, "paths": r.paths, "paths_per_second": r.paths / r.seconds,
            "events_per_path": r.events / r.paths, "mean_radiance": float(r.image.mean()),
            "jumps_per_path": getattr(tracer, "jumps", 0) / r.paths,
            "path_rel_variance_mean": r.relative_path_variance(), "path_rel_variance_median": float(np.median(rel)),
            "image_mean_rel_se": float(np.sqrt((r.std_error ** 2).sum()) / r.image.sum())}


def markdown(res: dict) -> str:
    a = res["args"]
    command = (f"Command: `OMP_NUM_THREADS=1 {res['command']}`; sphere {a['res']}x{a['res']}, g = 0.5, "
               f"albedo = 0.999, {a['spp']} paths per pixel, one CPU thread (2 shared cores).")
    legend = ("Path variance: variance of one path's radiance estimate over the pixel value squared (mean and "
              "median over pixels above 5 % of the brightest). Mean radiance: image mean with its relative "
              "standard error.")
    header = ("| sigma_r | tracer | path variance mean | median | mean radiance (rel. s.e.) | mean / reference | "
              "paths/s | events per path | jumps per path |")
    lines = ["# Scattering: variance of one path's estimate, per tracer", "", command, "", legend, "", header,
             "|---|---|---|---|---|---|---|---|---|"]
    for r in res["rows"]:
        ratio = f"{r['mean_ratio_to_reference']:.4f}" if "mean_ratio_to_reference" in r else "n/a"
        lines.append(f"| {r['sigma_r']:g} | {r['tracer']} | {r['path_rel_variance_mean']:.2f} | "
                     f"{r['path_rel_variance_median']:.2f} | {r['mean_radiance']:.4f} ({r['image_mean_rel_se']:.4f}) "
                     f"| {ratio} | {r['paths_per_second']:.3g} | {r['events_per_path']:.1f} | "
                     f"{r['jumps_per_path']:.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="models/scattering")
    p.add_argument("--sigma-r", type=float, nargs="*", default=[64.0, 256.0])
    p.add_argument("--spp", type=int, default=400)
    p.add_argument("--res", type=int, default=12)
    p.add_argument("--no-exact", action="store_true", help="skip the exact-walk tracer (the slow row)")
    p.add_argument("--min-sigma-r", type=float, nargs="*", default=[],
                   help="extra rows: the learned tracer with these thresholds for jumping (default row: 6)")
    p.add_argument("--reference", default=None,
                   help="cached reference render of benchmarks/scattering.py (npz with i1, i2, w1, w2) of the same "
                        "scene and size: adds each image's mean over the reference mean (one sigma_r only)")
    p.add_argument("--out", default=str(RESULTS / "scattering_path_variance"))
    args = p.parse_args()
    torch.set_num_threads(1)
    model = ScatteringCVAEs.load(args.model)
    res = {"command": "python benchmarks/scattering_path_variance.py " + " ".join(sys.argv[1:]), "args": vars(args),
           "started": time.strftime("%Y-%m-%dT%H:%M:%S"), "rows": []}
    ref = None
    if args.reference:
        with np.load(args.reference) as f:
            ref, _ = combine_reference(f["i1"], f["i2"], f["w1"], f["w2"])
    for s in args.sigma_r:
        scene = make_scene("sphere", sigma_r=s, albedo=0.999, g=0.5, width=args.res, height=args.res)
        tracers = [("brute force", VolumePathTracer(scene)),
                   ("learned, 1 NEE per jump", SphereTracingCVAETracer(scene, model)),
                   ("learned, 8 NEE per jump", SphereTracingCVAETracer(scene, model, nee_events=8))]
        if not args.no_exact:
            tracers.append(("sphere jumps with exact MC walks", SphereTracingCVAETracer(scene, MonteCarloWalkSampler())))
        tracers += [(f"learned, jumps from {m:g} mean free paths", SphereTracingCVAETracer(scene, model, min_sigma_r=m))
                    for m in args.min_sigma_r]
        for label, tracer in tracers:
            row = {"sigma_r": s, **run(label, tracer, args.spp, seed=7, ref=ref)}
            res["rows"].append(row)
            print(row, flush=True)
    out = Path(args.out)
    atomic_write_json(out.with_suffix(".json"), res)
    atomic_write_text(out.with_suffix(".md"), markdown(res))
    print(markdown(res))


if __name__ == "__main__":
    main()
