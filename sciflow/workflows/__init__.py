"""YAML workflows: validated schema -> registry of task names -> runner (resume, provenance, sharding)."""
from .context import RunContext
from .registry import TaskSpec, get_task, register_task, task_names
from .runner import Workflow, resolve_device, run_workflow, validate_workflow
from .schema import SCHEMA_VERSION, StrictModel, WorkflowHeader, load_yaml

__all__ = [
           "SCHEMA_VERSION",
           "RunContext",
           "StrictModel",
           "TaskSpec",
           "Workflow",
           "WorkflowHeader",
           "get_task",
           "load_yaml",
           "register_task",
           "resolve_device",
           "run_workflow",
           "task_names",
           "validate_workflow",
]
