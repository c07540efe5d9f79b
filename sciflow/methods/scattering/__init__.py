"""Scattering CVAEs (Leonard, Hoehlein & Westermann 2021): learned multiple-scattering walks for sphere tracing."""
from .model import MODEL_NAMES, ScatteringCVAEs

__all__ = ["MODEL_NAMES", "ScatteringCVAEs"]
