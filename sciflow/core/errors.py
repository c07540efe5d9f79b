"""Errors and input checks shared by every layer.

Every check names the field and the offending value so a user can fix the input before any work starts.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["InputError", "SciflowError", "UntrainedWarning", "check_bool", "check_count", "check_finite", "check_in_range", "check_shape"]


class SciflowError(Exception):
    """Base class of every error sciflow raises on purpose."""


class InputError(SciflowError, ValueError):
    """Bad user input: wrong shape, non-finite values, out-of-range parameters, malformed files."""


class UntrainedWarning(UserWarning):
    """A method was asked to generate with weights that were never trained (random initialisation)."""


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def check_finite(name: str, x: Tensor) -> Tensor:
    """Raise ``InputError`` naming ``name`` if ``x`` holds NaN or infinity."""
    if not torch.is_tensor(x):
        raise InputError(f"{name}: expected a tensor, got {type(x).__name__}")
    if x.is_floating_point() and not bool(torch.isfinite(x).all()):
        bad = (~torch.isfinite(x)).nonzero()
        where = tuple(bad[0].tolist()) if len(bad) else ()
        raise InputError(f"{name}: holds {int((~torch.isfinite(x)).sum())} non-finite value(s), first at index {where}")
    return x


def check_shape(name: str, x: Tensor, shape: Sequence[int | None]) -> Tensor:
    """Raise ``InputError`` unless ``x.shape`` matches ``shape`` (``None`` matches any size)."""
    if not torch.is_tensor(x):
        raise InputError(f"{name}: expected a tensor, got {type(x).__name__}")
    ok = x.dim() == len(shape) and all(s is None or s == d for s, d in zip(shape, x.shape))
    if not ok:
        want = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
        raise InputError(f"{name}: expected shape {want}, got {tuple(x.shape)}")
    return x


def check_bool(name: str, value: Any) -> bool:
    """Raise ``InputError`` unless ``value`` is a boolean (Python or numpy): 0, 1, "yes" are not flags."""
    if type(value).__name__ not in ("bool", "bool_"):
        raise InputError(f"{name}: expected True or False, got {_short(value)}")
    return bool(value)


def check_count(name: str, value: Any, low: int = 1) -> int:
    """Raise ``InputError`` unless ``value`` is an integer (Python or numpy, not a bool) >= ``low``: 2.7, True and
    "3" are not counts."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InputError(f"{name}: expected an integer >= {low}, got {_short(value)}")
    if int(value) < low:
        raise InputError(f"{name}: must be >= {low}, got {int(value)}")
    return int(value)


def check_in_range(name: str, value: float, low: float | None = None, high: float | None = None, *,
                   low_open: bool = False, high_open: bool = False, finite: bool = True) -> float:
    """Raise ``InputError`` unless ``low <= value <= high`` (open ends when asked) and, unless ``finite=False``,
    the value is finite."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name}: expected a number, got {_short(value)}") from None
    if math.isnan(v):
        raise InputError(f"{name}: is NaN")
    if finite and math.isinf(v):
        raise InputError(f"{name}: must be finite, got {v}")
    if low is not None and (v < low or (low_open and v == low)):
        raise InputError(f"{name}: must be {'>' if low_open else '>='} {low}, got {v}")
    if high is not None and (v > high or (high_open and v == high)):
        raise InputError(f"{name}: must be {'<' if high_open else '<='} {high}, got {v}")
    return v
