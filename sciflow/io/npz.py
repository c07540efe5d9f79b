"""``.npz``: every field of a Trajectory, exactly (the lossless format).

Layout (``numpy.load(path)`` with ``allow_pickle=False``): ``times``, ``states``, ``extras/<key>``,
``step_extras/<key>``, ``info`` (a JSON string) and ``format`` (``"sciflow.trajectory/1"``). Arrays keep their
dtype (bfloat16, which numpy lacks, is stored as float32).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..core.errors import InputError
from ..core.files import open_npz
from ..core.trajectory import Trajectory
from .registry import reader, writer

__all__ = ["FORMAT", "read_npz", "write_npz"]

FORMAT = "sciflow.trajectory/1"


def _array(x: torch.Tensor) -> np.ndarray:
    x = x.detach().cpu()
    if x.dtype == torch.bfloat16:
        x = x.to(torch.float32)
    return x.numpy()


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if torch.is_tensor(obj):
        return obj.detach().cpu().tolist()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)


@writer(".npz", keywords=None, description="every field, exactly (numpy archive; info as JSON)", holds_empty=True)
def write_npz(path: Path, traj: Trajectory, **meta: Any) -> None:
    """Extra keyword arguments are stored in ``info`` (plain values)."""
    arrays = {"times": _array(traj.times), "states": _array(traj.states), "format": np.asarray(FORMAT)}
    for group, table in (("extras", traj.extras), ("step_extras", traj.step_extras)):
        for key, value in table.items():
            if "/" in key:
                raise InputError(f"traj.{group}: key {key!r} may not hold '/'")
            arrays[f"{group}/{key}"] = _array(torch.as_tensor(value))
    info = {**traj.info, **meta}
    arrays["info"] = np.asarray(json.dumps(_jsonable(info), sort_keys=True))
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


@reader(".npz", keywords=("top",), description="every field, exactly")
def read_npz(path: Path, **kw: Any) -> Trajectory:
    """``top`` is accepted and ignored (an npz file needs no topology)."""
    with open_npz(path, "path", "a readable .npz trajectory") as data:
        for key in ("times", "states"):
            if key not in data.files:
                raise InputError(f"path: {str(path)!r} has no {key!r} array; not a sciflow trajectory")
        if "format" in data.files:          # files without a format entry (plain numpy archives) are still read
            fmt = str(data["format"])
            if fmt != FORMAT:
                raise InputError(f"path: {str(path)!r} has format {fmt[:60]!r}; this version of sciflow reads "
                                 f"{FORMAT!r}")
        extras, steps = {}, {}
        for name in data.files:
            if name.startswith("extras/"):
                extras[name[len("extras/"):]] = _tensor(data, name)
            elif name.startswith("step_extras/"):
                steps[name[len("step_extras/"):]] = _tensor(data, name)
        info = _info(data, path) if "info" in data.files else {}
        times, states = _tensor(data, "times"), _tensor(data, "states")
    try:
        return Trajectory(times=times, states=states, extras=extras, step_extras=steps, info=info)
    except InputError as e:
        raise InputError(f"path: {str(path)!r}: {e}") from None


#: numpy dtype kinds that become torch tensors: bool, signed and unsigned integers, floats, complex numbers
_NUMERIC = "biufc"


def _tensor(data: Any, name: str) -> torch.Tensor:
    """Array ``name`` of the archive as a tensor, refusing (naming the file and the array) text, dates and
    other arrays torch cannot hold."""
    arr = data[name]
    if arr.dtype.kind not in _NUMERIC:
        raise InputError(f"path: {str(data.path)!r}: array {name!r} holds {arr.dtype} values "
                         f"({'text' if arr.dtype.kind in 'US' else 'not numbers'}); a trajectory array must hold "
                         "numbers or bools")
    try:
        return torch.from_numpy(arr.copy())
    except TypeError as e:          # numeric dtypes torch lacks (uint16 on old torch versions, float128, ...)
        raise InputError(f"path: {str(data.path)!r}: array {name!r} has dtype {arr.dtype}, which torch cannot "
                         f"hold ({e})") from None


def _info(data: Any, path: Path) -> dict[str, Any]:
    """The ``info`` entry: a JSON object (a string array of one element)."""
    arr = data["info"]
    if arr.dtype.kind not in "US" or arr.shape != ():
        raise InputError(f"path: {str(path)!r}: 'info' must be one JSON string, got a {arr.dtype} array of shape "
                         f"{arr.shape}")
    try:
        info = json.loads(str(arr))
    except json.JSONDecodeError as e:
        raise InputError(f"path: {str(path)!r}: 'info' is not valid JSON ({e})") from None
    if not isinstance(info, dict):
        raise InputError(f"path: {str(path)!r}: 'info' must be a JSON object (key: value), got "
                         f"{type(info).__name__}")
    return info
