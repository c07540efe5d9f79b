"""Path smoothing for the car: geometric shortcutting of a planned path and re-simulation by a pure-pursuit
tracking controller through the true dynamics (every integration step collision-checked).

Used to turn raw sampling-based plans (jerky random controls) into smooth expert demonstrations: the
shortcut polyline fixes the route, the tracker makes it dynamically feasible, and only tracked rollouts that
reach the goal without collision are kept.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from .car import Car
from .collision import CollisionChecker
from .scenario import GoalRegion

__all__ = ["TrackResult", "resample_polyline", "shortcut_polyline", "track_path"]


def _segment_clear(world, a: Tensor, bs: Tensor, clearance: float, step: float) -> Tensor:
    """Is every point of the segments a -> bs[k] at least ``clearance`` from obstacles? (K,) bool."""
    length = (bs - a).norm(dim=-1)
    n = math.ceil(float(length.max()) / step) + 1 if len(bs) else 1
    f = torch.linspace(0, 1, n, dtype=a.dtype)
    pts = a + (bs - a)[:, None, :] * f[None, :, None]                      # (K, n, 2)
    return (world.clearance(pts) >= clearance).all(dim=1)


def shortcut_polyline(world, points: Tensor, clearance: float, step: float = 0.05) -> Tensor:
    """Greedy shortcutting: from each kept waypoint jump to the farthest later waypoint whose straight segment
    keeps ``clearance`` (m) from every obstacle. points: (P, 2) -> (Q, 2) with the same end points."""
    pts = points.to(torch.float32)
    keep = [0]
    i = 0
    while i < len(pts) - 1:
        ok = _segment_clear(world, pts[i], pts[i + 1:], clearance, step)
        good = ok.nonzero().flatten()
        j = i + 1 + int(good.max()) if len(good) else i + 1
        keep.append(j)
        i = j
    return pts[keep]


def resample_polyline(points: Tensor, spacing: float) -> Tensor:
    """(P, 2) polyline -> (N, 2) points every ``spacing`` metres along it (end point included)."""
    seg = points[1:] - points[:-1]
    lens = seg.norm(dim=-1)
    cum = torch.cat([lens.new_zeros(1), lens.cumsum(0)])
    total = float(cum[-1])
    s = torch.arange(0.0, total, spacing, dtype=points.dtype)
    s = torch.cat([s, s.new_tensor([total])])
    k = torch.searchsorted(cum, s, right=True).clamp(1, len(points) - 1) - 1
    f = ((s - cum[k]) / lens[k].clamp(min=1e-9)).unsqueeze(-1)
    return points[k] + f * seg[k]


@dataclass
class TrackResult:
    states: Tensor      # (T + 1, 5) integration-step states of the best successful rollout
    controls: Tensor    # (K, 2) held controls (one per control period)
    duration: float     # s, until the goal region is first entered
    variant: int        # index of the (lookahead, speed) variant that won
    route: Tensor | None = None     # (P, 2) the path that was tracked
    margin: float = float("nan")    # smallest footprint clearance before arrival, m


def track_path(car: Car, checker: CollisionChecker, goal: GoalRegion, path: Tensor, start: Tensor, *,
               lookaheads: Sequence[float] = (0.6, 0.9, 1.3), speeds: Sequence[float] = (1.0, 1.5, 2.0),
               lateral_accel: float = 2.0, max_time: float = 60.0, prefer_clearance: float = 0.0,
               resume: bool = False) -> TrackResult | None:
    """Track ``path`` (P, 2) from ``start`` (5,) with every (lookahead, speed) pair in parallel; return the
    fastest rollout that enters ``goal`` with no colliding integration step, or None.

    ``prefer_clearance`` (m): among the successful rollouts, the fastest whose footprint stays at least this far
    from every obstacle wins; only when none does, the fastest overall. ``resume``: the start lies somewhere
    along the path (e.g. a perturbed state of an earlier rollout), so progress starts at the nearest path point
    instead of the first.
    """
    p = car.p
    dense = resample_polyline(path.to(torch.float32), 0.05)
    n_pts = dense.shape[0]
    la = torch.tensor([a for a in lookaheads for _ in speeds], dtype=torch.float32)
    vr = torch.tensor([v for _ in lookaheads for v in speeds], dtype=torch.float32)
    k = la.shape[0]
    s = start.to(torch.float32).expand(k, 5).clone()
    first = int((dense - s[0, :2]).norm(dim=-1).argmin()) if resume else 0
    idx = torch.full((k,), first, dtype=torch.long)
    alive = torch.ones(k, dtype=torch.bool)
    done_at = torch.full((k,), -1, dtype=torch.long)
    margin = torch.full((k,), float("inf"))       # smallest footprint clearance before arrival
    states, controls = [s], []
    n_ctrl = int(max_time / p.control_dt)
    window = torch.arange(0, 60)
    for c in range(n_ctrl):
        # progress: nearest dense point in a forward window
        cand = (idx[:, None] + window[None, :]).clamp(max=n_pts - 1)
        d = (dense[cand] - s[:, None, :2]).norm(dim=-1)
        idx = cand.gather(1, d.argmin(dim=1, keepdim=True)).squeeze(1)
        look = (idx + (la / 0.05).long()).clamp(max=n_pts - 1)
        tgt = dense[look]
        dx, dy = tgt[:, 0] - s[:, 0], tgt[:, 1] - s[:, 1]
        cth, sth = torch.cos(s[:, 2]), torch.sin(s[:, 2])
        fx, fy = dx * cth + dy * sth, -dx * sth + dy * cth
        kappa = 2 * fy / (fx * fx + fy * fy).clamp(min=1e-6)
        steer_ref = torch.atan(p.wheelbase * kappa).clamp(-p.max_steer, p.max_steer)
        v_ref = torch.minimum(vr, torch.sqrt(lateral_accel / kappa.abs().clamp(min=1e-6)))
        u = torch.stack([(v_ref - s[:, 3]) / p.control_dt, (steer_ref - s[:, 4]) / p.control_dt], dim=-1)
        u = torch.maximum(torch.minimum(u, car.control_bounds()[1]), car.control_bounds()[0])
        controls.append(u)
        for _ in range(p.control_period):
            s = car.step(s, u)
            clear = checker.clearance(s)
            margin = torch.where(done_at < 0, torch.minimum(margin, clear), margin)
            newly_bad = alive & (done_at < 0) & (clear < 0)
            alive = alive & ~newly_bad
            arrived = alive & (done_at < 0) & goal.contains(s)
            done_at = torch.where(arrived, torch.full_like(done_at, len(states)), done_at)
            states.append(s)
        arrived_ok = alive & (done_at >= 0)
        if bool((arrived_ok & (margin >= prefer_clearance)).any()) or not bool((alive & (done_at < 0)).any()):
            break                       # all variants run in lock step: the first arrival is the fastest
    ok = alive & (done_at >= 0)
    if not bool(ok.any()):
        return None
    if bool((ok & (margin >= prefer_clearance)).any()):
        ok = ok & (margin >= prefer_clearance)
    t_arr = torch.where(ok, done_at, torch.full_like(done_at, 1 << 30))
    best = int(t_arr.argmin())
    last = int(done_at[best])
    n_c = (last + p.control_period - 1) // p.control_period
    st = torch.stack(states, dim=0)[: last + 1, best]
    ct = torch.stack(controls, dim=0)[:n_c, best]
    return TrackResult(states=st, controls=ct, duration=last * p.dt, variant=best, route=path,
                       margin=float(margin[best]))
