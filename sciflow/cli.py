"""``sciflow`` command line. Verbs come from modules in ``sciflow/commands/``: each defines
``register(subparsers)`` and adds its own sub-command, so a method never edits this file."""
from __future__ import annotations

import argparse
import copy
import importlib
import pkgutil
import sys
from collections.abc import Sequence

__all__ = ["build_parser", "main"]


class _DefaultsFormatter(argparse.HelpFormatter):
    """Help that states each option's default (argparse's own formatter for this skips options without help
    text, which were most of them)."""

    @staticmethod
    def _shows_default(action: argparse.Action) -> bool:
        default = action.default
        return (bool(action.option_strings) and "default" not in (action.help or "") and default is not None
                and default is not argparse.SUPPRESS and not isinstance(default, bool) and default != [])

    def _format_action(self, action: argparse.Action) -> str:
        if self._shows_default(action):
            action = copy.copy(action)
            action.help = f"{action.help or ''} (default: %(default)s)".strip()
        return super()._format_action(action)


class _Parser(argparse.ArgumentParser):
    """The CLI's parsers (sub-commands are made of the parent's class, so every level states its defaults)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("formatter_class", _DefaultsFormatter)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]


def build_parser() -> argparse.ArgumentParser:
    from . import __version__, commands
    parser = _Parser(prog="sciflow", description="Scientific trajectories from generative models.")
    parser.add_argument("--version", action="version", version=f"sciflow {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if not mod.name.startswith("_"):
            module = importlib.import_module(f"{commands.__name__}.{mod.name}")
            if hasattr(module, "register"):             # (``script``: helpers for scripts, no verb)
                module.register(sub)
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
