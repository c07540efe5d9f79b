"""Learned vs Monte Carlo photon walks in a sphere: exit-point and event-count histograms (PNG).

    python examples/scattering_walks.py --sigma-r 16 --g 0.5 --out outputs/scattering_walks.png

--sigma-r must lie in the CVAEs' trained range (0 to 300 mean free paths, ``SIGMA_MAX``); it is checked before
any walk is simulated.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sciflow.commands.script import integer, number, run_script


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="models/scattering")
    p.add_argument("--sigma-r", type=number(), default=16.0,
                   help="optical radius in mean free paths, within the trained range (<= 300)")
    p.add_argument("--g", type=number(), default=0.5, help="Henyey-Greenstein anisotropy, |g| < 1")
    p.add_argument("--walks", type=integer(1), default=2000)
    p.add_argument("--out", default="outputs/scattering_walks.png")
    a = p.parse_args(argv)
    from sciflow.domains.photons.conditions import SIGMA_MAX  # the CVAEs' trained range (torch, no model)
    if not 0 <= a.sigma_r <= SIGMA_MAX:
        p.error(f"argument --sigma-r: the CVAEs were trained on 0 <= sigma_r <= {SIGMA_MAX:g} mean free paths, "
                f"got {a.sigma_r:g}")
    if not abs(a.g) < 1:
        p.error(f"argument --g: anisotropy must satisfy |g| < 1, got {a.g:g}")
    return a


def run(a: argparse.Namespace) -> None:
    import numpy as np
    import torch

    from sciflow.core.files import atomic_path
    from sciflow.core.random import make_generator
    from sciflow.domains.photons import simulate_walks
    from sciflow.methods.scattering import ScatteringCVAEs

    torch.set_num_threads(1)
    model = ScatteringCVAEs.load(a.model)
    gen = make_generator(0)
    mc = simulate_walks(a.sigma_r, a.g, 1.0, a.walks, generator=gen)
    cv = model.generate({"sigma_r": a.sigma_r, "g": a.g, "albedo": 0.999}, a.walks, generator=gen)
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(1, 3, figsize=(12, 3.5))
    ax[0].hist(np.log(mc["n_events"].numpy()), 40, alpha=0.6, density=True, label="Monte Carlo")
    ax[0].hist(np.log(cv.extras["n_events"].numpy()), 40, alpha=0.6, density=True, label="CVAE")
    ax[0].set_xlabel("log N")
    ax[0].legend()
    ax[1].hist(mc["exit_pos"][:, 2].numpy(), 40, alpha=0.6, density=True)
    ax[1].hist(cv.states[1, :, 2].numpy(), 40, alpha=0.6, density=True)
    ax[1].set_xlabel("exit position z (incoming direction +z)")
    cos_mc = (mc["exit_pos"] * mc["exit_dir"]).sum(-1).numpy()
    cos_cv = (cv.states[1, :, :3] * cv.states[1, :, 3:]).sum(-1).numpy()
    ax[2].hist(cos_mc, 40, alpha=0.6, density=True)
    ax[2].hist(cos_cv, 40, alpha=0.6, density=True)
    ax[2].set_xlabel("exit direction . normal")
    fig.suptitle(f"sigma_r = {a.sigma_r}, g = {a.g}")
    fig.tight_layout()
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(a.out, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    print(f"wrote {a.out}")


def main(argv: list[str] | None = None) -> None:
    run_script(run, parse_args(argv), errors=())


if __name__ == "__main__":
    main()
