"""argparse value types that refuse bad numbers (negative counts, NaN, out-of-range fractions) while the
command line is parsed, so that a bad option is reported, naming it, before any work starts."""
from __future__ import annotations

import argparse
import math
from collections.abc import Callable

__all__ = ["device", "fraction", "integer", "number", "positive"]


def integer(low: int = 1) -> Callable[[str], int]:
    """An integer >= ``low``."""
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if v < low:
            raise argparse.ArgumentTypeError(f"must be an integer >= {low}, got {v}")
        return v
    parse.__name__ = "integer"
    return parse


def number(low: float | None = None, high: float | None = None, *, low_open: bool = False,
           high_open: bool = False) -> Callable[[str], float]:
    """A finite float in [low, high] (open ends when asked; None: unbounded)."""
    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(v):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
        if low is not None and (v < low or (low_open and v == low)):
            raise argparse.ArgumentTypeError(f"must be {'>' if low_open else '>='} {low:g}, got {v:g}")
        if high is not None and (v > high or (high_open and v == high)):
            raise argparse.ArgumentTypeError(f"must be {'<' if high_open else '<='} {high:g}, got {v:g}")
        return v
    parse.__name__ = "number"
    return parse


def positive() -> Callable[[str], float]:
    """A finite float > 0 (times, rates, lengths, learning rates)."""
    return number(0.0, low_open=True)


def fraction() -> Callable[[str], float]:
    """A float in [0, 1]."""
    return number(0.0, 1.0)


def device(text: str) -> str:
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N``, and available on this machine (``auto``: cuda if there is
    one, else cpu)."""
    import re

    import torch

    if text not in ("auto", "cpu", "cuda") and re.fullmatch(r"cuda:\d+", text) is None:
        raise argparse.ArgumentTypeError(f"expected auto, cpu, cuda or cuda:N, got {text!r}")
    if text == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if text.startswith("cuda"):
        if not torch.cuda.is_available():
            raise argparse.ArgumentTypeError(f"{text!r} asked for, but no CUDA device is available")
        index = int(text.split(":")[1]) if ":" in text else 0
        if index >= torch.cuda.device_count():
            raise argparse.ArgumentTypeError(f"{text!r} asked for, but this machine has "
                                             f"{torch.cuda.device_count()} CUDA device(s)")
    return text


def print_json(obj: object, indent: int | None = None) -> None:
    """Print a command's result as standard JSON (non-finite numbers as null, see ``core.files.plain_json``)."""
    import json

    from ..core.files import plain_json
    print(json.dumps(plain_json(obj), indent=indent, allow_nan=False))
