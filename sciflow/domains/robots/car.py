"""A car-like robot with second-order bicycle dynamics, integrated in batched torch at a fixed rate.

State (5): x, y (m, rear-axle midpoint), heading (rad, wrapped to [-pi, pi)), speed (m/s, signed), steering
angle (rad). Controls (2): longitudinal acceleration (m/s^2) and steering rate (rad/s), both bounded.

    dx/dt = v cos(theta), dy/dt = v sin(theta), dtheta/dt = v tan(delta) / L, dv/dt = a, ddelta/dt = omega

One integration step of length ``dt`` first clips the controls to their bounds, then moves speed and steering
linearly to their clipped end values v1 = clip(v + a dt), delta1 = clip(delta + omega dt) (so the speed and
steering limits hold exactly), and integrates the pose with classical RK4 along those linear profiles. A control
is held for ``control_period`` integration steps (zero-order hold). The footprint is a rectangle covered by
``n_discs`` equal discs along the body axis (a conservative cover used by every collision check).
"""
from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields

import numpy as np
import torch
from torch import Tensor

from ...core.errors import InputError, check_in_range

__all__ = ["CONTROL_DIM", "CONTROL_NAMES", "STATE_DIM", "STATE_NAMES", "Car", "CarParams", "wrap_angle"]

#: x (m), y (m), heading (rad), speed (m/s), steering angle (rad).
STATE_NAMES = ("x", "y", "heading", "speed", "steer")
#: acceleration (m/s^2), steering rate (rad/s).
CONTROL_NAMES = ("accel", "steer_rate")
STATE_DIM = len(STATE_NAMES)
CONTROL_DIM = len(CONTROL_NAMES)


def wrap_angle(a: Tensor) -> Tensor:
    """Angles wrapped to [-pi, pi) (pi itself maps to -pi)."""
    return a - 2 * math.pi * torch.floor((a + math.pi) / (2 * math.pi))


@dataclass(frozen=True)
class CarParams:
    """Geometry, limits and integration rate of the car (SI units)."""

    wheelbase: float = 0.3          # L, m
    length: float = 0.45            # body length, m
    width: float = 0.25             # body width, m
    rear_overhang: float = 0.075    # body rear edge behind the rear axle, m
    min_speed: float = -1.0         # m/s (negative: reversing allowed)
    max_speed: float = 2.0          # m/s
    max_steer: float = 0.6          # rad
    max_accel: float = 2.0          # m/s^2 (|a| bound)
    max_steer_rate: float = 2.0     # rad/s (|omega| bound)
    dt: float = 0.05                # integration step, s
    control_period: int = 2         # integration steps per held control
    n_discs: int = 2                # discs covering the footprint

    def __post_init__(self) -> None:
        for name in ("wheelbase", "length", "width", "max_speed", "max_steer", "max_accel", "max_steer_rate", "dt"):
            check_in_range(f"robot.{name}", getattr(self, name), 0.0, low_open=True)
        check_in_range("robot.max_steer", self.max_steer, 0.0, math.pi / 2, low_open=True, high_open=True)
        check_in_range("robot.min_speed", self.min_speed, None, self.max_speed)
        check_in_range("robot.rear_overhang", self.rear_overhang, 0.0, self.length)
        for name in ("control_period", "n_discs"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v != int(v) or v < 1:
                raise InputError(f"robot.{name}: must be an integer >= 1, got {v!r}")
            object.__setattr__(self, name, int(v))          # 2.0 from a YAML file is the count 2
        # collision checks test the body at the integration steps, grown by the sweep margin: beyond the car's
        # length they would call nearly everything colliding (dt: 10 s gave a start "in collision by 11 m")
        sweep = self.sweep_margin
        if not (math.isfinite(sweep) and sweep <= self.length):
            fast = "robot.max_speed" if self.max_speed >= -self.min_speed else "robot.min_speed"
            step = max(self.max_speed, -self.min_speed) * self.dt
            raise InputError(f"robot.dt / {fast}: the car moves up to {step:.3g} m per integration step, so its body "
                             f"can leave the collision discs checked at the steps by {sweep:.3g} m, more than its "
                             f"length {self.length} m; use a smaller dt or speed limit")

    @classmethod
    def from_dict(cls, d: Mapping | None) -> CarParams:
        if d is not None and not isinstance(d, Mapping):
            raise InputError(f"robot: expected a mapping of car parameters (wheelbase: 0.3, ...), got "
                             f"{type(d).__name__} {d!r:.60}")
        d = dict(d or {})
        known = {f.name for f in fields(cls)}
        bad = sorted(set(map(str, d)) - known)
        if bad:
            raise InputError(f"robot.{bad[0]}: unknown key; allowed: {', '.join(sorted(known))}")
        return cls(**d)

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def control_dt(self) -> float:
        """Duration of one held control, s."""
        return self.dt * self.control_period

    @property
    def disc_radius(self) -> float:
        """Radius of each covering disc, m."""
        half_seg = self.length / (2 * self.n_discs)
        return math.hypot(half_seg, self.width / 2)

    @property
    def disc_offsets(self) -> tuple[float, ...]:
        """Distances of the disc centres ahead of the rear axle along the body axis, m."""
        seg = self.length / self.n_discs
        return tuple(-self.rear_overhang + seg * (k + 0.5) for k in range(self.n_discs))

    @property
    def min_turn_radius(self) -> float:
        return self.wheelbase / math.tan(self.max_steer)

    @property
    def sweep_margin(self) -> float:
        """How far the body can leave the covering discs of the two integration steps around it while it moves
        between them, m (about 0.01 for the defaults, in a turn at full speed). Collision checks see the discs at
        the steps only, so they add this to the disc radius: a clear check then clears the whole swept body."""
        return _sweep_margin(self)


def _clipped_cumsum(v0: Tensor, du: Tensor, lo: Tensor, hi: Tensor, cache: dict | None = None) -> Tensor:
    """v0 (B, 2), du (B, T, 2) -> (B, T + 1, 2): v[0] = v0, v[k + 1] = max(min(v[k] + du[:, k], hi), lo).

    The recursion is sequential in time. On the CPU (no autograd) it runs as NumPy ufuncs written in place into
    one time-major buffer (three calls of ~1 us per step instead of three torch ops and a list to stack); the
    elementwise float arithmetic is the same, so the values are bitwise those of the torch loop below."""
    if _plain_cpu(v0, du):
        b, t = du.shape[0], du.shape[1]
        buf = torch.empty((t + 1, b, v0.shape[1]), dtype=v0.dtype)
        a, d = buf.numpy(), du.transpose(0, 1).contiguous().numpy()      # (no autograd: no detach needed)
        key = (v0.dtype, "np_bounds")
        if cache is None or key not in cache or cache[key][0] is not lo or cache[key][1] is not hi:
            bounds = (lo, hi, lo.numpy(), hi.numpy())
            if cache is not None:
                cache[key] = bounds
        else:
            bounds = cache[key]
        lo_np, hi_np = bounds[2], bounds[3]
        buf[0] = v0
        rows, incs = list(a), list(d)                  # (B, 2) views, made once
        add, mn, mx = np.add, np.minimum, np.maximum
        for k in range(t):
            x = rows[k + 1]
            add(rows[k], incs[k], out=x)
            mn(x, hi_np, out=x)
            mx(x, lo_np, out=x)
        return buf.transpose(0, 1)
    vd = [v0]
    for k in range(du.shape[1]):
        vd.append(torch.maximum(torch.minimum(vd[-1] + du[:, k], hi), lo))
    return torch.stack(vd, dim=1)


_NP_OK = (torch.float32, torch.float64)
_wrapped = getattr(getattr(torch._C, "_functorch", None), "is_functorch_wrapped_tensor", None)


def _plain_cpu(v0: Tensor, du: Tensor) -> bool:
    """Whether the NumPy recursion gives exactly the torch loop's result: CPU tensors of one float32/float64
    dtype, in inference mode (no autograd of either kind), none of them a torch.func (vmap / jvp) wrapper."""
    return (torch.is_inference_mode_enabled() and v0.device.type == "cpu" and du.device.type == "cpu"
            and v0.dtype == du.dtype and v0.dtype in _NP_OK
            and not (_wrapped is not None and (_wrapped(v0) or _wrapped(du))))


@functools.lru_cache(maxsize=16)
def _sweep_margin(p: CarParams, substeps: int = 16, safety: float = 1.25) -> float:
    """Largest distance from a body-outline point at a time between two integration steps to the covering discs
    of both steps, minus the disc radius, over the extreme speeds, steering angles and controls (each step
    integrated in ``substeps`` sub-steps of the same dynamics), times ``safety`` for the grid's gaps."""
    car = Car(p)
    vs = sorted({p.min_speed, 0.0, p.max_speed})
    ds, acc, rates = (-p.max_steer, 0.0, p.max_steer), (-p.max_accel, 0.0, p.max_accel), \
        (-p.max_steer_rate, 0.0, p.max_steer_rate)
    grid = torch.tensor([[0.0, 0.0, 0.0, v, d, a, w] for v in vs for d in ds for a in acc for w in rates],
                        dtype=torch.float64)
    s, u = grid[:, :5], grid[:, 5:]
    path = [s]
    for _ in range(substeps):
        s = car.step(s, u, dt=p.dt / substeps)
        path.append(s)
    path = torch.stack(path, 1)                                        # (C, substeps + 1, 5)
    x0, x1, w2 = -p.rear_overhang, p.length - p.rear_overhang, p.width / 2
    t = torch.linspace(0, 1, 41, dtype=torch.float64)
    outline = torch.cat([torch.stack([x0 + (x1 - x0) * t, torch.full_like(t, -w2)], -1),
                         torch.stack([x0 + (x1 - x0) * t, torch.full_like(t, w2)], -1),
                         torch.stack([torch.full_like(t, x0), -w2 + 2 * w2 * t], -1),
                         torch.stack([torch.full_like(t, x1), -w2 + 2 * w2 * t], -1)])   # (P, 2), body frame
    mid = path[:, 1:-1]                                                # (C, S, 5) states between the steps
    c, sn = torch.cos(mid[..., 2:3]), torch.sin(mid[..., 2:3])
    px = mid[..., None, 0] + outline[:, 0] * c - outline[:, 1] * sn    # (C, S, P)
    py = mid[..., None, 1] + outline[:, 0] * sn + outline[:, 1] * c
    ends = car.disc_centres(torch.stack([path[:, 0], path[:, -1]], 1)).reshape(len(grid), -1, 2)   # (C, 2n, 2)
    pts = torch.stack([px, py], -1).reshape(len(grid), -1, 2)           # (C, S * P, 2)
    gap = torch.cdist(pts, ends).min(-1).values.max() - p.disc_radius
    return max(0.0, float(gap)) * safety


class Car:
    """Batched dynamics of ``CarParams``. States (..., 5) and controls (..., 2) in SI units."""

    def __init__(self, params: CarParams | None = None) -> None:
        self.p = params if params is not None else CarParams()

    @property
    def p(self) -> CarParams:
        return self._p

    @p.setter
    def p(self, params: CarParams) -> None:
        self._p = params
        # per (device, dtype): RK4 stage bookkeeping for ``step`` (see its docstring), disc offsets, control scale,
        # all made from the parameters: new parameters start a new cache
        self._consts: dict[tuple, tuple[Tensor, ...]] = {}

    def _const(self, name: str, values: tuple[float, ...], like: Tensor) -> Tensor:
        """``values`` as a tensor on ``like``'s device and dtype, made once per (name, device, dtype)."""
        key = (like.device, like.dtype, name)
        if key not in self._consts:
            self._consts[key] = (torch.tensor(values, device=like.device, dtype=like.dtype),)
        return self._consts[key][0]

    # -- bounds --------------------------------------------------------------------------------
    def control_bounds(self, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> Tensor:
        """(2, 2) rows (low, high) of (accel, steer_rate)."""
        p = self.p
        return torch.tensor([[-p.max_accel, -p.max_steer_rate], [p.max_accel, p.max_steer_rate]],
                            device=device, dtype=dtype)

    def control_box(self, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> tuple[Tensor, Tensor]:
        """(low (2,), high - low (2,)) of (accel, steer_rate), made once per device and dtype (treat as read-only):
        the rows of ``control_bounds`` and their difference."""
        key = (torch.device(device), dtype, "box")
        if key not in self._consts:
            lo, hi = self.control_bounds(device, dtype)
            self._consts[key] = (lo, hi - lo)
        return self._consts[key]

    def normalize_controls(self, u: Tensor) -> Tensor:
        """Controls -> [-1, 1] per channel."""
        scale = torch.tensor([self.p.max_accel, self.p.max_steer_rate], device=u.device, dtype=u.dtype)
        return u / scale

    def denormalize_controls(self, z: Tensor) -> Tensor:
        """[-1, 1] -> controls (clipped to the bounds)."""
        return z.clamp(-1.0, 1.0) * self._const("scale", (self.p.max_accel, self.p.max_steer_rate), z)

    # -- integration ---------------------------------------------------------------------------
    def step(self, s: Tensor, u: Tensor, dt: float | None = None) -> Tensor:
        """One integration step: s (..., 5), u (..., 2) -> (..., 5).

        The heading rate depends only on speed and steering, which move linearly over the step, so the four RK4
        stage headings are theta, theta + h/2 k1, theta + h/2 k2, theta + h k2 with k1 = v tan(delta) / L,
        k2 = k3 at the mid-step values and k4 at the end values; the pose update uses them in one batched call.
        """
        p = self.p
        h = p.dt if dt is None else float(dt)
        lo, hi, vlo, vhi, idx_stage, c_stage, idx_speed, w_speed, w_theta = self._constants(s)
        vd = s[..., 3:5]
        vd1 = torch.maximum(torch.minimum(vd + torch.maximum(torch.minimum(u, hi), lo) * h, vhi), vlo)
        prof = torch.stack([vd, 0.5 * (vd + vd1), vd1], dim=-2)           # (..., 3, 2): start, mid, end
        rate = prof[..., 0] * torch.tan(prof[..., 1]) * (1.0 / p.wheelbase)  # (..., 3): k1, k2 = k3, k4
        ang = s[..., 2:3] + (h * c_stage) * rate[..., idx_stage]
        wv = prof[..., idx_speed, 0] * (h * w_speed)                        # (..., 4)
        trig = torch.stack([torch.cos(ang), torch.sin(ang)], dim=-2)       # (..., 2, 4)
        dxy = (trig * wv.unsqueeze(-2)).sum(-1)                             # (..., 2)
        th1 = wrap_angle(s[..., 2:3] + h * (rate * w_theta).sum(-1, keepdim=True))
        return torch.cat([s[..., 0:2] + dxy, th1, vd1], dim=-1)

    def _constants(self, s: Tensor) -> tuple[Tensor, ...]:
        key = (s.device, s.dtype)
        if key not in self._consts:
            p = self.p
            f = {"device": s.device, "dtype": s.dtype}
            self._consts[key] = (
                torch.tensor([-p.max_accel, -p.max_steer_rate], **f), torch.tensor([p.max_accel, p.max_steer_rate], **f),
                torch.tensor([p.min_speed, -p.max_steer], **f), torch.tensor([p.max_speed, p.max_steer], **f),
                torch.tensor([0, 0, 1, 1], device=s.device), torch.tensor([0.0, 0.5, 0.5, 1.0], **f),
                torch.tensor([0, 1, 1, 2], device=s.device),
                torch.tensor([1.0, 2.0, 2.0, 1.0], device=s.device, dtype=torch.float64).div(6).to(s.dtype),
                torch.tensor([1.0, 4.0, 1.0], device=s.device, dtype=torch.float64).div(6).to(s.dtype))
        return self._consts[key]

    def _scaled(self, s: Tensor, h: float, c_stage: Tensor, w_speed: Tensor) -> tuple[Tensor, ...]:
        """(h * c_stage, h * w_speed), computed once per (device, dtype, h) by the same products."""
        key = (s.device, s.dtype, "scaled", h)
        if key not in self._consts:
            self._consts[key] = (h * c_stage, h * w_speed)
        return self._consts[key]

    def rollout(self, s0: Tensor, controls: Tensor) -> Tensor:
        """Hold each control for ``control_period`` steps.

        s0: (B, 5); controls: (B, K, 2). Returns (B, K * control_period + 1, 5), the start state first.
        """
        if s0.dim() != 2 or controls.dim() != 3 or controls.shape[0] != s0.shape[0]:
            raise InputError(f"rollout: expected s0 (B, 5) and controls (B, K, 2), got {tuple(s0.shape)} and "
                             f"{tuple(controls.shape)}")
        return self.simulate(s0, self.expand_controls(controls))

    def expand_controls(self, controls: Tensor) -> Tensor:
        """(B, K, 2) held controls -> (B, K * control_period, 2), one per integration step."""
        return controls.repeat_interleave(self.p.control_period, dim=1)

    def simulate(self, s0: Tensor, step_controls: Tensor) -> Tensor:
        """Integrate with one control per integration step: s0 (B, 5), step_controls (B, T, 2) -> (B, T+1, 5).

        The same arithmetic as ``T`` calls of ``step``, vectorised over time: only speed and steering need a loop
        (their clipping is sequential); the heading increments depend on them alone, and the position increments
        on them and the headings, so both are cumulative sums. Headings are wrapped once at the end (``step``
        wraps after every step; the two agree modulo 2 pi to rounding).
        """
        if s0.dim() != 2 or step_controls.dim() != 3 or step_controls.shape[0] != s0.shape[0]:
            raise InputError(f"simulate: expected s0 (B, 5) and step_controls (B, T, 2), got {tuple(s0.shape)} "
                             f"and {tuple(step_controls.shape)}")
        p, h = self.p, self.p.dt
        lo, hi, vlo, vhi, idx_stage, c_stage, idx_speed, w_speed, w_theta = self._constants(s0)
        # clamp(x, lo, hi) = min(max(x, lo), hi) equals max(min(x, hi), lo) for lo <= hi (NaN stays NaN): one call
        du = torch.clamp(step_controls, lo, hi) * h                            # (B, T, 2)
        vd = _clipped_cumsum(s0[:, 3:5], du, vlo, vhi, self._consts)           # (B, T + 1, 2)
        v0, v1 = vd[:, :-1], vd[:, 1:]
        prof = torch.stack([v0, 0.5 * (v0 + v1), v1], dim=-2)                  # (B, T, 3, 2)
        rate = prof[..., 0] * torch.tan(prof[..., 1]) * (1.0 / p.wheelbase)    # (B, T, 3)
        dth = h * (rate * w_theta).sum(-1)                                     # (B, T)
        th = torch.cumsum(torch.cat([s0[:, 2:3], dth], dim=1), dim=1)          # (B, T + 1), unwrapped
        # index_select copies the same entries as advanced indexing (rate[..., idx_stage]), at a fraction of the cost
        hc_stage, hw_speed = self._scaled(s0, h, c_stage, w_speed)                 # h c_stage, h w_speed
        ang = th[:, :-1, None] + hc_stage * rate.index_select(-1, idx_stage)     # (B, T, 4) stage headings
        wv = prof[..., 0].index_select(-1, idx_speed) * hw_speed                 # (B, T, 4)
        dxy = torch.stack([(torch.cos(ang) * wv).sum(-1), (torch.sin(ang) * wv).sum(-1)], dim=-1)
        xy = torch.cumsum(torch.cat([s0[:, None, 0:2], dxy], dim=1), dim=1)    # (B, T + 1, 2)
        return torch.cat([xy, wrap_angle(th)[..., None], vd], dim=-1)

    # -- footprint -----------------------------------------------------------------------------
    def disc_centres(self, s: Tensor) -> Tensor:
        """(..., 5) states -> (..., n_discs, 2) centres of the covering discs."""
        offs = self._const("discs", self.p.disc_offsets, s)
        c, sn = torch.cos(s[..., 2:3]), torch.sin(s[..., 2:3])
        return torch.stack([s[..., 0:1] + offs * c, s[..., 1:2] + offs * sn], dim=-1)

    # -- scalar version (for callbacks of C++ planners such as OMPL) ----------------------------
    def step_scalar(self, x: float, y: float, th: float, v: float, d: float, a: float, w: float,
                    dt: float | None = None) -> tuple[float, float, float, float, float]:
        """``step`` on Python floats (float64), the same arithmetic without tensor overhead."""
        p = self.p
        h = p.dt if dt is None else dt
        a = min(max(a, -p.max_accel), p.max_accel)
        w = min(max(w, -p.max_steer_rate), p.max_steer_rate)
        v1 = min(max(v + a * h, p.min_speed), p.max_speed)
        d1 = min(max(d + w * h, -p.max_steer), p.max_steer)
        dv, dd, inv_l = v1 - v, d1 - d, 1.0 / p.wheelbase
        cos, sin, tan = math.cos, math.sin, math.tan
        vm, dm = v + 0.5 * dv, d + 0.5 * dd
        k1t = v * tan(d) * inv_l
        t2 = th + 0.5 * h * k1t
        k2t = vm * tan(dm) * inv_l
        t3 = th + 0.5 * h * k2t
        k3t = k2t
        t4 = th + h * k3t
        k4t = v1 * tan(d1) * inv_l
        x1 = x + h / 6 * (v * cos(th) + 2 * vm * cos(t2) + 2 * vm * cos(t3) + v1 * cos(t4))
        y1 = y + h / 6 * (v * sin(th) + 2 * vm * sin(t2) + 2 * vm * sin(t3) + v1 * sin(t4))
        th1 = th + h / 6 * (k1t + 2 * k2t + 2 * k3t + k4t)
        th1 = th1 - 2 * math.pi * math.floor((th1 + math.pi) / (2 * math.pi))
        return x1, y1, th1, v1, d1
