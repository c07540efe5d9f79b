"""Reference drift classes by stable name, and the zero drift of vanilla Schrödinger bridges.

``build_reference("lotka_volterra", dim=2, alpha=0.8)`` makes a drift module; any torch module mapping
(B, d) -> (B, d) row by row can be passed to ``MMSB`` instead of a name.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ...core.errors import InputError
from ...core.registry import Registry
from ...domains.cells.dynamics import (
    Drift,
    GradientMLPDrift,
    LinearDrift,
    LotkaVolterra,
    MLPDrift,
    Repressilator,
)
from ...domains.cells.snapshots import Standardizer

__all__ = ["REFERENCES", "ZeroDrift", "build_reference", "check_reference_kwargs", "is_parametric",
           "reference_params"]


class ZeroDrift(Drift):
    """f = 0: the Brownian reference of a vanilla Schrödinger bridge (nothing to fit)."""

    parametric = True

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = int(dim)

    def forward(self, x: Tensor) -> Tensor:
        return torch.zeros_like(x)

    def params(self) -> dict[str, float]:
        return {}


REFERENCES: Registry[Any] = Registry("reference")


def _lv(dim: int, **kw: Any) -> LotkaVolterra:
    if dim != 2:
        raise InputError(f"reference: lotka_volterra needs 2-D data (prey, predator), got dim={dim}")
    return LotkaVolterra(**kw)


def _with_standardizer(cls: type) -> Any:
    def build(dim: int, standardizer: Standardizer | None = None, **kw: Any) -> Drift:
        if "hidden" in kw:
            kw["hidden"] = tuple(kw["hidden"])
        return cls(dim, standardizer=standardizer, **kw)
    return build


REFERENCES.register("lotka_volterra")(_lv)
REFERENCES.register("repressilator")(lambda dim, **kw: Repressilator(dim=dim, **kw))
REFERENCES.register("linear")(lambda dim, **kw: LinearDrift(dim, **kw))
REFERENCES.register("mlp_gradient")(_with_standardizer(GradientMLPDrift))
REFERENCES.register("mlp")(_with_standardizer(MLPDrift))
REFERENCES.register("zero")(lambda dim, **kw: ZeroDrift(dim, **kw))

#: References whose parameters have a meaning in data units (no standardisation of their inputs).
MECHANISTIC = ("lotka_volterra", "repressilator")
#: References that are networks (they see standardised inputs).
NETWORKS = ("mlp_gradient", "mlp")


def build_reference(name: str, dim: int, standardizer: Standardizer | None = None, **kwargs: Any) -> nn.Module:
    """A reference drift by name; ``kwargs`` are initial parameters (e.g. ``alpha=1.0``) or network sizes."""
    if name in NETWORKS:
        kwargs["standardizer"] = standardizer
    drift = REFERENCES.build(name, dim=int(dim), **kwargs)
    return drift.to(torch.float64)


def check_reference_kwargs(name: str, dim: int, kwargs: dict[str, Any]) -> None:
    """``InputError`` (``<key>: ...`` or the builder's message) unless ``kwargs`` build the reference ``name`` for
    ``dim``-dimensional data with finite numbers only: what the CLI and the workflow check before any work."""
    import math

    def numbers(v: Any) -> list[float]:
        if isinstance(v, dict):
            return [x for u in v.values() for x in numbers(u)]
        if isinstance(v, (list, tuple)):
            return [x for u in v for x in numbers(u)]
        return [float(v)] if isinstance(v, (int, float)) and not isinstance(v, bool) else []

    for key, value in kwargs.items():
        if any(not math.isfinite(x) for x in numbers(value)):
            raise InputError(f"{key}: must be finite, got {value!r}")
    if kwargs:
        try:
            build_reference(name, dim, None, **dict(kwargs))
        except (TypeError, ValueError) as e:        # an InputError names itself; a builder's own error does not
            if isinstance(e, InputError):
                raise
            raise InputError(f"reference {name!r}: {e}") from None


def is_parametric(drift: nn.Module) -> bool:
    """True for a few named parameters (full-batch quasi-Newton fit), False for a network."""
    if isinstance(drift, Drift):
        return bool(drift.parametric)
    return sum(p.numel() for p in drift.parameters()) <= 64


def reference_params(drift: nn.Module) -> dict[str, Any]:
    """Named parameters in natural units (a drift's ``params()``, else raw tensors as lists)."""
    if isinstance(drift, Drift):
        return drift.params()
    return {k: v.detach().cpu().tolist() for k, v in drift.named_parameters()}
