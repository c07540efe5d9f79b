"""Planning scenarios: a map, a start state, a goal region and a time budget, stored as YAML or JSON.

File format (``format: sciflow.ditree.scenario/1``; every length in metres, angles in radians)::

    format: sciflow.ditree.scenario/1
    name: maze-0007                 # required, used to name outputs (<= 100 characters, none of /\\:*?"<>|)
    family: maze                    # optional label (map family)
    seed: 7                         # optional: the generator seed that made it
    budget_s: 5.0                   # planning time budget, seconds (> 0)
    map:
      bounds: [0, 0, 10, 10]        # xmin, ymin, xmax, ymax; the boundary is a wall
      rectangles: [[x0, y0, x1, y1], ...]   # axis-aligned boxes (optional)
      discs: [[cx, cy, r], ...]             # discs (optional)
      grid:                                 # optional occupancy grid; row 0 at origin y, rows go up
        origin: [0, 0]
        resolution: 0.1
        cells: ["..##..", "......"]         # '#' or '1' occupied, '.' or '0' free (or lists of 0/1)
    start: [x, y, heading, speed, steer]    # or a mapping with those keys (speed, steer default 0); the heading
                                            # is wrapped into [-pi, pi)
    goal: {x: 9, y: 9, radius: 0.5}         # a disc the rear-axle point must enter
    robot: {max_speed: 2.0}                 # optional CarParams overrides

Unknown keys anywhere are errors; the start must be collision-free and within the speed and steering
limits; the goal centre must lie inside the map and outside obstacles, and some point of the goal disc must leave
room for the car's body; a map holds at most ``world.MAX_OBSTACLES`` obstacles.
"""
from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ...core.errors import InputError
from ...core.files import atomic_write_text, listed_files, read_text_file
from .car import Car, CarParams
from .collision import CollisionChecker
from .world import World

__all__ = ["FORMAT", "GoalRegion", "Scenario", "load_scenario", "save_scenario", "scenario_files"]

FORMAT = "sciflow.ditree.scenario/1"
_TOP_KEYS = {"format", "name", "family", "seed", "budget_s", "map", "start", "goal", "robot"}
_MAP_KEYS = {"bounds", "rectangles", "discs", "grid"}
_GRID_KEYS = {"origin", "resolution", "cells"}
_GOAL_KEYS = {"x", "y", "radius"}
_START_KEYS = ("x", "y", "heading", "speed", "steer")
#: Longest scenario name (outputs are named ``<name>-<planner>-s<seed>.<ext>``; file names stop at 255 bytes).
MAX_NAME_LENGTH = 100
_BAD_NAME_CHARS = set('/\\:*?"<>|')


@dataclass(frozen=True)
class GoalRegion:
    """The disc of ``radius`` around (x, y) that the rear-axle point must enter."""

    x: float
    y: float
    radius: float

    def contains(self, states: Tensor, margin: float = 0.0) -> Tensor:
        """(..., >=2) -> (...,) bool: inside the disc, by at least ``margin`` m when it is given."""
        dx, dy = states[..., 0] - self.x, states[..., 1] - self.y
        r = max(self.radius - float(margin), 0.0)
        return dx * dx + dy * dy <= r * r

    def distance(self, states: Tensor) -> Tensor:
        """(..., >=2) -> (...,) distance of the rear-axle point to the goal disc (0 inside), m."""
        return (torch.hypot(states[..., 0] - self.x, states[..., 1] - self.y) - self.radius).clamp(min=0)

    def to_dict(self) -> dict:
        return {"x": float(self.x), "y": float(self.y), "radius": float(self.radius)}


@dataclass
class Scenario:
    """A validated planning problem. Build with ``Scenario.from_dict`` or ``load_scenario``."""

    name: str
    world: World
    start: tuple[float, float, float, float, float]
    goal: GoalRegion
    budget_s: float = 5.0
    family: str | None = None
    seed: int | None = None
    robot: CarParams = field(default_factory=CarParams)

    # -- construction ----------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, source: str = "scenario", resolution: float = 0.05) -> Scenario:
        """Validate a parsed scenario; every problem raises InputError naming the field and the value."""
        if not isinstance(d, Mapping):
            raise InputError(f"{source}: expected a mapping, got {type(d).__name__}")
        _no_unknown(d, _TOP_KEYS, source)
        fmt = d.get("format", FORMAT)
        if fmt != FORMAT:
            raise InputError(f"{source}.format: expected {FORMAT!r}, got {fmt!r}")
        for key in ("name", "map", "start", "goal"):
            if key not in d:
                raise InputError(f"{source}.{key}: required")
        name = _name(d["name"], f"{source}.name")
        budget = _number(d.get("budget_s", 5.0), f"{source}.budget_s")
        if not budget > 0:
            raise InputError(f"{source}.budget_s: must be > 0, got {budget}")
        try:
            robot = CarParams.from_dict(d.get("robot"))
        except InputError as e:
            raise InputError(f"{source}.{e}") from None
        world = _world(d["map"], f"{source}.map", resolution)
        start = _start(d["start"], f"{source}.start")
        goal = _goal(d["goal"], f"{source}.goal")
        sc = cls(name=name, world=world, start=start, goal=goal, budget_s=budget,
                 family=None if d.get("family") is None else str(d["family"]),
                 seed=None if d.get("seed") is None else _integer(d["seed"], f"{source}.seed"), robot=robot)
        sc._check_physics(source)
        return sc

    def check(self, source: str | None = None) -> Scenario:
        """Check the scenario as ``from_dict`` checked it when it was made (one changed since, by
        ``dataclasses.replace`` or assignment, may hold a non-finite or colliding start, a goal inside an obstacle
        or a budget <= 0): every problem raises InputError naming the field. Returns the scenario."""
        src = source or f"scenario {self.name}"
        start = self.start
        if not isinstance(start, (tuple, list)) or len(start) != 5:
            raise InputError(f"{src}.start: expected [x, y, heading, speed, steer] (5 numbers), got {start!r}")
        for k, v in zip(_START_KEYS, start):
            _number(v, f"{src}.start.{k}")
        for k in ("x", "y", "radius"):
            _number(getattr(self.goal, k, None), f"{src}.goal.{k}")
        if not self.goal.radius > 0:
            raise InputError(f"{src}.goal.radius: must be > 0, got {self.goal.radius}")
        if not _number(self.budget_s, f"{src}.budget_s") > 0:
            raise InputError(f"{src}.budget_s: must be > 0, got {self.budget_s!r}")
        self._check_physics(src)
        return self

    def _check_physics(self, source: str) -> None:
        p, (x, y, _, v, st) = self.robot, self.start
        if not p.min_speed <= v <= p.max_speed:
            raise InputError(f"{source}.start.speed: {v} is outside [{p.min_speed}, {p.max_speed}] m/s")
        if abs(st) > p.max_steer:
            raise InputError(f"{source}.start.steer: {st} exceeds the steering limit {p.max_steer} rad")
        xmin, ymin, xmax, ymax = self.world.bounds
        if not (xmin <= x <= xmax and ymin <= y <= ymax):
            raise InputError(f"{source}.start: position ({x}, {y}) is outside the map bounds {list(self.world.bounds)}")
        clear = float(self.checker().clearance(torch.tensor(self.start, dtype=torch.float32)))
        if clear < 0:
            raise InputError(f"{source}.start: {list(self.start)} is in collision (certified clearance "
                             f"{clear:.3f} m, need >= 0)")
        g = self.goal
        if not (xmin < g.x < xmax and ymin < g.y < ymax):
            raise InputError(f"{source}.goal: centre ({g.x}, {g.y}) is outside the map bounds "
                             f"{list(self.world.bounds)}")
        d = float(self.world.exact_distance(torch.tensor([[g.x, g.y]], dtype=torch.float64))[0])
        if d <= 0:
            raise InputError(f"{source}.goal: centre ({g.x}, {g.y}) lies inside an obstacle")
        self._check_goal_room(source)

    def _check_goal_room(self, source: str) -> None:
        """Refuse a goal disc where the car cannot stand. The body (a rectangle around the rear-axle point (x, y),
        see ``CarParams``) holds the disc of radius ``r_in`` around (x, y), whatever the heading, so a point closer
        than ``r_in`` to an obstacle or the wall cannot hold the car. The exact distance is 1-Lipschitz, so a grid
        of spacing h over the goal disc (grown by h / sqrt 2) whose every point is closer than ``r_in - h / sqrt 2``
        proves that no point of the disc is clear: only then is the goal refused."""
        p, g = self.robot, self.goal
        r_in = min(p.width / 2, p.rear_overhang, p.length - p.rear_overhang)
        h = 2 * g.radius / 40
        slack = h * math.sqrt(0.5)
        t = torch.arange(-20, 21, dtype=torch.float64) * h
        gx, gy = torch.meshgrid(t, t, indexing="ij")
        keep = gx * gx + gy * gy <= (g.radius + slack) ** 2
        pts = torch.stack([gx[keep] + g.x, gy[keep] + g.y], dim=-1)
        best = float(self.world.exact_distance(pts).max())
        if best + slack < r_in:
            raise InputError(f"{source}.goal: no point of the goal disc can hold the car: the clearance to the "
                             f"nearest obstacle or wall is at most {best + slack:.3f} m there, and the body reaches "
                             f"{r_in:.3f} m from the rear-axle point to its nearest edge; move the goal or "
                             f"enlarge its radius")

    def check_robot(self, robot: CarParams, source: str | None = None) -> None:
        """Refuse a scenario whose car differs from ``robot`` (the one a policy was trained for), naming each
        differing field: ``robot.max_speed: 1.5 here, 2.0 in the policy``."""
        mine, theirs = self.robot.to_dict(), robot.to_dict()
        diff = [f"robot.{k}: {mine[k]} here, {theirs[k]} in the policy" for k in mine if mine[k] != theirs[k]]
        if diff:
            raise InputError(f"{source or f'scenario {self.name}'}: robot parameters differ from the ones the "
                             f"policy was trained for ({'; '.join(diff)}); remove the robot overrides, or use a "
                             f"planner without a policy (sst, rrt, rrt-torch)")

    # -- helpers ---------------------------------------------------------------------------------
    def car(self) -> Car:
        return Car(self.robot)

    def checker(self) -> CollisionChecker:
        return CollisionChecker(self.car(), self.world)

    def start_tensor(self, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> Tensor:
        return torch.tensor(self.start, device=device, dtype=dtype)

    def to_dict(self) -> dict:
        out: dict[str, Any] = {"format": FORMAT, "name": self.name}
        if self.family is not None:
            out["family"] = self.family
        if self.seed is not None:
            out["seed"] = self.seed
        out["budget_s"] = self.budget_s
        out["map"] = self.world.to_dict()
        out["start"] = [float(v) for v in self.start]
        out["goal"] = self.goal.to_dict()
        if self.robot != CarParams():
            default = CarParams().to_dict()
            out["robot"] = {k: v for k, v in self.robot.to_dict().items() if default[k] != v}
        return out


def _name(name: Any, where: str) -> str:
    """A scenario name: it names output files (``<name>-<planner>-s<seed>.png``), so it must be a usable file name."""
    if not isinstance(name, str) or not name:
        raise InputError(f"{where}: expected a non-empty string, got {name!r}")
    if len(name) > MAX_NAME_LENGTH:
        raise InputError(f"{where}: {len(name)} characters, more than the {MAX_NAME_LENGTH} allowed (outputs are "
                         f"named by it); use a shorter name")
    bad = sorted({c for c in name if c in _BAD_NAME_CHARS or not c.isprintable()})
    if bad or name.strip() != name or name in (".", ".."):
        why = f"character {bad[0]!r}" if bad else "leading or trailing space, or a dot name"
        raise InputError(f"{where}: {name!r} holds a {why} that file names cannot (outputs are named by it)")
    return name


def _no_unknown(d: Mapping[str, Any], allowed: set[str], where: str) -> None:
    bad = sorted(str(k) for k in set(d) - allowed)
    if bad:
        raise InputError(f"{where}.{bad[0]}: unknown key; allowed: {', '.join(sorted(allowed))}")


def _number(v: Any, where: str) -> float:
    if isinstance(v, bool):
        raise InputError(f"{where}: expected a number, got {v!r}")
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise InputError(f"{where}: expected a number, got {v!r}") from None
    if not math.isfinite(f):
        raise InputError(f"{where}: must be finite, got {v!r}")
    return f


def _integer(v: Any, where: str) -> int:
    f = _number(v, where)
    if f != int(f):
        raise InputError(f"{where}: expected an integer, got {v!r}")
    return int(f)


def _world(m: Any, where: str, resolution: float) -> World:
    if not isinstance(m, Mapping):
        raise InputError(f"{where}: expected a mapping with bounds, rectangles, discs, grid")
    _no_unknown(m, _MAP_KEYS, where)
    if "bounds" not in m:
        raise InputError(f"{where}.bounds: required, [xmin, ymin, xmax, ymax]")
    bounds = m["bounds"]
    if not isinstance(bounds, (list, tuple)) or len(bounds) != 4:
        raise InputError(f"{where}.bounds: expected [xmin, ymin, xmax, ymax], got {bounds!r}")
    bounds = [_number(v, f"{where}.bounds[{i}]") for i, v in enumerate(bounds)]
    rects = [_row(r, 4, f"{where}.rectangles[{i}]") for i, r in enumerate(_rows(m, "rectangles", where))]
    discs = [_row(r, 3, f"{where}.discs[{i}]") for i, r in enumerate(_rows(m, "discs", where))]
    grid = None
    if m.get("grid") is not None:
        g = m["grid"]
        if not isinstance(g, Mapping):
            raise InputError(f"{where}.grid: expected a mapping with origin, resolution, cells")
        _no_unknown(g, _GRID_KEYS, f"{where}.grid")
        for k in sorted(_GRID_KEYS):
            if k not in g:
                raise InputError(f"{where}.grid.{k}: required")
        grid = {"origin": _row(g["origin"], 2, f"{where}.grid.origin"),
                "resolution": _number(g["resolution"], f"{where}.grid.resolution"),
                "cells": _cells(g["cells"], f"{where}.grid.cells")}
    try:
        return World(bounds, rects, discs, grid, resolution=resolution)
    except InputError as e:
        raise InputError(str(e).replace("map.", f"{where}.", 1)) from None


def _rows(m: Mapping[str, Any], key: str, where: str) -> list:
    """``m[key]``: a list (of rows, each checked by ``_row``), or absent / null for none."""
    rows = m.get(key)
    if rows is None:
        return []
    if not isinstance(rows, (list, tuple)):
        shape = "[[x0, y0, x1, y1], ...]" if key == "rectangles" else "[[cx, cy, r], ...]"
        raise InputError(f"{where}.{key}: expected a list {shape}, got {type(rows).__name__} {rows!r:.60}")
    return list(rows)


def _row(r: Any, n: int, where: str) -> list[float]:
    if not isinstance(r, (list, tuple)) or len(r) != n:
        raise InputError(f"{where}: expected a list of {n} numbers, got {r!r}")
    return [_number(v, f"{where}[{i}]") for i, v in enumerate(r)]


def _cells(c: Any, where: str) -> list[list[bool]]:
    if not isinstance(c, (list, tuple)) or not c:
        raise InputError(f"{where}: expected a non-empty list of rows")
    rows = []
    for i, row in enumerate(c):
        if isinstance(row, str):
            bad = set(row) - set(".#01")
            if bad:
                raise InputError(f"{where}[{i}]: unexpected character {min(bad)!r}; use '.'/'0' or '#'/'1'")
            rows.append([ch in "#1" for ch in row])
        elif isinstance(row, (list, tuple)):
            bad = [v for v in row if isinstance(v, str) or v not in (0, 1)]   # "0" would be truthy
            if bad:
                raise InputError(f"{where}[{i}]: cells must be 0/1 or false/true, got {bad[0]!r}")
            rows.append([bool(v) for v in row])
        else:
            raise InputError(f"{where}[{i}]: expected a string or a list of 0/1, got {row!r}")
    if len({len(r) for r in rows}) != 1:
        raise InputError(f"{where}: rows have different lengths {sorted({len(r) for r in rows})}")
    return rows


def _start(s: Any, where: str) -> tuple[float, float, float, float, float]:
    if isinstance(s, Mapping):
        _no_unknown(s, set(_START_KEYS), where)
        for k in ("x", "y", "heading"):
            if k not in s:
                raise InputError(f"{where}.{k}: required")
        vals = [_number(s.get(k, 0.0), f"{where}.{k}") for k in _START_KEYS]
    elif isinstance(s, (list, tuple)) and len(s) in (3, 5):
        vals = [_number(v, f"{where}[{i}]") for i, v in enumerate(s)] + [0.0] * (5 - len(s))
    else:
        raise InputError(f"{where}: expected [x, y, heading, speed, steer] or a mapping, got {s!r}")
    vals[2] = _wrap(vals[2])
    return tuple(vals)  # type: ignore[return-value]


def _wrap(a: float) -> float:
    """A heading outside [-pi, pi] wrapped exactly into [-pi, pi) (math.remainder is exact, so even 1e30 rad lands
    in range: the planners integrate headings in float32, where a huge start heading loses all precision); one
    inside is kept as written (pi stays pi, so existing scenarios plan as before)."""
    if -math.pi <= a <= math.pi:
        return a
    r = math.remainder(a, 2 * math.pi)
    return -math.pi if r >= math.pi else r


def _goal(g: Any, where: str) -> GoalRegion:
    if not isinstance(g, Mapping):
        raise InputError(f"{where}: expected a mapping {{x, y, radius}}, got {g!r}")
    _no_unknown(g, _GOAL_KEYS, where)
    for k in ("x", "y", "radius"):
        if k not in g:
            raise InputError(f"{where}.{k}: required")
    r = _number(g["radius"], f"{where}.radius")
    if not r > 0:
        raise InputError(f"{where}.radius: must be > 0, got {r}")
    return GoalRegion(_number(g["x"], f"{where}.x"), _number(g["y"], f"{where}.y"), r)


# -- files ------------------------------------------------------------------------------------------
def load_scenario(path: str | os.PathLike, *, resolution: float = 0.05) -> Scenario:
    """Read and validate a ``.yaml``/``.yml``/``.json`` scenario file."""
    p = Path(path)
    text = read_text_file(p, "scenario", "a scenario is YAML or JSON text")
    if p.suffix.lower() == ".json":
        try:
            data = json.loads(text, object_pairs_hook=lambda pairs: _unique_pairs(pairs, p))
        except json.JSONDecodeError as e:
            raise InputError(f"scenario {p}: malformed JSON (line {e.lineno}): {e.msg}") from None
    elif p.suffix.lower() in (".yaml", ".yml"):
        import yaml

        from ..yaml_safe import safe_load_unique
        try:
            data = safe_load_unique(text)        # a key given twice is an error, not the last one kept
        except yaml.YAMLError as e:
            raise InputError(f"scenario {p}: malformed YAML: {e}") from None
    else:
        raise InputError(f"scenario {p}: unknown suffix {p.suffix!r}; use .yaml, .yml or .json")
    return Scenario.from_dict(data, source=p.name, resolution=resolution)


def _unique_pairs(pairs: list[tuple[str, Any]], p: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise InputError(f"scenario {p}: malformed JSON: duplicate key {k!r}; keep one")
        out[k] = v
    return out


def save_scenario(path: str | os.PathLike, sc: Scenario) -> Path:
    """Write atomically as YAML or JSON, chosen by the suffix."""
    p = Path(path)
    d = sc.to_dict()
    if p.suffix.lower() == ".json":
        return atomic_write_text(p, json.dumps(d, indent=1) + "\n")
    if p.suffix.lower() in (".yaml", ".yml"):
        import yaml
        return atomic_write_text(p, yaml.safe_dump(d, sort_keys=False, default_flow_style=None, width=120))
    raise InputError(f"scenario {p}: unknown suffix {p.suffix!r}; use .yaml, .yml or .json")


def scenario_files(folder: str | os.PathLike) -> list[Path]:
    """Scenario files of a folder, sorted by name."""
    f = Path(folder)
    if not f.is_dir():
        raise InputError(f"scenarios: no folder at {f}")
    files = listed_files(f, (".yaml", ".yml", ".json"))
    if not files:
        raise InputError(f"scenarios: no .yaml/.yml/.json files in {f}")
    return files
