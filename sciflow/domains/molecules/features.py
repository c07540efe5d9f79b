"""Invariant features of atoms and atom pairs: learned element embeddings and covalent-bond descriptors."""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from ...core.errors import InputError
from .elements import COVALENT_RADII, SYMBOLS, covalent_radii_of

__all__ = ["N_BOND_FEATURES", "ElementEmbedding", "bond_features"]

#: per edge and geometry: distance / (r_cov,i + r_cov,j) and a smooth covalent-bond indicator
N_BOND_FEATURES = 2


class ElementEmbedding(nn.Module):
    """z (N,) -> (N, dim): a learned vector per element of a fixed vocabulary plus the covalent radius (Å).

    An element outside the vocabulary raises ``InputError`` naming it (the model never saw it in training).
    Each check reads values back from the device; a sampler calling the network at every step with the same
    atoms checks them once, with ``checked``.
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
        self._checked: Tensor | None = None                       # see ``checked``
        self._radii: dict[tuple[torch.device, torch.dtype], Tensor] = {}

    @contextmanager
    def checked(self, z: Tensor) -> Iterator[None]:
        """Check the atomic numbers ``z`` once (as ``lookup`` does, raising the same errors); inside the block,
        calls with this very tensor skip the check."""
        self.lookup(z)
        before, self._checked = getattr(self, "_checked", None), z
        try:
            yield
        finally:
            self._checked = before

    def _radius_table(self, device: torch.device, dtype: torch.dtype) -> Tensor:
        """The covalent radii of every element on ``device`` in ``dtype``, built once (not uploaded per call)."""
        cache = self.__dict__.setdefault("_radii", {})
        table = cache.get((device, dtype))
        if table is None:
            with torch.inference_mode(False):
                table = cache[(device, dtype)] = torch.tensor(COVALENT_RADII, dtype=dtype, device=device)
        return table

    def lookup(self, z: Tensor) -> Tensor:
        """(N,) vocabulary index of each atom; unknown elements raise InputError."""
        if z is getattr(self, "_checked", None):
            return self.index.to(z.device)[z.long()]
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
        e = self.embed(self.lookup(z))           # checks z: 1 <= z < len(SYMBOLS) == len(COVALENT_RADII)
        radius = self._radius_table(z.device, e.dtype)[z.long()]         # = covalent_radii_of(z.long(), e.dtype)
        return torch.cat([e, radius.unsqueeze(-1)], dim=-1)


def bond_features(pos: Tensor, z: Tensor, edge_index: Tensor, *, bond_scale: float = 1.25,
                  width: float = 0.08) -> Tensor:
    """(E, 2) for each edge (j -> i): r = d_ij / (r_cov,i + r_cov,j) and sigmoid((bond_scale - r) / width),
    a smooth indicator of a covalent bond. Invariant under E(3) and consistent under atom permutation."""
    src, dst = edge_index
    d = (pos[dst] - pos[src]).norm(dim=-1)
    rc = covalent_radii_of(z, pos.dtype)
    r = d / (rc[src] + rc[dst])
    return torch.stack([r, torch.sigmoid((bond_scale - r) / width)], dim=-1)
