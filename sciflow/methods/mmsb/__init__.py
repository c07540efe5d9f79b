"""MMSB: multi-marginal Schrödinger bridges with iterative reference refinement (Shen, Berlinghieri &
Broderick, AISTATS 2025). See ``docs/mmsb.md``."""
from .bridge import BridgeSample, BridgeStep, TransitionCost
from .evaluate import evaluate_heldout, w2_distance
from .model import MMSB
from .references import REFERENCES, ZeroDrift, build_reference

__all__ = [
           "MMSB",
           "REFERENCES",
           "BridgeSample",
           "BridgeStep",
           "TransitionCost",
           "ZeroDrift",
           "build_reference",
           "evaluate_heldout",
           "w2_distance",
]
