"""Atomic checkpoints that load with ``torch.load(weights_only=True)``, and the provenance they carry."""
from __future__ import annotations

import os
import pickle
import platform
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from ..errors import InputError
from ..files import atomic_path
from .device import check_device

__all__ = ["atomic_save", "load_checkpoint", "package_versions", "plain"]

_PACKAGES = ("sciflow", "torch", "numpy", "torch_geometric", "e3nn", "pot", "ase", "rdkit", "mdtraj")


def package_versions() -> dict[str, str]:
    """Versions of Python and of the packages a result depends on ('absent' when not installed)."""
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


def plain(obj: Any) -> Any:
    """Reduce a config to str/int/float/bool/None/list/dict (all that weights_only loading accepts)."""
    if isinstance(obj, Mapping):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    if isinstance(obj, (str, int, float, bool)) or obj is None or torch.is_tensor(obj):
        return obj
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if hasattr(obj, "model_dump"):
        return plain(obj.model_dump())
    if hasattr(obj, "__dataclass_fields__"):
        return plain({k: getattr(obj, k) for k in obj.__dataclass_fields__})
    return str(obj)


def atomic_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` to a temporary file in the same folder, then rename: never a half-written file."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device | None = "cpu") -> dict[str, Any]:
    """Load a checkpoint safely (``weights_only=True``); a missing file names the path, a device that does not
    exist here names ``map_location`` (before the file is read, so the file is not blamed)."""
    if isinstance(map_location, (str, torch.device)):
        map_location = check_device(map_location, "map_location")
    path = Path(path)
    if not path.is_file():
        raise InputError(f"checkpoint: no file at {path}")
    try:
        ck = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, ValueError, KeyError, OSError, pickle.UnpicklingError) as e:
        raise InputError(f"checkpoint: {path} is not a readable sciflow checkpoint or model file "
                         f"({type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''})") from None
    if not isinstance(ck, dict):
        raise InputError(f"checkpoint: {path} holds a {type(ck).__name__}, not a sciflow checkpoint")
    return ck
