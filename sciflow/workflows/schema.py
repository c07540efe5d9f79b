"""The workflow file: a small header plus one block named after the task, validated before any work.

```yaml
version: 1            # schema version
task: flow            # a task name (sciflow/workflows/tasks/<task>.py)
seed: 0
device: auto          # auto | cpu | cuda | cuda:N
output: outputs/quickstart
flow:                 # the task's own block, validated by the task's pydantic model
  ...
```
"""
from __future__ import annotations

import difflib
import re
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from ..core.errors import InputError
from ..core.files import read_text_file
from ..domains.yaml_safe import safe_load_unique

__all__ = ["SCHEMA_VERSION", "ExistingPath", "ModelPath", "StrictModel", "WorkflowHeader", "format_validation_error", "load_yaml",
           "registered"]


def _must_exist(v: Path) -> Path:
    if not Path(v).exists():
        raise ValueError(f"no file or folder at {v}")
    return v


ExistingPath = Annotated[Path, AfterValidator(_must_exist)]
"""A path that must exist when the workflow is validated (saved models, input data)."""


def _model_found(v: str) -> str:
    from ..methods.base import find_model_file
    try:
        find_model_file(v)
    except InputError as e:
        raise ValueError(str(e).removeprefix("model: ")) from None
    return v


ModelPath = Annotated[str, AfterValidator(_model_found)]
"""A saved model (folder or file) that must be found when the workflow is validated: from the working folder,
or for a relative path also in the project's ``models/`` (the shipped weights)."""


def registered(registry: Any) -> Any:
    """A string field that must name an entry of ``registry`` (``PATHS``, ``COUPLINGS``, ``SOLVERS``, ...);
    the registry's own error lists the known names."""
    def check(v: str) -> str:
        registry.get(v)
        return v
    return Annotated[str, AfterValidator(check)]


def one_or_more(item: Any, what: str) -> Any:
    """A list field of ``item`` that must not be empty (an empty one would run and write nothing): refused,
    "name at least one <what>", when the workflow is validated."""
    def check(v: list[Any]) -> list[Any]:
        if not v:
            raise ValueError(f"name at least one {what}")
        return v
    return Annotated[list[item], AfterValidator(check)]

SCHEMA_VERSION = 1


def _arms(tp: Any) -> list[Any]:
    """The alternatives of a type: the arms of a union, the type itself otherwise (``Annotated`` unwrapped)."""
    if get_origin(tp) is Annotated:
        return _arms(get_args(tp)[0])
    if get_origin(tp) in (Union, types.UnionType):
        return [a for arm in get_args(tp) for a in _arms(arm)]
    return [tp]


def _bool_misread(tp: Any, v: Any) -> bool:
    """``v`` (or an item of a list of it) is a YAML ``true`` / ``false`` where ``tp`` takes numbers and no
    booleans: pydantic would read it as 1 / 0 (``n_samples: true`` -> 1)."""
    arms = _arms(tp)
    if isinstance(v, bool):
        takes_bool = any(a in (bool, Any, object) or (get_origin(a) is Literal and any(
            isinstance(x, bool) for x in get_args(a))) for a in arms)
        takes_number = any(a in (int, float) or (get_origin(a) is Literal and any(      # Literal[1]: true == 1
            isinstance(x, (int, float)) for x in get_args(a))) for a in arms)
        return not takes_bool and takes_number
    if isinstance(v, (list, tuple)):
        seqs = [a for a in arms if get_origin(a) in (list, tuple, typing.Sequence, set, frozenset)]
        if seqs and all(len(get_args(a)) >= 1 for a in seqs):
            def item_bad(a: Any, x: Any, i: int) -> bool:
                args = [t for t in get_args(a) if t is not Ellipsis]
                if get_origin(a) is tuple and Ellipsis not in get_args(a):
                    return i < len(args) and _bool_misread(args[i], x)
                return _bool_misread(args[0], x)
            return all(any(item_bad(a, x, i) for i, x in enumerate(v)) for a in seqs)
    if isinstance(v, dict):
        maps = [a for a in arms if get_origin(a) in (dict, typing.Mapping) and len(get_args(a)) == 2]
        return bool(maps) and all(any(_bool_misread(get_args(a)[1], x) for x in v.values()) for a in maps)
    return False


class StrictModel(BaseModel):
    """Base of every workflow block: unknown keys are errors, numbers must be finite (no .nan / .inf) and not
    booleans (``true`` is not 1), values are validated on assignment too."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=(), allow_inf_nan=False)
    #: a saved model read at validation, handed to the task's run (``workflows.checks.loaded_model``)
    _loaded: Any = PrivateAttr(None)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_numbers(cls, v: Any, info: ValidationInfo) -> Any:
        field = cls.model_fields.get(info.field_name or "")
        if field is not None and _bool_misread(field.annotation, v):
            raise ValueError(f"expected a number, got the boolean {str(v).lower()}" if isinstance(v, bool) else
                             "expected numbers, got a boolean (true / false) among them")
        return v

    def input_paths(self) -> dict[str, Path]:
        """The files and folders this block reads, by field name (dotted for nested blocks): every ``Path``
        value (``ExistingPath`` and the like) and every ``ModelPath`` resolved to its model file. The runner
        fingerprints them so that a resume with changed inputs is refused; a task whose inputs are plain
        strings extends this."""
        from ..methods.base import find_model_file
        out: dict[str, Path] = {}
        for name, field in type(self).model_fields.items():
            v = getattr(self, name)
            is_model = any(getattr(m, "func", None) is _model_found for m in field.metadata) or any(
                getattr(m, "func", None) is _model_found for arm in _annotated_arms(field.annotation)
                for m in get_args(arm)[1:])
            if isinstance(v, StrictModel):
                out.update({f"{name}.{k}": p for k, p in v.input_paths().items()})
            elif isinstance(v, (list, tuple)):
                for i, x in enumerate(v):
                    if isinstance(x, StrictModel):
                        out.update({f"{name}[{i}].{k}": p for k, p in x.input_paths().items()})
                    elif isinstance(x, Path):
                        out[f"{name}[{i}]"] = x
            elif isinstance(v, Path):
                out[name] = v
            elif is_model and isinstance(v, str):
                try:
                    out[name] = find_model_file(v)
                except InputError:
                    out[name] = Path(v)
        return out


def _annotated_arms(tp: Any) -> list[Any]:
    """The ``Annotated[...]`` alternatives of a (union) type."""
    if get_origin(tp) is Annotated:
        return [tp]
    if get_origin(tp) in (Union, types.UnionType):
        return [a for arm in get_args(tp) for a in _annotated_arms(arm)]
    return []


class WorkflowHeader(StrictModel):
    version: Literal[1] = Field(description="schema version of the workflow file")
    task: str = Field(description="task name, e.g. flow, tsgen, mmsb, ditree, scattering, unbinding")
    name: str | None = None
    seed: int = Field(0, ge=0, lt=2**63, description="seed of every random stream of the run")
    device: str = Field("auto", description="auto, cpu, cuda or cuda:N, available on this machine")
    output: Path = Field(description="folder for outputs, resolved config, versions and seed (~ is expanded); "
                                     "it must be writable and not one of the task's input folders")
    resume: bool = True

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        if v not in ("auto", "cpu", "cuda") and re.fullmatch(r"cuda:\d+", v) is None:
            raise ValueError(f"expected auto, cpu, cuda or cuda:N, got {v!r}")
        if v != "auto":                # a run would refuse it before any work: so does validate
            from ..core.training.device import check_device
            try:
                check_device(v)
            except InputError as e:
                raise ValueError(str(e).removeprefix("device: ")) from None
        return v

    @field_validator("output", mode="before")
    @classmethod
    def _output_named(cls, v: Any) -> Any:
        if isinstance(v, str) and not v.strip():    # Path("") would silently be the current folder
            raise ValueError("must name a folder for the run's outputs, got an empty string")
        if isinstance(v, (str, Path)):              # "~/x" would otherwise make a folder named "~"
            try:
                return Path(v).expanduser()
            except RuntimeError as e:               # ~nosuchuser
                raise ValueError(f"cannot expand {str(v)!r}: {e}") from None
        return v

    @field_validator("output")
    @classmethod
    def _output_folder(cls, v: Path) -> Path:
        if v.exists() and not v.is_dir():
            raise ValueError(f"{v} exists and is not a folder")
        for parent in v.parents:       # output: afile/sub would fail only when the run makes its folder
            if parent.exists() and not parent.is_dir():
                raise ValueError(f"{v} is inside {parent}, which is a file, not a folder")
        folder = v if v.is_dir() else next((p for p in v.absolute().parents if p.exists()), None)
        if folder is not None and not _can_write(folder):
            raise ValueError(f"{v}: cannot write there, {folder} is not writable" if folder == v else
                             f"{v}: cannot make this folder, {folder} is not writable")
        return v


def _can_write(folder: Path) -> bool:
    """Files and folders can be made in ``folder``: its permissions allow it, and (as they do not tell everything:
    root, read-only or virtual file systems such as /proc) a hidden probe folder can be made there; the probe is
    removed at once."""
    import os
    import tempfile
    if not os.access(folder, os.W_OK | os.X_OK):
        return False
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".sciflow-write-check-", dir=folder))
    except OSError:
        return False
    return True


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Parse a YAML workflow; a missing file, malformed YAML or a key given twice in one mapping raises
    InputError naming the file and line."""
    p = Path(path)
    text = read_text_file(p, "workflow", "a workflow is YAML text")
    try:
        data = safe_load_unique(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        raise InputError(f"workflow {p}: malformed YAML{where}: {getattr(e, 'problem', e)}") from None
    if not isinstance(data, dict):
        raise InputError(f"workflow {p}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def _close_names(model: Any, loc: tuple[Any, ...]) -> list[str]:
    """The setting names of the block at ``loc[:-1]`` of ``model`` (a pydantic model class) closest to
    ``loc[-1]``: the "did you mean" of an unknown key."""
    for part in loc[:-1]:
        field = getattr(model, "model_fields", {}).get(part) if isinstance(part, str) else None
        if field is None:
            return []
        nested = [a for a in (field.annotation, *get_args(field.annotation))
                  if isinstance(a, type) and hasattr(a, "model_fields")]
        if not nested:
            return []
        model = nested[0]
    names = list(getattr(model, "model_fields", {}))
    return difflib.get_close_matches(str(loc[-1]), names, n=2, cutoff=0.6)


def format_validation_error(err: ValidationError, prefix: str = "", model: Any = None) -> str:
    """One line per problem, each naming the field path and the bad value. A check of a whole block whose
    message starts with a field name (``reactions: ...``) is shown at that field (``tsgen.reactions: ...``).
    With ``model`` (the validated class), an unknown key gets the closest setting names."""
    lines = []
    for e in err.errors():
        loc = ".".join(str(x) for x in (prefix, *e["loc"]) if x != "")
        if e["type"] == "extra_forbidden" and model is not None and e["loc"]:
            close = _close_names(model, tuple(e["loc"]))
            if close:
                e = {**e, "msg": f"{e['msg']}; did you mean {' or '.join(close)}?"}
        if e["type"] == "value_error":
            e = {**e, "msg": e["msg"].removeprefix("Value error, ")}
            m = re.match(r"([A-Za-z_][\w.]*): ", e["msg"])
            if m and not e["loc"] and loc:
                loc, e["msg"] = f"{loc}.{m.group(1)}", e["msg"][m.end():]
        val = e.get("input")
        if isinstance(val, dict) and e["type"] == "value_error":     # a check of a whole block: its message
            lines.append(f"{loc}: {e['msg']}")                         # says what was wrong
            continue
        shown = repr(val) if not isinstance(val, dict) else "{...}"
        if len(shown) > 60:
            shown = shown[:57] + "..."
        lines.append(f"{loc}: {e['msg']} (got {shown})")
    return "; ".join(lines)
