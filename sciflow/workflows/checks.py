"""Checks that the validators of the workflow tasks share: read a saved model or an input file when the workflow is
validated, and re-raise the reader's ``InputError`` as a ``ValueError`` that names the workflow field (pydantic then
shows it as ``TASK.FIELD: ...``), so that ``sciflow validate`` refuses what ``sciflow run`` would refuse only after
claiming the output folder."""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["field_errors", "load_model", "loaded_model", "named", "writable_model_target"]

#: names that readers give their own arguments (``model: ...``, ``checkpoint: ...``), replaced by the field
READER_NAMES = ("model", "checkpoint")


def named(field: str, message: str, *, replace: tuple[str, ...] = READER_NAMES, keep: tuple[str, ...] = ()) -> str:
    """``message`` under the workflow field ``field``: a leading ``name: `` from ``replace`` (the reader's own name
    for its argument) gives way to the field, one from ``keep`` (another field of the same block, which the
    message is about) stays as it is, and any other message is put under the field."""
    head, sep, rest = message.partition(": ")
    if sep and head in keep:
        return message
    if sep and head in replace:
        message = rest
    return f"{field}: {message}"


@contextmanager
def field_errors(field: str, *, replace: tuple[str, ...] = READER_NAMES, keep: tuple[str, ...] = ()) -> Iterator[None]:
    """Re-raise an ``InputError`` of the block as a ``ValueError`` naming ``field`` (see ``named``)."""
    from ..core.errors import InputError
    try:
        yield
    except InputError as e:
        raise ValueError(named(field, str(e), replace=replace, keep=keep)) from None


def load_model(method: Any, path: str | os.PathLike, field: str, *, owner: Any = None, **kw: Any) -> Any:
    """``method.load(path)`` at validation: the file is a saved model of this method (its format and name) whose
    weights fit the network its config builds; errors name ``field``. Models are small: this reads a header and
    some weights, it trains nothing. With ``owner`` (the validated block) the model is handed to ``run`` through
    ``loaded_model``, so the file is read once."""
    with field_errors(field):
        model = method.load(path, **kw)
    if owner is not None:
        owner._loaded = (method, str(path), _stamp(path), model)
    return model


def loaded_model(owner: Any, method: Any, path: str | os.PathLike, device: Any = "cpu") -> Any:
    """The model ``load_model(..., owner=owner)`` read at validation, if it is this method's from this file (not
    changed since) and ``device`` is the CPU it was read to; else ``method.load(path, map_location=device)``.
    The hand-over happens once (a second call reads the file again)."""
    import torch
    kept, owner._loaded = getattr(owner, "_loaded", None), None
    if (kept is not None and kept[0] is method and kept[1] == str(path) and kept[2] == _stamp(path)
            and torch.device(device).type == "cpu"):
        return kept[3]
    return method.load(path, map_location=device)


def _stamp(path: str | os.PathLike) -> tuple[int, int] | None:
    from ..methods.base import find_model_file
    try:
        st = find_model_file(path).stat()
    except (OSError, ValueError):
        return None
    return st.st_mtime_ns, st.st_size


def writable_model_target(path: str | os.PathLike, method: Any, field: str) -> Path:
    """The model file that training will write for ``path`` (a folder, or a ``.pt`` file), checked before any
    work: an existing file there must already be a saved ``method`` model (training replaces a model of its own
    method, never another file), and the folder that will hold it must be (or can be made) a writable folder."""
    from ..methods.base import resolve_model_file
    target = resolve_model_file(path)
    if target.suffix.lower() not in (".pt", ".pth"):
        raise ValueError(f"{field}: training writes a model file; name a folder (it gets model.pt) or a .pt file, "
                         f"got {path}")
    if target.is_dir():
        raise ValueError(f"{field}: {target} is a folder, not a model file; name the folder above it")
    if target.exists():
        try:
            method.read_saved(target)
        except Exception as e:        # noqa: BLE001 - any unreadable file is refused, never overwritten
            why = str(e).partition(": ")[2] or type(e).__name__
            raise ValueError(f"{field}: training would overwrite {target}, which is not a saved {method.name!r} "
                             f"model ({why}); name a new file or folder") from None
    from ..core.files import check_writable
    with field_errors(field, replace=(field,)):
        check_writable(target, field)        # no file on the way to it, and its nearest folder writable
    return target
