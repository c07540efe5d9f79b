"""``sciflow unbinding simulate | train | evaluate``: RAMD data, training and held-out evaluation of UnbindingFlow."""
from __future__ import annotations

import argparse
from pathlib import Path

from ._args import (
    beside_model,
    device,
    integer,
    number,
    output_file,
    output_folder,
    output_model,
    positive,
    print_json,
    seed,
)


def _settings(args: argparse.Namespace):
    from ..data.ramd import RAMDSettings
    return RAMDSettings(force=args.force, friction=args.friction, temperature=args.temperature,
                        timestep_fs=args.timestep_fs, hydrogen_mass=args.hydrogen_mass,
                        implicit_solvent=args.implicit_solvent, check_every_ps=args.check_every_ps,
                        min_displacement=args.min_displacement, exit_distance=args.exit_distance,
                        save_every_ps=args.save_every_ps, max_time_ps=args.max_time_ps,
                        equilibration_ps=args.equilibration_ps, pocket_cutoff=args.pocket_cutoff,
                        platform=args.platform, threads=args.threads)


def _simulate(args: argparse.Namespace) -> int:
    from ..core.errors import InputError
    from ..data.ramd import ComplexSource, generate_replicas, host_guest_sources, t4l_source
    settings = _settings(args)                       # validates before any work
    if args.prmtop:
        if not (args.coordinates and args.ligand):
            raise InputError("--prmtop needs --coordinates and --ligand (residue name)")
        source = ComplexSource(args.complex, args.prmtop, args.coordinates, args.ligand)
    elif args.complex == "t4l-pxylene":
        missing = [n for n in ("complex.prmtop", "complex.crd") if not (Path(args.t4l_folder) / n).is_file()]
        if missing:
            raise InputError(f"--t4l-folder: {args.t4l_folder} lacks {', '.join(missing)} (the T4L L99A + p-xylene "
                             "AMBER inputs of openmmtools; give the folder that holds them)")
        source = t4l_source(args.t4l_folder)
    else:
        known = host_guest_sources()
        if args.complex not in known:
            raise InputError(f"complex: unknown {args.complex!r}; known: {', '.join(sorted(known))}, t4l-pxylene "
                             "(or give --prmtop/--coordinates/--ligand)")
        source = known[args.complex]
    first = args.first
    summary = generate_replicas(source, settings, range(first, first + args.replicas), args.out, seed=args.seed)
    print_json(summary, indent=2)
    return 0


def _pack(args: argparse.Namespace) -> int:
    from ..core.errors import InputError
    from ..data.dissociation import write_h5
    from ..data.ramd import load_events
    lo, _, hi = args.replicas.partition(":")
    if not lo.isdigit() or not hi.isdigit():
        raise InputError(f"--replicas: expected START:STOP, got {args.replicas!r}")
    if int(lo) >= int(hi):
        raise InputError(f"--replicas: {args.replicas!r} is an empty range (START:STOP takes START <= index < STOP)")
    missing = [name for name in args.complexes if not (Path(args.runs) / name).is_dir()]
    if missing:
        raise InputError(f"--complexes: no folder {', '.join(repr(str(Path(args.runs) / m)) for m in missing)} "
                         f"(unbinding simulate writes <--runs>/<complex>/)")
    out = []
    for name in args.complexes:
        for t in load_events(Path(args.runs) / name):
            r = int(t.info.get("stats", {}).get("replica", t.name.rsplit("r", 1)[-1]))
            if int(lo) <= r < int(hi):
                out.append(t.thin(args.every))
    if not out:
        raise InputError(f"runs: no exited replica of {args.complexes} in {args.replicas} under {args.runs}")
    write_h5(args.out, out)
    print(f"{len(out)} trajectories -> {args.out}")
    return 0


def _read(data: str, complexes: list[str] | None) -> list:
    """The trajectories of ``data`` (of ``complexes`` when given); a name with no trajectory there is refused,
    naming it and the complexes the data holds (it used to end as "no trajectory" without saying why)."""
    from ..core.errors import InputError
    from ..data.dissociation import read_dataset
    trajs = read_dataset(data, complexes=complexes)
    unknown = sorted(set(complexes or ()) - {t.complex_name for t in trajs})
    if unknown:
        held = sorted({t.complex_name for t in read_dataset(data)})
        raise InputError(f"--complexes: no trajectory of {', '.join(map(repr, unknown))} in {data}; it holds "
                         f"{', '.join(held) or 'none'}")
    return trajs


def _train(args: argparse.Namespace) -> int:
    from ..core.random import seeded
    from ..core.training import TrainConfig
    from ..methods.unbinding import UnbindingFlow
    trajs = _read(args.data, args.complexes)
    with seeded(args.seed):                     # initial weights from --seed, not torch's global stream
        model = UnbindingFlow(n_frames=args.n_frames, hidden=args.hidden, n_layers=args.layers,
                              batch_size=args.batch_size)
    cfg = TrainConfig(steps=args.steps, lr=args.lr, warmup_steps=min(100, args.steps // 10), lr_schedule="cosine",
                      checkpoint_every=args.checkpoint_every, seed=args.seed, desc="unbinding")
    # the default checkpoint belongs to --out: one fixed file for every model refused a second model's training
    ckpt = args.checkpoint or str(beside_model(args.out, "train_checkpoint.pt"))
    res = model.fit(trajs, cfg, checkpoint_path=ckpt, device=args.device)
    model.save(args.out)
    print_json({"steps": res.steps, "seconds": res.seconds, "final_loss": res.final_loss,
                      "out": str(args.out)}, indent=2)
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from ..core.files import atomic_write_json
    from ..methods.unbinding import UnbindingFlow
    from ..methods.unbinding.evaluate import evaluate_paths
    trajs = _read(args.data, args.complexes)
    model = UnbindingFlow.load(args.model)
    metrics = evaluate_paths(model, trajs, n_per_condition=args.n, max_conditions=args.max_conditions,
                             exit_distance=args.exit_distance, seed=args.seed, device=args.device,
                             steps=args.steps)
    metrics.update({"model": str(args.model), "data": str(args.data),
                    "steps": args.steps or model.config()["steps"]})
    atomic_write_json(args.out, metrics)
    print_json({k: v for k, v in metrics.items() if k != "per_complex"}, indent=2)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("unbinding", help="UnbindingFlow: RAMD data, training, evaluation")
    verbs = p.add_subparsers(dest="unbinding_command", metavar="VERB")

    s = verbs.add_parser("simulate", help="run RAMD dissociation replicas with OpenMM (resumable)")
    s.add_argument("--complex", default="cb7-b2", help="cb7-b2, cb7-viologen, benzene-toluene, t4l-pxylene, "
                                                      "or a name for --prmtop")
    s.add_argument("--prmtop")
    s.add_argument("--coordinates")
    s.add_argument("--ligand", help="ligand residue name (with --prmtop)")
    s.add_argument("--t4l-folder", default="../shared/data/t4l_l99a_pxylene",
                   help="folder with complex.prmtop and complex.crd of T4L L99A + p-xylene (for t4l-pxylene)")
    s.add_argument("--replicas", type=integer(), default=10)
    s.add_argument("--first", type=integer(0), default=0, help="index of the first replica")
    s.add_argument("--out", type=output_folder(), default="runs/unbinding_md")
    s.add_argument("--seed", type=seed, default=0)
    s.add_argument("--force", type=number(0), default=4.0, help="kcal/mol/Å")
    s.add_argument("--friction", type=positive(), default=25.0, help="1/ps")
    s.add_argument("--temperature", type=positive(), default=300.0)
    s.add_argument("--timestep-fs", type=positive(), default=4.0)
    s.add_argument("--hydrogen-mass", type=positive(), default=3.0)
    s.add_argument("--implicit-solvent", default="OBC2")
    s.add_argument("--check-every-ps", type=positive(), default=1.0)
    s.add_argument("--min-displacement", type=number(0), default=0.4)
    s.add_argument("--exit-distance", type=positive(), default=12.0)
    s.add_argument("--save-every-ps", type=positive(), default=0.2)
    s.add_argument("--max-time-ps", type=positive(), default=200.0)
    s.add_argument("--equilibration-ps", type=number(0), default=2.0)
    s.add_argument("--pocket-cutoff", type=positive(), default=None)
    s.add_argument("--platform", default="CPU")
    s.add_argument("--threads", type=integer(), default=1)
    s.set_defaults(func=_simulate, resumes=True)

    k = verbs.add_parser("pack", help="collect exited replicas START:STOP of complexes into one .h5 file")
    k.add_argument("--runs", default="runs/unbinding_md")
    k.add_argument("--complexes", nargs="+", required=True)
    k.add_argument("--replicas", default="0:1000000", help="START:STOP replica indices")
    k.add_argument("--every", type=integer(), default=1, help="keep every k-th saved frame (and the last)")
    k.add_argument("--out", type=output_file(".h5", ".hdf5"), required=True)
    k.set_defaults(func=_pack)

    t = verbs.add_parser("train", help="train UnbindingFlow on dissociation trajectories (resumes)")
    t.add_argument("--data", required=True)
    t.add_argument("--complexes", nargs="+", help="train on these complexes of --data only (default: all)")
    # no default: a default of the shipped model's folder overwrote it
    t.add_argument("--out", type=output_model(), required=True,
                   help="model folder or file to save (models/unbinding only when named: it holds the shipped model)")
    t.add_argument("--checkpoint", default=None, type=output_file(),
                   help="trainer checkpoint (default: train_checkpoint.pt in the --out folder, or "
                        "<stem>.train_checkpoint.pt beside an --out file)")
    t.add_argument("--steps", type=integer(), default=2000)
    t.add_argument("--lr", type=positive(), default=1e-3)
    t.add_argument("--batch-size", type=integer(), default=16)
    t.add_argument("--n-frames", type=integer(2), default=12)
    t.add_argument("--hidden", type=integer(), default=64)
    t.add_argument("--layers", type=integer(), default=4)
    t.add_argument("--checkpoint-every", type=integer(), default=100)
    t.add_argument("--seed", type=seed, default=0)
    t.add_argument("--device", type=device, default=None)
    t.set_defaults(func=_train, resumes=True)

    e = verbs.add_parser("evaluate", help="generated vs held-out MD paths -> metrics JSON")
    e.add_argument("--data", required=True, help="held-out trajectories (.h5 file or folder)")
    e.add_argument("--out", type=output_file(".json"), required=True, help="metrics JSON (.json)")
    e.add_argument("--model", default="models/unbinding")
    e.add_argument("--complexes", nargs="+", help="evaluate on these complexes of --data only (default: all)")
    e.add_argument("--n", type=integer(), default=4, help="paths per held-out bound pose")
    e.add_argument("--max-conditions", type=integer(), default=None)
    e.add_argument("--exit-distance", type=positive(), default=None)
    e.add_argument("--steps", type=integer(), default=None, help="solver steps (default: the model's)")
    e.add_argument("--seed", type=seed, default=0)
    e.add_argument("--device", type=device, default="cpu")
    e.set_defaults(func=_evaluate)
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])
