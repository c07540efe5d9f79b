"""What a task sees while it runs: output folder, seed, device, sharding, resume markers, atomic writers."""
from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import torch

from ..core.files import atomic_write_json, atomic_write_text
from ..core.interrupts import raise_if_interrupted
from ..core.random import make_generator
from ..core.training import DistInfo, progress
from ..core.trajectory import Trajectory

__all__ = ["STATE_DIR", "RunContext"]

#: folder of the output holding resume state: done markers, the settings of the run, training checkpoints
STATE_DIR = ".done"
_FILES = "_files"

T = TypeVar("T")


def recorded_files(output: Path) -> list[Path]:
    """The files that the run in ``output`` recorded in its done-markers (inside ``output`` only)."""
    import json
    out, root = [], Path(output).resolve()
    for marker in sorted((Path(output) / STATE_DIR).glob("*.json")):
        try:
            files = json.loads(marker.read_text()).get(_FILES, [])
        except (ValueError, OSError, AttributeError):
            continue
        for f in files:
            p = (Path(output) / f).resolve()
            if p.is_relative_to(root) and p != root:
                out.append(p)
    return out


@dataclass
class RunContext:
    """Handed to every task's ``run(cfg, ctx)``.

    Items of batch work should be keyed (a reaction id, a scenario name): ``item_generator(key)`` makes the
    randomness of an item independent of how work is sharded over ranks, and ``is_done`` / ``mark_done`` let
    an interrupted run skip finished items when it is started again. A marker lists the files handed out by
    ``path`` (and the writers) since the previous marker, and an item whose files are gone is done again.
    Resume state (markers, training checkpoints from ``state_path``) lives in ``output/.done``, which ``--fresh``
    removes.
    """

    output: Path
    seed: int
    device: torch.device
    dist: DistInfo
    resume: bool = True
    log_lines: list[str] = field(default_factory=list)
    _handed_out: list[Path] = field(default_factory=list, repr=False)

    @property
    def is_main(self) -> bool:
        return self.dist.is_main

    def path(self, relative: str | Path) -> Path:
        """output/relative, with its folder created."""
        p = self.output / relative
        p.parent.mkdir(parents=True, exist_ok=True)
        self._handed_out.append(p)
        return p

    def state_path(self, relative: str | Path) -> Path:
        """output/.done/relative: resume state such as a training checkpoint (``--fresh`` removes it)."""
        p = self.output / STATE_DIR / relative
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def generator(self, stream: str = "main") -> torch.Generator:
        """A CPU generator for a named stream, seeded from the run's seed."""
        return make_generator(self._derive(stream))

    def stream_seed(self, stream: str) -> int:
        """The integer seed of a named stream (to seed code that draws from torch's global stream, such as a
        network's initial weights, inside ``torch.random.fork_rng``)."""
        return self._derive(stream)

    def item_generator(self, key: Any) -> torch.Generator:
        """A CPU generator for one work item, the same whatever rank draws it."""
        return make_generator(self._derive(f"item:{key}"))

    def _derive(self, key: str) -> int:
        h = hashlib.sha256(f"{self.seed}:{key}".encode()).digest()
        return int.from_bytes(h[:8], "little") & 0x7FFF_FFFF_FFFF_FFFF

    def shard(self, items: Sequence[T]) -> list[T]:
        """This rank's share of ``items`` (round robin)."""
        return list(items[self.dist.rank::self.dist.world_size])

    def _marker(self, key: Any) -> Path:
        safe = hashlib.sha1(str(key).encode()).hexdigest()[:16]
        return self.output / STATE_DIR / f"{safe}.json"

    def is_done(self, key: Any) -> bool:
        """The item was finished by an earlier run and every file it wrote is still there."""
        if not (self.resume and self._marker(key).is_file()):
            return False
        info = self._read_marker(key)
        if info is None:              # a marker cut short (a full disk, a copy): the item is done again
            return False
        return all((self.output / f).exists() for f in info.get(_FILES, []))

    def mark_done(self, key: Any, info: dict[str, Any] | None = None, *,
                  files: Iterable[str | Path] = ()) -> None:
        """Record ``key`` as finished, with the files handed out since the previous marker that now exist, and
        ``files`` written another way (a saved model): ``is_done`` then also needs them, and ``--fresh`` removes
        those inside the output folder."""
        root = self.output.resolve()
        extra = {Path(f).resolve() for f in files}
        files = sorted({str(p.relative_to(self.output)) for p in self._handed_out if p.exists()} |
                       {str(p.relative_to(root)) if p.is_relative_to(root) else str(p) for p in extra})
        self._handed_out.clear()
        atomic_write_json(self._marker(key), {"key": str(key), **(info or {}), _FILES: files},
                          strict=False)      # state: read back by sciflow only, NaN kept
        raise_if_interrupted()        # an interrupt swallowed by a C library's callback ends the run here

    def done_info(self, key: Any) -> dict[str, Any]:
        """What ``mark_done`` recorded for ``key`` (without its file list)."""
        return {k: v for k, v in (self._read_marker(key) or {}).items() if k != _FILES}

    def gather(self, keys: Iterable[Any]) -> dict[Any, dict[str, Any]]:
        """Wait for every rank's share (a barrier), then what ``mark_done`` recorded for each finished key, by
        whichever rank or earlier run finished it: the whole run's results, for summaries."""
        from ..core.training import barrier
        barrier()
        return {k: self.done_info(k) for k in keys if self._marker(k).is_file()}

    def _read_marker(self, key: Any) -> dict[str, Any] | None:
        """The marker's record; None when it cannot be read or is not a mapping (damaged)."""
        import json
        try:
            info = json.loads(self._marker(key).read_text(encoding="utf-8"))
        except ValueError:            # JSONDecodeError, UnicodeDecodeError
            return None
        return info if isinstance(info, dict) else None

    def write_trajectory(self, relative: str | Path, traj: Trajectory, **meta: Any) -> Path:
        """Write atomically with the writer that the suffix selects (``sciflow.io``)."""
        from ..io import write_trajectory
        return write_trajectory(self.path(relative), traj, **meta)

    def write_json(self, relative: str | Path, obj: Any) -> Path:
        return atomic_write_json(self.path(relative), obj)

    def write_text(self, relative: str | Path, text: str) -> Path:
        return atomic_write_text(self.path(relative), text)

    def progress(self, iterable: Iterable[T] | None = None, *, total: int | None = None, desc: str = "",
                 unit: str = "it") -> Any:
        return progress(iterable, total=total, desc=desc, unit=unit)

    def log(self, message: str) -> None:
        self.log_lines.append(message)
        if self.is_main:
            print(message, file=sys.stderr, flush=True)
