"""Invariant features of atoms and atom pairs: learned element embeddings and covalent-bond descriptors."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ...core.errors import InputError
from .elements import SYMBOLS, covalent_radii_of

__all__ = ["N_BOND_FEATURES", "ElementEmbedding", "bond_features"]

#: per edge and geometry: distance / (r_cov,i + r_cov,j) and a smooth covalent-bond indicator
N_BOND_FEATURES = 2


class ElementEmbedding(nn.Module):
    """z (N,) -> (N, dim): a learned vector per element of a fixed vocabulary plus the covalent radius (Å).

    An element outside the vocabulary raises ``InputError`` naming it (the model never saw it in training).
    """

    symmetry = "invariant (atom types)"

    def __init__(self, elements: Sequence[int], dim: int) -> None:
        super().__init__()
        self.elements = sorted(int(z) for z in elements)
        if not self.elements or min(self.elements) < 1 or max(self.elements) >= len(SYMBOLS):
            raise InputError(f"elements: expected atomic numbers in 1..{len(SYMBOLS) - 1}, got {self.elements}")
        table = torch.full((len(SYMBOLS),), -1, dtype=torch.long)
        table[torch.tensor(self.elements)] = torch.arange(len(self.elements))
        self.register_buffer("index", table, persistent=False)
        self.embed = nn.Embedding(len(self.elements), dim - 1)
        self.dim = dim

    def lookup(self, z: Tensor) -> Tensor:
        """(N,) vocabulary index of each atom; unknown elements raise InputError."""
        z = z.long()
        if z.numel() and (int(z.min()) < 1 or int(z.max()) >= len(SYMBOLS)):
            raise InputError(f"atomic_numbers: values must lie in 1..{len(SYMBOLS) - 1}")
        idx = self.index.to(z.device)[z]
        if bool((idx < 0).any()):
            bad = sorted({SYMBOLS[int(v)] for v in z[idx < 0].tolist()})
            known = ", ".join(SYMBOLS[e] for e in self.elements)
            raise InputError(f"atomic_numbers: element(s) {', '.join(bad)} not supported by this model "
                             f"(trained on {known})")
        return idx

    def forward(self, z: Tensor) -> Tensor:
        e = self.embed(self.lookup(z))
        return torch.cat([e, covalent_radii_of(z.long(), e.dtype).unsqueeze(-1)], dim=-1)


def bond_features(pos: Tensor, z: Tensor, edge_index: Tensor, *, bond_scale: float = 1.25,
                  width: float = 0.08) -> Tensor:
    """(E, 2) for each edge (j -> i): r = d_ij / (r_cov,i + r_cov,j) and sigmoid((bond_scale - r) / width),
    a smooth indicator of a covalent bond. Invariant under E(3) and consistent under atom permutation."""
    src, dst = edge_index
    d = (pos[dst] - pos[src]).norm(dim=-1)
    rc = covalent_radii_of(z, pos.dtype)
    r = d / (rc[src] + rc[dst])
    return torch.stack([r, torch.sigmoid((bond_scale - r) / width)], dim=-1)
