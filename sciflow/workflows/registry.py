"""Tasks by stable name. A task lives in ``sciflow/workflows/tasks/<name>.py`` and registers itself:

```python
@register_task("flow", FlowTask)          # FlowTask: a StrictModel of the task's YAML block
def run(cfg: FlowTask, ctx: RunContext) -> dict: ...
```
Only the named task's module is imported, so a workflow never loads another method's heavy dependencies.
"""
from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..core.errors import InputError
from .schema import StrictModel

__all__ = ["TaskSpec", "get_task", "register_task", "task_names"]


@dataclass(frozen=True)
class TaskSpec:
    name: str
    config: type[StrictModel]
    run: Callable[..., dict[str, Any]]
    #: keys of the task block that may change between runs sharing an output folder (how work is batched, how
    #: much of it to do), unlike those that change what each finished item holds
    resume_free: tuple[str, ...] = ()


_TASKS: dict[str, TaskSpec] = {}


def register_task(name: str, config: type[StrictModel], *, resume_free: tuple[str, ...] = ()) -> \
        Callable[[Callable[..., dict[str, Any]]], Callable[..., dict[str, Any]]]:
    def deco(fn: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
        _TASKS[name] = TaskSpec(name, config, fn, tuple(resume_free))
        return fn
    return deco


def task_names() -> list[str]:
    from . import tasks
    return sorted(m.name for m in pkgutil.iter_modules(tasks.__path__) if not m.name.startswith("_"))


def get_task(name: str) -> TaskSpec:
    if name not in _TASKS:
        known = task_names()
        if name not in known:
            raise InputError(f"task: unknown task {name!r}; known: {', '.join(known)}")
        importlib.import_module(f"{__package__}.tasks.{name}")
    if name not in _TASKS:
        raise InputError(f"task: module sciflow.workflows.tasks.{name} did not register a task named {name!r}")
    return _TASKS[name]
