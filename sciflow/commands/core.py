"""The core verbs: run, validate, export."""
from __future__ import annotations

import argparse
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager

from ..core.errors import InputError
from ._args import output_file, output_folder, print_json


@contextmanager
def _relative_paths_hint() -> Iterator[None]:
    """A missing input named by a relative path gets the folder it was looked for in (a shipped workflow run
    from outside the repository reads ``datasets/...`` from there)."""
    try:
        yield
    except InputError as e:
        msg = str(e)
        if not msg.startswith("workflow: no file") and re.search(r"no (file|folder|file or folder) at (?!/)", msg):
            raise InputError(f"{msg} (relative paths in a workflow are read from the current folder, "
                             f"{os.getcwd()})") from None
        raise


def _run(args: argparse.Namespace) -> int:
    from ..workflows import run_workflow
    with _relative_paths_hint():
        summary = run_workflow(args.workflow, output=args.output, resume=False if args.fresh else None)
    print_json(summary, indent=2)
    return 0


def _validate(args: argparse.Namespace) -> int:
    from ..workflows import validate_workflow
    from ..workflows.runner import check_resumable
    with _relative_paths_hint():
        wf = validate_workflow(args.workflow, output=args.output)
    check_resumable(wf)          # an output folder holding a run with other settings: refused here, as by `run`
    print(f"{args.workflow}: valid ({wf.task.name} task, output {wf.header.output})")
    return 0


def _export(args: argparse.Namespace) -> int:
    from ..io import read_trajectory, write_trajectory
    kw = {"top": args.top} if args.top else {}
    traj = read_trajectory(args.input, **kw)
    meta = {"topology": args.top} if args.top else {}
    try:
        write_trajectory(args.output, traj, **meta)
    except InputError as e:              # the writer checks the states (finite, ...): say which file holds them
        if str(e).startswith("traj"):
            raise InputError(f"{args.input}: {e}") from None
        raise
    print(f"{args.input} -> {args.output}: {traj.n_frames} frames, {traj.n_rows} rows")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run a YAML workflow (resumes when re-run)")
    p.add_argument("workflow", help="the YAML workflow file (relative paths in it are read from the current "
                                    "folder)")
    p.add_argument("--output", type=output_folder(), help="override the workflow's output folder")
    p.add_argument("--fresh", action="store_true",
                   help="start over: first delete the earlier run's progress record (OUTPUT/.done) and the output "
                        "files it recorded")
    p.set_defaults(func=_run, resumes=True)
    p = sub.add_parser("validate", help="check a YAML workflow without running it")
    p.add_argument("workflow", help="the YAML workflow file (relative paths in it are read from the current "
                                    "folder)")
    p.add_argument("--output", type=output_folder(), help="check it with this output folder (as `run --output`)")
    p.set_defaults(func=_validate)
    p = sub.add_parser("export", help="convert a trajectory between formats (.xyz .extxyz .pdb .dcd .npz .csv)")
    p.add_argument("input", help="trajectory file to read (format from its suffix)")
    p.add_argument("output", type=output_file(), help="file to write (format from its suffix)")
    p.add_argument("--top", help="topology (PDB) for .dcd input or output")
    p.set_defaults(func=_export)
