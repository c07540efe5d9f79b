"""Pictures of dissociation paths: exit channels around the pocket and the distance profile along each path."""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ...core.files import atomic_path

__all__ = ["plot_paths"]


def plot_paths(pocket: np.ndarray, com_tracks: Sequence[np.ndarray], path: str | os.PathLike, *,
               title: str = "", md_tracks: Sequence[np.ndarray] = (), exit_distance: float | None = None,
               min_distances: Sequence[np.ndarray] = ()) -> Path:
    """Two panels: (left) pocket heavy atoms and the ligand centre-of-mass tracks seen along the pocket's
    principal axes (exit channels); (right) distance of the ligand centre from the pocket centroid along each
    path (fraction of its exit time), MD tracks dashed when given, plus the closest ligand-receptor heavy-atom
    distance when given. pocket (Np, 3); tracks (T, 3) Å."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    centre = pocket.mean(0)
    _, vecs = np.linalg.eigh(np.cov((pocket - centre).T))
    axes = vecs[:, ::-1]                                   # largest spread first

    def proj(x: np.ndarray) -> np.ndarray:
        return (x - centre) @ axes

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.8))
    pp = proj(pocket)
    a.scatter(pp[:, 0], pp[:, 2], s=6, c="0.7", label="pocket heavy atoms")
    for i, tr in enumerate(md_tracks):
        q = proj(tr)
        a.plot(q[:, 0], q[:, 2], "--", color="k", lw=0.8, alpha=0.6, label="MD" if i == 0 else None)
    cmap = plt.get_cmap("viridis")
    for i, tr in enumerate(com_tracks):
        q = proj(tr)
        a.plot(q[:, 0], q[:, 2], "-", color=cmap(i / max(1, len(com_tracks) - 1)), lw=1.2,
               label="generated" if i == 0 else None)
        a.plot(q[-1, 0], q[-1, 2], "o", color=cmap(i / max(1, len(com_tracks) - 1)), ms=4)
    a.set_xlabel("pocket axis 1 (Å)")
    a.set_ylabel("pocket axis 3 (Å)")
    a.set_aspect("equal", adjustable="datalim")
    a.set_title("exit channels (ligand centre of mass)")
    a.legend(loc="best", fontsize=8)
    for i, tr in enumerate(md_tracks):
        d = np.linalg.norm(tr - centre, axis=1)
        b.plot(np.linspace(0, 1, len(d)), d, "--", color="k", lw=0.8, alpha=0.6, label="MD" if i == 0 else None)
    for i, tr in enumerate(com_tracks):
        d = np.linalg.norm(tr - centre, axis=1)
        b.plot(np.linspace(0, 1, len(d)), d, color=cmap(i / max(1, len(com_tracks) - 1)), lw=1.2,
               label="generated" if i == 0 else None)
    for i, md in enumerate(min_distances):
        b.plot(np.linspace(0, 1, len(md)), md, ":", color="tab:red", lw=0.8,
               label="closest heavy-atom pair" if i == 0 else None)
    if exit_distance is not None:
        b.axhline(exit_distance, color="tab:orange", lw=1, label="exit distance")
    b.set_xlabel("fraction of exit time")
    b.set_ylabel("distance from pocket centroid (Å)")
    b.set_title("distance profile")
    b.legend(loc="best", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return Path(path)
