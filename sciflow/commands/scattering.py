"""``sciflow scattering``: make walk data, train the three CVAEs, evaluate them, render scenes."""
from __future__ import annotations

import argparse

from ._args import (
    beside_model,
    device,
    fraction,
    integer,
    number,
    output_file,
    output_folder,
    output_model,
    positive,
    print_json,
    seed,
)

#: Henyey-Greenstein anisotropy: -1 < g < 1
ANISOTROPY = number(-1, 1, low_open=True, high_open=True)
#: Largest image side of `scattering render`, pixels: the limit of the workflow's ``scattering.width`` /
#: ``height`` (sciflow/workflows/tasks/scattering.py, ``le=4096``); larger images fail to allocate.
MAX_IMAGE_SIDE = 4096


def _threads(args: argparse.Namespace) -> None:
    import torch
    if getattr(args, "threads", None):
        torch.set_num_threads(int(args.threads))


def _data(args: argparse.Namespace) -> int:
    _threads(args)
    from ..data.scattering import generate_walk_dataset
    man = generate_walk_dataset(args.out, args.walks, chunk=args.chunk, seed=args.seed, sigma_max=args.sigma_max,
                                slots=args.slots, device=args.device)
    print_json(man, indent=2)
    return 0


def _train(args: argparse.Namespace) -> int:
    # the default checkpoints belong to --out: one fixed folder for every model refused a second model's training
    checkpoints = args.checkpoints or str(beside_model(args.out, "train_checkpoints"))
    _threads(args)
    from ..methods.scattering.training import train_from_folder
    summary = train_from_folder(args.data, args.out, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                                seed=args.seed, device=args.device, checkpoint_dir=checkpoints,
                                only=args.only, max_walks=args.max_walks, free_bits=args.free_bits,
                                scat_coords=args.scat_coords, exact_single=not args.no_exact_single,
                                partial=args.partial)
    print_json(summary, indent=2)
    return 0


def _fit_prior(args: argparse.Namespace) -> int:
    _threads(args)
    from ..data.scattering import load_walk_dataset
    from ..methods.scattering import ScatteringCVAEs
    from ..methods.scattering.training import fit_priors
    model = fit_priors(ScatteringCVAEs.load(args.model), load_walk_dataset(list(args.data), max_walks=args.max_walks,
                                                                            partial=args.partial),
                       args.only, steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed)
    model.info["prior_fit_data"] = [str(d) for d in args.data]
    model.save(args.out)
    print_json(model.info["prior_fit"], indent=2)
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    _threads(args)
    from ..core.files import atomic_write_json
    from ..methods.scattering import ScatteringCVAEs
    from ..methods.scattering.metrics import evaluate_grid
    model = ScatteringCVAEs.load(args.model)
    metrics = evaluate_grid(model, n_walks=args.walks, seed=args.seed, sigma_r=args.sigma_r, g=args.g,
                            device=args.device)
    atomic_write_json(args.out, metrics)
    print_json(metrics["summary"], indent=2)
    return 0


def _render(args: argparse.Namespace) -> int:
    _threads(args)
    from ..methods.scattering.api import render_scene
    res = render_scene(args.scene, integrator=args.integrator, spp=args.spp, sigma_r=args.sigma_r, g=args.g,
                       albedo=args.albedo, width=args.width, height=args.height, model=args.model, out=args.out,
                       seed=args.seed, device=args.device)
    print_json(res, indent=2)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("scattering", help="Scattering CVAEs: walk data, training, evaluation, rendering")
    verbs = p.add_subparsers(dest="verb", metavar="VERB")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--seed", type=seed, default=0)
    common.add_argument("--device", type=device, default="cpu")
    common.add_argument("--threads", type=integer(), default=None, help="torch CPU threads")

    d = verbs.add_parser("data", parents=[common], help="simulate Monte Carlo walks in chunks (resumable)")
    d.add_argument("--out", required=True, type=output_folder(), help="walk dataset folder")
    d.add_argument("--walks", type=integer(), default=100000)
    d.add_argument("--chunk", type=integer(), default=20000)
    d.add_argument("--sigma-max", type=positive(), default=300.0)
    d.add_argument("--slots", type=integer(), default=32768)
    d.set_defaults(func=_data, resumes=True)

    t = verbs.add_parser("train", parents=[common], help="train lenGen, pathGen and scatGen (resumable)")
    t.add_argument("--data", required=True, nargs="+", help="walk folder(s) or .npz file(s), concatenated")
    t.add_argument("--partial", action="store_true",
                   help="also read walk folders whose generation was stopped (the chunks present)")
    # no default: a default of the shipped model's folder overwrote it
    t.add_argument("--out", required=True, type=output_model(),
                   help="model folder to save (models/scattering only when named: it holds the shipped model)")
    t.add_argument("--steps", type=integer(), default=20000)
    t.add_argument("--batch-size", type=integer(), default=1024)
    t.add_argument("--lr", type=positive(), default=2e-3)
    t.add_argument("--checkpoints", default=None, type=output_folder(),
                   help="folder of the trainer checkpoints (default: train_checkpoints in the --out folder)")
    t.add_argument("--only", nargs="+", default=None, choices=["len", "path", "scat"],
                   help="train only these CVAEs, the others taken from the model in --out")
    t.add_argument("--max-walks", type=integer(), default=None)
    t.add_argument("--free-bits", type=number(0), default=0.0, help="minimum KL (nats) per latent dimension")
    t.add_argument("--scat-coords", default="depth", choices=["depth", "depth-logit", "ball"],
                   help="scatGen event coordinates (depth: radius as a normal quantile + directions relative to "
                        "the exit; depth-logit: the same with logit(radius); ball: the first release's)")
    t.add_argument("--no-exact-single", action="store_true",
                   help="learn N = 1 walks with the CVAEs too (the first release) instead of drawing them exactly")
    t.set_defaults(func=_train, resumes=True)

    f = verbs.add_parser("fit-prior", parents=[common],
                         help="fit a conditional latent prior to trained CVAEs on walks they were not trained on")
    f.add_argument("--data", required=True, nargs="+", help="walk folder(s) or .npz file(s)")
    f.add_argument("--partial", action="store_true",
                   help="also read walk folders whose generation was stopped (the chunks present)")
    f.add_argument("--model", default="models/scattering")
    f.add_argument("--out", required=True, type=output_model())
    f.add_argument("--only", nargs="+", default=["len"], choices=["len", "path", "scat"])
    f.add_argument("--steps", type=integer(), default=3000)
    f.add_argument("--batch-size", type=integer(), default=4096)
    f.add_argument("--lr", type=positive(), default=3e-3)
    f.add_argument("--max-walks", type=integer(), default=None)
    f.set_defaults(func=_fit_prior)

    e = verbs.add_parser("evaluate", parents=[common], help="distribution metrics on a fresh held-out grid")
    e.add_argument("--model", default="models/scattering")
    e.add_argument("--out", required=True, type=output_file(".json"), help="metrics JSON (.json)")
    e.add_argument("--walks", type=integer(), default=1000, help="MC walks per condition and per set")
    # nargs="+": given with no value, the default grid was used without a word
    e.add_argument("--sigma-r", type=positive(), nargs="+", default=None, help="optical radii (default: the held-out grid)")
    e.add_argument("--g", type=ANISOTROPY, nargs="+", default=None, help="anisotropies (default: the held-out grid)")
    e.set_defaults(func=_evaluate)

    r = verbs.add_parser("render", parents=[common], help="render a scene with the learned or brute-force tracer")
    r.add_argument("--scene", default="sphere", choices=["sphere", "box", "blob"])
    r.add_argument("--integrator", default="cvae", choices=["cvae", "volpath"])
    r.add_argument("--spp", type=integer(), default=16)
    r.add_argument("--sigma-r", type=positive(), default=64.0)
    r.add_argument("--g", type=ANISOTROPY, default=0.5)
    r.add_argument("--albedo", type=fraction(), default=0.999)
    r.add_argument("--width", type=integer(1, MAX_IMAGE_SIDE), default=64, help=f"pixels, at most {MAX_IMAGE_SIDE}")
    r.add_argument("--height", type=integer(1, MAX_IMAGE_SIDE), default=64, help=f"pixels, at most {MAX_IMAGE_SIDE}")
    r.add_argument("--model", default="models/scattering")
    r.add_argument("--out", default="outputs/scattering", type=output_folder(),
                   help="folder for <scene>_<integrator>.png/.npy/.json")
    r.set_defaults(func=_render)
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])
