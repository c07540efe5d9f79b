"""Photon transport: Henyey-Greenstein scattering, frames, Monte Carlo walks in a sphere, SDF scenes and the
brute-force volumetric path tracer (the reference the learned integrator is measured against)."""
from . import fields
from .conditions import G_MAX, SIGMA_MAX, check_conditions, expected_events, sample_conditions
from .phase import hg_cdf, hg_pdf, hg_sample, hg_sample_cos
from .walks import MonteCarloWalkSampler, nee_weight, simulate_walks, survival

__all__ = [
           "G_MAX",
           "SIGMA_MAX",
           "MonteCarloWalkSampler",
           "check_conditions",
           "expected_events",
           "fields",
           "hg_cdf",
           "hg_pdf",
           "hg_sample",
           "hg_sample_cos",
           "nee_weight",
           "sample_conditions",
           "simulate_walks",
           "survival",
]
