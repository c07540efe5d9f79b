"""Helpers for stand-alone scripts such as ``examples/``, so that they report bad input the way the ``sciflow``
command does: argparse value types that name a bad option while the command line is parsed, and ``run_script``,
which turns sciflow's errors into one ``<script>: error: <message>`` line and exit status 2.

Not a verb of the ``sciflow`` command (it has no ``register``); imports nothing heavy."""
from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from ._args import integer, number, positive

__all__ = ["integer", "number", "positive", "run_script"]

A = TypeVar("A")


def run_script(run: Callable[[A], object], args: A, *, name: str | None = None,
               errors: tuple[type[Exception], ...] = (FileNotFoundError,)) -> None:
    """Call ``run(args)``; a ``SciflowError`` (``InputError`` and the rest) or one of ``errors`` becomes one line
    ``"<name>: error: <message>"`` on stderr and ``SystemExit(2)``, as argparse reports a bad option. ``name``
    defaults to the script's file name (argparse's ``prog``); any other exception propagates."""
    from ..core.errors import SciflowError
    try:
        run(args)
    except (SciflowError, *errors) as e:
        print(f"{name or Path(sys.argv[0]).name}: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
