"""Check a device argument before any tensor or model moves there."""
from __future__ import annotations

import torch

from ..errors import InputError

__all__ = ["check_device"]


def check_device(device: object, field: str = "device") -> torch.device:
    """``device`` (a string such as ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``, or a ``torch.device``) as a
    ``torch.device`` that exists on this machine, else an InputError naming ``field``: a typo, CUDA without a
    CUDA device, an index past the last device, or ``"meta"`` (which holds no data) are refused before anything
    is moved, so that nothing is left half-moved."""
    if isinstance(device, bool) or not isinstance(device, (str, torch.device)):
        raise InputError(f"{field}: expected a device name such as 'cpu' or 'cuda' (or a torch.device), got "
                         f"{type(device).__name__} {device!r}")
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise InputError(f"{field}: {device!r} is not a device; expected 'cpu', 'cuda', 'cuda:N' or 'mps'") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"{field}: {str(device)!r} asked for, but no CUDA device is available (use 'cpu')")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise InputError(f"{field}: {str(device)!r} asked for, but this machine has {torch.cuda.device_count()} "
                             f"CUDA device(s)")
    elif dev.type == "mps":
        if not torch.backends.mps.is_available():
            raise InputError(f"{field}: {str(device)!r} asked for, but no MPS device is available (use 'cpu')")
    elif dev.type != "cpu":
        raise InputError(f"{field}: {str(device)!r} is not supported; expected 'cpu', 'cuda', 'cuda:N' or 'mps'")
    return dev
