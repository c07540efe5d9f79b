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

from sciflow.core.files import atomic_write_json, atomic_write_text
from sciflow.domains.photons.conditions import MIN_SIGMA_R
from sciflow.domains.photons.scene import make_scene
from sciflow.methods.scattering import ScatteringCVAEs
from sciflow.methods.scattering.api import render, save_image
from sciflow.methods.scattering.metrics import evaluate_grid, w1

RESULTS = Path(__file__).resolve().parent / "results"


def rmse(img: np.ndarray, ref: np.ndarray) -> float:
    """Relative RMSE: sqrt(mean((img - ref)^2)) / mean(ref)."""
    return float(np.sqrt(np.mean((img - ref) ** 2)) / max(float(ref.mean()), 1e-12))


def combine_reference(i1: np.ndarray, i2: np.ndarray, w1: np.ndarray, w2: np.ndarray) -> tuple[np.ndarray, float]:
    """Two independent reference halves (images, paths per pixel) -> the pooled reference and its relative noise
    (RMSE between the halves, scaled to the pooled sample count)."""
    ref = (i1 * w1 + i2 * w2) / (w1 + w2)
    return ref, rmse(i1, i2) * math.sqrt(w1.mean() * w2.mean()) / (w1.mean() + w2.mean())


def mitsuba_render(scene, spp: int, seed: int, *, roulette: bool = False) -> tuple[np.ndarray, float]:
    """Mitsuba 3 ``volpath`` render of ``scene``: (image, seconds). ``roulette=False`` (this benchmark's default
    since 2026-11-29) moves Mitsuba's Russian roulette out of reach (rr_depth 1e8); ``True`` keeps Mitsuba's own
    default (from depth 5, survival min(throughput, 0.95)). That default is unbiased, but in dense media much of
    the image comes from paths of hundreds of events, which survive with about 0.95^k and then carry weight
    0.95^-k: a typical finite render is 5-7 % too dark at sigma_r = 64-256, with rare very bright ones (checked
    2026-11-29: without roulette Mitsuba matches our brute-force mean within 0.5 %), so it is no fair anchor."""
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
        "integrator": {"type": "volpath", "max_depth": -1, **({} if roulette else {"rr_depth": 10**8})},
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
    ref, ref_noise = combine_reference(i1, i2, w1, w2)
    row = {"sigma_r": sigma_r, "ref_spp": int((w1 + w2).mean()), "ref_seconds": secs, "ref_rel_noise": ref_noise}
    if args.refs_only:
        return row
    for name in ("volpath", "cvae"):
        kw = {"min_sigma_r": args.min_sigma_r} if name == "cvae" else {}
        kw["slots"] = args.slots
        r = render(scene, name, spp=None, time_budget=args.eq_seconds, model=model, seed=3000 + int(sigma_r),
                   progress=False, **kw)
        row[name] = {"seconds": r.seconds, "spp": float(r.samples_per_pixel.mean()), "events": r.events,
                     "paths_per_second": r.paths / r.seconds, "issue_seconds": r.info["issue_seconds"],
                     # variance of one path's estimate over the pixel value squared, mean over lit pixels
                     "path_rel_variance": r.relative_path_variance(ref),
                     "rel_rmse": rmse(r.image, ref), "mean_ratio": float(r.image.mean() / max(ref.mean(), 1e-12))}
        save_image(out_png.with_name(f"{out_png.stem}_{name}.png"), r.image, exposure=float(np.percentile(ref, 99.5)))
    save_image(out_png.with_name(f"{out_png.stem}_reference.png"), ref)
    bf, cv = row["volpath"], row["cvae"]
    # the reference's own noise removed in quadrature (RMSE^2 = error^2 + reference noise^2)
    for d in (bf, cv):
        d["rel_rmse_ref_noise_removed"] = math.sqrt(max(d["rel_rmse"] ** 2 - ref_noise ** 2, 0.0))

    def equal_time(rmse_key: str, time_key: str) -> float:
        """Brute force's RMSE rescaled to the learned tracer's time (RMSE ~ 1/sqrt(t)) over the learned RMSE."""
        return bf[rmse_key] * math.sqrt(bf[time_key] / cv[time_key]) / max(cv[rmse_key], 1e-12)

    row["rmse_ratio_bf_over_cvae"] = equal_time("rel_rmse", "seconds")
    row["rmse_ratio_ref_noise_removed"] = equal_time("rel_rmse_ref_noise_removed", "seconds")
    # the same with each run's time taken up to its last issued path: the tail of long paths still in flight
    # after the budget (seconds for brute force at high density) is a fixed cost that a long render amortises
    row["rmse_ratio_tail_free"] = equal_time("rel_rmse", "issue_seconds")
    row["rmse_ratio_tail_free_ref_noise_removed"] = equal_time("rel_rmse_ref_noise_removed", "issue_seconds")
    if args.mitsuba and sigma_r in args.mitsuba_sigma:
        ms = []
        for spp in args.mitsuba_spp:
            img, sec = mitsuba_render(scene, spp, seed=17)          # roulette out of reach (see mitsuba_render)
            ms.append({"spp": spp, "seconds": sec, "roulette": False, "rel_rmse": rmse(img, ref),
                       "mean_ratio": float(img.mean() / max(ref.mean(), 1e-12))})
        row["mitsuba"] = ms
        # Mitsuba's time to reach the learned tracer's error, EXTRAPOLATED from its rmse * sqrt(t) constant over runs
        # of a few seconds (meaningless when Mitsuba's mean differs from the reference; equal-time measurements:
        # scattering_mitsuba_eqtime.py)
        const = np.median([m["rel_rmse"] * math.sqrt(m["seconds"]) for m in ms])
        row["mitsuba_seconds_at_cvae_error"] = float((const / max(cv["rel_rmse"], 1e-12)) ** 2)
        row["cvae_seconds"] = cv["seconds"]
    return row


def bench_speed(model, rows: list[dict], n_mc: int = 50_000, n_cvae: int = 100_000) -> dict:
    """Walks per second at a full batch. MC: scattering events per second of ``n_mc`` walks at sigma_r = 16, g = 0
    (32,768 slots kept full by refill, so the tail is a small part), divided by each condition's mean N; this is
    the MC rate a renderer with full batches would see (the grid's own sets are tail-dominated and slower).
    CVAE: ``n_cvae`` walks sampled in one batch per condition."""
    from sciflow.core.random import make_generator
    from sciflow.domains.photons.walks import simulate_walks
    t0 = time.perf_counter()
    w = simulate_walks(16.0, 0.0, 1.0, n_mc, generator=make_generator(4242))
    secs = time.perf_counter() - t0
    eps = float(w["n_events"].double().sum()) / secs
    out = {"mc_events_per_s": eps, "mc_walks": n_mc, "mc_seconds": secs, "rows": []}
    for r in rows:
        if r["g"] != 0.0:
            continue
        sig = torch.full((n_cvae,), r["sigma_r"])
        t0 = time.perf_counter()
        model.sample(sig, torch.zeros(n_cvae), torch.ones(n_cvae, dtype=torch.float64),
                     generator=make_generator(7))
        cv = n_cvae / (time.perf_counter() - t0)
        mc = eps / r["mean_events_mc"]
        out["rows"].append({"sigma_r": r["sigma_r"], "mean_events_mc": r["mean_events_mc"], "mc_walks_per_s": mc,
                            "mc_walks_per_s_grid_sets": r["mc_walks_per_s"], "cvae_walks_per_s": cv,
                            "speedup": cv / mc})
    return out


def exit_distance(x: torch.Tensor, l: torch.Tensor) -> torch.Tensor:
    """Distance from points x inside the unit sphere to its surface along unit directions l (broadcast)."""
    b = (x * l).sum(-1)
    c = (x * x).sum(-1) - 1
    return -b + torch.sqrt((b * b - c).clamp_min(0))


def nee_all_events(sigma_r: float, g: float, albedo: float, n: int, lights: torch.Tensor, seed: int) -> torch.Tensor:
    """(n, L) per-walk sums over EVERY event k of albedo^k exp(-sigma_r d(x_k, l)) HG(w_k . l) (float64 MC walks
    from the centre along +z): the exact target of the one-event estimate nee_weight * (term at the representative
    event), without the noise of picking one event, so the scatGen check can be judged at high density."""
    from sciflow.core.random import make_generator, rand
    from sciflow.domains.photons.phase import hg_pdf, hg_sample

    gen = make_generator(seed)

    def term(x, w, q):
        return q.unsqueeze(-1) * torch.exp(-sigma_r * exit_distance(x.unsqueeze(1), lights)) * hg_pdf(w @ lights.T, g)

    x = torch.zeros(n, 3, dtype=torch.float64)
    w = torch.zeros(n, 3, dtype=torch.float64)
    w[:, 2] = 1
    q = torch.full((n,), float(albedo), dtype=torch.float64)
    idx = torch.arange(n)
    acc = term(x, w, q)                      # event 1 at the centre, arriving along +z
    while idx.numel():
        u = rand((3, idx.numel()), generator=gen, dtype=torch.float64)
        w = hg_sample(w, torch.full_like(u[0], g), u[0], u[1])
        t = -torch.log1p(-u[2]) / sigma_r
        stay = t < exit_distance(x, w)
        x, w, q, idx = x[stay] + t[stay].unsqueeze(-1) * w[stay], w[stay], q[stay] * albedo, idx[stay]
        acc.index_add_(0, idx, term(x, w, q))
    return acc


def bench_nee(model, g: float, albedo: float, sigmas=(4.0, 16.0, 64.0), events: float = 3e6,
              n_cvae: int = 1_000_000) -> list[dict]:
    """scatGen check: mean next-event estimate through the walk's own unit sphere, CVAE / MC.

    For a light direction l the estimate of one walk is nee_weight * exp(-sigma_r * d(x_k, l)) * HG(w_k . l),
    d the distance from the representative event x_k to the sphere along l; its mean over walks is what the
    tracer adds at a sphere that touches the surface. The MC reference sums the term over every event of its
    walks (``nee_all_events``; the one-event MC estimate is kept too). Also the mean radius |x_k| of the
    representative event and the W1 distance of its law to MC's.
    """
    from sciflow.core.random import make_generator
    from sciflow.domains.photons.conditions import expected_events
    from sciflow.domains.photons.phase import hg_pdf
    from sciflow.domains.photons.walks import simulate_walks

    lz = torch.tensor([1.0, 0.0, -1.0], dtype=torch.float64)
    lights = torch.stack([torch.sqrt(1 - lz * lz), torch.zeros(3, dtype=torch.float64), lz], dim=-1)
    rows = []
    for sr in sigmas:
        n_mc = int(max(2000, min(100_000, events / float(expected_events(torch.tensor(sr), torch.tensor(g))))))
        mc = simulate_walks(sr, g, albedo, n_mc, generator=make_generator(31), dtype=torch.float64)
        full = nee_all_events(sr, g, albedo, n_mc, lights, seed=33)
        cv = model.sample(torch.full((n_cvae,), sr), torch.full((n_cvae,), g),
                          torch.full((n_cvae,), albedo, dtype=torch.float64), generator=make_generator(32))
        row = {"sigma_r": sr, "g": g, "albedo": albedo, "mc_walks": n_mc,
               "mean_radius_mc": float(mc["scatter_pos"].norm(dim=-1).mean()),
               "mean_radius_cvae": float(cv["scatter_pos"].double().norm(dim=-1).mean()), "light": []}
        # W1 of the event radius, CVAE vs MC half A, and its noise floor MC half B vs A (same set sizes)
        r_mc = mc["scatter_pos"].norm(dim=-1).numpy()
        h = len(r_mc) // 2
        r_cv = cv["scatter_pos"].double().norm(dim=-1).numpy()[:h]
        row["w1_radius"], row["w1_radius_floor"] = w1(r_cv, r_mc[:h]), w1(r_mc[h:2 * h], r_mc[:h])
        for j, l in enumerate(lights):
            est = []
            for rec in (mc, cv):
                x = rec["scatter_pos"].double()
                w = rec["scatter_dir"].double()
                w = w / w.norm(dim=-1, keepdim=True)
                v = rec["nee_weight"].double() * torch.exp(-sr * exit_distance(x, l)) * hg_pdf((w * l).sum(-1), g)
                est.append((float(v.mean()), float(v.std()) / math.sqrt(v.numel())))
            ref, ref_se = float(full[:, j].mean()), float(full[:, j].std()) / math.sqrt(n_mc)
            row["light"].append({"light_z": float(lz[j]), "mc_all_events": ref, "mc_all_events_se": ref_se,
                                 "mc": est[0][0], "mc_se": est[0][1], "cvae": est[1][0], "cvae_se": est[1][1],
                                 "ratio": est[1][0] / max(ref, 1e-300),
                                 "ratio_one_event_mc": est[1][0] / max(est[0][0], 1e-300)})
        rows.append(row)
    return rows


def markdown(res: dict) -> str:
    cmd = res["command"].replace(res["args"].get("note") or "\0", '"<the note below>"')
    lines = ["# Scattering CVAEs benchmark", "",
             f"Command: `OMP_NUM_THREADS=1 {cmd}`; device: {res['device']}; torch threads: 1; machine shared "
             "(2 cores).", ""]
    if res["args"].get("note"):
        lines += [res["args"]["note"], ""]
    if res.get("grid_command") or res.get("render_command"):
        lines += [f"Other part produced by: `{res.get('grid_command') or res.get('render_command')}`", ""]
    if "grid" not in res:
        lines += ["(held-out grid not run)"]
    else:
        lines += _grid_md(res)
    if res.get("speed"):
        sp = res["speed"]
        lines += ["", "## Walks per second, full batches (g = 0, one CPU thread)", "",
                  f"MC: {sp['mc_events_per_s']:.3g} scattering events/s measured on {sp['mc_walks']} walks at "
                  "sigma_r = 16 with 32,768 slots kept full, divided by the mean N of each condition; the grid "
                  "column is the rate of the grid's own small MC sets (tail-dominated). CVAE: 100,000 walks in "
                  "one batch.", "",
                  "| sigma_r | MC mean N | MC walks/s (full batch) | MC walks/s (grid sets) | CVAE walks/s | "
                  "speed-up vs full-batch MC |", "|---|---|---|---|---|---|"]
        lines += [f"| {r['sigma_r']:g} | {r['mean_events_mc']:.1f} | {r['mc_walks_per_s']:.3g} | "
                  f"{r['mc_walks_per_s_grid_sets']:.3g} | {r['cvae_walks_per_s']:.3g} | {r['speedup']:.3g}x |"
                  for r in sp["rows"]]
    if res.get("nee"):
        lines += ["", "## scatGen check: next-event estimate through the walk's sphere (CVAE / MC)", "",
                  "Mean of nee_weight * exp(-sigma_r d) * HG over walks, for a light along +z (ahead), "
                  "sideways and -z (behind), CVAE over an MC reference that sums the term over every event of "
                  "its walks (relative standard errors of reference and CVAE in brackets); the mean radius of "
                  "the representative event and the W1 distance of its law, CVAE vs MC, over the MC noise floor "
                  "(two MC halves).", "",
                  "| sigma_r | g | albedo | MC walks | ratio, light ahead | sideways | behind | rel. s.e. MC / CVAE "
                  "(ahead) | mean radius MC / CVAE | W1 radius / floor |", "|---|---|---|---|---|---|---|---|---|---|"]
        for r in res["nee"]:
            lt = r["light"]
            lines.append(f"| {r['sigma_r']:g} | {r['g']:g} | {r['albedo']:g} | {r['mc_walks']} | "
                         f"{lt[0]['ratio']:.3f} | {lt[1]['ratio']:.3f} | {lt[2]['ratio']:.3f} | "
                         f"{lt[0].get('mc_all_events_se', 0) / max(lt[0].get('mc_all_events', 1), 1e-300):.3f} / "
                         f"{lt[0].get('cvae_se', 0) / max(lt[0]['cvae'], 1e-300):.3f} | "
                         f"{r['mean_radius_mc']:.3f} / {r['mean_radius_cvae']:.3f} | "
                         f"{r.get('w1_radius', float('nan')):.4f} / {r.get('w1_radius_floor', float('nan')):.4f} |")
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
              ]
    return lines


def _render_md(res: dict, lines: list[str]) -> str:
    if res.get("render"):
        lines += ["", f"## Rendering, sphere scene ({res['args']['res']}x{res['args']['res']}, g = {res['args']['g']}, "
                  f"albedo = {res['args']['albedo']}), equal time budget {res['args']['eq_seconds']} s", "",
                  "| sigma_r | ref spp (noise) | brute force: s, spp, rel. RMSE | learned: s, spp, rel. RMSE, mean ratio | "
                  "RMSE ratio at equal time | same, reference noise removed |", "|---|---|---|---|---|---|"]
        for r in res["render"]:
            b, c = r["volpath"], r["cvae"]
            lines.append(f"| {r['sigma_r']:g} | {r['ref_spp']} ({r['ref_rel_noise']:.3f}) | {b['seconds']:.1f}, "
                         f"{b['spp']:.1f}, {b['rel_rmse']:.3f} | {c['seconds']:.1f}, {c['spp']:.1f}, "
                         f"{c['rel_rmse']:.3f}, {c['mean_ratio']:.3f} | {r['rmse_ratio_bf_over_cvae']:.2f}x | "
                         f"{r.get('rmse_ratio_ref_noise_removed', float('nan')):.2f}x |")
        tails = [r for r in res["render"] if "rmse_ratio_tail_free" in r]
        if tails:
            lines += ["", "Without the tail: a budgeted render stops issuing paths at the budget and finishes those in "
                      "flight (brute force finishes them in blocks of many events per pass, VolumePathTracer tail=; at high "
                      "density they still hold seconds of work). "
                      "That tail does not grow with the budget, so a long render amortises it; the ratios below take "
                      "each run's time up to its last issued path (an upper bound for long renders, where a systematic "
                      "error weighs more).", "",
                      "| sigma_r | brute force: last path issued at / run ended at (s) | learned: issued / ended (s) | "
                      "RMSE ratio, tail-free | same, reference noise removed |", "|---|---|---|---|---|"]
            for r in tails:
                b, c = r["volpath"], r["cvae"]
                lines.append(f"| {r['sigma_r']:g} | {b['issue_seconds']:.1f} / {b['seconds']:.1f} | "
                             f"{c['issue_seconds']:.1f} / {c['seconds']:.1f} | {r['rmse_ratio_tail_free']:.2f}x | "
                             f"{r['rmse_ratio_tail_free_ref_noise_removed']:.2f}x |")
        rows = [r for r in res["render"] if "path_rel_variance" in r["cvae"]]
        if rows:
            lines += ["", "Where the equal-time ratio comes from: paths per second (each tracer's whole run, its tail "
                      "included) and the variance of one path's radiance estimate (from the paths' own spread, over "
                      "the reference pixel value squared, mean over pixels above 5 % of the brightest); the noise-only "
                      "RMSE ratio is sqrt(paths/s ratio / variance ratio).", "",
                      "| sigma_r | paths/s brute force | paths/s learned | ratio | path variance brute force | "
                      "learned | noise-only RMSE ratio |", "|---|---|---|---|---|---|---|"]
            for r in rows:
                b, c = r["volpath"], r["cvae"]
                speed = c["paths_per_second"] / b["paths_per_second"]
                var = c["path_rel_variance"] / b["path_rel_variance"]
                lines.append(f"| {r['sigma_r']:g} | {b['paths_per_second']:.3g} | {c['paths_per_second']:.3g} | "
                             f"{speed:.2f}x | {b['path_rel_variance']:.2f} | {c['path_rel_variance']:.2f} | "
                             f"{math.sqrt(speed / var):.2f}x |")
        for r in res["render"]:
            if "mitsuba" in r:
                lines += ["", f"Mitsuba 3 (scalar_rgb, volpath, 1 thread), sigma_r = {r['sigma_r']:g}:", "",
                          "| spp | seconds | rel. RMSE vs reference | mean ratio |", "|---|---|---|---|"]
                lines += [f"| {m['spp']} | {m['seconds']:.2f} | {m['rel_rmse']:.3f} | {m['mean_ratio']:.3f} |"
                          for m in r["mitsuba"]]
                const = float(np.median([m["rel_rmse"] * math.sqrt(m["seconds"]) for m in r["mitsuba"]]))
                bf = r["volpath"]
                lines += ["", f"Mitsuba time to reach the learned tracer's error, EXTRAPOLATED from the runs above "
                          f"(not measured; see benchmarks/scattering_mitsuba_eqtime.py) ({r['cvae']['rel_rmse']:.3f}): "
                          f"{r['mitsuba_seconds_at_cvae_error']:.1f} s vs {r['cvae_seconds']:.1f} s; to reach the "
                          f"brute-force tracer's error ({bf['rel_rmse']:.3f}): {(const / bf['rel_rmse']) ** 2:.1f} s "
                          f"vs {bf['seconds']:.1f} s (Mitsuba's rel. RMSE x sqrt(seconds), median over its runs)."]
    return "\n".join(lines) + "\n"


def plot_error_time(res: dict, path: Path) -> None:
    """Relative RMSE against seconds per sigma_r: brute force, learned, Mitsuba (its spp series)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = res.get("render") or []
    if not rows:
        return
    fig, axes = plt.subplots(1, len(rows), figsize=(3.2 * len(rows), 3.0), squeeze=False)
    for ax, r in zip(axes[0], rows):
        for key, mark, label in (("volpath", "o", "brute force"), ("cvae", "s", "learned (CVAE)")):
            ax.loglog([r[key]["seconds"]], [r[key]["rel_rmse"]], mark, label=label)
        if r.get("mitsuba"):
            ax.loglog([m["seconds"] for m in r["mitsuba"]], [m["rel_rmse"] for m in r["mitsuba"]], "^-",
                      label="Mitsuba 3 volpath")
        ax.axhline(r["ref_rel_noise"], color="grey", lw=0.8, ls=":", label="reference noise")
        ax.set_title(f"sigma_r = {r['sigma_r']:g}")
        ax.set_xlabel("seconds (1 thread)")
    axes[0][0].set_ylabel("relative RMSE vs reference")
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


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
    p.add_argument("--min-sigma-r", type=float, default=MIN_SIGMA_R)
    p.add_argument("--mitsuba", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--mitsuba-sigma", type=float, nargs="*", default=[1.0, 16.0, 64.0, 256.0])
    p.add_argument("--mitsuba-spp", type=int, nargs="*", default=[64, 256, 1024])
    p.add_argument("--skip-grid", action="store_true")
    p.add_argument("--skip-render", action="store_true")
    p.add_argument("--slots", type=int, default=16384, help="path slots of the equal-time renders (both tracers)")
    p.add_argument("--note", default="", help="a line written under the command in the markdown")
    p.add_argument("--skip-speed", action="store_true", help="skip the full-batch walks-per-second section")
    p.add_argument("--refs-only", action="store_true", help="only compute and cache the reference renders")
    p.add_argument("--events-budget", type=float, default=3e6, help="max expected MC events per set")
    p.add_argument("--nee-events", type=float, default=3e6, help="max expected MC events per scatGen-check set")
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
    if "grid" in res and not args.skip_speed:
        res["speed"] = bench_speed(model, res["grid"]["rows"])
    if not args.skip_speed:
        res["nee"] = bench_nee(model, args.g, args.albedo, events=args.nee_events)
    for key in ("speed", "nee"):          # sections of an earlier run that this one skipped
        if args.skip_speed and key in previous:
            res[key] = previous[key]
    if args.skip_render and previous.get("render"):
        res["render"] = previous["render"]
        res["render_command"] = previous.get("render_command") or previous.get("command")
    atomic_write_json(out.with_suffix(".json"), res)
    atomic_write_text(out.with_suffix(".md"), markdown(res))
    plot_error_time(res, out.parent / f"{out.name}_error_vs_time.png")
    print(markdown(res))


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
