"""Benchmark of the Scattering CVAEs against Monte Carlo, brute-force path tracing and Mitsuba 3.

    OMP_NUM_THREADS=1 python benchmarks/scattering.py [--walks 300] [--res 24] [--ref-seconds 200] ...

1. Distribution accuracy on the held-out grid sigma_r in {1, 4, 16, 64, 256} x g in {-0.5, 0, 0.5, 0.9}:
   survival E[albedo^N] relative error, W1 of exit positions / directions (CVAE vs MC) against the W1 between
   two independent MC sets of the same size (the noise floor).
2. Speed: walks per second, CVAE vs MC, per sigma_r (same device, one thread).
3. Rendering of the sphere scene per sigma_r: learned and brute-force tracers at equal time budgets, RMSE
   against a long brute-force reference (two independent halves, whose difference gives the reference noise),
   and Mitsuba 3 (scalar_rgb, volpath, one thread) on the same scene at several spp: speed at equal error.
Writes benchmarks/results/scattering.json and .md (and PNGs of the renders).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sciflow.core.files import atomic_write_json, atomic_write_text  # noqa: E402
from sciflow.domains.photons.scene import make_scene  # noqa: E402
from sciflow.methods.scattering import ScatteringCVAEs  # noqa: E402
from sciflow.methods.scattering.api import render, save_image  # noqa: E402
from sciflow.methods.scattering.metrics import evaluate_grid  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def rmse(img: np.ndarray, ref: np.ndarray) -> float:
    """Relative RMSE: sqrt(mean((img - ref)^2)) / mean(ref)."""
    return float(np.sqrt(np.mean((img - ref) ** 2)) / max(float(ref.mean()), 1e-12))


def mitsuba_render(scene, spp: int, seed: int) -> tuple[np.ndarray, float]:
    import drjit as dr
    import mitsuba as mi
    mi.set_variant("scalar_rgb")
    dr.set_thread_count(1)
    cam, med, light = scene.camera, scene.medium, scene.light
    try:
        to_world = mi.ScalarTransform4f().look_at(origin=list(cam.origin), target=list(cam.target), up=list(cam.up))
    except TypeError:
        to_world = mi.ScalarTransform4f.look_at(origin=list(cam.origin), target=list(cam.target), up=list(cam.up))
    shape = scene.shape
    desc = {
        "type": "scene",
        "integrator": {"type": "volpath", "max_depth": -1},
        "sensor": {"type": "perspective", "fov": cam.fov, "fov_axis": "x", "to_world": to_world,
                   "film": {"type": "hdrfilm", "width": cam.width, "height": cam.height, "rfilter": {"type": "box"},
                            "pixel_format": "rgb"},
                   "sampler": {"type": "independent", "sample_count": spp}},
        "light": {"type": "directional", "direction": list(light.direction),
                  "irradiance": {"type": "rgb", "value": light.irradiance}},
        "object": {"type": "sphere", "center": [float(v) for v in shape.center], "radius": float(shape.radius),
                   "bsdf": {"type": "null"},
                   "interior": {"type": "homogeneous", "sigma_t": med.sigma_t,
                                "albedo": {"type": "rgb", "value": med.albedo},
                                "phase": {"type": "hg", "g": med.g}}},
    }
    sc = mi.load_dict(desc)
    t0 = time.perf_counter()
    img = np.array(mi.render(sc, spp=spp, seed=seed))
    return img[..., :3].mean(-1), time.perf_counter() - t0


def bench_render(model, sigma_r: float, args, out_png: Path) -> dict:
    scene = make_scene("sphere", sigma_r=sigma_r, albedo=args.albedo, g=args.g, width=args.res, height=args.res)
    half = args.ref_seconds / 2
    cache = Path(args.cache) / f"ref_s{sigma_r:g}_g{args.g:g}_a{args.albedo:g}_r{args.res}_t{args.ref_seconds:g}.npz"
    if cache.is_file():
        with np.load(cache) as f:
            i1, i2, w1, w2, secs = f["i1"], f["i2"], f["w1"], f["w2"], float(f["seconds"])
    else:
        r1 = render(scene, "volpath", spp=None, time_budget=half, seed=1000 + int(sigma_r), progress=False)
        r2 = render(scene, "volpath", spp=None, time_budget=half, seed=2000 + int(sigma_r), progress=False)
        i1, i2 = r1.image, r2.image
        w1, w2 = r1.samples_per_pixel.astype(float), r2.samples_per_pixel.astype(float)
        secs = r1.seconds + r2.seconds
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, i1=i1, i2=i2, w1=w1, w2=w2, seconds=secs)
    ref = (i1 * w1 + i2 * w2) / (w1 + w2)
    ref_noise = rmse(i1, i2) * math.sqrt(w1.mean() * w2.mean()) / (w1.mean() + w2.mean())
    row = {"sigma_r": sigma_r, "ref_spp": int((w1 + w2).mean()), "ref_seconds": secs, "ref_rel_noise": ref_noise}
    if args.refs_only:
        return row
    for name in ("volpath", "cvae"):
        kw = {"min_sigma_r": args.min_sigma_r} if name == "cvae" else {}
        kw["slots"] = args.slots
        r = render(scene, name, spp=None, time_budget=args.eq_seconds, model=model, seed=3000 + int(sigma_r),
                   progress=False, **kw)
        row[name] = {"seconds": r.seconds, "spp": float(r.samples_per_pixel.mean()), "events": r.events,
                     "rel_rmse": rmse(r.image, ref), "mean_ratio": float(r.image.mean() / max(ref.mean(), 1e-12))}
        save_image(out_png.with_name(f"{out_png.stem}_{name}.png"), r.image, exposure=float(np.percentile(ref, 99.5)))
    save_image(out_png.with_name(f"{out_png.stem}_reference.png"), ref)
    # equal-time RMSE ratio (brute force rescaled to the learned tracer's measured time, RMSE ~ 1/sqrt(t))
    bf, cv = row["volpath"], row["cvae"]
    bf_at = bf["rel_rmse"] * math.sqrt(bf["seconds"] / cv["seconds"])
    row["rmse_ratio_bf_over_cvae"] = bf_at / max(cv["rel_rmse"], 1e-12)
    if args.mitsuba and sigma_r in args.mitsuba_sigma:
        ms = []
        for spp in args.mitsuba_spp:
            img, sec = mitsuba_render(scene, spp, seed=17)
            ms.append({"spp": spp, "seconds": sec, "rel_rmse": rmse(img, ref),
                       "mean_ratio": float(img.mean() / max(ref.mean(), 1e-12))})
        row["mitsuba"] = ms
        # Mitsuba's time to reach the learned tracer's error, from its best-fitting rmse * sqrt(t) constant
        const = np.median([m["rel_rmse"] * math.sqrt(m["seconds"]) for m in ms])
        row["mitsuba_seconds_at_cvae_error"] = float((const / max(cv["rel_rmse"], 1e-12)) ** 2)
        row["cvae_seconds"] = cv["seconds"]
    return row


def markdown(res: dict) -> str:
    lines = ["# Scattering CVAEs benchmark", "",
             f"Command: `{res['command']}`; device: {res['device']}; torch threads: 1; machine shared (2 cores).", "",
             ]
    if res.get("grid_command") or res.get("render_command"):
        lines += [f"Other part produced by: `{res.get('grid_command') or res.get('render_command')}`", ""]
    if "grid" not in res:
        lines += ["(held-out grid not run)"]
    else:
        lines += _grid_md(res)
    return _render_md(res, lines)


def _grid_md(res: dict) -> list[str]:
    lines = ["## Distribution accuracy on the held-out grid", "",
             f"MC sets of up to {res['grid']['summary']['n_walks_per_set']} walks per condition (fewer at high density: "
             f"at most {res['grid']['summary']['events_budget']:.3g} expected events per set); W1 ratio = W1(CVAE, MC A) / "
             "W1(MC B, MC A); survival where MC survival >= 1 %, albedos 0.9 ... 0.9999.", "",
             "| sigma_r | g | MC walks per set | mean N (MC / CVAE) | survival worst rel. err (MC rel. s.e.) | "
             "W1 pos / floor | W1 dir / floor | W1 log N / floor | MC walks/s | CVAE walks/s |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in res["grid"]["rows"]:
        se = max([v["mc_rel_se"] for v in r["survival"] if v["evaluated"]], default=float("nan"))
        lines.append(f"| {r['sigma_r']:g} | {r['g']:g} | {r['n_walks']} | {r['mean_events_mc']:.1f} / "
                     f"{r['mean_events_cvae']:.1f} | {r['survival_worst_rel_err']:.3f} ({se:.3f}) | {r['w1_exit_pos']:.3f} / {r['w1_exit_pos_floor']:.3f} | "
                     f"{r['w1_exit_dir']:.3f} / {r['w1_exit_dir_floor']:.3f} | {r['w1_log_n']:.3f} / "
                     f"{r['w1_log_n_floor']:.3f} | {r['mc_walks_per_s']:.3g} | {r['cvae_walks_per_s']:.3g} |")
    s = res["grid"]["summary"]
    lines += ["", f"Survival target (<= 2 %) met on {s['survival_met']}/{s['conditions']} conditions (worst "
              f"{s['worst_survival_rel_err']:.3f}); W1 target (<= 2x floor) met on {s['w1_met']}/{s['conditions']} "
              f"(worst ratios pos {s['worst_w1_pos_ratio']:.2f}, dir {s['worst_w1_dir_ratio']:.2f}).", "",
              "## Walks per second (g = 0, same CPU thread)", "", "| sigma_r | MC | CVAE | speed-up |", "|---|---|---|---|"]
    for r in res["grid"]["rows"]:
        if r["g"] == 0.0:
            lines.append(f"| {r['sigma_r']:g} | {r['mc_walks_per_s']:.3g} | {r['cvae_walks_per_s']:.3g} | "
                         f"{r['cvae_walks_per_s'] / r['mc_walks_per_s']:.3g}x |")
    return lines


def _render_md(res: dict, lines: list[str]) -> str:
    if res.get("render"):
        lines += ["", f"## Rendering, sphere scene ({res['args']['res']}x{res['args']['res']}, g = {res['args']['g']}, "
                  f"albedo = {res['args']['albedo']}), equal time budget {res['args']['eq_seconds']} s", "",
                  "| sigma_r | ref spp (noise) | brute force: s, spp, rel. RMSE | learned: s, spp, rel. RMSE, mean ratio | "
                  "RMSE ratio at equal time |", "|---|---|---|---|---|"]
        for r in res["render"]:
            b, c = r["volpath"], r["cvae"]
            lines.append(f"| {r['sigma_r']:g} | {r['ref_spp']} ({r['ref_rel_noise']:.3f}) | {b['seconds']:.1f}, "
                         f"{b['spp']:.1f}, {b['rel_rmse']:.3f} | {c['seconds']:.1f}, {c['spp']:.1f}, "
                         f"{c['rel_rmse']:.3f}, {c['mean_ratio']:.3f} | {r['rmse_ratio_bf_over_cvae']:.2f}x |")
        for r in res["render"]:
            if "mitsuba" in r:
                lines += ["", f"Mitsuba 3 (scalar_rgb, volpath, 1 thread), sigma_r = {r['sigma_r']:g}:", "",
                          "| spp | seconds | rel. RMSE vs reference | mean ratio |", "|---|---|---|---|"]
                lines += [f"| {m['spp']} | {m['seconds']:.2f} | {m['rel_rmse']:.3f} | {m['mean_ratio']:.3f} |"
                          for m in r["mitsuba"]]
                lines += ["", f"Mitsuba time to reach the learned tracer's error ({r['cvae']['rel_rmse']:.3f}): "
                          f"{r['mitsuba_seconds_at_cvae_error']:.1f} s vs {r['cvae_seconds']:.1f} s."]
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="models/scattering")
    p.add_argument("--walks", type=int, default=300)
    p.add_argument("--sigma", type=float, nargs="*", default=None)
    p.add_argument("--render-sigma", type=float, nargs="*", default=[1.0, 16.0, 64.0, 256.0])
    p.add_argument("--res", type=int, default=24)
    p.add_argument("--g", type=float, default=0.5)
    p.add_argument("--albedo", type=float, default=0.999)
    p.add_argument("--ref-seconds", type=float, default=200.0)
    p.add_argument("--eq-seconds", type=float, default=30.0)
    p.add_argument("--min-sigma-r", type=float, default=2.0)
    p.add_argument("--mitsuba", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--mitsuba-sigma", type=float, nargs="*", default=[1.0, 16.0, 64.0, 256.0])
    p.add_argument("--mitsuba-spp", type=int, nargs="*", default=[64, 256, 1024])
    p.add_argument("--skip-grid", action="store_true")
    p.add_argument("--skip-render", action="store_true")
    p.add_argument("--slots", type=int, default=2304, help="path slots of the equal-time renders (both tracers)")
    p.add_argument("--refs-only", action="store_true", help="only compute and cache the reference renders")
    p.add_argument("--events-budget", type=float, default=3e6, help="max expected MC events per set")
    p.add_argument("--cache", default="runs/scattering/bench_cache", help="MC sets and references (model-free)")
    p.add_argument("--out", default=str(RESULTS / "scattering"))
    args = p.parse_args()
    torch.set_num_threads(1)
    model = None if args.refs_only else ScatteringCVAEs.load(args.model)
    res = {"command": "python benchmarks/scattering.py " + " ".join(sys.argv[1:]), "device": "cpu",
           "args": vars(args), "torch": torch.__version__, "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
    out = Path(args.out)
    partial = out.with_suffix(".partial.json")
    if not args.skip_grid and not args.refs_only:
        t0 = time.perf_counter()
        res["grid"] = evaluate_grid(model, n_walks=args.walks, sigma_r=args.sigma, events_budget=args.events_budget,
                                    cache=args.cache)
        res["grid_seconds"] = time.perf_counter() - t0
        atomic_write_json(partial, res)
    res["render"] = []
    for s in ([] if args.skip_render else args.render_sigma):
        res["render"].append(bench_render(model, s, args, out.parent / f"scattering_sigma{int(s)}.png"))
        atomic_write_json(partial, res)
        print(json.dumps(res["render"][-1]), flush=True)
    if args.refs_only:
        return
    # keep the other part of an earlier run: the grid and the renders can run as two processes
    previous = json.loads(out.with_suffix(".json").read_text()) if out.with_suffix(".json").is_file() else {}
    if "grid" not in res and "grid" in previous:
        res["grid"], res["grid_command"] = previous["grid"], previous.get("grid_command") or previous.get("command")
    if args.skip_render and previous.get("render"):
        res["render"] = previous["render"]
        res["render_command"] = previous.get("render_command") or previous.get("command")
    atomic_write_json(out.with_suffix(".json"), res)
    atomic_write_text(out.with_suffix(".md"), markdown(res))
    print(markdown(res))


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
