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

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..core.errors import InputError

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

SCHEMA_VERSION = 1


class StrictModel(BaseModel):
    """Base of every workflow block: unknown keys are errors, numbers must be finite (no .nan / .inf), values are
    validated on assignment too."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=(), allow_inf_nan=False)


class WorkflowHeader(StrictModel):
    version: Literal[1] = Field(description="schema version of the workflow file")
    task: str = Field(description="task name, e.g. flow, tsgen, mmsb, ditree, scattering, unbinding")
    name: str | None = None
    seed: int = Field(0, ge=0, lt=2**63, description="seed of every random stream of the run")
    device: str = "auto"
    output: Path = Field(description="folder for outputs, resolved config, versions and seed")
    resume: bool = True

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        if v not in ("auto", "cpu", "cuda") and re.fullmatch(r"cuda:\d+", v) is None:
            raise ValueError(f"expected auto, cpu, cuda or cuda:N, got {v!r}")
        return v

    @field_validator("output", mode="before")
    @classmethod
    def _output_named(cls, v: Any) -> Any:
        if isinstance(v, str) and not v.strip():    # Path("") would silently be the current folder
            raise ValueError("must name a folder for the run's outputs, got an empty string")
        return v

    @field_validator("output")
    @classmethod
    def _output_folder(cls, v: Path) -> Path:
        if v.exists() and not v.is_dir():
            raise ValueError(f"{v} exists and is not a folder")
        return v


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Parse a YAML workflow; a missing file or malformed YAML raises InputError naming the file and line."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"workflow: no file at {p}")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        raise InputError(f"workflow {p}: malformed YAML{where}: {getattr(e, 'problem', e)}") from None
    if not isinstance(data, dict):
        raise InputError(f"workflow {p}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def format_validation_error(err: ValidationError, prefix: str = "") -> str:
    """One line per problem, each naming the field path and the bad value."""
    lines = []
    for e in err.errors():
        loc = ".".join(str(x) for x in (prefix, *e["loc"]) if x != "")
        val = e.get("input")
        shown = repr(val) if not isinstance(val, dict) else "{...}"
        if len(shown) > 60:
            shown = shown[:57] + "..."
        lines.append(f"{loc}: {e['msg']} (got {shown})")
    return "; ".join(lines)
