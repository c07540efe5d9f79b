"""Validate a workflow, then run its task with outputs, provenance and resume handled in one place."""
from __future__ import annotations

import difflib
import json
import shutil
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from pydantic import ValidationError

from ..core.errors import InputError
from ..core.files import (
    atomic_write_json,
    atomic_write_text,
    file_fingerprint,
    keep_settings,
    output_in_use,
    output_lock,
    remove_stale_temporaries,
)
from ..core.training import barrier, init_distributed, package_versions
from .context import STATE_DIR, RunContext, recorded_files
from .registry import TaskSpec, get_task
from .schema import StrictModel, WorkflowHeader, format_validation_error, load_yaml

__all__ = ["Workflow", "input_fingerprints", "resolve_device", "run_workflow", "validate_workflow"]

_HEADER_KEYS = set(WorkflowHeader.model_fields)


@dataclass(frozen=True)
class Workflow:
    header: WorkflowHeader
    task: TaskSpec
    config: StrictModel
    source: Path | None

    def resolved(self) -> dict[str, Any]:
        """Header and task block with every default filled in (what the run actually used)."""
        out = self.header.model_dump(mode="json", exclude_none=True)
        out[self.task.name] = self.config.model_dump(mode="json")
        return out


def validate_workflow(source: str | Path | dict[str, Any], *, base_dir: Path | None = None,
                      output: str | Path | None = None) -> Workflow:
    """Parse and validate; every problem raises InputError naming the field, before any work. ``output``
    (``sciflow run --output``) replaces the file's own output folder before it is checked, so a file whose
    ``output:`` cannot be written here can still be run elsewhere."""
    path = None
    if isinstance(source, dict):
        data = dict(source)
    else:
        path = Path(source)
        data = load_yaml(path)
    _check_keys(data, "workflow: top-level key")
    if output is not None:
        data["output"] = str(output)
    task_name = data.get("task")
    if not isinstance(task_name, str):
        raise InputError("task: required, the name of the task to run (e.g. flow, tsgen)")
    spec = get_task(task_name)
    unknown = set(data) - _HEADER_KEYS - {task_name}
    if unknown:
        close = sorted({m for k in unknown for m in difflib.get_close_matches(k, [*_HEADER_KEYS, task_name], n=1)})
        hint = f" (did you mean {' or '.join(close)}?)" if close else ""
        raise InputError(f"{', '.join(sorted(unknown))}: unknown top-level key(s){hint}; allowed: "
                         f"{', '.join(sorted(_HEADER_KEYS))} and the task block {task_name!r}")
    try:
        header = WorkflowHeader(**{k: v for k, v in data.items() if k in _HEADER_KEYS})
    except ValidationError as e:
        where = "--" if output is not None and "output" in {str(x["loc"][0]) for x in e.errors() if x["loc"]} \
            else "workflow: "
        raise InputError(f"{where}{format_validation_error(e, model=WorkflowHeader)}") from None
    block = data.get(task_name, {})
    if block is None:
        block = {}
    if not isinstance(block, dict):
        raise InputError(f"{task_name}: expected a mapping of the task's settings, got {type(block).__name__}")
    _check_keys(block, f"{task_name}: key")
    try:
        cfg = spec.config(**block)
    except ValidationError as e:
        raise InputError(f"workflow: {format_validation_error(e, task_name, model=spec.config)}") from None
    wf = Workflow(header, spec, cfg, path)
    _check_output_is_no_input(wf)
    return wf


def _check_keys(mapping: dict[Any, Any], what: str) -> None:
    """YAML allows ``1: 2`` or ``null: 2``; settings are named, so such a key is refused, naming it."""
    for k in mapping:
        if not isinstance(k, str):
            raise InputError(f"{what} {k!r} is not a name ({type(k).__name__}); keys must be setting names")


def _check_output_is_no_input(wf: Workflow) -> None:
    """The run writes its own files (resolved_config.yaml, run.json, ...) into ``output``: a folder the task reads
    its inputs from would get them mixed in (and every later read of it would fail), so it is refused."""
    out = Path(wf.header.output)
    if not out.is_dir():
        return
    for field, path in wf.config.input_paths().items():
        p = Path(path)
        if p.is_dir() and p.resolve() == out.resolve():
            raise InputError(f"output: {out} is the folder of the input {wf.task.name}.{field} ({p}); the run would "
                             "write its files among its inputs; choose another output folder")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    from ..core.training.device import check_device
    return check_device(name)


#: header keys that do not change what a run makes (a run may resume elsewhere, on another device)
_PLACE_KEYS = ("output", "resume", "device", "name")


def _check_same_settings(path: Path, wf: Workflow, *, record: bool = True) -> None:
    """An output folder resumes only the run that made it: the first run records its settings, and a later run
    whose settings differ (other than where and on what it runs, and the task's ``resume_free`` keys) is refused
    before any work, naming what changed."""
    settings = {k: v for k, v in wf.resolved().items() if k not in _PLACE_KEYS}
    settings[wf.task.name] = {k: v for k, v in settings[wf.task.name].items() if k not in wf.task.resume_free}
    _read_record(path)
    keep_settings(path, settings, f"output: {path.parent.parent} holds a run made with other settings (changed: "
                                  "{changed}); re-run with --fresh (or resume: false) to start over, or choose "
                                  "another output folder", record=record)


_INPUTS = "inputs.json"
#: what every run writes into its output folder besides the task's recorded files
_RUN_FILES = ("resolved_config.yaml", "run.json", "summary.json")


def input_fingerprints(wf: Workflow, output: str | Path | None = None) -> dict[str, dict[str, Any]]:
    """The files the task block reads (``StrictModel.input_paths``: ``Path`` fields and models), by field:
    ``{"path": ..., "files": {name: fingerprint}}`` with the SHA-256 of each file (size and modification time
    above 256 MB); a folder lists its files by relative name (hidden ones and the run's own output folder left
    out). Keys of the task's ``resume_free`` settings are left out."""
    skip = Path(output).resolve() if output is not None else None
    own: set[Path] | None = None
    out: dict[str, dict[str, Any]] = {}
    for field, path in wf.config.input_paths().items():
        if field.split(".")[0].split("[")[0] in wf.task.resume_free:
            continue
        p = Path(path)
        files: dict[str, str] = {}
        if p.is_file():
            files[p.name] = file_fingerprint(p)
        elif p.is_dir():
            # an input folder holding the output folder: the output's files are left out; an input folder inside
            # the output folder: its files are inputs, less the files the run itself wrote there
            within = skip is not None and p.resolve().is_relative_to(skip)
            if within and own is None:
                own = {*recorded_files(skip), *(skip / n for n in _RUN_FILES)}
            for q in sorted(p.rglob("*")):
                rel = q.relative_to(p)
                if any(part.startswith(".") or part == "__pycache__" for part in rel.parts) or not q.is_file():
                    continue
                if skip is not None and (q.resolve() in own if within else q.resolve().is_relative_to(skip)):
                    continue
                files[rel.as_posix()] = file_fingerprint(q)
        out[f"{wf.task.name}.{field}"] = {"path": str(p), "files": files}
    return out


def _read_record(p: Path) -> dict[str, Any]:
    """A record of the earlier run in ``OUTPUT/.done`` (its settings, its inputs' fingerprints): ``{}`` when there
    is none; one that cannot be read (cut short, overwritten) is refused, as resuming without it would skip the
    check it is for."""
    if not p.is_file():
        return {}
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (ValueError, OSError) as e:        # JSONDecodeError and UnicodeDecodeError are ValueErrors
        why = f"{type(e).__name__}: {str(e).splitlines()[0][:100]}" if str(e) else type(e).__name__
    else:
        if isinstance(data, dict):
            return data
        why = f"a JSON {type(data).__name__}, not a mapping"
    raise InputError(f"output: {p.parent.parent}: the record of the earlier run's progress in {p.parent} is "
                     f"damaged ({p.name}: {why}); re-run with --fresh (or resume: false) to start over")


def _check_same_inputs(output: Path, prints: dict[str, dict[str, Any]], *, record: bool = True) -> None:
    """Like the settings: an output folder resumes only a run made from the same input files. The first run
    records their fingerprints in ``OUTPUT/.done/inputs.json`` (a folder from a version that did not record them
    gets them now); a later run whose inputs changed is refused before any work, naming the field and file."""
    p = output / STATE_DIR / _INPUTS
    old = _read_record(p)
    root = output.resolve()
    for key, now in prints.items():       # versions before 2026-11-29 recorded no files of an input folder kept
        before = old.get(key)              # inside the output folder: such a record counts as none (recorded now)
        if isinstance(before, dict) and before.get("files") == {} and now["files"] and \
                Path(now["path"]).resolve().is_relative_to(root):
            del old[key]
    changed = []
    for key, now in prints.items():
        before = old.get(key)
        if not isinstance(before, dict) or not isinstance(before.get("files"), dict):
            continue
        a, b = before["files"], now["files"]
        names = [f"{n} changed" for n in sorted(set(a) & set(b)) if a[n] != b[n]] + \
            [f"{n} added" for n in sorted(set(b) - set(a))] + [f"{n} removed" for n in sorted(set(a) - set(b))]
        if names:
            more = f" and {len(names) - 3} more" if len(names) > 3 else ""
            changed.append(f"{key}: {', '.join(names[:3])}{more} in {now['path']}")
    if changed:
        raise InputError(f"output: {output} holds a run made from other input files (changed: {'; '.join(changed)}); "
                         f"re-run with --fresh (or resume: false) to start over, or choose another output folder")
    if record and any(k not in old for k in prints):
        atomic_write_json(p, {**old, **prints})


def check_resumable(wf: Workflow, prints: dict[str, Any] | None = None) -> None:
    """What ``run`` refuses before any work, without writing anything: with ``resume`` (the default), an output
    folder that holds a run made with other settings or other inputs (``sciflow validate`` calls it, so a
    workflow that validates also starts)."""
    out = Path(wf.header.output)
    busy = output_in_use(out)
    if busy:
        raise InputError(busy)
    if wf.header.resume:
        _check_same_settings(out / STATE_DIR / "settings.json", wf, record=False)
        _check_same_inputs(out, prints if prints is not None else input_fingerprints(wf, out), record=False)


def run_workflow(source: str | Path | dict[str, Any] | Workflow, *, output: str | Path | None = None,
                 resume: bool | None = None) -> dict[str, Any]:
    """Run a workflow; returns the task's summary (also written to ``output/summary.json``)."""
    wf = source if isinstance(source, Workflow) else validate_workflow(source, output=output)
    header = wf.header
    overrides = {k: v for k, v in (("output", output), ("resume", resume)) if v is not None}
    if overrides:                # validated like the file's own header (model_copy would skip the checks)
        try:
            header = WorkflowHeader(**{**header.model_dump(), **overrides})
        except ValidationError as e:
            raise InputError("--" + format_validation_error(e)) from None
    wf = Workflow(header, wf.task, wf.config, wf.source)
    _check_output_is_no_input(wf)          # again: --output may name an input folder
    device = resolve_device(header.device)
    dist = init_distributed(device)
    if dist.enabled and device.type == "cuda":
        device = torch.device("cuda", dist.local_rank)
    out = Path(header.output)
    settings = out / STATE_DIR / "settings.json"
    prints = input_fingerprints(wf, out)
    # every rank refuses other settings (a refusal on rank 0 alone would leave the others waiting at the barrier)
    check_resumable(wf, prints)
    barrier()
    # one run at a time per output folder (the main rank's lock; a second run is refused before it cleans up)
    with output_lock(out) if dist.is_main else nullcontext():
        if dist.is_main:
            if not header.resume and (out / STATE_DIR).exists():
                # --fresh: the old run's recorded outputs go too, so none of them is left beside the new run's
                # (a run with fewer paths or integrators would otherwise leave path_002.pdb or sphere_cvae.npy)
                for f in recorded_files(out):
                    f.unlink(missing_ok=True)
                shutil.rmtree(out / STATE_DIR)
            _check_same_settings(settings, wf)
            _check_same_inputs(out, prints)
            remove_stale_temporaries(out)        # what a killed run's unfinished writes left (never a final file)
            out.mkdir(parents=True, exist_ok=True)
            atomic_write_text(out / "resolved_config.yaml", yaml.safe_dump(wf.resolved(), sort_keys=False))
            atomic_write_json(out / "run.json", {
                "task": wf.task.name, "seed": header.seed, "device": str(device), "world_size": dist.world_size,
                "versions": package_versions(), "workflow": str(wf.source) if wf.source else None,
                "argv": sys.argv, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
        barrier()
        ctx = RunContext(output=out, seed=header.seed, device=device, dist=dist, resume=header.resume)
        start = time.perf_counter()
        summary = dict(wf.task.run(wf.config, ctx) or {})
        summary.setdefault("seconds", time.perf_counter() - start)
        barrier()
        if dist.is_main:
            atomic_write_json(out / "summary.json", summary)
    return summary
