"""``sciflow`` command line. Verbs come from modules in ``sciflow/commands/``: each defines
``register(subparsers)`` and adds its own sub-command, so a method never edits this file."""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

__all__ = ["build_parser", "main"]

def build_parser() -> argparse.ArgumentParser:
    from . import __version__, commands
    parser = argparse.ArgumentParser(prog="sciflow", description="Scientific trajectories from generative models.")
    parser.add_argument("--version", action="version", version=f"sciflow {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if not mod.name.startswith("_"):
            importlib.import_module(f"{commands.__name__}.{mod.name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # every import of torch inside a try: a Ctrl-C while it loads (seconds) is an interrupt, not a traceback;
    # then SIGINT and SIGTERM (schedulers, timeout) end a run the same way, as a resumable interrupt
    try:
        from .core.errors import SciflowError
        from .core.interrupts import install_handlers
    except KeyboardInterrupt:
        print("\nsciflow: interrupted", file=sys.stderr)
        return 130
    install_handlers()
    args = None
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return 2
        return int(args.func(args) or 0)
    except SciflowError as e:
        print(f"sciflow: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # on a new line: a progress bar may hold the current one
        hint = "; run the same command again to resume" if getattr(args, "resumes", False) else ""
        print(f"\nsciflow: interrupted{hint}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
