import os
import types

import pytest
import torch

os.environ.setdefault("SCIFLOW_PROGRESS", "0")
os.environ.setdefault("MPLBACKEND", "Agg")
torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture
def gen() -> torch.Generator:
    return torch.Generator().manual_seed(1234)


class TickingClock:
    """A fake ``time.perf_counter`` that advances ``dt`` per read: budgets become read counts, the same on any
    machine however loaded. After ``limit`` reads (if given) it raises, so code that ignores its budget fails
    instead of running for ever."""

    def __init__(self, dt: float = 1.0, limit: int | None = None) -> None:
        self.dt, self.limit, self.reads = dt, limit, 0

    def __call__(self) -> float:
        self.reads += 1
        if self.limit is not None and self.reads > self.limit:
            raise RuntimeError("the code kept reading the clock past its time budget")
        return self.reads * self.dt


@pytest.fixture
def ticking_clock(monkeypatch):
    """``install(*modules, dt=..., limit=...)`` replaces ``time`` in each module by a namespace whose
    ``perf_counter`` is one fresh TickingClock (shared by those modules) and returns that clock."""
    def install(*modules, dt: float = 1.0, limit: int | None = None) -> TickingClock:
        clock = TickingClock(dt, limit)
        for mod in modules:
            monkeypatch.setattr(mod, "time", types.SimpleNamespace(perf_counter=clock))
        return clock
    return install
