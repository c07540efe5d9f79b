"""TS-GEN's velocity network: the multi-channel EGNN fed with the noisy TS, the reactant and the product.

Channels moved together by E(3): x_t, R, P. Invariant node inputs: learned element embedding, flow time.
Invariant edge inputs: covalent-bond descriptors of the pair in R and in P. Translation-invariant node vectors:
x_t - midpoint and P - R. Output: a displacement per atom with zero mean per graph, i.e. the network's estimate
of (TS - x_t); TSGen turns it into a velocity. Equivariant under rotations, reflections, translations of all
inputs together and under atom permutations (tested in float64).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ...domains.molecules.features import N_BOND_FEATURES, ElementEmbedding, bond_features
from ...domains.molecules.geometry import center
from ...nn.egnn import EGNN
from ...nn.embeddings import SinusoidalEmbedding
from ...nn.graph import fully_connected_edges

__all__ = ["TSVelocityNet", "reaction_edge_attr"]


def reaction_edge_attr(z: Tensor, pos_r: Tensor, pos_p: Tensor, edge_index: Tensor) -> Tensor:
    """(E, 2 * N_BOND_FEATURES) bond descriptors of each pair in the reactant and in the product."""
    return torch.cat([bond_features(pos_r, z, edge_index), bond_features(pos_p, z, edge_index)], dim=-1)


class TSVelocityNet(nn.Module):
    """Displacement field d(x_t, t | R, P) on ragged graphs.

    forward(x (N, 3), t (N,), atomic_numbers (N,), pos_reactant (N, 3), pos_product (N, 3), batch (N,),
            edge_index (2, E) | None, edge_attr (E, 4) | None, n_graphs: int | None) -> (N, 3) displacement with
            zero mean per graph. ``n_graphs`` (``batch.max() + 1``), when the caller knows it, saves reading it
            back from the device at every call.
    """

    symmetry = "E(3) x S_n"

    def __init__(self, elements: Sequence[int], hidden: int = 96, n_vectors: int = 16, n_layers: int = 5,
                 element_dim: int = 32, time_dim: int = 16, n_rbf: int = 16, cutoff: float = 6.0) -> None:
        super().__init__()
        self.elements = ElementEmbedding(elements, element_dim)
        self.time = SinusoidalEmbedding(time_dim, max_freq=100.0)
        self.egnn = EGNN(node_dim=element_dim + time_dim, n_channels=3, hidden=hidden, n_vectors=n_vectors,
                         n_layers=n_layers, out_vectors=1, edge_dim=2 * N_BOND_FEATURES, n_rbf=n_rbf,
                         cutoff=cutoff, node_vectors=2)

    def forward(self, x: Tensor, t: Tensor, *, atomic_numbers: Tensor, pos_reactant: Tensor, pos_product: Tensor,
                batch: Tensor, edge_index: Tensor | None = None, edge_attr: Tensor | None = None,
                n_graphs: int | None = None, **_: Tensor) -> Tensor:
        if edge_index is None:
            edge_index = fully_connected_edges(batch)
        if edge_attr is None:
            edge_attr = reaction_edge_attr(atomic_numbers, pos_reactant, pos_product, edge_index)
        h = torch.cat([self.elements(atomic_numbers).to(x.dtype), self.time(t.reshape(-1)).to(x.dtype)], dim=-1)
        pos = torch.stack([x, pos_reactant, pos_product], dim=1)                     # (N, 3 channels, 3)
        mid = 0.5 * (pos_reactant + pos_product)
        node_vec = torch.stack([x - mid, pos_product - pos_reactant], dim=1)         # (N, 2, 3)
        _, out = self.egnn(h, pos, edge_index, edge_attr.to(x.dtype), node_vec)
        return center(out[:, 0], batch, graphs=n_graphs)
