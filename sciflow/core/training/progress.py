"""Progress bars (tqdm) that show rate and ETA, only on the main rank, and can be switched off."""
from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import Any

from tqdm.auto import tqdm

from .distributed import is_main

__all__ = ["progress"]


def progress(iterable: Iterable[Any] | None = None, *, total: int | None = None, desc: str = "",
             enabled: bool = True, initial: int = 0, unit: str = "it") -> tqdm:
    """A tqdm bar; silent on non-main ranks and when SCIFLOW_PROGRESS=0."""
    on = enabled and is_main() and os.environ.get("SCIFLOW_PROGRESS", "1") != "0"
    return tqdm(iterable, total=total, desc=desc, disable=not on, initial=initial, unit=unit,
                dynamic_ncols=True, file=sys.stderr, mininterval=0.5)
