"""Procedural map families for the car planner: forests, mazes, corridors and bug traps, each from a seed.

Every generator draws through a ``torch.Generator`` seeded from (family, seed), places a start state and a
goal region, and rejects layouts where no disc of the car's covering radius can travel from start to goal
(a necessary condition for a plan, checked by connected components of the free raster).

- ``forest``: random discs ("trees") and axis-aligned boxes, some elongated like wall segments; start on the
  left, goal on the right.
- ``maze``: a perfect maze on an n x n grid of cells (randomised depth-first search) with a few extra openings;
  start in one corner cell, goal in the opposite one.
- ``corridors``: a serpentine of walls with gaps at alternating ends, plus a few posts; start at the bottom,
  goal at the top.
- ``bugtrap``: a C-shaped trap around the start whose mouth faces away from the goal, plus scattered posts.
- ``rooms``: a 3 x 3 grid of rooms; walls between neighbours have a door (a spanning tree of doors plus extra
  ones at random), each room holds a few pieces of furniture (boxes and discs); start in one corner room, goal
  in the opposite one. Added after the policy and every planner setting were chosen, and never used to choose
  anything: the held-out family of the DiTree benchmark.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ..core.errors import InputError
from ..core.random import make_generator, rand, randint, randperm
from ..domains.robots.car import CarParams
from ..domains.robots.scenario import GoalRegion, Scenario
from ..domains.robots.world import World

__all__ = ["FAMILIES", "connected", "make_scenario", "make_scenarios"]

FAMILIES = ("forest", "maze", "corridors", "bugtrap", "rooms")
_OFFSET = {"forest": 0, "maze": 1_000_000, "corridors": 2_000_000, "bugtrap": 3_000_000, "rooms": 4_000_000}
WALL = 0.15     # wall thickness, m


def _u(g: torch.Generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * float(rand((1,), generator=g, dtype=torch.float64)[0])


def _i(g: torch.Generator, n: int) -> int:
    return int(randint(n, (1,), generator=g)[0])


def connected(world: World, a: tuple[float, float], b: tuple[float, float], radius: float) -> bool:
    """Can a disc of ``radius`` move from a to b through free space (raster connectivity)?"""
    from scipy import ndimage
    free = (world.field.cpu().numpy() - world.margin) >= radius
    lab, _ = ndimage.label(free)
    def cell(p):
        j = int((p[0] - world.bounds[0]) / world.resolution)
        i = int((p[1] - world.bounds[1]) / world.resolution)
        return lab[min(max(i, 0), world.rows - 1), min(max(j, 0), world.cols - 1)]
    ca, cb = cell(a), cell(b)
    return bool(ca != 0 and ca == cb)


# -- families ------------------------------------------------------------------------------------
def _forest(g: torch.Generator, size: float) -> tuple[list, list, tuple, tuple]:
    discs, rects = [], []
    for _ in range(_i(g, 10) + 14):
        discs.append([_u(g, 1.8, size - 1.8), _u(g, 0.3, size - 0.3), _u(g, 0.15, 0.45)])
    for _ in range(_i(g, 6) + 6):
        long, short = _u(g, 0.4, 2.2), _u(g, 0.15, 0.5)
        w, h = (long, short) if _u(g, 0, 1) < 0.5 else (short, long)
        x, y = _u(g, 1.8, size - 1.8 - w), _u(g, 0.2, size - 0.2 - h)
        rects.append([x, y, x + w, y + h])
    start = (_u(g, 0.6, 1.2), _u(g, 1.0, size - 1.0), _u(g, -0.6, 0.6))
    goal = (_u(g, size - 1.2, size - 0.6), _u(g, 1.0, size - 1.0))
    return rects, discs, start, goal


def _maze(g: torch.Generator, size: float) -> tuple[list, list, tuple, tuple]:
    n = 5
    cs = size / n
    # walls between cells: right walls r[i][j] (between (i,j) and (i,j+1)), top walls t[i][j]
    right = np.ones((n, n), dtype=bool)
    top = np.ones((n, n), dtype=bool)
    seen = np.zeros((n, n), dtype=bool)
    stack = [(0, 0)]
    seen[0, 0] = True
    while stack:
        i, j = stack[-1]
        nbrs = [(i + di, j + dj) for di, dj in ((1, 0), (-1, 0), (0, 1), (0, -1))
                if 0 <= i + di < n and 0 <= j + dj < n and not seen[i + di, j + dj]]
        if not nbrs:
            stack.pop()
            continue
        a, b = nbrs[_i(g, len(nbrs))]
        if a != i:
            top[min(i, a), j] = False
        else:
            right[i, min(j, b)] = False
        seen[a, b] = True
        stack.append((a, b))
    # a few extra openings make loops
    for _ in range(2):
        i, j = _i(g, n), _i(g, n - 1)
        if _u(g, 0, 1) < 0.5:
            right[i, j] = False
        else:
            top[j, i] = False
    rects = []
    h = WALL / 2
    for i in range(n):            # i: row (y), j: column (x)
        for j in range(n):
            if j < n - 1 and right[i, j]:
                x = (j + 1) * cs
                rects.append([x - h, i * cs - h, x + h, (i + 1) * cs + h])
            if i < n - 1 and top[i, j]:
                y = (i + 1) * cs
                rects.append([j * cs - h, y - h, (j + 1) * cs + h, y + h])
    corner = _i(g, 4)
    ci, cj = (0, 0) if corner == 0 else (0, n - 1) if corner == 1 else (n - 1, 0) if corner == 2 else (n - 1, n - 1)
    gi, gj = n - 1 - ci, n - 1 - cj
    start = ((cj + 0.5) * cs, (ci + 0.5) * cs, (_i(g, 4) - 1) * math.pi / 2)
    goal = ((gj + 0.5) * cs, (gi + 0.5) * cs)
    return rects, [], start, goal


def _corridors(g: torch.Generator, size: float) -> tuple[list, list, tuple, tuple]:
    n_walls = 3 + _i(g, 2)
    ys = np.linspace(0, size, n_walls + 2)[1:-1] + np.array([_u(g, -0.3, 0.3) for _ in range(n_walls)])
    side = _i(g, 2)
    rects, discs = [], []
    for k, y in enumerate(ys):
        gap = _u(g, 1.0, 1.6)
        if (k + side) % 2 == 0:
            rects.append([0.0, y - WALL / 2, size - gap, y + WALL / 2])
        else:
            rects.append([gap, y - WALL / 2, size, y + WALL / 2])
    lanes = np.concatenate([[0.0], ys, [size]])
    for k in range(len(lanes) - 1):
        for _ in range(_i(g, 2)):
            lo, hi = lanes[k] + 0.5, lanes[k + 1] - 0.5
            if hi > lo:
                discs.append([_u(g, 2.5, size - 2.5), _u(g, lo, hi), _u(g, 0.15, 0.3)])
    y0 = 0.5 * lanes[1]
    y1 = 0.5 * (lanes[-2] + size)
    start = (_u(g, 1.0, size - 1.0), y0, 0.0 if _u(g, 0, 1) < 0.5 else math.pi)
    goal = (_u(g, 1.0, size - 1.0), y1)
    return rects, discs, start, goal


def _bugtrap(g: torch.Generator, size: float) -> tuple[list, list, tuple, tuple]:
    w, d = _u(g, 2.2, 3.0), _u(g, 2.2, 3.0)          # inner width (across) and depth (along the axis)
    mouth = _u(g, 1.0, 1.3)
    cx, cy = size / 2 + _u(g, -0.8, 0.8), size / 2 + _u(g, -0.8, 0.8)
    t = WALL
    # trap in a local frame: closed end at +x (towards the goal), mouth at -x
    lx0, lx1, ly0, ly1 = -d / 2, d / 2, -w / 2, w / 2
    local = [[lx1, ly0 - t, lx1 + t, ly1 + t],                 # closed end
             [lx0 - t, ly1, lx1 + t, ly1 + t],                 # side walls
             [lx0 - t, ly0 - t, lx1 + t, ly0],
             [lx0 - t, mouth / 2, lx0, ly1],                   # lips around the mouth
             [lx0 - t, ly0, lx0, -mouth / 2]]
    k = _i(g, 4)                                              # orientation: rotate by k * 90 degrees

    def rot(x: float, y: float) -> tuple[float, float]:
        for _ in range(k):
            x, y = -y, x
        return x, y

    rects = []
    for x0, y0, x1, y1 in local:
        a, b = rot(x0, y0), rot(x1, y1)
        rects.append([cx + min(a[0], b[0]), cy + min(a[1], b[1]), cx + max(a[0], b[0]), cy + max(a[1], b[1])])
    ux, uy = rot(1.0, 0.0)
    heading = math.atan2(uy, ux)
    sx, sy = rot(_u(g, -d / 2 + 0.6, d / 2 - 0.6), _u(g, -0.3, 0.3))
    start = (cx + sx, cy + sy, heading)
    dist = d / 2 + _u(g, 1.2, 1.8)
    off = _u(g, -1.0, 1.0)
    gx, gy = rot(dist, off)
    goal = (min(max(cx + gx, 0.6), size - 0.6), min(max(cy + gy, 0.6), size - 0.6))
    discs = []
    for _ in range(4 + _i(g, 4)):
        discs.append([_u(g, 0.5, size - 0.5), _u(g, 0.5, size - 0.5), _u(g, 0.15, 0.35)])
    return rects, discs, start, goal


def _rooms(g: torch.Generator, size: float) -> tuple[list, list, tuple, tuple]:
    n = 3
    cs = size / n
    # doors: a random spanning tree over the rooms (every room reachable), then each other wall with prob. 0.3
    walls = [((i, j), (i, j + 1)) for i in range(n) for j in range(n - 1)] + \
            [((i, j), (i + 1, j)) for i in range(n - 1) for j in range(n)]
    order = [walls[k] for k in randperm(len(walls), generator=g).tolist()]
    parent = {(i, j): (i, j) for i in range(n) for j in range(n)}

    def root(a: tuple[int, int]) -> tuple[int, int]:
        while parent[a] != a:
            a = parent[a]
        return a
    doors = set()
    for a, b in order:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[ra] = rb
            doors.add((a, b))
        elif _u(g, 0, 1) < 0.3:
            doors.add((a, b))
    rects: list = []
    for a, b in walls:
        (i, j), (_, j2) = a, b
        vertical = j2 != j                          # rooms side by side: the wall runs along y at x = (j + 1) cs
        lo = (i if vertical else j) * cs
        at = (j + 1) * cs if vertical else (i + 1) * cs
        pieces = [(lo, lo + cs)]
        if (a, b) in doors:
            width = _u(g, 0.9, 1.3)
            s = _u(g, lo + 0.3, lo + cs - 0.3 - width)
            pieces = [(lo, s), (s + width, lo + cs)]
        for p0, p1 in pieces:
            if p1 - p0 > 1e-6:
                rects.append([at - WALL / 2, p0, at + WALL / 2, p1] if vertical else [p0, at - WALL / 2, p1, at + WALL / 2])
    corner = _i(g, 4)                               # start corner; the goal is in the opposite one
    si, sj = (0 if corner in (0, 1) else n - 1), (0 if corner in (0, 2) else n - 1)
    gi, gj = n - 1 - si, n - 1 - sj
    start = ((sj + 0.5) * cs + _u(g, -0.4, 0.4), (si + 0.5) * cs + _u(g, -0.4, 0.4), _u(g, -math.pi, math.pi))
    goal = ((gj + 0.5) * cs + _u(g, -0.5, 0.5), (gi + 0.5) * cs + _u(g, -0.5, 0.5))
    discs = []
    for i in range(n):                              # furniture, kept off the room centre where start/goal sit
        for j in range(n):
            for _ in range(_i(g, 3)):
                cx, cy = (j + 0.5) * cs + _u(g, -1.2, 1.2), (i + 0.5) * cs + _u(g, -1.2, 1.2)
                if math.hypot(cx - (j + 0.5) * cs, cy - (i + 0.5) * cs) < 0.9:
                    continue
                if _u(g, 0, 1) < 0.5:
                    discs.append([cx, cy, _u(g, 0.15, 0.3)])
                else:
                    w, h = _u(g, 0.3, 0.8), _u(g, 0.3, 0.8)
                    rects.append([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
    return rects, discs, start, goal


_BUILDERS = {"forest": _forest, "maze": _maze, "corridors": _corridors, "bugtrap": _bugtrap, "rooms": _rooms}


def make_scenario(family: str, seed: int, *, budget_s: float = 5.0, size: float = 10.0, goal_radius: float = 0.5,
                  robot: CarParams | None = None, max_tries: int = 50) -> Scenario:
    """One valid scenario of ``family`` for ``seed`` (deterministic)."""
    if family not in _BUILDERS:
        raise InputError(f"family: unknown map family {family!r}; known: {', '.join(FAMILIES)}")
    robot = robot or CarParams()
    g = make_generator(_OFFSET[family] + int(seed))
    r_need = robot.disc_radius + 0.02
    for _ in range(max_tries):
        rects, discs, (sx, sy, sth), (gx, gy) = _BUILDERS[family](g, size)
        world = World([0.0, 0.0, size, size], rects, discs)
        if family == "forest" or family == "bugtrap":
            # keep the start and the goal clear of posts
            keep = [dd for dd in discs if math.hypot(dd[0] - sx, dd[1] - sy) > dd[2] + 0.8
                    and math.hypot(dd[0] - gx, dd[1] - gy) > dd[2] + 0.8]
            if family == "forest":
                rects = [r for r in rects if _box_gap(r, sx, sy) > 0.8 and _box_gap(r, gx, gy) > 0.8]
            if len(keep) != len(discs) or family == "forest":
                discs = keep
                world = World([0.0, 0.0, size, size], rects, discs)
        try:
            sc = Scenario(name=f"{family}-{int(seed):04d}", world=world,
                          start=(float(sx), float(sy), float(sth), 0.0, 0.0),
                          goal=GoalRegion(float(gx), float(gy), float(goal_radius)), budget_s=budget_s, family=family, seed=int(seed),
                          robot=robot)
            sc._check_physics("scenario")
        except InputError:
            continue
        if connected(world, (sx, sy), (gx, gy), r_need):
            return sc
    raise InputError(f"family {family!r}, seed {seed}: no valid layout in {max_tries} tries")


def _box_gap(r: list, x: float, y: float) -> float:
    dx = max(r[0] - x, 0.0, x - r[2])
    dy = max(r[1] - y, 0.0, y - r[3])
    return math.hypot(dx, dy)


def make_scenarios(family: str, n: int, seed: int = 0, **kw) -> list[Scenario]:
    """``n`` scenarios with seeds seed, seed + 1, ..."""
    return [make_scenario(family, seed + k, **kw) for k in range(int(n))]


