"""Couplings: independent, exact OT and Sinkhorn (POT), entropic OT at an absolute temperature (and the
Schrödinger-bridge coupling built on it), multi-marginal chaining; the cost is injected."""
from .base import Cost, Coupling, IndependentCoupling, PlanCoupling, sample_plan, squared_euclidean
from .entropic import EntropicOT, sb_coupling
from .multimarginal import MultiMarginalCoupling
from .ot import ExactOT, Sinkhorn

__all__ = [
           "Cost",
           "Coupling",
           "EntropicOT",
           "ExactOT",
           "IndependentCoupling",
           "MultiMarginalCoupling",
           "PlanCoupling",
           "Sinkhorn",
           "sample_plan",
           "sb_coupling",
           "squared_euclidean",
]
