"""Interrupts the command line can always act on.

A SIGINT raised while a C library runs a Python callback (tblite's cffi cleanup) can be swallowed there, so the
command line's handler also sets a flag, which long loops check at safe points (``raise_if_interrupted``, called
when a workflow records a finished item). SIGTERM, what schedulers and ``timeout`` send, is turned into the same
clean interrupt, so a killed job leaves the same resumable state as a Ctrl-C.
"""
from __future__ import annotations

import signal
import threading
from typing import Any

__all__ = ["install_handlers", "interrupted", "raise_if_interrupted"]

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


def raise_if_interrupted() -> None:
    """Raise ``KeyboardInterrupt`` if an interrupt arrived but was swallowed on its way."""
    if _flag.is_set():
        raise KeyboardInterrupt
