"""``sciflow tsgen ...``: train TS-GEN on triplets, evaluate a model on any triplets file."""
from __future__ import annotations

import argparse
from typing import Any

from ._args import (
    beside_model,
    device,
    integer,
    number,
    output_file,
    output_model,
    positive,
    print_json,
    seed,
)

DEFAULT_MODEL = "models/tsgen"


def _train(args: argparse.Namespace) -> int:
    import torch

    from ..core.errors import InputError
    from ..core.random import seeded
    from ..core.training import TrainConfig
    from ..data.reactions import GRAMBOW_SPLIT, find_grambow, grambow_split, load_triplets
    from ..methods.tsgen import TSGen

    torch.set_num_threads(args.threads)
    data = load_triplets(args.data or find_grambow())
    if args.split == "grambow":
        n_grambow = sum(GRAMBOW_SPLIT["sizes"])
        if len(data) != n_grambow:       # the fixed split is of the 700 Grambow reactions only
            raise InputError(f"--split: grambow takes the fixed train split of the {n_grambow} Grambow reactions, "
                             f"but {args.data or 'the data'} holds {len(data)}; use --split all to train on every "
                             "reaction of --data")
        train = grambow_split(data)["train"]
    else:
        train = data
    with seeded(args.seed):                     # initial weights from --seed, not torch's global stream
        model = TSGen(hidden=args.hidden, n_layers=args.layers, n_vectors=args.vectors, prior_std=args.prior_std,
                      batch_size=args.batch_size, steps=args.sample_steps, time_power=args.time_power)
    cfg = TrainConfig(steps=args.steps, lr=args.lr, warmup_steps=args.warmup, lr_schedule="cosine",
                      min_lr_ratio=0.05, ema_decay=args.ema, seed=args.seed, checkpoint_every=args.checkpoint_every,
                      desc="tsgen")
    ckpt = args.checkpoint or str(beside_model(args.out, "train_checkpoint.pt"))
    _check_resumed_data(ckpt, train, args)
    result = model.fit(train, cfg, device=args.device, checkpoint_path=ckpt, stop_at=args.stop_at)
    model.info["train"]["data"] = str(args.data or "grambow_isomerization_700")
    model.info["train"]["split"] = args.split
    path = model.save(args.out)
    print_json({"saved": str(path), "steps": result.steps, "seconds": result.seconds,
                      "final_loss": result.final_loss, "history": result.history[-5:]}, indent=2)
    return 0


def _check_resumed_data(ckpt: str, train: Any, args: argparse.Namespace) -> None:
    """A checkpoint of training on other reactions (another --data file, another --split) is refused before any
    step, naming both options: resuming it would mix two training sets (test reactions among them)."""
    from pathlib import Path

    from ..core.errors import InputError
    from ..core.training import load_checkpoint
    from ..methods.tsgen.data import training_digest

    if not Path(ckpt).is_file():
        return
    run = load_checkpoint(ckpt).get("run_config") or {}
    if run.get("method") == "tsgen" and "training_data" not in run:
        raise InputError(f"--data / --split: the checkpoint {ckpt} predates the record of its training reactions, "
                         "so resuming it cannot be checked to train on the same ones (--data / --split); remove it "
                         "(or choose another --out / --checkpoint) to start over")
    made = run.get("training_data")
    if made is not None and made != training_digest(train):
        raise InputError(f"--data / --split: the checkpoint {ckpt} was trained on other reactions than those of "
                         f"--data {args.data or '(the Grambow set)'} --split {args.split}; resume with the --data and "
                         "--split it was started with, or remove the checkpoint (or choose another --out) to start "
                         "over")


def _check_xtb_options(args: argparse.Namespace) -> None:
    """The xTB/Sella options act only with --xtb: refused without it (they were silently ignored), before any
    work; then their defaults are filled in."""
    from ..core.errors import InputError
    given = [name for name, on in (("--sella-steps", args.sella_steps is not None),
                                   ("--xtb-all-samples", args.xtb_all_samples),
                                   ("--sella-hessian" if args.sella_hessian else "--no-sella-hessian",
                                    args.sella_hessian is not None)) if on]
    if given and not args.xtb:
        raise InputError(f"{', '.join(given)}: {'acts' if len(given) == 1 else 'act'} only with --xtb (the xTB "
                         f"barrier and Sella saddle checks); add --xtb or leave {'it' if len(given) == 1 else 'them'} "
                         "out")
    args.sella_steps = 50 if args.sella_steps is None else args.sella_steps
    args.sella_hessian = True if args.sella_hessian is None else args.sella_hessian


def _evaluate(args: argparse.Namespace) -> int:
    _check_xtb_options(args)
    import torch

    from ..core.files import atomic_write_json
    from ..data.reactions import load_triplets
    from ..methods.tsgen import TSGen
    from ..methods.tsgen.evaluate import evaluate

    torch.set_num_threads(args.threads)
    model = TSGen.load(args.model)
    data = load_triplets(args.data)
    metrics = evaluate(model, data, n_samples=args.n_samples, steps=args.steps, solver=args.solver,
                       device=args.device, seed=args.seed, xtb=args.xtb, limit=args.limit,
                       sella_steps=args.sella_steps, xtb_all_samples=args.xtb_all_samples,
                       exact_hessian=args.sella_hessian)
    metrics["model"] = str(args.model)
    metrics["data"] = str(args.data)
    atomic_write_json(args.out, metrics)
    print_json({k: v for k, v in metrics.items() if not isinstance(v, (list, dict))}, indent=2)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tsgen", help="TS-GEN: transition states from reactant and product")
    verbs = p.add_subparsers(dest="tsgen_command", metavar="VERB")

    e = verbs.add_parser("evaluate", help="Kabsch RMSD (and xTB checks) of a model on a triplets.npz file")
    e.add_argument("--data", required=True, help="a file in the triplets.npz layout (with pos_ts)")
    e.add_argument("--out", required=True, type=output_file(".json"), help="metrics JSON to write (.json)")
    e.add_argument("--model", default=DEFAULT_MODEL, help="model folder or file (default: the shipped model)")
    e.add_argument("--n-samples", type=integer(), default=1, help="samples per reaction (best-of-n is reported too)")
    e.add_argument("--xtb", action="store_true", help="GFN2-xTB barrier error and Sella saddle checks (chem extra)")
    e.add_argument("--steps", type=integer(), default=None, help="solver steps (default: the model's)")
    from ..core.registry import ODE_SOLVERS
    e.add_argument("--solver", default=None, choices=ODE_SOLVERS, help="ODE solver (default: the model's)")
    e.add_argument("--sella-steps", type=integer(), default=None,
                   help="Sella saddle-search steps per TS (with --xtb; default: 50)")
    e.add_argument("--sella-hessian", action=argparse.BooleanOptionalAction, default=None,
                   help="Sella starts from the exact (finite-difference) xTB Hessian (with --xtb; default: on)")
    e.add_argument("--xtb-all-samples", action="store_true",
                   help="with --xtb: run the checks from every one of the n samples, not only the medoid "
                        "(saddle_success_all_samples)")
    e.add_argument("--limit", type=integer(), default=None, help="evaluate only the first LIMIT reactions")
    e.add_argument("--device", type=device, default="cpu")
    e.add_argument("--seed", type=seed, default=0)
    e.add_argument("--threads", type=integer(), default=1)
    e.set_defaults(func=_evaluate)

    t = verbs.add_parser("train", help="train TS-GEN (resumes from its checkpoint when re-run)")
    t.add_argument("--data", default=None, help="triplets.npz (default: the shared Grambow set)")
    t.add_argument("--split", choices=["grambow", "all"], default="grambow",
                   help="grambow: train on the fixed 560-reaction train split; all: every reaction of --data")
    # no default: a default of the shipped model's folder overwrote it (and left a checkpoint there)
    t.add_argument("--out", required=True, type=output_model(),
                   help="model folder or file to save (models/tsgen only when named: it holds the shipped model)")
    t.add_argument("--checkpoint", default=None, type=output_file(),
                   help="trainer checkpoint (default: train_checkpoint.pt in the --out folder, or "
                        "<stem>.train_checkpoint.pt beside an --out file)")
    t.add_argument("--steps", type=integer(), default=4000)
    t.add_argument("--stop-at", type=integer(), default=None, help="stop (checkpointed) after this many steps")
    t.add_argument("--lr", type=positive(), default=1e-3)
    t.add_argument("--warmup", type=integer(0), default=200)
    t.add_argument("--ema", type=number(0, 1, high_open=True), default=0.999)
    t.add_argument("--batch-size", type=integer(), default=32)
    t.add_argument("--hidden", type=integer(), default=96)
    t.add_argument("--layers", type=integer(), default=4)
    t.add_argument("--vectors", type=integer(), default=16)
    t.add_argument("--prior-std", type=positive(), default=0.1)
    t.add_argument("--time-power", type=positive(), default=2.0, help="training times t = u^p (p > 1: more weight near t = 0)")
    t.add_argument("--sample-steps", type=integer(), default=8)
    t.add_argument("--checkpoint-every", type=integer(), default=200)
    t.add_argument("--device", type=device, default=None)
    t.add_argument("--seed", type=seed, default=0)
    t.add_argument("--threads", type=integer(), default=1)
    t.set_defaults(func=_train, resumes=True)
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])
