"""Trajectory files: ``write_trajectory(path, traj, **meta)`` and ``read_trajectory(path, **kw)`` pick the format
by suffix (``.npz``, ``.xyz``, ``.extxyz``, ``.pdb``, ``.dcd``, ``.csv``); writes are atomic.

ASE and mdtraj are imported inside the format functions that need them, so importing this package needs
neither. A new format is a module that decorates its functions with ``@writer(".ext")`` / ``@reader(".ext")``.
"""
from __future__ import annotations

from . import molecular, npz, table, xyz  # noqa: F401  (fill the registries)
from .api import formats, read_trajectory, write_samples, write_trajectory
from .registry import READERS, WRITERS, FileFormat, reader, writer

__all__ = [
           "READERS",
           "WRITERS",
           "FileFormat",
           "formats",
           "read_trajectory",
           "reader",
           "write_samples",
           "write_trajectory",
           "writer",
]
