"""Pictures of a scenario: the map, the search tree and the plan (matplotlib, Agg backend, PNG)."""
from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

from ...core.files import atomic_path
from ...domains.robots import Scenario
from .tree import PlanResult

__all__ = ["draw_scenario", "save_plan_png"]


def draw_scenario(ax, sc: Scenario, result: PlanResult | None = None, *, max_edges: int = 4000,
                  title: str | None = None) -> None:
    from matplotlib.patches import Circle, Polygon, Rectangle
    xmin, ymin, xmax, ymax = sc.world.bounds
    ax.add_patch(Rectangle((xmin, ymin), xmax - xmin, ymax - ymin, fill=False, lw=2, ec="black"))
    for r in sc.world.rectangles:
        ax.add_patch(Rectangle((r[0], r[1]), r[2] - r[0], r[3] - r[1], color="0.35"))
    for d in sc.world.discs:
        ax.add_patch(Circle((d[0], d[1]), d[2], color="0.35"))
    if sc.world.grid is not None:
        g = sc.world.grid
        cells = g["cells"]
        res = g["resolution"]
        ax.imshow(cells, origin="lower", cmap="Greys", alpha=0.7, vmin=0, vmax=1.5,
                  extent=(g["origin"][0], g["origin"][0] + cells.shape[1] * res, g["origin"][1],
                          g["origin"][1] + cells.shape[0] * res))
    ax.add_patch(Circle((sc.goal.x, sc.goal.y), sc.goal.radius, color="tab:green", alpha=0.35))
    if result is not None:
        from matplotlib.collections import LineCollection
        edges = [e.cpu().numpy() for e in result.edges[:max_edges]]
        if edges:
            ax.add_collection(LineCollection(edges, colors="tab:blue", linewidths=0.4, alpha=0.5))
        if result.success and result.states is not None:
            s = result.states.cpu().numpy()
            ax.plot(s[:, 0], s[:, 1], color="tab:red", lw=2)
            for k in range(0, len(s), max(1, len(s) // 12)):
                _car(ax, sc, s[k], "tab:red", Polygon)
    _car(ax, sc, sc.start, "tab:orange", Polygon)
    ax.set_xlim(xmin - 0.2, xmax + 0.2)
    ax.set_ylim(ymin - 0.2, ymax + 0.2)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)


def _car(ax, sc: Scenario, s: Sequence[float], color: str, polygon) -> None:
    p = sc.robot
    x, y, th = float(s[0]), float(s[1]), float(s[2])
    c, sn = math.cos(th), math.sin(th)
    back, front, half = -p.rear_overhang, p.length - p.rear_overhang, p.width / 2
    pts = [(x + u * c - v * sn, y + u * sn + v * c) for u, v in ((back, -half), (front, -half), (front, half),
                                                                (back, half))]
    ax.add_patch(polygon(pts, closed=True, fill=False, ec=color, lw=1))


def save_plan_png(path: str | os.PathLike, sc: Scenario, result: PlanResult | None = None, *,
                  title: str | None = None) -> Path:
    """Map, tree (``result.edges``) and plan of one scenario as a PNG (written atomically)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5, 5), dpi=110)
    if title is None and result is not None:
        state = f"{result.time_s:.2f} s, {result.tree_size} nodes" if result.success else "no plan"
        title = f"{sc.name}: {result.planner} ({state})"
    draw_scenario(ax, sc, result, title=title or sc.name)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return Path(path)
