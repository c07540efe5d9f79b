"""Registries of stable names -> classes, used by methods' saved configs and by YAML workflows.

``PATHS.build("brownian_bridge", sigma=0.1)`` makes a ``BrownianBridgePath(0.1)``. Layers above core add their
own entries (e.g. a domain's alignment-aware cost) with ``REGISTRY.register(name)(cls)``.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from .couplings import ExactOT, IndependentCoupling, Sinkhorn, squared_euclidean
from .errors import InputError
from .paths import BrownianBridgePath, CosinePath, LinearPath, VPPath
from .solvers import RK4, Dopri5, Euler, EulerMaruyama, Heun, Midpoint

__all__ = ["COSTS", "COUPLINGS", "ODE_SOLVERS", "PATHS", "SOLVERS", "Registry", "check_ode_solver"]

T = TypeVar("T")


class Registry(Generic[T]):
    """A named table of constructors. Unknown names raise an error listing the known ones."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._table: dict[str, Callable[..., T]] = {}

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        def deco(obj: Callable[..., T]) -> Callable[..., T]:
            if name in self._table and self._table[name] is not obj:
                raise InputError(f"{self.kind}: name {name!r} is already registered")
            self._table[name] = obj
            return obj
        return deco

    def get(self, name: str) -> Callable[..., T]:
        if name not in self._table:
            raise InputError(f"{self.kind}: unknown name {name!r}; known: {', '.join(sorted(self._table))}")
        return self._table[name]

    def build(self, name: str, **kwargs: Any) -> T:
        try:
            return self.get(name)(**kwargs)
        except TypeError as e:
            raise InputError(f"{self.kind} {name!r}: bad arguments {sorted(kwargs)}: {e}") from None

    def names(self) -> list[str]:
        return sorted(self._table)

    def __contains__(self, name: object) -> bool:
        return name in self._table


PATHS: Registry[Any] = Registry("path")
COUPLINGS: Registry[Any] = Registry("coupling")
SOLVERS: Registry[Any] = Registry("solver")
COSTS: Registry[Any] = Registry("cost")

for _name, _cls in {"linear": LinearPath, "cond_ot": LinearPath, "brownian_bridge": BrownianBridgePath,
                    "vp": VPPath, "cosine": CosinePath}.items():
    PATHS.register(_name)(_cls)
for _name, _cls in {"independent": IndependentCoupling, "exact_ot": ExactOT, "sinkhorn": Sinkhorn}.items():
    COUPLINGS.register(_name)(_cls)
for _name, _cls in {"euler": Euler, "midpoint": Midpoint, "heun": Heun, "rk4": RK4, "dopri5": Dopri5,
                    "euler_maruyama": EulerMaruyama}.items():
    SOLVERS.register(_name)(_cls)
COSTS.register("squared_euclidean")(lambda: squared_euclidean)
#: the solvers of deterministic flows (the rest integrate SDEs and need a diffusion)
ODE_SOLVERS = ("euler", "midpoint", "heun", "rk4", "dopri5")


def check_ode_solver(name: Any, sampler: str) -> str:
    """``name`` if it is a registered ODE solver; an unknown name, or an SDE solver (it needs a diffusion that a
    deterministic flow does not have), raises an InputError naming ``solver`` (``sampler`` says who samples)."""
    SOLVERS.get(name)
    if name not in ODE_SOLVERS:
        raise InputError(f"solver: {name} integrates an SDE; {sampler} samples an ODE ({', '.join(ODE_SOLVERS)})")
    return name
