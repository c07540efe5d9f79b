"""Networks. Each declares its symmetry in a ``symmetry`` class attribute; ``nn.symmetry`` tests it."""
from .egnn import EGNN, EGNNLayer
from .embeddings import GaussianFourierEmbedding, RadialBasis, SinusoidalEmbedding
from .graph import fully_connected_edges, graph_ptr, radius_edges, scatter_mean, scatter_sum
from .mlp import MLP, TimeConditionedMLP
from .symmetry import assert_e3_equivariant, assert_permutation_equivariant, random_rotation

__all__ = [
           "EGNN",
           "MLP",
           "EGNNLayer",
           "GaussianFourierEmbedding",
           "RadialBasis",
           "SinusoidalEmbedding",
           "TimeConditionedMLP",
           "assert_e3_equivariant",
           "assert_permutation_equivariant",
           "fully_connected_edges",
           "graph_ptr",
           "radius_edges",
           "random_rotation",
           "scatter_mean",
           "scatter_sum",
]
