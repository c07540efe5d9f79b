"""Couplings: independent, exact OT and Sinkhorn (POT), multi-marginal chaining; the cost is injected."""
from .base import Cost, Coupling, IndependentCoupling, PlanCoupling, sample_plan, squared_euclidean
from .multimarginal import MultiMarginalCoupling
from .ot import ExactOT, Sinkhorn

__all__ = [
           "Cost",
           "Coupling",
           "ExactOT",
           "IndependentCoupling",
           "MultiMarginalCoupling",
           "PlanCoupling",
           "Sinkhorn",
           "sample_plan",
           "squared_euclidean",
]
