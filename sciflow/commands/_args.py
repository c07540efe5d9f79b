"""argparse value types that refuse bad numbers (negative counts, NaN, out-of-range fractions) while the
command line is parsed, so that a bad option is reported, naming it, before any work starts."""
from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable
from pathlib import Path

__all__ = ["beside_model", "device", "fraction", "integer", "number", "output_file", "output_folder", "output_model",
           "positive", "seed"]


def integer(low: int = 1, high: int | None = None) -> Callable[[str], int]:
    """An integer >= ``low`` (and <= ``high`` when given)."""
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if v < low:
            raise argparse.ArgumentTypeError(f"must be an integer >= {low}, got {v}")
        if high is not None and v > high:
            raise argparse.ArgumentTypeError(f"must be an integer <= {high}, got {v}")
        return v
    parse.__name__ = "integer"
    return parse


#: a seed: 0 .. 2^31 - 1, so that the seeds commands derive from it (seed * 1_000_003 + item, seed + k) still fit
#: the int64 that torch.Generator.manual_seed and numpy take (a larger one was a raw OverflowError traceback)
seed = integer(0, 2**31 - 1)
seed.__name__ = "seed"


def beside_model(out: str | os.PathLike, name: str) -> Path:
    """Where a training command keeps its resumable state for the model ``out``: ``<folder>/<name>`` for a model
    folder, ``<stem>.<name>`` next to a model file (not inside it: ``file/...`` would turn the model file's name
    into a folder while training). One place per model, so a second model's training never meets the first's."""
    p = Path(out)
    return p / name if p.is_dir() or p.suffix == "" else p.with_name(f"{p.stem}.{name}")


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


def _writable_place(p: Path, text: str) -> None:
    """Refuse ``p`` (not an existing folder) when something on the way to it is a file or the folder that would
    hold it cannot be written: ``core.files.check_writable``, as an argparse error (creates nothing)."""
    from ..core.errors import InputError
    from ..core.files import check_writable
    try:
        check_writable(p, repr(text))
    except InputError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def output_file(*suffixes: str) -> Callable[[str], str]:
    """A file a command will write: not an existing folder, no file on the way to it, and, when ``suffixes``
    are given (``".png"``, ...), ending in one of them (any case) because the format follows from it."""
    want = tuple(x.lower() for x in suffixes)

    def parse(text: str) -> str:
        if not text:
            raise argparse.ArgumentTypeError("expected a file path, got ''")
        p = Path(text)
        if want and p.suffix.lower() not in want:
            raise argparse.ArgumentTypeError(f"{text!r}: expected a file name ending in {' or '.join(want)}, got "
                                             + (f"suffix {p.suffix!r}" if p.suffix else "no suffix"))
        if p.is_dir():
            raise argparse.ArgumentTypeError(f"{text!r} is an existing folder; give a file path")
        _writable_place(p, text)
        return text
    parse.__name__ = "output file"
    return parse


def output_folder() -> Callable[[str], str]:
    """A folder a command will write into (it may exist already): not an existing file, no file on the way."""
    def parse(text: str) -> str:
        if not text:
            raise argparse.ArgumentTypeError("expected a folder path, got ''")
        p = Path(text)
        if p.exists() and not p.is_dir():
            raise argparse.ArgumentTypeError(f"{text!r} is an existing file; give a folder")
        if p.is_dir():
            if not os.access(p, os.W_OK | os.X_OK):
                raise argparse.ArgumentTypeError(f"{text!r}: folder is not writable")
        else:
            _writable_place(p, text)
        return text
    parse.__name__ = "output folder"
    return parse


def output_model() -> Callable[[str], str]:
    """Where a model is saved, as ``Method.save`` reads it: an existing folder or a path without a suffix is a
    folder (``model.pt`` goes in it), anything else the model file itself."""
    folder, file = output_folder(), output_file()

    def parse(text: str) -> str:
        p = Path(text)
        if p.is_dir() or (p.suffix == "" and not p.exists()):
            return folder(text)
        if p.suffix == "":
            raise argparse.ArgumentTypeError(f"{text!r} is an existing file without a suffix; give a model folder "
                                             "or a model file name such as model.pt")
        return file(text)
    parse.__name__ = "output model"
    return parse


def device(text: str) -> str:
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N``, and available on this machine (``auto``: cuda if there is
    one, else cpu)."""
    import re

    import torch

    if text not in ("auto", "cpu", "cuda") and re.fullmatch(r"cuda:\d+", text) is None:
        raise argparse.ArgumentTypeError(f"expected auto, cpu, cuda or cuda:N, got {text!r}")
    if text == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    from ..core.errors import InputError
    from ..core.training.device import check_device
    try:
        check_device(text)                   # available on this machine (the same check as the Python API's)
    except InputError as e:
        raise argparse.ArgumentTypeError(str(e).removeprefix("device: ")) from None
    return text


def print_json(obj: object, indent: int | None = None) -> None:
    """Print a command's result as standard JSON (non-finite numbers as null, see ``core.files.plain_json``)."""
    import json

    from ..core.files import plain_json
    print(json.dumps(plain_json(obj), indent=indent, allow_nan=False))
