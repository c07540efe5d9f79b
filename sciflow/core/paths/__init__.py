"""Probability paths (stateless): ``sample(x0, x1, t, *, noise=None) -> PathSample``."""
from .base import PathSample, ProbPath, broadcast_time
from .interpolant import BrownianBridgePath, CosinePath, InterpolantPath, LinearPath, VPPath
from .multimarginal import MultiMarginalPath

__all__ = [
           "BrownianBridgePath",
           "CosinePath",
           "InterpolantPath",
           "LinearPath",
           "MultiMarginalPath",
           "PathSample",
           "ProbPath",
           "VPPath",
           "broadcast_time",
]
