"""torch.distributed set-up for runs under ``torchrun`` (nccl on GPU, gloo on CPU)."""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["DistInfo", "all_finite", "barrier", "dist_info", "gather_objects", "init_distributed", "is_main"]


@dataclass(frozen=True)
class DistInfo:
    rank: int
    world_size: int
    local_rank: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def dist_info() -> DistInfo:
    """Rank and world size of this process (a single process when torch.distributed is not initialised)."""
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))
    return DistInfo(0, 1, 0)


def init_distributed(device: torch.device | str | None = None) -> DistInfo:
    """Join the process group that ``torchrun`` describes in WORLD_SIZE/RANK/MASTER_ADDR; no-op otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and dist.is_available() and not dist.is_initialized():
        dev = torch.device(device) if device is not None else None
        backend = "nccl" if (dev is not None and dev.type == "cuda") else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        dist.init_process_group(backend=backend)
    return dist_info()


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def is_main() -> bool:
    return dist_info().is_main


def _active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def all_finite(value: float) -> bool:
    """True when ``value`` is finite on every rank (one all-reduce under torchrun), so that all ranks stop
    together when any of them meets a non-finite loss (a lone rank would wait at the next collective forever)."""
    import math
    ok = math.isfinite(value)
    if not _active():
        return ok
    flag = torch.tensor([0.0 if ok else 1.0],
                        device="cuda" if dist.get_backend() == "nccl" else "cpu")
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return float(flag) == 0.0


def gather_objects(obj: object) -> list[object]:
    """Every rank's ``obj`` in rank order (a one-element list in a single process)."""
    if not _active():
        return [obj]
    out: list[object] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out
