"""``sciflow ditree ...``: map families, expert demonstrations, training, planning and evaluation of DiTree."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ._args import (
    beside_model,
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

#: sciflow.data.robot_maps.FAMILIES, spelt out so that building the parser imports no torch (a test compares them)
_FAMILIES = ("forest", "maze", "corridors", "bugtrap", "rooms")

PLANNERS = ("ditree", "rrt", "sst", "policy", "rrt-torch")
DEFAULT_MODEL = "models/ditree"
MODEL_HELP = f"DiTree model folder, for the ditree and policy planners only (default {DEFAULT_MODEL})"
SEED_HELP = ("seed of the run (default 0), with the scenario's name and the planner's; for --planner rrt it seeds "
             "OMPL's process-wide generator, which OMPL allows once per process (one plan per command: repeatable)")
SAMPLER_HELP = ("ditree and policy: how chunks are drawn, 'unet' (the flow's Euler steps) or 'head' (the distilled "
                "flow map; needs a model made by `sciflow ditree distill`); default: the model's own choice")
RANDOM_FRAC_HELP = ("ditree only: fraction of expansions with random held controls, in [0, 1] (default: the "
                    "model's, 0.25 for the shipped weights)")


def _threads(n: int | None) -> None:
    import torch
    if n:
        torch.set_num_threads(int(n))


def _maps(args: argparse.Namespace) -> int:
    from ..data.robot_maps import make_scenario
    from ..domains.robots import save_scenario
    out = Path(args.out)
    for k in range(args.n):
        sc = make_scenario(args.family, args.seed + k, budget_s=args.budget)
        save_scenario(out / f"{sc.name}.{args.format}", sc)
    print(f"wrote {args.n} {args.family} scenarios to {out}")
    return 0


def _demos(args: argparse.Namespace) -> int:
    _threads(args.threads)
    from ..core.random import make_generator  # noqa: F401  (documented: planners draw from a generator)
    from ..data.robot_demos import generate_demos, merge_parts
    from ..data.robot_maps import make_scenario
    from ..methods.ditree.planners import TreePlanner

    expert = TreePlanner(batch=args.batch, goal_bias=0.1, name="expert-rrt")

    def plan(sc, g):
        r = expert.solve(sc, budget_s=args.plan_budget, generator=g)
        return r.states if r.success else None

    meta = {"family": args.family, "expert": "sciflow batched kinodynamic RRT (random controls, goal bias 0.1, "
            f"batch {args.batch}, budget {args.plan_budget} s) + shortcut + pure-pursuit re-simulation",
            "first_seed": args.seed, "n_maps": args.n}
    stats = generate_demos(lambda s: make_scenario(args.family, s), range(args.seed, args.seed + args.n), plan,
                           args.parts, meta=meta, clearance_extra=args.clearance_extra,
                           prefer_clearance=args.prefer_clearance, recoveries=args.recoveries)
    print_json(stats)
    if args.out:
        merge_parts(args.parts, args.out, seeds=range(args.seed, args.seed + args.n))
        print(f"merged into {args.out}")
    return 0


def _load_model(path: str):
    from ..methods.ditree import DiTree
    return DiTree.load(path)


def _checkpoint(args: argparse.Namespace, name: str, inputs: dict[str, Any]) -> tuple[str, bool]:
    """--checkpoint, or the default one beside --out; and whether it is the default (removed once the model is
    saved: a finished run has nothing to resume). The default one resumes only the same inputs: ``inputs`` (the
    SHA-256 of the files read, the options that pick data) are recorded beside it, and a run from other inputs is
    refused (the trainer's own check compares the settings, not the data)."""
    from ..core.files import keep_settings
    if args.checkpoint:
        return args.checkpoint, False
    path = beside_model(args.out, name)
    keep_settings(_inputs_record(path), inputs, f"checkpoint: {path} belongs to a training from other inputs "
                  "(changed: {changed}); remove it and " + f"{_inputs_record(path).name} to start over, or use "
                  "another --out")
    if path.is_file():
        print(f"resuming from {path} (remove it to start over)")
    return str(path), True


def _inputs_record(checkpoint: Path) -> Path:
    return checkpoint.with_name(checkpoint.name + ".inputs.json")


def _finished(ckpt: str, default: bool) -> None:
    """A finished training's default checkpoint (and its inputs record) go: there is nothing left to resume."""
    if default:
        Path(ckpt).unlink(missing_ok=True)
        _inputs_record(Path(ckpt)).unlink(missing_ok=True)


def _train(args: argparse.Namespace) -> int:
    _threads(args.threads)
    from ..core.random import seeded
    from ..core.training import TrainConfig
    from ..data.robot_demos import load_demos
    from ..methods.ditree import DiTree
    demos = load_demos(args.demos)
    with seeded(args.seed):                     # initial weights from --seed, not torch's global stream
        model = DiTree(widths=tuple(args.widths), horizon=args.horizon, execute=args.execute,
                       batch_size=args.batch_size)
    cfg = TrainConfig(steps=args.steps, lr=args.lr, warmup_steps=min(200, args.steps // 10), lr_schedule="cosine",
                      min_lr_ratio=0.05, ema_decay=0.999, seed=args.seed, checkpoint_every=args.checkpoint_every,
                      desc="ditree")
    from ..core.files import file_fingerprint
    ckpt, default = _checkpoint(args, "train_checkpoint.pt", {"demos": file_fingerprint(args.demos)})
    res = model.fit(demos, cfg, checkpoint_path=ckpt)
    model.info["demos_file"] = str(args.demos)
    model.info["demos_meta"] = demos["meta"]
    model.save(args.out)
    _finished(ckpt, default)
    print_json({"steps": res.steps, "seconds": res.seconds, "final_loss": res.final_loss, "out": args.out})
    return 0


def _make_planner(name: str, model_path: str | None, random_frac: float | None = None,
                  sampler: str | None = None, scenarios: tuple = ()):
    """The planner; for a policy planner, ``scenarios`` ((file, Scenario) pairs) are first checked to be for the
    car the policy was trained for (each differing field named), so no run stops partway."""
    from ..core.errors import InputError
    from ..methods.ditree.method import baseline_planner
    if random_frac is not None and name != "ditree":
        raise InputError(f"--random-frac: applies to the ditree planner only, not {name!r}")
    if sampler is not None and name not in ("ditree", "policy"):
        raise InputError(f"--sampler: applies to the ditree and policy planners only, not {name!r}")
    if model_path is not None and name not in ("ditree", "policy"):
        raise InputError(f"--model: applies to the ditree and policy planners only; planner {name!r} uses no model")
    if name in ("ditree", "policy"):
        model_path = model_path or DEFAULT_MODEL
        kw = {"random_frac": random_frac} if random_frac is not None else {}
        model = _load_model(model_path)
        for f, sc in scenarios:
            sc.check_robot(model.robot, str(f))
        if sampler is not None:
            if sampler == "head" and model.model.head is None:
                raise InputError(f"--sampler head: the model in {model_path} has no distilled head "
                                 "(make one with `sciflow ditree distill`)")
            kw["head"] = sampler == "head"
        return model.planner(name, **kw)
    return baseline_planner(name)


def _distill(args: argparse.Namespace) -> int:
    _threads(args.threads)
    from ..data.robot_maps import make_scenario
    from ..methods.ditree.distill import collect_conditions, distill_head
    model = _load_model(args.model)
    maps = [make_scenario(args.family, s) for s in range(args.seed, args.seed + args.maps)]
    conds = collect_conditions(model, maps, iterations=args.iterations, seed=args.seed)
    from ..core.files import file_fingerprint
    from ..methods.base import find_model_file
    ckpt, default = _checkpoint(args, "distill_checkpoint.pt", {
        "teacher": file_fingerprint(find_model_file(args.model)), "family": args.family, "first_seed": args.seed,
        "maps": args.maps, "iterations": args.iterations})
    summary = distill_head(model, conds, teacher_steps=args.teacher_steps, hidden=tuple(args.hidden),
                           steps=args.steps, seed=args.seed, checkpoint_path=ckpt)
    summary.update(family=args.family, first_seed=args.seed, maps=args.maps)      # kept in model.info["distill"]
    model.set_sampling(use_head=not args.keep_unet, random_frac=args.random_frac)
    model.save(args.out)
    _finished(ckpt, default)
    print_json({**summary, "out": args.out})
    return 0


def _plan(args: argparse.Namespace) -> int:
    _threads(args.threads)
    from ..core.random import make_generator
    from ..domains.robots import load_scenario, verify_plan
    from ..methods.ditree.evaluate import run_seed
    from ..methods.ditree.export import export_plan
    from ..methods.ditree.plot import save_plan_png
    from ..methods.ditree.problem import Problem
    from ..methods.ditree.tree import plan_trajectory
    sc = load_scenario(args.scenario)
    planner = _make_planner(args.planner, args.model, args.random_frac, args.sampler, [(args.scenario, sc)])
    g = make_generator(run_seed(sc, getattr(planner, "name", args.planner), args.seed))
    target = sc if args.planner == "rrt" else Problem.from_scenario(sc)
    res = planner.solve(target, budget_s=args.budget, generator=g, keep_tree=bool(args.png))
    if args.png:
        save_plan_png(args.png, sc, res)
    print_json(res.metrics())
    if not res.success:
        return 1
    if args.out:
        rep = verify_plan(sc, res.states, res.controls)         # never export a plan that does not verify
        if not rep["ok"]:
            print(f"error: the plan does not pass verify_plan ({rep}); {args.out} not written", file=sys.stderr)
            return 1
        export_plan(args.out, plan_trajectory(res, scenario=sc.name), writer=_io_writer())
    return 0


def _io_writer():
    try:
        from ..io import write_trajectory
    except ImportError:
        return None
    return write_trajectory


def _load_scenarios(folder: str) -> list:
    """(file, Scenario) for every scenario file of ``folder``, refusing two files with the same ``name:`` (runs, seeds and metrics
    are keyed by the name, so the second one's runs would be merged into the first's)."""
    from ..core.errors import InputError
    from ..domains.robots import load_scenario, scenario_files
    seen: dict[str, Path] = {}
    scenarios = []
    for f in scenario_files(folder):
        sc = load_scenario(f)
        if sc.name in seen:
            raise InputError(f"--scenarios: {seen[sc.name]} and {f} both hold scenario name {sc.name!r}; runs are "
                             "keyed by name, so give each scenario its own name")
        seen[sc.name] = f
        scenarios.append((f, sc))
    return scenarios


def _evaluate(args: argparse.Namespace) -> int:
    _threads(args.threads)
    from ..core.files import atomic_write_json
    from ..methods.ditree.evaluate import evaluate
    scenarios = _load_scenarios(args.scenarios)
    out = evaluate([sc for _, sc in scenarios],
                   lambda: _make_planner(args.planner, args.model, args.random_frac, args.sampler, scenarios),
                   seeds=args.seeds, budget_s=args.budget)
    out = {"planner": args.planner, "scenarios": str(args.scenarios), "seeds": args.seeds,
           "budget_s": args.budget, **out}
    atomic_write_json(args.out, out)
    print_json({k: v for k, v in out.items() if k != "runs"}, indent=1)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ditree", help="DiTree kinodynamic planning: maps, demos, train, distill, plan, evaluate")
    verbs = p.add_subparsers(dest="verb", metavar="VERB")

    m = verbs.add_parser("maps", help="write procedurally generated scenario files of one map family")
    m.add_argument("--family", required=True, choices=_FAMILIES)
    m.add_argument("--n", type=integer(), default=20)
    m.add_argument("--seed", type=seed, default=0)
    m.add_argument("--budget", type=positive(), default=5.0, help="budget_s written into each scenario")
    m.add_argument("--format", default="yaml", choices=("yaml", "json"))
    m.add_argument("--out", required=True, type=output_folder(), help="folder of scenario files")
    m.set_defaults(func=_maps)

    d = verbs.add_parser("demos", help="expert demonstrations on one map family (resumable)")
    d.add_argument("--family", default="forest", choices=_FAMILIES)
    d.add_argument("--n", type=integer(), default=400, help="number of maps (one expert demonstration each at most)")
    d.add_argument("--seed", type=seed, default=0)
    d.add_argument("--parts", required=True, type=output_folder(), help="folder of resumable part files")
    d.add_argument("--out", type=output_file(), help="merged demos .npz")
    d.add_argument("--plan-budget", type=positive(), default=20.0)
    d.add_argument("--batch", type=integer(), default=128)
    d.add_argument("--clearance-extra", type=number(0), default=0.12,
                   help="shortcut clearance beyond the footprint discs, m")
    d.add_argument("--prefer-clearance", type=number(0), default=0.0,
                   help="tracker: fastest rollout keeping this margin from obstacles wins, m")
    d.add_argument("--recoveries", type=integer(0), default=0,
                   help="recovery demonstrations per map (perturbed restarts tracked back onto the route)")
    d.add_argument("--threads", type=integer(), default=1)
    d.set_defaults(func=_demos, resumes=True)

    t = verbs.add_parser("train", help="train the action-chunk policy on demonstrations (resumable)")
    t.add_argument("--demos", required=True)
    t.add_argument("--out", required=True, type=output_model(), help="model folder (model.pt)")
    t.add_argument("--checkpoint", type=output_file(), help="trainer checkpoint to resume from / save to (default: "
                   "train_checkpoint.pt in the --out folder, removed once the model is saved)")
    t.add_argument("--steps", type=integer(), default=4000)
    t.add_argument("--lr", type=positive(), default=1e-3)
    t.add_argument("--batch-size", type=integer(), default=128)
    t.add_argument("--widths", type=integer(), nargs="+", default=[32, 64])
    t.add_argument("--horizon", type=integer(), default=16)
    t.add_argument("--execute", type=integer(), default=8)
    t.add_argument("--seed", type=seed, default=0)
    t.add_argument("--checkpoint-every", type=integer(), default=250)
    t.add_argument("--threads", type=integer(), default=1)
    t.set_defaults(func=_train, resumes=True)

    s = verbs.add_parser("distill", help="distil the policy's Euler sampler into a one-call flow map (a small MLP; "
                         "resumable)")
    s.add_argument("--model", default=DEFAULT_MODEL, help="trained DiTree model folder (the teacher)")
    s.add_argument("--out", required=True, type=output_model(),
                   help="model folder for the teacher plus its distilled head")
    s.add_argument("--family", default="forest", choices=("forest", "maze", "corridors", "bugtrap"),
                   help="maps on which DiTree's policy queries are recorded (the training family)")
    s.add_argument("--maps", type=integer(), default=400)
    s.add_argument("--seed", type=seed, default=0, help="first map seed (also seeds the runs and the training)")
    s.add_argument("--iterations", type=integer(), default=50,
                   help="recording runs stop at their first solution or after this many iterations")
    s.add_argument("--teacher-steps", type=integer(), default=1, help="Euler steps of the sampler being distilled")
    s.add_argument("--hidden", type=integer(), nargs="+", default=[256, 256])
    s.add_argument("--steps", type=integer(), default=20000)
    s.add_argument("--checkpoint", type=output_file(), help="trainer checkpoint to resume from / save to (default: "
                   "distill_checkpoint.pt in the --out folder, removed once the model is saved)")
    s.add_argument("--keep-unet", action="store_true", help="save the head but keep sampling with the U-Net")
    s.add_argument("--random-frac", type=fraction(),
                   help="DiTree's default random_frac saved with the new model (default: the teacher's)")
    s.add_argument("--threads", type=integer(), default=1)
    s.set_defaults(func=_distill, resumes=True)

    q = verbs.add_parser("plan", help="plan one scenario; write the plan (.npz/.csv) and a PNG")
    q.add_argument("scenario")
    q.add_argument("--planner", default="ditree", choices=PLANNERS)
    q.add_argument("--model", help=MODEL_HELP)
    q.add_argument("--budget", type=positive(), help="seconds (default: the scenario's budget_s)")
    q.add_argument("--seed", type=seed, default=0, help=SEED_HELP)
    q.add_argument("--out", type=output_file(".npz", ".csv"), help="plan file, .npz or .csv")
    q.add_argument("--png", type=output_file(".png"), help="picture of map, tree and plan (.png)")
    q.add_argument("--random-frac", type=fraction(), help=RANDOM_FRAC_HELP)
    q.add_argument("--sampler", choices=("unet", "head"), help=SAMPLER_HELP)
    q.add_argument("--threads", type=integer(), default=1)
    q.set_defaults(func=_plan)

    e = verbs.add_parser("evaluate", help="run a planner on every scenario file of a folder; write metrics JSON")
    e.add_argument("--scenarios", required=True, help="folder of .yaml/.yml/.json scenario files")
    e.add_argument("--planner", required=True, choices=PLANNERS)
    e.add_argument("--model", help=MODEL_HELP)
    e.add_argument("--out", required=True, type=output_file(".json"), help="metrics JSON (.json)")
    e.add_argument("--seeds", type=integer(), default=5, help="runs per scenario")
    e.add_argument("--budget", type=positive(), help="seconds per run (default: each scenario's budget_s)")
    e.add_argument("--random-frac", type=fraction(), help=RANDOM_FRAC_HELP)
    e.add_argument("--sampler", choices=("unet", "head"), help=SAMPLER_HELP)
    e.add_argument("--threads", type=integer(), default=1)
    e.set_defaults(func=_evaluate)
