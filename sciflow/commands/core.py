"""The core verbs: run, validate, export."""
from __future__ import annotations

import argparse

from ._args import output_file, output_folder, print_json


def _run(args: argparse.Namespace) -> int:
    from ..workflows import run_workflow
    summary = run_workflow(args.workflow, output=args.output, resume=False if args.fresh else None)
    print_json(summary, indent=2)
    return 0


def _validate(args: argparse.Namespace) -> int:
    from ..workflows import validate_workflow
    wf = validate_workflow(args.workflow)
    print(f"{args.workflow}: valid ({wf.task.name} task, output {wf.header.output})")
    return 0


def _export(args: argparse.Namespace) -> int:
    from ..io import read_trajectory, write_trajectory
    kw = {"top": args.top} if args.top else {}
    traj = read_trajectory(args.input, **kw)
    meta = {"topology": args.top} if args.top else {}
    write_trajectory(args.output, traj, **meta)
    print(f"{args.input} -> {args.output}: {traj.n_frames} frames, {traj.n_rows} rows")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run a YAML workflow (resumes when re-run)")
    p.add_argument("workflow")
    p.add_argument("--output", type=output_folder(), help="override the workflow's output folder")
    p.add_argument("--fresh", action="store_true",
                   help="start over: first delete the earlier run's progress record (OUTPUT/.done) and the output "
                        "files it recorded")
    p.set_defaults(func=_run, resumes=True)
    p = sub.add_parser("validate", help="check a YAML workflow without running it")
    p.add_argument("workflow")
    p.set_defaults(func=_validate)
    p = sub.add_parser("export", help="convert a trajectory between formats (.xyz .extxyz .pdb .dcd .npz .csv)")
    p.add_argument("input")
    p.add_argument("output", type=output_file())
    p.add_argument("--top", help="topology (PDB) for .dcd input or output")
    p.set_defaults(func=_export)
