"""2-D worlds: a rectangular map with axis-aligned boxes, discs and occupancy grids as obstacles.

At construction a world computes a distance field on a fine raster (``resolution``, default 0.05 m): at every cell
centre, the exact Euclidean distance to the nearest obstacle or to the map boundary (the boundary is a wall).
A query reads the field at the cell that holds the point. The distance function is 1-Lipschitz, so the true
distance at a point is at least the cell value minus half a cell diagonal (``margin``); collision checks subtract
that margin and are therefore conservative: they never call a colliding footprint free, and may call a
footprint that clears an obstacle by less than ``margin`` (3.5 cm at the default resolution) colliding.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from ...core.errors import InputError

__all__ = ["MAX_FIELD_CELLS", "MAX_OBSTACLES", "World", "grid_to_rectangles"]

#: Largest distance-field raster (rows x cols) a world computes: 4 million cells, e.g. a 100 m x 100 m map at
#: the default 0.05 m resolution (the shipped maps are 10 m x 10 m, 40 000 cells). The field costs time and
#: memory in proportion (a 300 m x 300 m map took half a minute and gigabytes; larger ones failed to allocate).
MAX_FIELD_CELLS = 4_000_000

#: Most obstacles a world holds: rectangles, discs and the boxes an occupancy grid becomes (one per run of occupied
#: cells in a row, runs of the same columns in consecutive rows merged). Computing the distance field costs time in
#: proportion to cells x obstacles: a 10 m x 10 m map (40 000 cells) with 5 000 obstacles took about 2 s (two cores).
MAX_OBSTACLES = 5_000

#: Largest (points x obstacles) matrix ``exact_distance`` builds at once (float64: 16 MB each).
_CHUNK_ENTRIES = 2_000_000


def grid_to_rectangles(cells: np.ndarray, origin: Sequence[float], resolution: float) -> np.ndarray:
    """Occupied cells of a (rows, cols) grid (row 0 at ``origin`` y, increasing y) -> (M, 4) boxes
    [xmin, ymin, xmax, ymax]: one per horizontal run of occupied cells, with runs of the same columns in
    consecutive rows merged into one box (the union, hence the distance to it, is the same)."""
    cells = np.asarray(cells, dtype=bool)
    x0, y0 = float(origin[0]), float(origin[1])
    out: list[list[float]] = []
    open_runs: dict[tuple[int, int], int] = {}       # (first col, end col) of the previous row's runs -> box index
    for r in range(cells.shape[0]):
        edges = np.flatnonzero(np.diff(np.concatenate([[0], cells[r].view(np.int8), [0]])))
        runs: dict[tuple[int, int], int] = {}
        for s, c in zip(edges[0::2].tolist(), edges[1::2].tolist()):
            k = open_runs.get((s, c))
            if k is None:
                k = len(out)
                out.append([x0 + s * resolution, y0 + r * resolution, x0 + c * resolution, 0.0])
            out[k][3] = y0 + (r + 1) * resolution
            runs[(s, c)] = k
        open_runs = runs
    return np.asarray(out, dtype=np.float64).reshape(-1, 4)


def _box_distance(px: Tensor, py: Tensor, boxes: Tensor) -> Tensor:
    """(P,) points vs (M, 4) boxes -> (P,) Euclidean distance to the nearest box (0 inside); the (P, M) work is
    done in place on two matrices, and the square root taken of the minimum only (it is monotone)."""
    dx = torch.maximum(boxes[:, 0] - px[:, None], px[:, None] - boxes[:, 2]).clamp_(min=0.0)
    dy = torch.maximum(boxes[:, 1] - py[:, None], py[:, None] - boxes[:, 3]).clamp_(min=0.0)
    return dx.mul_(dx).add_(dy.mul_(dy)).min(dim=1).values.sqrt_()


def _disc_distance(px: Tensor, py: Tensor, discs: Tensor) -> Tensor:
    """(P,) points vs (M, 3) discs -> (P, M) distance to the disc (0 inside)."""
    d = torch.sqrt((px[:, None] - discs[:, 0]) ** 2 + (py[:, None] - discs[:, 1]) ** 2) - discs[:, 2]
    return d.clamp(min=0.0)


class World:
    """A bounded 2-D map with obstacles and a precomputed distance field.

    Args:
        bounds: (xmin, ymin, xmax, ymax), m. The boundary acts as a wall.
        rectangles: (M, 4) axis-aligned boxes [xmin, ymin, xmax, ymax], m.
        discs: (K, 3) discs [cx, cy, r], m.
        grid: optional dict ``{"origin": [x0, y0], "resolution": r, "cells": (rows, cols) bool}``; row 0 is at
            y0 and rows go up in y.
        resolution: cell size of the distance field, m.
        device: where the field lives (queries must come on the same device).
    """

    def __init__(self, bounds: Sequence[float], rectangles: Sequence[Sequence[float]] = (),
                 discs: Sequence[Sequence[float]] = (), grid: dict | None = None, *, resolution: float = 0.05,
                 device: torch.device | str = "cpu") -> None:
        b = [float(v) for v in bounds]
        if len(b) != 4 or not all(math.isfinite(v) for v in b) or b[2] <= b[0] or b[3] <= b[1]:
            raise InputError(f"map.bounds: expected [xmin, ymin, xmax, ymax] with xmax > xmin and ymax > ymin, "
                             f"got {list(bounds)}")
        self.bounds = tuple(b)
        rect = np.asarray(rectangles, dtype=np.float64).reshape(-1, 4) if len(rectangles) else np.zeros((0, 4))
        disc = np.asarray(discs, dtype=np.float64).reshape(-1, 3) if len(discs) else np.zeros((0, 3))
        if not np.isfinite(rect).all() or (rect.size and ((rect[:, 2] <= rect[:, 0]) | (rect[:, 3] <= rect[:, 1])).any()):
            i = int(np.nonzero(~np.isfinite(rect).all(1) | (rect[:, 2] <= rect[:, 0]) | (rect[:, 3] <= rect[:, 1]))[0][0])
            raise InputError(f"map.rectangles[{i}]: expected [xmin, ymin, xmax, ymax] with max > min, got "
                             f"{rect[i].tolist()}")
        if not np.isfinite(disc).all() or (disc.size and (disc[:, 2] <= 0).any()):
            i = int(np.nonzero(~np.isfinite(disc).all(1) | (disc[:, 2] <= 0))[0][0])
            raise InputError(f"map.discs[{i}]: expected [cx, cy, r] with r > 0, got {disc[i].tolist()}")
        self.rectangles = rect
        self.discs = disc
        self.grid = None
        grid_boxes = np.zeros((0, 4))
        if grid is not None:
            cells = np.asarray(grid["cells"], dtype=bool)
            if cells.ndim != 2:
                raise InputError(f"map.grid.cells: expected a 2-D array of 0/1, got shape {cells.shape}")
            res = float(grid["resolution"])
            if not res > 0:
                raise InputError(f"map.grid.resolution: must be > 0, got {res}")
            self.grid = {"origin": [float(v) for v in grid["origin"]], "resolution": res, "cells": cells}
            grid_boxes = grid_to_rectangles(cells, self.grid["origin"], res)
        if not resolution > 0:
            raise InputError(f"resolution: must be > 0, got {resolution}")
        self.resolution = float(resolution)
        self.device = torch.device(device)
        n_obs = len(rect) + len(grid_boxes) + len(disc)
        if n_obs > MAX_OBSTACLES:                        # checked before the distance field is computed
            where = "map.grid.cells" if len(grid_boxes) else "map.rectangles" if len(rect) else "map.discs"
            raise InputError(f"{where}: {len(rect)} rectangles, {len(disc)} discs and {len(grid_boxes)} boxes from the "
                             f"grid's occupied cells make {n_obs:,} obstacles, more than the {MAX_OBSTACLES:,} "
                             f"allowed (computing the distance field takes time in proportion: 5,000 take a few seconds); use "
                             f"a coarser grid or fewer obstacles")
        self._all_boxes = torch.as_tensor(np.concatenate([rect, grid_boxes]), dtype=torch.float64)
        self._discs = torch.as_tensor(disc, dtype=torch.float64)
        xmin, ymin, xmax, ymax = self.bounds
        self.cols = max(1, math.ceil((xmax - xmin) / self.resolution))
        self.rows = max(1, math.ceil((ymax - ymin) / self.resolution))
        if self.rows * self.cols > MAX_FIELD_CELLS:      # checked before any raster is allocated
            raise InputError(f"map.bounds: a {xmax - xmin:g} m x {ymax - ymin:g} m map at resolution "
                             f"{self.resolution:g} m needs a distance field of {self.rows} x {self.cols} = "
                             f"{self.rows * self.cols:,} cells, more than the {MAX_FIELD_CELLS:,} allowed; use "
                             f"smaller bounds")
        xs = xmin + (torch.arange(self.cols, dtype=torch.float64) + 0.5) * self.resolution
        ys = ymin + (torch.arange(self.rows, dtype=torch.float64) + 0.5) * self.resolution
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        field = self.exact_distance(torch.stack([gx, gy], dim=-1).reshape(-1, 2)).reshape(self.rows, self.cols)
        self.field = field.to(torch.float32).to(self.device)          # (rows, cols), m
        self.field_np = field.numpy()                                   # float64, for scalar queries
        self._rasters: dict = {}                                        # padded flat rasters read by queries
        self._read_consts: dict = {}                                   # per (device, dtype): index bounds, origin
        #: half a cell diagonal: the most a query's true distance can fall below the stored value, m.
        self.margin = self.resolution * math.sqrt(0.5)

    # -- exact geometry --------------------------------------------------------------------------
    def exact_distance(self, points: Tensor, chunk: int = 8192) -> Tensor:
        """(..., 2) points -> (...,) exact distance (float64) to the nearest obstacle or the boundary;
        0 inside an obstacle or outside the map. Points go in chunks of at most ``chunk``, fewer when there are
        many obstacles (a chunk's (points x obstacles) matrices hold at most ``_CHUNK_ENTRIES`` entries)."""
        pts = torch.as_tensor(points, dtype=torch.float64).reshape(-1, 2).cpu()
        xmin, ymin, xmax, ymax = self.bounds
        chunk = max(1, min(chunk, _CHUNK_ENTRIES // max(1, self._all_boxes.shape[0], self._discs.shape[0])))
        out = torch.empty(pts.shape[0], dtype=torch.float64)       # filled in place: no small tensors kept
        for i in range(0, pts.shape[0], chunk):                      # between the chunks' big ones (the heap
            px, py = pts[i:i + chunk, 0], pts[i:i + chunk, 1]        # then grew by one chunk per chunk)
            d = torch.minimum(torch.minimum(px - xmin, xmax - px), torch.minimum(py - ymin, ymax - py)).clamp(min=0)
            if self._all_boxes.shape[0]:
                d = torch.minimum(d, _box_distance(px, py, self._all_boxes))
            if self._discs.shape[0]:
                d = torch.minimum(d, _disc_distance(px, py, self._discs).min(dim=1).values)
            out[i:i + chunk] = d
        return out.reshape(torch.as_tensor(points).shape[:-1])

    # -- fast queries -----------------------------------------------------------------------------
    def inside(self, points: Tensor) -> Tensor:
        """(..., 2) -> (...,) bool, inside the map bounds."""
        xmin, ymin, xmax, ymax = self.bounds
        x, y = points[..., 0], points[..., 1]
        return (x >= xmin) & (x < xmax) & (y >= ymin) & (y < ymax)

    def _raster(self, key: tuple, make: Callable[[], Tensor], outside: float) -> Tensor:
        """A cached flat (rows + 2) x (cols + 2) raster: ``make()`` (rows, cols) inside a one-cell ring of
        ``outside`` that stands for everything outside the map."""
        if key not in self._rasters:
            self._rasters[key] = torch.nn.functional.pad(make(), (1, 1, 1, 1), value=outside).reshape(-1)
        return self._rasters[key]

    def _read(self, raster: Tensor, points: Tensor) -> Tensor:
        """(..., 2) points -> (...,) ``raster`` entries at the cells holding them (the ring outside the map)."""
        key = (points.device, points.dtype)
        if key not in self._read_consts:
            f = {"device": points.device, "dtype": points.dtype}
            self._read_consts[key] = (torch.tensor([-1, -1], **f), torch.tensor([self.cols, self.rows], **f),
                                       torch.tensor(self.bounds[:2], **f))
        lo, hi, origin = self._read_consts[key]
        # cell indices, clamped to -1 and cols / rows (the ring outside the map; so is a NaN point); flooring and
        # clamping in the points' dtype gives the same integers as in int64, and is cheaper
        ij = torch.floor((points - origin) / self.resolution).nan_to_num_(nan=-1.0).clamp_(lo, hi)
        if points.dtype in (torch.float32, torch.float64):
            # the flat index in the points' dtype: whole numbers below (rows + 2) (cols + 2) <= 2^24 (the field is
            # capped at MAX_FIELD_CELLS), so every product and sum is exact and equals the int64 one; ``take``
            # reads the same entries as indexing, with fewer and cheaper calls
            flat = torch.add(ij[..., 0], ij[..., 1], alpha=self.cols + 2).add_(self.cols + 3)
            return raster.take(flat.long())
        ij = ij.long()
        return raster[ij[..., 1] * (self.cols + 2) + ij[..., 0] + (self.cols + 3)]

    def distance(self, points: Tensor) -> Tensor:
        """(..., 2) -> (...,) field value at the cell holding each point (0 outside the map), m."""
        key = (points.device, points.dtype, "distance")
        return self._read(self._raster(key, lambda: self.field.to(points.device, points.dtype), 0.0), points)

    def occupancy(self, points: Tensor, threshold: float) -> Tensor:
        """(..., 2) -> (...,) ``(distance(points) < threshold)`` in the points' dtype (1 outside the map), read
        off a cached raster of the comparison."""
        key = (points.device, points.dtype, "occupancy", float(threshold))
        return self._read(self._raster(key, lambda: (self.field.to(points.device) < threshold).to(points.dtype), 1.0),
                          points)

    def clearance(self, points: Tensor) -> Tensor:
        """(..., 2) -> (...,) a certified lower bound on the distance to the nearest obstacle, m."""
        return self.distance(points) - self.margin

    def points_collide(self, points: Tensor, radius: float) -> Tensor:
        """(..., 2) disc centres -> (...,) bool: a disc of ``radius`` there may touch an obstacle or the wall."""
        return self.clearance(points) < radius

    def clearance_scalar(self, x: float, y: float) -> float:
        """``clearance`` for one point on Python floats (for C++ planner callbacks)."""
        j = math.floor((x - self.bounds[0]) / self.resolution)
        i = math.floor((y - self.bounds[1]) / self.resolution)
        if i < 0 or j < 0 or i >= self.rows or j >= self.cols:
            return -self.margin
        return float(self.field_np[i, j]) - self.margin

    def to(self, device: torch.device | str) -> World:
        self.device = torch.device(device)
        self.field = self.field.to(self.device)
        self._rasters, self._read_consts = {}, {}
        return self

    # -- description ------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        out: dict = {"bounds": list(self.bounds)}
        if len(self.rectangles):
            out["rectangles"] = [[float(v) for v in r] for r in self.rectangles]
        if len(self.discs):
            out["discs"] = [[float(v) for v in d] for d in self.discs]
        if self.grid is not None:
            out["grid"] = {"origin": list(self.grid["origin"]), "resolution": self.grid["resolution"],
                           "cells": ["".join("#" if c else "." for c in row) for row in self.grid["cells"]]}
        return out

    @property
    def extent(self) -> tuple[float, float]:
        return self.bounds[2] - self.bounds[0], self.bounds[3] - self.bounds[1]

    def __repr__(self) -> str:
        return (f"World(bounds={self.bounds}, rectangles={len(self.rectangles)}, discs={len(self.discs)}, "
                f"grid={'yes' if self.grid is not None else 'no'}, field={self.rows}x{self.cols})")

