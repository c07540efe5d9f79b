"""Readers for the formats people already have and generators that make real data here."""
from .toy import eight_gaussians, helix, moons

__all__ = ["eight_gaussians", "helix", "moons"]
