"""Interrupts the command line can always act on.

A SIGINT raised while a C library runs a Python callback (tblite's cffi cleanup) can be swallowed there, so the
command line's handler also sets a flag, which long loops check at safe points (``raise_if_interrupted``, called
when a workflow records a finished item). SIGTERM, what schedulers and ``timeout`` send, is turned into the same
clean interrupt, so a killed job leaves the same resumable state as a Ctrl-C.
"""
from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["Deferred", "clear_interrupted", "install_handlers", "interrupted", "raise_if_interrupted"]

_flag = threading.Event()


def _handler(signum: int, frame: Any) -> None:
    _flag.set()
    raise KeyboardInterrupt


def install_handlers() -> None:
    """Route SIGINT and SIGTERM to ``KeyboardInterrupt`` and remember them (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        return
    _flag.clear()
    for sig in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(sig) is signal.SIG_IGN:       # e.g. a background job: keep what the shell chose
            continue
        signal.signal(sig, _handler)


def interrupted() -> bool:
    """An interrupt arrived since ``install_handlers``."""
    return _flag.is_set()


def clear_interrupted() -> None:
    """Forget an interrupt that was acted on (for a caller that goes on after handling it)."""
    _flag.clear()


def raise_if_interrupted() -> None:
    """Raise ``KeyboardInterrupt`` if an interrupt arrived but was swallowed on its way."""
    if _flag.is_set():
        raise KeyboardInterrupt



class Deferred:
    """Signals held during short sections that must not stop halfway (a training step's weight, EMA and
    step-count update). While the context is entered, SIGINT and SIGTERM go through it: outside a ``hold()``
    they are acted on at once as before (a KeyboardInterrupt from the handler installed before, or the default
    action); inside, they are acted on when the section ends. Main thread only (signals reach no other);
    elsewhere a no-op. Entering costs two handler swaps; a held section costs two attribute writes.

        with Deferred() as d:
            for ...:
                ...                      # interruptible
                with d.hold():
                    ...                  # not interrupted halfway
    """

    def __init__(self) -> None:
        self.holding = False
        self._held: list[int] = []
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> Deferred:  # noqa: PYI034
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                h = signal.getsignal(sig)
                if h is signal.SIG_IGN or h is None:      # ignored, or a handler Python did not install
                    continue
                self._previous[sig] = h
                signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, h in self._previous.items():
            signal.signal(sig, h)
        self._previous = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.holding:
            self._held.append(signum)
        else:
            self._act(signum)

    def _act(self, signum: int) -> None:
        h = self._previous[signum]
        if callable(h):
            h(signum, None)                             # default_int_handler or the command line's: raises
        else:                                           # SIG_DFL: the default action, now
            signal.signal(signum, h)
            signal.raise_signal(signum)

    @contextmanager
    def hold(self) -> Iterator[None]:
        self.holding = True
        try:
            yield
        finally:
            self.holding = False
            if self._held:
                held, self._held = dict.fromkeys(self._held), []
                for sig in held:
                    self._act(sig)
