"""Suffix -> writer / reader tables, filled by the ``@writer`` and ``@reader`` decorators of each format module.

A writer is ``fn(path, traj, **meta) -> None`` and writes to ``path`` (a temporary file beside the target; the
caller renames it into place). A reader is ``fn(path, **kw) -> Trajectory``. Each declares the keyword names
it accepts, so that a misspelt keyword is an ``InputError`` before any work starts.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.errors import InputError

__all__ = ["READERS", "WRITERS", "FileFormat", "check_keywords", "lookup", "reader", "suffix_of", "writer"]


@dataclass(frozen=True)
class FileFormat:
    """One writer or reader: the function, the keywords it accepts (``None``: any), a one-line description and
    whether the format holds an empty trajectory (no frames or no rows)."""

    fn: Callable[..., Any]
    keywords: frozenset[str] | None
    description: str
    holds_empty: bool = False


WRITERS: dict[str, FileFormat] = {}
READERS: dict[str, FileFormat] = {}


def _register(table: dict[str, FileFormat], suffixes: Iterable[str], keywords: Iterable[str] | None,
              description: str, holds_empty: bool = False) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        for s in suffixes:
            key = s.lower() if s.startswith(".") else "." + s.lower()
            if key in table and table[key].fn is not fn:
                raise InputError(f"suffix: {key!r} already has a {'writer' if table is WRITERS else 'reader'}")
            table[key] = FileFormat(fn, frozenset(keywords) if keywords is not None else None, description,
                                    holds_empty)
        return fn
    return deco


def writer(*suffixes: str, keywords: Iterable[str] | None = (), description: str = "", holds_empty: bool = False):
    """Register ``fn(path, traj, **meta)`` as the writer of ``suffixes``; ``keywords`` are the meta it accepts;
    ``holds_empty``: the format can store (and read back) a trajectory with no frames or no rows."""
    return _register(WRITERS, suffixes, keywords, description, holds_empty)


def reader(*suffixes: str, keywords: Iterable[str] | None = (), description: str = ""):
    """Register ``fn(path, **kw) -> Trajectory`` as the reader of ``suffixes``."""
    return _register(READERS, suffixes, keywords, description)


def suffix_of(path: str | os.PathLike) -> str:
    return Path(path).suffix.lower()


def lookup(table: dict[str, FileFormat], path: str | os.PathLike) -> FileFormat:
    """The entry for ``path``'s suffix, or an InputError listing the known suffixes."""
    suffix = suffix_of(path)
    if suffix not in table:
        what = "writer" if table is WRITERS else "reader"
        raise InputError(f"path: no trajectory {what} for suffix {suffix or '(none)'!r} of {str(path)!r}; "
                         f"known: {', '.join(sorted(table))}")
    return table[suffix]


def check_keywords(entry: FileFormat, given: Iterable[str], path: str | os.PathLike, what: str) -> None:
    if entry.keywords is None:
        return
    unknown = sorted(set(given) - entry.keywords)
    if unknown:
        known = ", ".join(sorted(entry.keywords)) or "none"
        raise InputError(f"{what}: unknown keyword {unknown[0]!r} for {suffix_of(path)} files; known: {known}")
