"""Mitsuba 3 and the learned tracer at about 30 s each on the benchmark's sphere, against one fresh
brute-force reference (two 100 s budgets) (same construction as benchmarks/scattering.py bench_render): measured equal-time errors
instead of the main script's extrapolation from runs of at most 2 s.

Mitsuba runs twice: with its default Russian roulette and with roulette out of reach (see
``scattering.mitsuba_render``; its default gives typical images 5-7 % too dark in dense media). The learned tracer
runs with the shipped weights and its defaults, with a 30 s budget, against the same reference.

    OMP_NUM_THREADS=1 python benchmarks/scattering_mitsuba_eqtime.py    # about 15 min on one thread
"""
import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import scattering as S

from sciflow.domains.photons.scene import make_scene
from sciflow.methods.scattering.api import render

OUT = Path(__file__).resolve().parent / "results" / "scattering_mitsuba_eqtime.json"
# spp series per Mitsuba setting; without roulette a path runs until it leaves the sphere, so fewer spp fit in 30 s
SPP = {True: (1024, 4096, 16384), False: {64.0: (256, 1024, 2048), 256.0: (64, 256, 512)}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.parse_args()                     # no options: --help describes the run before it starts
    torch.set_num_threads(1)
    out = {"command": "OMP_NUM_THREADS=1 python benchmarks/scattering_mitsuba_eqtime.py"}
    for sigma_r in (64.0, 256.0):
        scene = make_scene("sphere", sigma_r=sigma_r, albedo=0.999, g=0.5, width=24, height=24)
        r1 = render(scene, "volpath", spp=None, time_budget=100.0, seed=1000 + int(sigma_r), progress=False)
        r2 = render(scene, "volpath", spp=None, time_budget=100.0, seed=2000 + int(sigma_r), progress=False)
        ref, noise = S.combine_reference(r1.image, r2.image, r1.samples_per_pixel.astype(float),
                                         r2.samples_per_pixel.astype(float))
        row = {"ref_rel_noise": noise, "ref_seconds": r1.seconds + r2.seconds}
        for roulette in (True, False):
            rows = []
            series = SPP[roulette] if roulette else SPP[roulette][sigma_r]
            for spp in series:
                img, sec = S.mitsuba_render(scene, spp, seed=17, roulette=roulette)
                rows.append({"spp": spp, "seconds": sec, "rel_rmse": S.rmse(img, ref),
                             "mean_ratio": float(img.mean() / ref.mean())})
                print(sigma_r, "roulette" if roulette else "no roulette", rows[-1], flush=True)
            row["mitsuba" if roulette else "mitsuba_no_roulette"] = rows
        learned = render(scene, "cvae", spp=None, time_budget=30.0, seed=3000 + int(sigma_r), progress=False)
        row["learned"] = {"spp": float(learned.samples_per_pixel.mean()), "seconds": learned.seconds,
                          "rel_rmse": S.rmse(learned.image, ref),
                          "mean_ratio": float(learned.image.mean() / ref.mean())}
        print(sigma_r, "learned", row["learned"], flush=True)
        out[str(sigma_r)] = row
        OUT.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
