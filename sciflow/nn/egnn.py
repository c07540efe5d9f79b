"""An E(3)-equivariant message-passing network with several input point sets and vector outputs.

Satorras et al.'s EGNN (ICML 2021) generalised to C coordinate channels per node (e.g. the noisy TS, the reactant
and the product geometry): messages see only invariants (distances and dot products of the per-channel relative
vectors, node scalars, edge scalars); node vector features are sums of relative vectors and earlier vector
features weighted by invariant coefficients. Hence for any rotation or reflection Q, translation t and node
permutation P: out(P (Q x + t)) = P Q out(x). States its symmetry in ``symmetry``; tests check it in float64.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ..core.errors import InputError
from .embeddings import RadialBasis
from .graph import scatter_sum

__all__ = ["EGNN", "EGNNLayer"]


def _mlp(i: int, h: int, o: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(i, h), nn.SiLU(), nn.Linear(h, o))


class EGNNLayer(nn.Module):
    """One round of messages. h: (N, H) scalars; u: (N, K, 3) vectors; rel: (E, C, 3) relative vectors."""

    symmetry = "E(3) x S_n"

    def __init__(self, hidden: int, n_channels: int, n_vectors: int, edge_dim: int, n_rbf: int) -> None:
        super().__init__()
        c = n_channels
        n_dots = c * (c - 1) // 2
        self.msg = _mlp(2 * hidden + c * n_rbf + n_dots + n_vectors + edge_dim, hidden, hidden)
        self.vec_from_rel = nn.Linear(hidden, c * n_vectors)
        self.vec_from_nbr = nn.Linear(hidden, n_vectors)
        self.node = _mlp(2 * hidden + n_vectors, hidden, hidden)
        self.norm = nn.LayerNorm(hidden)
        self.c, self.k = c, n_vectors

    def forward(self, h: Tensor, u: Tensor, edge_index: Tensor, rel: Tensor, rel_feats: Tensor,
                edge_attr: Tensor | None, inv_degree: Tensor) -> tuple[Tensor, Tensor]:
        src, dst = edge_index
        # invariant of the neighbour's vector features as seen along the edge
        uu = (u[src] * u[dst]).sum(-1)                                        # (E, K)
        parts = [rel_feats, uu]
        if edge_attr is not None:
            parts.append(edge_attr)
        # msg's first linear layer acts on [h_dst, h_src, edge invariants]; applying its node blocks once per
        # node and gathering is the same function, with far fewer operations per edge
        first, hid = self.msg[0], h.shape[1]
        w = first.weight
        pre = ((h @ w[:, :hid].T)[dst] + (h @ w[:, hid:2 * hid].T)[src]
               + torch.cat(parts, dim=-1) @ w[:, 2 * hid:].T + first.bias)
        m = self.msg[2](self.msg[1](pre))                                      # (E, H)
        unit = rel / (rel.norm(dim=-1, keepdim=True) + 1.0)                    # (E, C, 3), bounded
        w = self.vec_from_rel(m).reshape(-1, self.c, self.k)                   # (E, C, K)
        vmsg = torch.einsum("eck,ecx->ekx", w, unit) + self.vec_from_nbr(m).unsqueeze(-1) * u[src]
        n = h.shape[0]
        u = u + scatter_sum(vmsg, dst, n) * inv_degree.reshape(-1, 1, 1)
        agg = scatter_sum(m, dst, n) * inv_degree.reshape(-1, 1)
        h = self.norm(h + self.node(torch.cat([h, agg, (u * u).sum(-1)], dim=-1)))
        return h, u


class EGNN(nn.Module):
    """Equivariant network on ragged graphs.

    Args:
        node_dim: size of the invariant node features.
        n_channels: C, the number of coordinate channels per node (point sets moved together by E(3)).
        hidden: width of scalar features. n_vectors: K, vector features per node. n_layers: message rounds.
        out_vectors: number of output vectors per node. edge_dim: size of optional invariant edge features.
        n_rbf, cutoff: radial basis on the per-channel distances.
        node_vectors: number of optional translation-invariant input vectors per node (e.g. x_t - x_R).

    forward(h (N, node_dim), pos (N, C, 3), edge_index (2, E), edge_attr (E, edge_dim) | None,
            node_vec (N, node_vectors, 3) | None) -> (h (N, hidden), vectors (N, out_vectors, 3)).
    """

    symmetry = "E(3) x S_n"

    def __init__(self, node_dim: int, n_channels: int = 1, hidden: int = 64, n_vectors: int = 8, n_layers: int = 4,
                 out_vectors: int = 1, edge_dim: int = 0, n_rbf: int = 16, cutoff: float = 6.0,
                 node_vectors: int = 0) -> None:
        super().__init__()
        self.n_channels, self.n_vectors, self.node_vectors = n_channels, n_vectors, node_vectors
        self.embed = nn.Linear(node_dim, hidden)
        self.rbf = RadialBasis(n_rbf, cutoff)
        self.vec_in = nn.Linear(node_vectors, n_vectors, bias=False) if node_vectors else None
        self.layers = nn.ModuleList(EGNNLayer(hidden, n_channels, n_vectors, edge_dim, n_rbf)
                                    for _ in range(n_layers))
        self.vec_out = nn.Linear(n_vectors, out_vectors, bias=False)

    def forward(self, h: Tensor, pos: Tensor, edge_index: Tensor, edge_attr: Tensor | None = None,
                node_vec: Tensor | None = None) -> tuple[Tensor, Tensor]:
        n = h.shape[0]
        if pos.dim() == 2:
            pos = pos.unsqueeze(1)
        src, dst = edge_index
        rel = pos[dst] - pos[src]                                              # (E, C, 3)
        dist = rel.norm(dim=-1)                                                # (E, C)
        feats = [self.rbf(dist).reshape(rel.shape[0], -1)]
        if self.n_channels > 1:
            iu = torch.triu_indices(self.n_channels, self.n_channels, offset=1, device=pos.device)
            dots = (rel[:, iu[0]] * rel[:, iu[1]]).sum(-1)
            feats.append(dots / (dist[:, iu[0]] * dist[:, iu[1]] + 1.0))
        rel_feats = torch.cat(feats, dim=-1)
        # in-degrees as bincount gives them, without its read-back of dst.min() / dst.max() on an accelerator
        deg = scatter_sum(torch.ones_like(dst), dst, n).clamp_min(1).to(pos.dtype)
        inv_degree = 1.0 / deg
        hh = self.embed(h)
        if (node_vec is None) != (self.vec_in is None):  # one given without the other was silently ignored
            raise InputError(f"node_vec: this EGNN was built with node_vectors={self.node_vectors}; "
                             + ("pass node_vec of shape (N, node_vectors, 3)" if node_vec is None else
                                "got node_vec, which it has no weights for"))
        if self.vec_in is not None and node_vec is not None:
            if node_vec.shape != (n, self.node_vectors, 3):
                raise InputError(f"node_vec: expected shape ({n}, {self.node_vectors}, 3), got "
                                 f"{tuple(node_vec.shape)}")
            u = self.vec_in(node_vec.transpose(1, 2)).transpose(1, 2)           # (N, K, 3)
        else:
            u = pos.new_zeros(n, self.n_vectors, 3)
        for layer in self.layers:
            hh, u = layer(hh, u, edge_index, rel, rel_feats, edge_attr, inv_degree)
        out = self.vec_out(u.transpose(1, 2)).transpose(1, 2)                  # (N, out_vectors, 3)
        return hh, out
