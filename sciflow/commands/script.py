"""Helpers for stand-alone scripts such as ``examples/``, so that they report bad input the way the ``sciflow``
command does: argparse value types that name a bad option while the command line is parsed, and ``run_script``,
which turns sciflow's errors into one ``<script>: error: <message>`` line and exit status 2.

Not a verb of the ``sciflow`` command (it has no ``register``); imports nothing heavy."""
from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from ._args import integer, number, positive

__all__ = ["integer", "number", "positive", "run_script"]

A = TypeVar("A")


def run_script(run: Callable[[A], object], args: A, *, name: str | None = None,
               errors: tuple[type[Exception], ...] = (FileNotFoundError,), resumes: bool = False) -> None:
    """Call ``run(args)``; a ``SciflowError`` (``InputError`` and the rest) or one of ``errors`` becomes one line
    ``"<name>: error: <message>"`` on stderr and ``SystemExit(2)``, as argparse reports a bad option. ``name``
    defaults to the script's file name (argparse's ``prog``); any other exception propagates. Ctrl-C and SIGTERM
    end the script as they end a ``sciflow`` command: one line (with ``resumes``: "run the same command again to
    resume") and exit status 130, the writes in flight finished or left as hidden temporaries."""
    from ..core.errors import SciflowError
    from ..core.interrupts import clear_interrupted, install_handlers
    label = name or Path(sys.argv[0]).name
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    install_handlers()
    try:
        run(args)
    except (SciflowError, *errors) as e:
        print(f"{label}: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        hint = "; run the same command again to resume" if resumes else ""
        print(f"\n{label}: interrupted{hint}", file=sys.stderr)
        raise SystemExit(130) from None
    finally:
        if threading.current_thread() is threading.main_thread():     # where install_handlers acted
            clear_interrupted()              # acted on here: a caller that goes on starts clean
            for s, h in saved.items():
                if h is not None:
                    signal.signal(s, h)
