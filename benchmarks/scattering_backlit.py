"""Backlit sphere: the learned and the brute-force tracer where the light reaches the camera through the bulk.

The benchmark's sphere scene is lit from the camera's side, so most of its radiance comes from events near the
surface, where the learned tracer falls back to ordinary scattering. Here the light comes from behind
(direction (0.3, 0.2, 0.93), towards the camera), so what the camera sees has crossed the medium and the
sphere-tracing jumps carry it. Per optical radius: a brute-force reference from two independent renders, then
each tracer with the same time budget; mean ratio and relative RMSE against the reference, as in
``benchmarks/scattering.py``.

    OMP_NUM_THREADS=1 python benchmarks/scattering_backlit.py     # about 7 min on one thread
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import scattering as S

from sciflow.core.files import atomic_write_text
from sciflow.domains.photons.scene import DirectionalLight, make_scene
from sciflow.methods.scattering.api import render

LIGHT = (0.3, 0.2, 0.93)


def measure(sigma_r: float, ref_seconds: float, seconds: float, size: int) -> dict:
    scene = make_scene("sphere", sigma_r=sigma_r, albedo=0.999, g=0.5, width=size, height=size,
                       light=DirectionalLight(direction=LIGHT))
    r1 = render(scene, "volpath", spp=None, time_budget=ref_seconds / 2, seed=100 + int(sigma_r), progress=False)
    r2 = render(scene, "volpath", spp=None, time_budget=ref_seconds / 2, seed=200 + int(sigma_r), progress=False)
    ref, noise = S.combine_reference(r1.image, r2.image, r1.samples_per_pixel.astype(float),
                                     r2.samples_per_pixel.astype(float))
    row = {"ref_rel_noise": noise, "ref_spp": float((r1.samples_per_pixel + r2.samples_per_pixel).mean()),
           "ref_seconds": r1.seconds + r2.seconds, "ref_mean": float(ref.mean())}
    for kind in ("volpath", "cvae"):
        r = render(scene, kind, spp=None, time_budget=seconds, seed=300 + int(sigma_r), progress=False)
        row[kind] = {"seconds": r.seconds, "spp": float(r.samples_per_pixel.mean()), "rel_rmse": S.rmse(r.image, ref),
                     "mean_ratio": float(r.image.mean() / ref.mean()),
                     "rel_std_error": r.summary().get("relative_std_error")}
    row["rmse_ratio_bf_over_cvae"] = row["volpath"]["rel_rmse"] / row["cvae"]["rel_rmse"]
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--sigma-r", type=float, nargs="+", default=[16.0, 64.0])
    ap.add_argument("--ref-seconds", type=float, default=120.0, help="brute-force reference (two renders)")
    ap.add_argument("--seconds", type=float, default=30.0, help="time budget of each compared render")
    ap.add_argument("--size", type=int, default=12, help="image width and height")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "scattering_backlit"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = {}
    for s in args.sigma_r:
        rows[f"{s:g}"] = measure(s, args.ref_seconds, args.seconds, args.size)
        print(s, json.dumps(rows[f"{s:g}"]), flush=True)
    cmd = "OMP_NUM_THREADS=1 python benchmarks/scattering_backlit.py " + " ".join(sys.argv[1:])
    res = {"command": cmd.strip(), "light_direction": LIGHT, "albedo": 0.999, "g": 0.5, "rows": rows}
    atomic_write_text(Path(args.out + ".json"), json.dumps(res, indent=1))
    lines = ["# Backlit sphere: learned vs brute-force tracer", "", f"Command: `{res['command']}`; one CPU thread.", "",
             (f"Sphere, {args.size} x {args.size} pixels, g = 0.5, albedo 0.999, light from behind (direction "
              f"{LIGHT}); reference: two brute-force renders of {args.ref_seconds / 2:g} s; each tracer "
              f"{args.seconds:g} s. Mean ratio = image mean / reference mean; in brackets the render's mean "
              "per-pixel relative standard error (the image mean's is about that over sqrt(pixels))."), "",
             ("| sigma_r | reference spp (rel. noise) | brute force: spp, rel. RMSE, mean ratio | learned: spp, "
              "rel. RMSE, mean ratio | RMSE ratio (brute force / learned) |"), "|---|---|---|---|---|"]
    for s, r in rows.items():
        b, c = r["volpath"], r["cvae"]
        lines.append(f"| {s} | {r['ref_spp']:.0f} ({r['ref_rel_noise']:.3f}) | {b['spp']:.0f}, {b['rel_rmse']:.3f}, "
                     f"{b['mean_ratio']:.3f} ({b['rel_std_error']:.3f}) | {c['spp']:.0f}, {c['rel_rmse']:.3f}, "
                     f"{c['mean_ratio']:.3f} ({c['rel_std_error']:.3f}) | {r['rmse_ratio_bf_over_cvae']:.2f}x |")
    atomic_write_text(Path(args.out + ".md"), "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
