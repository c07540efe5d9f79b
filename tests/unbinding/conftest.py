"""Shared fixtures: a tiny hand-made complex and a helper to build dissociation trajectories."""
from __future__ import annotations

import numpy as np
import pytest

from sciflow.data.dissociation import DissociationTrajectory
from sciflow.domains.molecules.complexes import Complex, ComplexTopology


def ring_complex(n_ring: int = 8, radius: float = 4.0) -> Complex:
    """A ring of carbon 'pocket' atoms around a 3-atom ligand (C, O, H) at its centre."""
    ang = np.linspace(0, 2 * np.pi, n_ring, endpoint=False)
    ring = np.stack([radius * np.cos(ang), radius * np.sin(ang), np.zeros(n_ring)], 1)
    lig = np.array([[0.0, 0.0, -0.7], [0.0, 0.0, 0.7], [0.0, 0.9, 1.2]])
    pos = np.concatenate([ring, lig])
    topo = ComplexTopology(["C"] * n_ring + ["C", "O", "H"], [f"C{i}" for i in range(n_ring)] + ["C1", "O1", "H1"],
                           ["RNG"] * n_ring + ["LIG"] * 3, [1] * n_ring + [2] * 3,
                           [False] * n_ring + [True] * 3, "ring")
    return Complex(topo, pos)


def straight_exit(cx: Complex, direction=(0.0, 0.0, 1.0), n_frames: int = 11, distance: float = 12.0,
                  name: str = "t0", dt: float = 0.5) -> DissociationTrajectory:
    """The ligand translated along ``direction`` from the bound pose to ``distance`` Å."""
    d = np.asarray(direction, dtype=float) / np.linalg.norm(direction)
    s = np.linspace(0, distance, n_frames)
    pos = np.repeat(cx.positions[None], n_frames, 0)
    pos[:, cx.topology.is_ligand] += s[:, None, None] * d
    return DissociationTrajectory(name, cx.topology, pos, np.arange(n_frames) * dt,
                                  info={"settings": {"exit_distance": distance - 1.0}})




@pytest.fixture(scope="session")
def make_ring():
    """Factory of hand-made ring complexes (``ring_complex``)."""
    return ring_complex


@pytest.fixture(scope="session")
def make_exit():
    """Factory of straight exit trajectories (``straight_exit``)."""
    return straight_exit


def fibonacci_shell(n: int, radius: float) -> np.ndarray:
    """n points spread evenly on a sphere about the origin (about 1.6 Å apart for 300 points at 7 Å)."""
    k = np.arange(n) + 0.5
    z = 1 - 2 * k / n
    phi = np.pi * (1 + 5 ** 0.5) * k
    r = np.sqrt(1 - z ** 2)
    return radius * np.stack([r * np.cos(phi), r * np.sin(phi), z], 1)


@pytest.fixture(scope="session")
def make_shell():
    """Factory of evenly spread points on a sphere (``fibonacci_shell``)."""
    return fibonacci_shell
