"""Networks. Each declares its symmetry in a ``symmetry`` class attribute; ``nn.symmetry`` tests it."""
from .embeddings import GaussianFourierEmbedding, RadialBasis, SinusoidalEmbedding
from .mlp import MLP, TimeConditionedMLP
from .symmetry import assert_e3_equivariant, assert_permutation_equivariant, random_rotation

__all__ = ["GaussianFourierEmbedding", "RadialBasis", "SinusoidalEmbedding", "MLP", "TimeConditionedMLP",
           "assert_e3_equivariant", "assert_permutation_equivariant", "random_rotation"]
