"""sciflow: scientific trajectories from flow-matching, bridge and conditional generative models.

``import sciflow`` needs only torch, torch-geometric, e3nn and POT; method classes load lazily
(``sciflow.TSGen`` imports its module on first use).
"""
from __future__ import annotations

import importlib
from typing import Any

from .core import FlowMatcher, Generator, InputError, SciflowError, Trajectory, make_generator
from .core.training import TrainConfig, Trainer

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
