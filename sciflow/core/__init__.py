"""sciflow.core: the mathematics (paths, schedules, couplings, solvers, losses, trainer, Trajectory).

Imports torch, numpy and POT only; nothing here knows about any domain.
"""
from . import couplings, fields, flow_matching, losses, paths, schedules, solvers, training
from .errors import InputError, SciflowError, check_finite, check_in_range, check_shape
from .flow_matching import FlowMatcher
from .generator import Generator
from .random import make_generator
from .registry import COSTS, COUPLINGS, PATHS, SOLVERS, Registry
from .trajectory import Trajectory

__all__ = [
           "COSTS",
           "COUPLINGS",
           "PATHS",
           "SOLVERS",
           "FlowMatcher",
           "Generator",
           "InputError",
           "Registry",
           "SciflowError",
           "Trajectory",
           "check_finite",
           "check_in_range",
           "check_shape",
           "couplings",
           "fields",
           "flow_matching",
           "losses",
           "make_generator",
           "paths",
           "schedules",
           "solvers",
           "training",
]
