"""The velocity network of UnbindingFlow: one EGNN over ligand and pocket atoms, one coordinate channel per frame.

State per ligand heavy atom: its displacements from the bound pose at the F path frames (divided by ``scale`` Å)
and the path's normalised log exit time (the same value on every atom of a sample). Channel 0 of every node is
the bound pose; channel f of a ligand atom is its position at frame f, and the pocket atoms sit at their fixed
positions in every channel, so each pocket -> ligand message sees the ligand-pocket geometry of every frame.
Pocket atoms only send messages (they do not move), so the cost is linear in the pocket size.

Symmetry: E(3) x S_n. Rotating / reflecting / translating the complex rotates the displacement velocities
and leaves the time velocity unchanged; permuting pocket atoms changes nothing; permuting ligand atoms
permutes the output. ``tests/unbinding`` checks this in float64.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ...domains.molecules.complexes import ELEMENT_TYPES
from ...nn.bipartite import bipartite_edges
from ...nn.egnn import EGNN
from ...nn.embeddings import SinusoidalEmbedding
from ...nn.graph import fully_connected_edges, scatter_mean

__all__ = ["PathVelocity"]


class PathVelocity(nn.Module):
    """v(y_t, t | complex): (Nl, 3F + 1) -> (Nl, 3F + 1) for a ragged batch of complexes."""

    symmetry = "E(3) x S_n"

    def __init__(self, n_frames: int, *, hidden: int = 64, n_vectors: int = 16, n_layers: int = 4, n_rbf: int = 12,
                 cutoff: float = 12.0, time_dim: int = 16, scale: float = 5.0) -> None:
        super().__init__()
        self.n_frames, self.scale = int(n_frames), float(scale)
        n_types = len(ELEMENT_TYPES)
        self.n_types = n_types
        self.time_embed = SinusoidalEmbedding(time_dim)
        self.egnn = EGNN(node_dim=n_types + 2 + time_dim, n_channels=self.n_frames + 1, hidden=hidden,
                         n_vectors=n_vectors, n_layers=n_layers, out_vectors=self.n_frames, n_rbf=n_rbf,
                         cutoff=cutoff, node_vectors=self.n_frames)
        self.tau_head = nn.Sequential(nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, 1))

    @property
    def state_dim(self) -> int:
        return 3 * self.n_frames + 1

    @staticmethod
    def graph(ligand_batch: Tensor, pocket_batch: Tensor) -> dict[str, Tensor | int]:
        """The ``edges`` and ``n_graphs`` that ``forward`` builds from the batch indices, built once: a sampler
        calling the network at every step with the same batch passes them in (as part of its condition)
        instead of rebuilding them, and reading the batch sizes back from an accelerator, at every call."""
        edges = torch.cat([fully_connected_edges(ligand_batch),
                           bipartite_edges(pocket_batch, ligand_batch, src_offset=ligand_batch.shape[0])], dim=1)
        return {"edges": edges, "n_graphs": int(ligand_batch.max()) + 1}

    def forward(self, y: Tensor, t: Tensor, *, ligand_pos: Tensor, ligand_types: Tensor, ligand_batch: Tensor,
                pocket_pos: Tensor, pocket_types: Tensor, pocket_batch: Tensor, edges: Tensor | None = None,
                n_graphs: int | None = None) -> Tensor:
        """``edges`` / ``n_graphs``: what ``graph(ligand_batch, pocket_batch)`` returns, when the caller has it
        (built from the batch indices otherwise)."""
        nl, f = y.shape[0], self.n_frames
        disp = y[:, : 3 * f].reshape(nl, f, 3)
        tau = y[:, 3 * f:]
        if edges is None or n_graphs is None:
            built = self.graph(ligand_batch, pocket_batch)
            edges = built["edges"] if edges is None else edges
            n_graphs = built["n_graphs"] if n_graphs is None else n_graphs
        t_graph = y.new_zeros(n_graphs).index_copy(0, ligand_batch, t.to(y.dtype))
        lig_ch = torch.cat([ligand_pos.unsqueeze(1), ligand_pos.unsqueeze(1) + self.scale * disp], dim=1)
        poc_ch = pocket_pos.unsqueeze(1).expand(-1, f + 1, 3)
        pos = torch.cat([lig_ch, poc_ch])                                        # (Nl + Np, F + 1, 3)
        types = torch.cat([ligand_types, pocket_types])
        onehot = nn.functional.one_hot(types, self.n_types).to(y.dtype)
        is_lig = torch.cat([y.new_ones(nl, 1), y.new_zeros(pocket_pos.shape[0], 1)])
        tau_in = torch.cat([tau, y.new_zeros(pocket_pos.shape[0], 1)])
        t_node = torch.cat([t.to(y.dtype), t_graph[pocket_batch]])
        h = torch.cat([onehot, is_lig, tau_in, self.time_embed(t_node).to(y.dtype)], dim=-1)
        node_vec = torch.cat([disp, y.new_zeros(pocket_pos.shape[0], f, 3)])
        h_out, vec = self.egnn(h, pos, edges, None, node_vec)
        v_disp = vec[:nl].reshape(nl, 3 * f)
        v_tau = self.tau_head(scatter_mean(h_out[:nl], ligand_batch, n_graphs))[ligand_batch]
        return torch.cat([v_disp, v_tau], dim=-1)
