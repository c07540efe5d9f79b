"""Signed-distance-function scenes for subsurface rendering: shapes, a homogeneous medium, one directional
light and a pinhole camera. Lengths are in scene units; the medium's density is given as the optical radius
sigma_r = sigma_t * (the shape's characteristic radius), so scenes at different densities share one geometry.

The boundary is index-matched (no refraction or Fresnel reflection), as with Mitsuba's ``null`` BSDF.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ...core.errors import InputError, check_finite, check_in_range, check_shape
from .conditions import check_conditions

__all__ = [
    "SCENES",
    "Box",
    "DirectionalLight",
    "Medium",
    "PinholeCamera",
    "SDFShape",
    "Scene",
    "SmoothUnion",
    "Sphere",
    "make_scene",
]

_BIG = 1e30


def _dot(a: Tensor, b: Tensor) -> Tensor:
    return (a * b).sum(-1)


class SDFShape:
    """A solid given by its signed distance (negative inside, 1-Lipschitz). Subclasses may override the
    ray queries with exact ones; the defaults sphere-trace the SDF."""

    convex = False
    radius = 1.0          # characteristic radius (the density's length scale)
    eps = 1e-5

    def sdf(self, p: Tensor) -> Tensor:
        raise NotImplementedError

    def _on(self, name: str, like: Tensor) -> Tensor:
        """``getattr(self, name).to(like)``, kept per (device, dtype): the geometry queries run thousands of
        times per render, and a fresh copy to an accelerator each time is a blocking host-to-device upload.
        A cached copy is dropped when the attribute is reassigned or changed in place (not when it is written
        through ``.data``, which torch does not count as a change)."""
        src = getattr(self, name)
        cache = self.__dict__.setdefault("_device_copies", {})
        key = (name, like.device, like.dtype)
        hit = cache.get(key)
        if hit is not None and hit[0] is src and hit[1] == src._version:
            return hit[2]
        with torch.inference_mode(False):        # a copy made under inference mode must serve outside it too
            out = src.to(like)
        cache[key] = (src, src._version, out)
        return out

    def __getstate__(self) -> dict:
        # the device copies are a cache: a pickled shape must not carry (or need) the accelerator
        return {k: v for k, v in self.__dict__.items() if k != "_device_copies"}

    def bound(self) -> tuple[Tensor, float]:
        """Centre and radius of a bounding sphere."""
        raise NotImplementedError

    def intersect(self, o: Tensor, d: Tensor) -> Tensor:
        """(B,) distance along rays from outside points to the first surface hit (inf when missed)."""
        c, rad = self.bound()
        c = c.to(o)
        oc = o - c
        b = _dot(oc, d)
        disc = b * b - (_dot(oc, oc) - rad * rad)
        t = (-b - torch.sqrt(disc.clamp_min(0))).clamp_min(0)
        t_far = -b + torch.sqrt(disc.clamp_min(0))
        active = disc > 0
        for _ in range(256):
            if not bool(active.any()):
                break
            dist = self.sdf(o + t.unsqueeze(-1) * d)
            hit = dist < self.eps
            active = active & ~hit & (t < t_far)
            t = torch.where(active, t + dist.clamp_min(0), t)
        dist = self.sdf(o + t.unsqueeze(-1) * d)
        return torch.where((dist < 10 * self.eps) & (disc > 0) & (t <= t_far), t, torch.full_like(t, math.inf))

    def exit_distance(self, x: Tensor, d: Tensor) -> Tensor:
        """(B,) distance along rays from inside points to the boundary (marching with |sdf|)."""
        t = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        active = torch.ones_like(t, dtype=torch.bool)
        for _ in range(512):
            dist = -self.sdf(x + t.unsqueeze(-1) * d)
            active = active & (dist > self.eps)
            if not bool(active.any()):
                break
            t = torch.where(active, t + dist, t)
        return t


class Sphere(SDFShape):
    convex = True

    def __init__(self, center: tuple[float, float, float] = (0.0, 0.0, 0.0), radius: float = 1.0) -> None:
        self.center = torch.tensor(center, dtype=torch.float64)
        self.radius = check_in_range("radius", radius, 0.0, low_open=True)

    def sdf(self, p: Tensor) -> Tensor:
        return (p - self._on("center", p)).norm(dim=-1) - self.radius

    def bound(self) -> tuple[Tensor, float]:
        return self.center, self.radius * 1.001

    def intersect(self, o: Tensor, d: Tensor) -> Tensor:
        oc = o - self._on("center", o)
        b = _dot(oc, d)
        disc = b * b - (_dot(oc, oc) - self.radius ** 2)
        t = -b - torch.sqrt(disc.clamp_min(0))
        return torch.where((disc > 0) & (t > 0), t, torch.full_like(t, math.inf))

    def exit_distance(self, x: Tensor, d: Tensor) -> Tensor:
        oc = x - self._on("center", x)
        b = _dot(oc, d)
        disc = b * b - (_dot(oc, oc) - self.radius ** 2)
        return (-b + torch.sqrt(disc.clamp_min(0))).clamp_min(0)


class Box(SDFShape):
    convex = True

    def __init__(self, center: tuple[float, float, float] = (0.0, 0.0, 0.0),
                 half_size: tuple[float, float, float] = (0.8, 0.8, 0.8)) -> None:
        self.center = torch.tensor(center, dtype=torch.float64)
        self.half = torch.tensor(half_size, dtype=torch.float64)
        if bool((self.half <= 0).any()):
            raise InputError(f"half_size: every entry must be > 0, got {half_size}")
        self.radius = float(self.half.min())

    def sdf(self, p: Tensor) -> Tensor:
        q = (p - self._on("center", p)).abs() - self._on("half", p)
        return q.clamp_min(0).norm(dim=-1) + q.max(dim=-1).values.clamp_max(0)

    def bound(self) -> tuple[Tensor, float]:
        return self.center, float(self.half.norm()) * 1.001

    def _slabs(self, o: Tensor, d: Tensor) -> tuple[Tensor, Tensor]:
        inv = 1.0 / torch.where(d.abs() < 1e-12, torch.full_like(d, 1e-12), d)
        lo = (self._on("center", o) - self._on("half", o) - o) * inv
        hi = (self._on("center", o) + self._on("half", o) - o) * inv
        return torch.minimum(lo, hi).max(-1).values, torch.maximum(lo, hi).min(-1).values

    def intersect(self, o: Tensor, d: Tensor) -> Tensor:
        t0, t1 = self._slabs(o, d)
        return torch.where((t1 >= t0) & (t0 > 0), t0, torch.full_like(t0, math.inf))

    def exit_distance(self, x: Tensor, d: Tensor) -> Tensor:
        return self._slabs(x, d)[1].clamp_min(0)


class SmoothUnion(SDFShape):
    """Union of two shapes blended with the quadratic smooth minimum of radius ``k`` (1-Lipschitz)."""

    def __init__(self, a: SDFShape, b: SDFShape, k: float = 0.3) -> None:
        self.a, self.b = a, b
        self.k = check_in_range("k", k, 0.0, low_open=True)
        self.radius = min(a.radius, b.radius)

    def sdf(self, p: Tensor) -> Tensor:
        da, db = self.a.sdf(p), self.b.sdf(p)
        h = (self.k - (da - db).abs()).clamp_min(0) / self.k
        return torch.minimum(da, db) - h * h * self.k * 0.25

    def bound(self) -> tuple[Tensor, float]:
        ca, ra = self.a.bound()
        cb, rb = self.b.bound()
        c = 0.5 * (ca + cb)
        return c, float(max((ca - c).norm() + ra, (cb - c).norm() + rb)) + self.k


@dataclass(frozen=True)
class Medium:
    """Homogeneous medium: extinction sigma_t (1 / scene unit), single-scattering albedo, HG anisotropy g."""

    sigma_t: float
    albedo: float
    g: float

    def __post_init__(self) -> None:
        check_conditions(self.sigma_t, self.g, self.albedo, names=("medium.sigma_t", "medium.g", "medium.albedo"))


@dataclass(frozen=True)
class DirectionalLight:
    """Light travelling along ``direction`` with irradiance ``irradiance`` on a surface facing it."""

    direction: tuple[float, float, float] = (-0.6, -0.3, -0.74)
    irradiance: float = 3.0

    def __post_init__(self) -> None:
        d = _vector("light.direction", self.direction)
        if float(np.linalg.norm(d)) < 1e-12:
            raise InputError(f"light.direction: must be a non-zero vector, got {tuple(self.direction)}")
        check_in_range("light.irradiance", self.irradiance, 0.0)

    def to_light(self, dtype: torch.dtype = torch.float64, device: torch.device | str = "cpu") -> Tensor:
        d = torch.tensor(self.direction, dtype=dtype, device=device)
        return -d / d.norm()


@dataclass(frozen=True)
class PinholeCamera:
    """Perspective camera at ``origin`` looking at ``target``; ``fov`` (degrees) spans the image width."""

    origin: tuple[float, float, float] = (0.0, 0.0, 4.0)
    target: tuple[float, float, float] = (0.0, 0.0, 0.0)
    up: tuple[float, float, float] = (0.0, 1.0, 0.0)
    fov: float = 40.0
    width: int = 64
    height: int = 64

    def __post_init__(self) -> None:
        for name in ("width", "height"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise InputError(f"camera.{name}: must be a whole number of pixels >= 1, got {v!r}")
        check_in_range("fov", self.fov, 0.0, 180.0, low_open=True, high_open=True)
        o, t, up = (_vector(f"camera.{k}", getattr(self, k)) for k in ("origin", "target", "up"))
        f = t - o
        if float(np.linalg.norm(f)) < 1e-12:
            raise InputError(f"camera.target: must differ from camera.origin, both are {tuple(self.origin)}")
        if float(np.linalg.norm(np.cross(up, f))) <= 1e-9 * float(np.linalg.norm(up) * np.linalg.norm(f)):
            raise InputError(f"camera.up: must not be zero or parallel to the viewing direction, got {tuple(self.up)}")

    def rays(self, pixel: Tensor, jitter: Tensor, dtype: torch.dtype = torch.float64) -> tuple[Tensor, Tensor]:
        """Origins and unit directions (B, 3) through pixels (B,) (row-major, row 0 at the top) at sub-pixel
        offsets ``jitter`` (B, 2) in [0, 1)."""
        dev = pixel.device
        o = torch.tensor(self.origin, dtype=dtype, device=dev)
        f = torch.tensor(self.target, dtype=dtype, device=dev) - o
        f = f / f.norm()
        up = torch.tensor(self.up, dtype=dtype, device=dev)
        right = torch.linalg.cross(up, f)        # +x on screen is to the camera's left-handed right (Mitsuba)
        right = right / right.norm()
        true_up = torch.linalg.cross(f, right)
        tan = math.tan(math.radians(self.fov) / 2)
        row = torch.div(pixel, self.width, rounding_mode="floor").to(dtype)
        col = (pixel % self.width).to(dtype)
        sx = ((col + jitter[:, 0]) / self.width * 2 - 1) * tan
        sy = (1 - (row + jitter[:, 1]) / self.height * 2) * tan * self.height / self.width
        d = f + sx.unsqueeze(-1) * -right + sy.unsqueeze(-1) * true_up
        return o.expand(pixel.shape[0], 3), d / d.norm(dim=-1, keepdim=True)


@dataclass(frozen=True)
class Scene:
    shape: SDFShape
    medium: Medium
    light: DirectionalLight = field(default_factory=DirectionalLight)
    camera: PinholeCamera = field(default_factory=PinholeCamera)

    def __post_init__(self) -> None:
        # the tracers start every camera ray outside the medium; from inside they would render black
        if float(self.shape.sdf(torch.tensor([self.camera.origin], dtype=torch.float64))[0]) <= 0:
            raise InputError(f"camera.origin: {tuple(self.camera.origin)} lies inside the medium's shape; "
                             "place the camera outside it")


def _vector(name: str, v: Any) -> np.ndarray:
    try:
        t = torch.as_tensor(v, dtype=torch.float64)
    except (TypeError, ValueError):
        raise InputError(f"{name}: expected 3 numbers, got {v!r}") from None
    return check_finite(name, check_shape(name, t, (3,))).numpy()


SCENES = ("sphere", "box", "blob")


def make_scene(name: str = "sphere", *, sigma_r: float = 64.0, albedo: float = 0.999, g: float = 0.5,
               width: int = 64, height: int = 64, light: DirectionalLight | None = None) -> Scene:
    """A named scene whose medium has optical radius ``sigma_r`` (sigma_t times the shape's radius)."""
    if name == "sphere":
        shape: SDFShape = Sphere((0.0, 0.0, 0.0), 1.0)
    elif name == "box":
        shape = Box((0.0, 0.0, 0.0), (0.8, 0.8, 0.8))
    elif name == "blob":
        shape = SmoothUnion(Sphere((-0.35, 0.15, 0.0), 0.7), Box((0.45, -0.25, 0.0), (0.45, 0.45, 0.45)), k=0.35)
    else:
        raise InputError(f"scene: unknown scene {name!r}; known: {', '.join(SCENES)}")
    check_in_range("sigma_r", sigma_r, 0.0, low_open=True)
    medium = Medium(sigma_t=float(sigma_r) / shape.radius, albedo=float(albedo), g=float(g))
    return Scene(shape, medium, light or DirectionalLight(), PinholeCamera(width=width, height=height))
