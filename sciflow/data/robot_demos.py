"""Expert demonstrations for the DiTree policy: plans on one map family, smoothed and re-simulated.

For each scenario an injected kinodynamic planner (``planner(scenario, generator) -> (T, 5) states or None``;
sciflow uses its batched RRT over the true dynamics) finds a collision-free plan. Its path is shortcut
geometrically (``clearance`` from obstacles) and tracked by a pure-pursuit controller through the true
dynamics, every integration step collision-checked (``domains.robots.tracking``); a demonstration is kept only
when the tracked rollout enters the goal region without collision. If the shortcut path cannot be tracked, the
raw path is tried.

Recovery demonstrations (``recoveries`` > 0, against the compounding errors of behaviour cloning): the state
at a random point of the demonstration is perturbed (sideways offset, heading, speed, steering), and the same
tracker drives back onto the same route from there to the goal; each such rollout that reaches the goal
without collision is stored as one more demonstration (``recovery`` flag 1), so the policy also sees what the
expert does slightly off its own path. ``prefer_clearance`` makes the tracker pick, among the rollouts that
reach the goal, the fastest one that keeps this margin from obstacles (a policy imitating grazing paths
collides at its first small error).

Stored per control period (0.1 s by default): the state at the start of the period, the held control and the
egocentric occupancy crop at that state (bit-packed), plus per demonstration its goal, scenario seed and
recovery flag. Generation runs in parts (``part_size`` scenarios each, one file per part) so an interrupted run
resumes.
"""
from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..core.errors import InputError
from ..core.files import atomic_path, changed_keys, keep_settings, open_npz, plain_json
from ..core.random import make_generator, rand, randint, randn
from ..core.training import progress
from ..domains.robots import (
    CONTROL_DIM,
    STATE_DIM,
    LocalObservation,
    Scenario,
    shortcut_polyline,
    track_path,
    wrap_angle,
)

__all__ = ["DEMO_FORMAT", "PlanFn", "demonstrate", "generate_demos", "load_demos", "merge_parts", "recovery_rollouts"]

DEMO_FORMAT = "sciflow.ditree.demos/1"
#: planner(scenario, generator) -> (T, 5) plan states, or None when it found no plan.
PlanFn = Callable[[Scenario, torch.Generator], "torch.Tensor | None"]


def demonstrate(scenario: Scenario, plan_states: torch.Tensor, *, clearance_extra: float = 0.12,
                prefer_clearance: float = 0.0, max_time: float = 60.0) -> Any:
    """Shortcut + track one raw plan; returns a ``TrackResult`` (its ``route`` is the tracked path) or None."""
    car, checker = scenario.car(), scenario.checker()
    world = scenario.world
    path = plan_states[:, :2].to(torch.float32)
    goal_xy = torch.tensor([[scenario.goal.x, scenario.goal.y]])
    start = torch.tensor(scenario.start, dtype=torch.float32)
    clear = car.p.disc_radius + clearance_extra
    short = shortcut_polyline(world, path, clear)
    for cand in (short, path):
        # extend to the goal centre so the tracker aims inside the goal disc
        route = torch.cat([cand, goal_xy]) if float((cand[-1] - goal_xy[0]).norm()) > 1e-6 else cand
        res = track_path(car, checker, scenario.goal, route, start, max_time=max_time,
                         prefer_clearance=prefer_clearance)
        if res is not None:
            return res
    return None


def recovery_rollouts(scenario: Scenario, demo: Any, n: int, generator: torch.Generator, *, lateral: float = 0.15,
               heading: float = 0.3, steer: float = 0.2, prefer_clearance: float = 0.0, min_left_s: float = 1.0,
               max_time: float = 60.0) -> list[Any]:
    """Up to ``n`` recovery rollouts from perturbed states of ``demo`` (a ``TrackResult``) back along its route.

    A start is a state of the demonstration at least ``min_left_s`` before its arrival, moved sideways by
    N(0, ``lateral``) m, turned by N(0, ``heading``) rad, with its speed scaled by U(0.5, 1.2) and
    N(0, ``steer``) rad added to its steering (both clipped to the limits); starts in collision are redrawn
    (at most 4 n draws). Returns the successful ``TrackResult``s.
    """
    if n <= 0 or demo.route is None:
        return []
    car, checker = scenario.car(), scenario.checker()
    p = car.p
    last = demo.states.shape[0] - 1 - int(min_left_s / p.dt)
    if last < 1:
        return []
    out = []
    for _ in range(4 * n):
        if len(out) >= n:
            break
        s = demo.states[int(randint(last, (1,), generator=generator))].clone()
        z = randn((3,), generator=generator)
        th = float(s[2])
        s[0] -= math.sin(th) * lateral * float(z[0])
        s[1] += math.cos(th) * lateral * float(z[0])
        s[2] = wrap_angle(s[2] + heading * float(z[1]))
        s[3] = min(max(float(s[3]) * (0.5 + 0.7 * float(rand((1,), generator=generator))), p.min_speed),
                   p.max_speed)
        s[4] = min(max(float(s[4]) + steer * float(z[2]), -p.max_steer), p.max_steer)
        if not bool(checker.states_valid(s[None])[0]) or bool(scenario.goal.contains(s[None])[0]):
            continue
        res = track_path(car, checker, scenario.goal, demo.route, s, max_time=max_time,
                         prefer_clearance=prefer_clearance, resume=True)
        if res is not None:
            out.append(res)
    return out


def _item(scenario: Scenario, obs: LocalObservation, res: Any, recovery: bool) -> dict[str, np.ndarray]:
    cp = scenario.robot.control_period
    n = res.controls.shape[0]
    states = res.states[::cp][:n]
    n = states.shape[0]                           # the last period may end after arrival
    crops = obs.crop(scenario.world, states).to(torch.uint8).numpy().reshape(n, -1)
    return {"states": states.numpy().astype(np.float32), "controls": res.controls[:n].numpy().astype(np.float32),
            "crops": np.packbits(crops, axis=1), "goal": np.array([scenario.goal.x, scenario.goal.y,
                                                                   scenario.goal.radius], np.float32),
            "seed": np.array(scenario.seed if scenario.seed is not None else -1), "duration": np.array(res.duration),
            "recovery": np.array(int(recovery))}


def _one(scenario: Scenario, planner: PlanFn, obs: LocalObservation, seed: int,
         options: dict[str, Any]) -> list[dict[str, np.ndarray]]:
    raw = planner(scenario, make_generator(seed))
    if raw is None:
        return []
    prefer = options["prefer_clearance"]
    res = demonstrate(scenario, raw, clearance_extra=options["clearance_extra"], prefer_clearance=prefer)
    if res is None:
        return []
    extra = recovery_rollouts(scenario, res, options["recoveries"], make_generator(seed + 7_919_000),
                       prefer_clearance=prefer)
    return [_item(scenario, obs, res, False)] + [_item(scenario, obs, r, True) for r in extra]


def _save_part(path: Path, items: list[dict[str, np.ndarray]], meta: dict[str, Any]) -> None:
    lengths = np.array([it["states"].shape[0] for it in items], dtype=np.int64)
    arrays = {
        "format": np.array(DEMO_FORMAT),
        "meta": np.array(json.dumps(meta)),
        "offsets": np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        "states": np.concatenate([it["states"] for it in items]) if items else np.zeros((0, 5), np.float32),
        "controls": np.concatenate([it["controls"] for it in items]) if items else np.zeros((0, 2), np.float32),
        "crops": np.concatenate([it["crops"] for it in items]) if items else np.zeros((0, 0), np.uint8),
        "goals": np.stack([it["goal"] for it in items]) if items else np.zeros((0, 3), np.float32),
        "seeds": np.array([int(it["seed"]) for it in items], dtype=np.int64),
        "durations": np.array([float(it["duration"]) for it in items], dtype=np.float64),
        "recovery": np.array([int(it.get("recovery", 0)) for it in items], dtype=np.int8),
    }
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)


def generate_demos(scenarios: Callable[[int], Scenario], seeds: Sequence[int], planner: PlanFn, out_dir: str | os.PathLike,
                   *, obs: LocalObservation | None = None, part_size: int = 20, meta: dict[str, Any] | None = None,
                   progress_bar: bool = True, clearance_extra: float = 0.12, prefer_clearance: float = 0.0,
                   recoveries: int = 0) -> dict[str, Any]:
    """Make demonstrations for ``scenarios(seed)`` over ``seeds`` into ``out_dir/part-XXXX.npz`` (resumable).

    ``clearance_extra`` (m beyond the footprint's disc radius) is the shortcut's clearance, ``prefer_clearance``
    the tracker's preferred margin and ``recoveries`` the perturbed restarts per map (module docstring).

    The folder records ``meta``, the seeds and the options in ``settings.json`` the first time; a later call with
    other ones is refused (``InputError`` naming what differs) before any work, and so is an existing part file
    made for other seeds or settings (a folder from an earlier version without ``settings.json``)."""
    options = {"clearance_extra": float(clearance_extra), "prefer_clearance": float(prefer_clearance),
               "recoveries": int(recoveries)}
    obs = obs or LocalObservation()
    out = Path(out_dir)
    seeds = [int(s) for s in seeds]
    parts = [seeds[i:i + part_size] for i in range(0, len(seeds), part_size)]
    stats = {"scenarios": 0, "planned": 0, "kept": 0, "recoveries": 0}
    meta = {**(meta or {}), "observation": obs.config(), "options": options}
    settings = plain_json({**meta, "seeds": seeds, "part_size": int(part_size), "format": DEMO_FORMAT})
    for k, part in enumerate(parts):     # parts made before settings.json was kept: checked before it is written,
        _check_part(out / f"part-{k:04d}.npz", {**meta, "seeds": part})   # so a refused run records nothing
    out.mkdir(parents=True, exist_ok=True)
    keep_settings(out / "settings.json", settings, f"out_dir: {out} holds demonstrations made with other settings "
                  "(changed: {changed}); use another parts folder (command line: --parts), or the same family, "
                  "--seed, --n and options")
    bar = progress(total=len(seeds), desc="demos", enabled=progress_bar, unit="map")
    for k, part in enumerate(parts):
        path = out / f"part-{k:04d}.npz"
        if path.is_file():
            m = _part_meta(path)
            for key in stats:
                stats[key] += m.get("stats", {}).get(key, 0)
            bar.update(len(part))
            continue
        items, st = [], {"scenarios": 0, "planned": 0, "kept": 0, "recoveries": 0}
        for seed in part:
            sc = scenarios(seed)
            st["scenarios"] += 1
            got = _one(sc, planner, obs, seed, options)
            items.extend(got)
            st["kept"] += int(bool(got))
            st["recoveries"] += max(len(got) - 1, 0)
            bar.update(1)
            bar.set_postfix(kept=stats["kept"] + st["kept"], refresh=False)
        st["planned"] = st["scenarios"]
        _save_part(path, items, {**meta, "stats": st, "seeds": part})
        for key in stats:
            stats[key] += st[key]
    bar.close()
    return stats


def _part_meta(path: Path) -> dict[str, Any]:
    with open_npz(path, "demos", "a part file of `sciflow ditree demos`") as z:
        if "meta" not in z:
            raise InputError(f"demos: {path} has no 'meta' entry; not a part file of `sciflow ditree demos`")
        try:
            return json.loads(str(z["meta"]))
        except json.JSONDecodeError as e:
            raise InputError(f"demos: {path} has a damaged 'meta' entry ({e}); remove the file to make it again") \
                from None


def _check_part(path: Path, expected: dict[str, Any]) -> None:
    """Refuse an existing part file whose seeds or settings are not ``expected`` (it would be reused as is)."""
    if not path.is_file():
        return
    m = _part_meta(path)
    changed = changed_keys(plain_json({k: m.get(k) for k in expected}), plain_json(expected))
    if changed:
        raise InputError(f"out_dir: {path} was made with other settings (changed: {', '.join(changed[:8])}); use "
                         "another parts folder (command line: --parts), or remove that file")


def merge_parts(folder: str | os.PathLike, target: str | os.PathLike, *, limit: int | None = None,
                seeds: Sequence[int] | None = None) -> Path:
    """Concatenate ``part-*.npz`` of ``folder`` into one demos file (the first ``limit`` demonstrations).

    ``seeds``: merge only the parts made for these map seeds; every seed must be covered by a part, and a part
    holding other seeds as well is refused (None: every part of the folder)."""
    files = sorted(Path(folder).glob("part-*.npz"))
    if not files:
        raise InputError(f"demos: no part-*.npz files in {folder}")
    want = None if seeds is None else {int(s) for s in seeds}
    if want is not None:
        covered: set[int] = set()
        keep = []
        for f in files:
            part_seeds = {int(s) for s in _part_meta(f).get("seeds", [])}
            if part_seeds & want:
                if part_seeds - want:
                    raise InputError(f"demos: {f} holds seeds {sorted(part_seeds)}, not all of them asked for; "
                                     "merge the parts of one run of `sciflow ditree demos`")
                keep.append(f)
                covered |= part_seeds
        missing = sorted(want - covered)
        if missing:
            raise InputError(f"demos: no part file of {folder} covers seed(s) {missing[:8]}"
                             + (" ..." if len(missing) > 8 else ""))
        files = keep
    items, meta = [], {}
    for f in files:
        d = load_demos(f)
        meta = d["meta"]
        for i in range(len(d["offsets"]) - 1):
            a, b = d["offsets"][i], d["offsets"][i + 1]
            items.append({"states": d["states"][a:b], "controls": d["controls"][a:b],
                          "crops": np.packbits(d["crops"][a:b].reshape(b - a, -1), axis=1),
                          "goal": d["goals"][i], "seed": d["seeds"][i], "duration": d["durations"][i],
                          "recovery": d["recovery"][i]})
    if limit is not None:
        items = items[:limit]
    meta = {k: v for k, v in meta.items() if k not in ("stats", "seeds")}
    meta["n_demos"] = len(items)
    _save_part(Path(target), items, meta)
    return Path(target)


#: the arrays of a demos file (``recovery``, absent from files made before recovery demonstrations, reads as 0)
DEMO_KEYS = ("meta", "offsets", "states", "controls", "crops", "goals", "seeds", "durations")


def _bad(p: Path, key: str, why: str) -> InputError:
    return InputError(f"demos: {p} array '{key}' {why}; make the file again with `sciflow ditree demos`")


def _check_offsets(p: Path, offsets: np.ndarray, states: np.ndarray) -> None:
    """offsets: 1-D integers from 0, non-decreasing, ending at the state count; states (N, STATE_DIM), finite."""
    if states.ndim != 2 or states.shape[1] != STATE_DIM or states.dtype.kind not in "fiu":
        raise _bad(p, "states", f"has shape {states.shape} ({states.dtype}), expected (N, {STATE_DIM}) numbers")
    n = states.shape[0]
    if offsets.ndim != 1 or offsets.size < 1 or offsets.dtype.kind not in "iu":
        raise _bad(p, "offsets", f"has shape {offsets.shape} ({offsets.dtype}), expected a 1-D integer array "
                                 "(0, then the end of each demonstration)")
    if int(offsets[0]) != 0 or int(offsets[-1]) != n:
        raise _bad(p, "offsets", f"runs from {int(offsets[0])} to {int(offsets[-1])}, expected 0 to the "
                                 f"{n} rows of 'states'")
    step = np.diff(offsets)
    if (step < 0).any():
        i = int(np.flatnonzero(step < 0)[0])
        raise _bad(p, "offsets", f"decreases at index {i + 1} ({int(offsets[i])} then {int(offsets[i + 1])})")
    _check_finite(p, "states", states)


def _check_finite(p: Path, key: str, a: np.ndarray) -> None:
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        row = int(np.flatnonzero(~np.isfinite(a.reshape(a.shape[0], -1)).all(axis=1))[0])
        raise _bad(p, key, f"holds a non-finite value at row {row} ({a[row].tolist()})")


def _check_arrays(p: Path, d: dict[str, Any], size: int) -> None:
    """Every array of a demos file against its layout (``_save_part``): per control period one state, one held
    control and one bit-packed crop of size * size cells; per demonstration one goal, seed, duration, flag."""
    states, offsets = d["states"], d["offsets"]
    _check_offsets(p, offsets, states)
    n, n_demos = states.shape[0], offsets.size - 1
    width = -(-size * size // 8)
    want = {"controls": (n, CONTROL_DIM), "crops": (n, width) if n else None, "goals": (n_demos, 3),
            "seeds": (n_demos,), "durations": (n_demos,), "recovery": (n_demos,)}
    what = {"controls": "one per state", "crops": f"one per state, {size}x{size} cells bit-packed",
            "goals": "x, y, radius per demonstration", "seeds": "one per demonstration",
            "durations": "one per demonstration", "recovery": "one per demonstration"}
    for key, shape in want.items():
        a = d[key]
        if a.dtype.kind not in "fiub":
            raise _bad(p, key, f"has dtype {a.dtype}, expected numbers")
        if shape is None:
            if a.shape[:1] != (0,):
                raise _bad(p, key, f"has shape {a.shape}, expected no rows ('states' has none)")
        elif a.shape != shape:
            raise _bad(p, key, f"has shape {a.shape}, expected {shape} ({what[key]}; {n} states, {n_demos} "
                               "demonstrations)")
        _check_finite(p, key, a)
    if d["crops"].dtype != np.uint8:
        raise _bad(p, "crops", f"has dtype {d['crops'].dtype}, expected uint8 (bit-packed cells)")
    for key in ("seeds", "recovery"):
        if d[key].dtype.kind not in "iub":
            raise _bad(p, key, f"has dtype {d[key].dtype}, expected integers")
    if n_demos and not np.isin(d["recovery"], (0, 1)).all():
        raise _bad(p, "recovery", "holds values other than 0 and 1")


def _demos_entries(z: Any, p: Path, want: str) -> tuple[dict[str, Any], np.ndarray]:
    """(meta, offsets) of an open demos file, after checking its format, its arrays' presence, its meta and its
    offsets against its states."""
    fmt = str(z["format"]) if "format" in z else None
    if fmt != DEMO_FORMAT:
        raise InputError(f"demos: {p} has format {fmt!r}, not {want}" if fmt is not None else
                         f"demos: {p} has no 'format' entry; expected {want}")
    missing = [k for k in DEMO_KEYS if k not in z]
    if missing:
        raise InputError(f"demos: {p} lacks {', '.join(missing)}; expected {want}")
    text = str(z["meta"])                  # an unreadable array is named by the reader
    try:
        meta = json.loads(text)
    except ValueError:
        meta = None
    if not isinstance(meta, dict) or not isinstance(meta.get("observation"), dict):
        raise InputError(f"demos: {p} has an unreadable 'meta' entry; expected {want}")
    size = meta["observation"].get("size")
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise InputError(f"demos: {p} 'meta' observation size is {size!r}, expected a positive integer")
    offsets = z["offsets"]
    _check_offsets(p, offsets, z["states"])
    return meta, offsets


def demos_header(path: str | os.PathLike) -> tuple[dict[str, Any], np.ndarray]:
    """(meta, offsets) of a demos file, its offsets checked against its states, without reading its crops (what
    a workflow's validation needs; ``load_demos`` checks every array)."""
    p = Path(path)
    with open_npz(p, "demos", _DEMOS_WANT) as z:
        return _demos_entries(z, p, _DEMOS_WANT)


_DEMOS_WANT = f"a demonstrations .npz (format {DEMO_FORMAT!r}, made by `sciflow ditree demos`)"


def load_demos(path: str | os.PathLike) -> dict[str, Any]:
    """Read a demos file; ``crops`` come back unpacked as (N, size, size) uint8.

    Its arrays are checked against the layout before anything uses them (InputError naming the file and the
    array): offsets from 0, non-decreasing, ending at the state count; one control and one crop of size * size
    bits per state; one goal, seed, duration and recovery flag per demonstration; finite values."""
    p = Path(path)
    with open_npz(p, "demos", _DEMOS_WANT) as z:
        meta, _ = _demos_entries(z, p, _DEMOS_WANT)
        d = {k: z[k] for k in z.files}
    d["meta"] = meta
    if "recovery" not in d:                   # files made before recovery demonstrations: all expert ones
        d["recovery"] = np.zeros(d["offsets"].size - 1, np.int8)
    size = int(meta["observation"]["size"])
    _check_arrays(p, d, size)
    n = d["states"].shape[0]
    d["crops"] = np.unpackbits(d["crops"], axis=1)[:, : size * size].reshape(n, size, size) if n else \
        np.zeros((0, size, size), np.uint8)
    return d
