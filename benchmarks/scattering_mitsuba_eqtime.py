"""Mitsuba 3 at about the learned tracer's 30 s budget on the benchmark's sphere, against a fresh 200 s brute-force
reference (same construction as benchmarks/scattering.py bench_render): measured equal-time errors instead of the
main script's extrapolation from runs of at most 2 s.

    OMP_NUM_THREADS=1 python benchmarks/scattering_mitsuba_eqtime.py    # about 10 min on one thread
"""
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import scattering as S

from sciflow.domains.photons.scene import make_scene
from sciflow.methods.scattering.api import render

OUT = Path(__file__).resolve().parent / "results" / "scattering_mitsuba_eqtime.json"


def main() -> None:
    torch.set_num_threads(1)
    out = {}
    for sigma_r in (64.0, 256.0):
        scene = make_scene("sphere", sigma_r=sigma_r, albedo=0.999, g=0.5, width=24, height=24)
        r1 = render(scene, "volpath", spp=None, time_budget=100.0, seed=1000 + int(sigma_r), progress=False)
        r2 = render(scene, "volpath", spp=None, time_budget=100.0, seed=2000 + int(sigma_r), progress=False)
        ref, noise = S.combine_reference(r1.image, r2.image, r1.samples_per_pixel.astype(float),
                                         r2.samples_per_pixel.astype(float))
        rows = []
        for spp in (1024, 4096, 16384):
            img, sec = S.mitsuba_render(scene, spp, seed=17)
            rows.append({"spp": spp, "seconds": sec, "rel_rmse": S.rmse(img, ref),
                         "mean_ratio": float(img.mean() / ref.mean())})
            print(sigma_r, rows[-1], flush=True)
        out[str(sigma_r)] = {"ref_rel_noise": noise, "ref_seconds": r1.seconds + r2.seconds, "mitsuba": rows}
        OUT.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
