"""Render the translucent sphere (or box / blob) with the learned tracer and the brute-force one (a PNG each).

    python examples/scattering_render.py --scene blob --sigma-r 64 --spp 4 --res 48
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sciflow.commands.script import integer, number, run_script


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scene", default="sphere", choices=["sphere", "box", "blob"])
    p.add_argument("--sigma-r", type=number(0), default=64.0, help="optical radius in mean free paths")
    p.add_argument("--spp", type=integer(1), default=4, help="samples per pixel (>= 1)")
    p.add_argument("--res", type=integer(1), default=48, help="image width and height in pixels (>= 1)")
    p.add_argument("--out", default="outputs/scattering_render")
    return p.parse_args(argv)


def run(a: argparse.Namespace) -> None:
    import torch

    from sciflow.methods.scattering.api import render_scene

    torch.set_num_threads(1)
    for integrator in ("cvae", "volpath"):
        s = render_scene(a.scene, integrator=integrator, spp=a.spp, sigma_r=a.sigma_r, width=a.res, height=a.res,
                         out=a.out)
        print(f"{integrator}: {s['paths']} paths, {s['events']} medium events, {s['seconds']:.1f} s -> {s['files'][0]}")


def main(argv: list[str] | None = None) -> None:
    run_script(run, parse_args(argv), errors=())


if __name__ == "__main__":
    main()
