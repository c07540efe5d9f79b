"""Domain adapters. Heavy packages (ase, rdkit, mdtraj, ompl, ...) are imported inside the adapter that needs
them, never here, so ``import sciflow`` works with torch, PyG, e3nn and POT alone."""
from .base import DomainAdapter
from .points import POINTS, PointsAdapter

__all__ = ["POINTS", "DomainAdapter", "PointsAdapter"]
