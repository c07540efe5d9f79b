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

__all__ = ["REFERENCES", "ZeroDrift", "build_reference", "check_reference_kwargs", "check_reference_module",
           "is_parametric", "reference_params"]


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
    """``InputError`` unless ``kwargs`` build the reference ``name`` for ``dim``-dimensional data with finite numbers
    only, naming ``reference_kwargs.<key>`` (the key the reference cannot be built with; a builder's or torch's
    ``ValueError`` / ``RuntimeError`` would name none) or the builder's own field: what ``MMSB``, the CLI and the
    workflow check before any work."""
    import math

    def numbers(v: Any) -> list[float]:
        if isinstance(v, dict):
            return [x for u in v.values() for x in numbers(u)]
        if isinstance(v, (list, tuple)):
            return [x for u in v for x in numbers(u)]
        return [float(v)] if isinstance(v, (int, float)) and not isinstance(v, bool) else []

    def fails(kw: dict[str, Any]) -> Exception | None:
        try:
            build_reference(name, dim, None, **dict(kw))
        except InputError:             # names its own field (the registry's names an unknown key)
            raise
        except (ValueError, RuntimeError) as e:      # a builder's or torch's own error names no field
            return e
        return None

    for key, value in kwargs.items():
        if any(not math.isfinite(x) for x in numbers(value)):
            raise InputError(f"reference_kwargs.{key}: must be finite, got {value!r}")
    err = fails(kwargs) if kwargs else None
    if err is not None:                # name the first key the reference cannot be built with alone
        key = next((f".{k}" for k, v in kwargs.items() if fails({k: v}) is not None), "")
        raise InputError(f"reference_kwargs{key}: the {name} reference cannot be built for {dim}-D data with "
                         f"{kwargs!r}: {err}") from None


def check_reference_module(module: nn.Module, x: Tensor) -> None:
    """``InputError`` naming ``reference`` unless the custom drift ``module`` maps a few rows of ``x`` (N, d),
    float64 data on the model's device, to a tensor of the same shape (B, d) -> (B, d), real and finite: a module
    of the wrong shape would otherwise fail deep inside the bridge step. Probed without gradients on up to 3 rows
    (a row count other than d, so that a transposed output does not pass), in eval mode."""
    d = x.shape[-1]
    rows = 3 if d == 2 else 2
    probe = x[torch.arange(rows, device=x.device) % x.shape[0]]
    where = f"on a ({rows}, {d}) float64 batch of snapshot rows"
    training = module.training
    module.eval()                      # no running statistics or dropout state changed by the probe
    try:
        with torch.no_grad():
            out = module(probe)
    except Exception as e:  # noqa: BLE001 - a user's module may raise anything; say which argument it was
        raise InputError(f"reference: the custom module failed {where}: {type(e).__name__}: {e}") from None
    finally:
        module.train(training)
    if not torch.is_tensor(out):
        raise InputError(f"reference: the custom module must return a tensor (B, d) -> (B, d); {where} it returned "
                         f"{type(out).__name__}")
    if tuple(out.shape) != tuple(probe.shape):
        raise InputError(f"reference: the custom module must map (B, d) -> (B, d) row by row (the drift in data "
                         f"units); {where} it returned shape {tuple(out.shape)}, expected {tuple(probe.shape)}")
    if not out.is_floating_point():
        raise InputError(f"reference: the custom module must return real floating-point drifts; {where} it "
                         f"returned dtype {out.dtype}")
    if out.device != probe.device:
        raise InputError(f"reference: the custom module returned its drift on {out.device}, the data are on "
                         f"{probe.device}")
    if not bool(torch.isfinite(out).all()):
        raise InputError(f"reference: the custom module returned {int((~torch.isfinite(out)).sum())} non-finite "
                         f"value(s) {where}")


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
