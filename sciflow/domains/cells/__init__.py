"""Cells and other populations observed as unpaired snapshots: the snapshot container and adapter,
standardisation, population drifts (Lotka-Volterra, repressilator) and noise models."""
from .dynamics import (
                       NOISE_MODELS,
                       AdditiveNoise,
                       Drift,
                       GradientMLPDrift,
                       LinearDrift,
                       LotkaVolterra,
                       MLPDrift,
                       MultiplicativeNoise,
                       NoiseModel,
                       Repressilator,
                       make_noise,
)
from .simulate import simulate_snapshots, uniform_box
from .snapshots import (
                       SNAPSHOT_INDEX,
                       SNAPSHOT_POINTS,
                       SNAPSHOT_TIMES,
                       SnapshotAdapter,
                       Snapshots,
                       Standardizer,
)

__all__ = [
                       "NOISE_MODELS",
                       "SNAPSHOT_INDEX",
                       "SNAPSHOT_POINTS",
                       "SNAPSHOT_TIMES",
                       "AdditiveNoise",
                       "Drift",
                       "GradientMLPDrift",
                       "LinearDrift",
                       "LotkaVolterra",
                       "MLPDrift",
                       "MultiplicativeNoise",
                       "NoiseModel",
                       "Repressilator",
                       "SnapshotAdapter",
                       "Snapshots",
                       "Standardizer",
                       "make_noise",
                       "simulate_snapshots",
                       "uniform_box",
]
