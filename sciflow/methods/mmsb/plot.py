"""PNG of a fitted MMSB: snapshots, trajectories and the fitted reference vector field, in the data plane for
d = 2 and on the first two principal components of the snapshots for d > 2; plus the parameter history."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...core.files import atomic_path
from ...core.trajectory import Trajectory

__all__ = ["plot_mmsb"]


def _projection(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean (d,), basis (d, 2)): identity for d = 2, else the top two principal axes."""
    d = points.shape[1]
    mean = points.mean(0)
    if d == 1:
        return mean, np.ones((1, 1))
    if d == 2:
        return np.zeros(2), np.eye(2)
    _, _, vt = np.linalg.svd(points - mean, full_matrices=False)
    return mean, vt[:2].T


def plot_mmsb(model: Any, path: str | os.PathLike, *, trajectories: Trajectory | None = None, n_paths: int = 60,
              grid: int = 20, generator: torch.Generator | None = None, title: str | None = None) -> Path:
    """Draw snapshots (coloured by time), ``n_paths`` trajectories and the reference field; writes a PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    snaps = model.snapshots
    pts, idx = snaps.stacked()
    pts_np = pts.cpu().numpy()
    mean, basis = _projection(pts_np)
    proj = (pts_np - mean) @ basis
    traj = trajectories if trajectories is not None else model.trajectories(n_paths, generator=generator)
    states = traj.states.detach().cpu().numpy()[:, :n_paths]
    history = [h for h in model.history if isinstance(h.get("params"), dict) and h["params"]
               and all(isinstance(v, float) for v in h["params"].values())]
    ncols = 2 if history else 1
    fig, axes = plt.subplots(1, ncols, figsize=(6.2 * ncols, 5.2), squeeze=False)
    ax = axes[0, 0]
    times = snaps.times.cpu().numpy()
    cmap = plt.get_cmap("viridis")
    tn = (times - times[0]) / max(times[-1] - times[0], 1e-12)
    if proj.shape[1] >= 2:
        lo, hi = proj.min(0), proj.max(0)
        pad = 0.08 * (hi - lo + 1e-12)
        gx, gy = np.meshgrid(np.linspace(lo[0] - pad[0], hi[0] + pad[0], grid),
                             np.linspace(lo[1] - pad[1], hi[1] + pad[1], grid))
        plane = np.stack([gx.ravel(), gy.ravel()], 1)
        full = mean + plane @ basis.T
        with torch.no_grad():
            f = model.reference(torch.as_tensor(full, dtype=torch.float64)).cpu().numpy()
        fp = f @ basis
        ax.quiver(gx, gy, fp[:, 0].reshape(gx.shape), fp[:, 1].reshape(gx.shape), color="0.65", angles="xy",
                  width=0.0025, zorder=1)
        for b in range(states.shape[1]):
            line = (states[:, b] - mean) @ basis
            ax.plot(line[:, 0], line[:, 1], color="tab:red", alpha=0.25, lw=0.7, zorder=2)
        for k in range(snaps.n_snapshots):
            sel = (idx == k).cpu().numpy()
            ax.scatter(proj[sel, 0], proj[sel, 1], s=6, color=cmap(tn[k]), label=f"t={times[k]:g}", zorder=3)
        xlabel, ylabel = ("x0", "x1") if snaps.dim == 2 else ("PC1", "PC2")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
    else:
        for b in range(states.shape[1]):
            ax.plot(traj.times.cpu().numpy(), states[:, b, 0], color="tab:red", alpha=0.25, lw=0.7)
        for k in range(snaps.n_snapshots):
            sel = (idx == k).cpu().numpy()
            ax.scatter(np.full(sel.sum(), times[k]), pts_np[sel, 0], s=6, color=cmap(tn[k]))
        ax.set_xlabel("time")
        ax.set_ylabel("x0")
    ax.set_title(title or f"MMSB ({model.config()['reference']} reference): snapshots, paths, field")
    if snaps.n_snapshots <= 12:
        ax.legend(fontsize=7, markerscale=2, loc="best")
    if history:
        ax2 = axes[0, 1]
        names = list(history[-1]["params"])
        rounds = [h["round"] for h in history]
        for n in names:
            vals = [h["params"].get(n, np.nan) for h in history]
            ax2.plot(rounds, vals, marker="o", ms=3, label=n)
        ax2.set_xlabel("round (0 = initialisation)")
        ax2.set_ylabel("parameter value")
        ax2.set_yscale("log")
        ax2.set_title("reference parameters over refinement rounds")
        ax2.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    return Path(path)
