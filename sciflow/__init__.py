"""sciflow: scientific trajectories from flow-matching, bridge and conditional generative models.

Every public name loads lazily (``sciflow.TSGen`` imports its module on first use, ``sciflow.Trajectory`` the
core and torch), so ``import sciflow`` itself is instant and the command line can catch a Ctrl-C during startup.
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

__all__ = [
    "ConditionalFlow",
    "FlowMatcher",
    "Generator",
    "InputError",
    "SciflowError",
    "TrainConfig",
    "Trainer",
    "Trajectory",
    "__version__",
    "make_generator",
    "read_trajectory",
    "write_trajectory",
]

_LAZY = {
    "FlowMatcher": "sciflow.core",
    "Generator": "sciflow.core",
    "InputError": "sciflow.core",
    "SciflowError": "sciflow.core",
    "Trajectory": "sciflow.core",
    "make_generator": "sciflow.core",
    "TrainConfig": "sciflow.core.training",
    "Trainer": "sciflow.core.training",
    "ConditionalFlow": "sciflow.methods.flow",
    "read_trajectory": "sciflow.io",
    "write_trajectory": "sciflow.io",
    "TSGen": "sciflow.methods.tsgen",
    "MMSB": "sciflow.methods.mmsb",
    "DiTree": "sciflow.methods.ditree",
    "ScatteringCVAEs": "sciflow.methods.scattering",
    "UnbindingFlow": "sciflow.methods.unbinding",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'sciflow' has no attribute {name!r}")
