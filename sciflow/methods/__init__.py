"""Methods: one module per method, each a composition of core + nn + a domain.

Import a method from its module (``from sciflow.methods.flow import ConditionalFlow``) or lazily from here;
heavy optional dependencies load only with the method that needs them.
"""
from __future__ import annotations

import importlib
from typing import Any

from .base import Method

__all__ = ["ConditionalFlow", "Method"]

_LAZY = {"ConditionalFlow": "flow"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
