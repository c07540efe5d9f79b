"""Render the translucent sphere (or box / blob) with the learned tracer and the brute-force one (a PNG each).

    python examples/scattering_render.py --scene blob --sigma-r 64 --spp 4 --res 48
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sciflow.methods.scattering.api import render_scene


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--scene", default="sphere", choices=["sphere", "box", "blob"])
    p.add_argument("--sigma-r", type=float, default=64.0)
    p.add_argument("--spp", type=int, default=4)
    p.add_argument("--res", type=int, default=48)
    p.add_argument("--out", default="outputs/scattering_render")
    a = p.parse_args()
    torch.set_num_threads(1)
    for integrator in ("cvae", "volpath"):
        s = render_scene(a.scene, integrator=integrator, spp=a.spp, sigma_r=a.sigma_r, width=a.res, height=a.res,
                         out=a.out)
        print(f"{integrator}: {s['paths']} paths, {s['events']} medium events, {s['seconds']:.1f} s -> {s['files'][0]}")


if __name__ == "__main__":
    main()
