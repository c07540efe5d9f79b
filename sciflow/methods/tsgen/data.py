"""Training tensors of TS-GEN: reactions put in the common frame, the reverse-reaction augmentation, batching.

Frame (``MoleculesAdapter.reaction_batch``): reactant centred, product Kabsch-rotated onto it, midpoint between
them; the reference TS is then Kabsch-aligned onto the midpoint, so the network learns only the TS's shape
relative to R and P, never an arbitrary rotation. Reverse augmentation adds every reaction read backwards
(P -> R shares the TS): the network must give the same TS, seen from the product's frame.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ...core.errors import InputError
from ...core.fields import ATOMIC_NUMBERS, BATCH, POS_PRODUCT, POS_REACTANT, POS_TS
from ...core.random import randint
from ...data.reactions import ReactionSet
from ...domains.molecules.adapter import POS_MIDPOINT, MoleculesAdapter
from ...domains.molecules.geometry import kabsch_align
from ...nn.graph import fully_connected_edges
from .network import reaction_edge_attr

__all__ = ["EDGE_ATTR", "PreparedReactions", "prepare_reactions", "training_digest"]

#: (E, 4) float. Bond descriptors of each edge in R and in P (see ``reaction_edge_attr``).
EDGE_ATTR = "edge_attr"


@dataclass
class PreparedReactions:
    """Reactions in the common frame, float32, ragged by ``offsets`` (R + 1,)."""

    tensors: dict[str, Tensor]
    offsets: Tensor

    def __len__(self) -> int:
        return int(self.offsets.numel()) - 1

    def batch(self, idx: Tensor) -> dict[str, Tensor]:
        """The reactions ``idx`` as one ragged batch (graph k = reaction idx[k]) with edges and edge features."""
        counts = (self.offsets[1:] - self.offsets[:-1])[idx]
        starts = self.offsets[:-1][idx]
        total = int(counts.sum())
        first = torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts)
        rows = torch.repeat_interleave(starts, counts) + torch.arange(total) - first
        out = {k: v[rows] for k, v in self.tensors.items()}
        out[BATCH] = torch.repeat_interleave(torch.arange(idx.numel()), counts)
        out["edge_index"] = fully_connected_edges(out[BATCH])
        out[EDGE_ATTR] = reaction_edge_attr(out[ATOMIC_NUMBERS], out[POS_REACTANT], out[POS_PRODUCT],
                                            out["edge_index"])
        return out

    def random_batch(self, size: int, generator: torch.Generator) -> dict[str, Tensor]:
        return self.batch(randint(len(self), (size,), generator=generator))


def prepare_reactions(data: ReactionSet, adapter: MoleculesAdapter, *, reverse: bool = True) -> PreparedReactions:
    """Frame every reaction (and, with ``reverse``, its reverse) for training; needs ``data.pos_ts``."""
    if data.pos_ts is None:
        raise InputError("dataset: training needs the reference transition states (pos_ts)")
    z = torch.as_tensor(data.atomic_numbers, dtype=torch.long)
    b = data.batch_index()
    r = torch.as_tensor(data.pos_reactant, dtype=torch.float64)
    p = torch.as_tensor(data.pos_product, dtype=torch.float64)
    ts = torch.as_tensor(data.pos_ts, dtype=torch.float64)
    directions = [(r, p), (p, r)] if reverse else [(r, p)]
    parts = []
    for a, c in directions:
        cond = adapter.reaction_batch(z, a, c, b, labels=[str(i) for i in data.rxn_id])
        target = kabsch_align(ts, cond[POS_MIDPOINT].to(torch.float64), b)
        parts.append({ATOMIC_NUMBERS: z, POS_REACTANT: cond[POS_REACTANT].float(),
                      POS_PRODUCT: cond[POS_PRODUCT].float(), POS_MIDPOINT: cond[POS_MIDPOINT].float(),
                      POS_TS: target.float()})
    tensors = {k: torch.cat([pt[k] for pt in parts]) for k in parts[0]}
    counts = torch.as_tensor(data.n_atoms, dtype=torch.long).repeat(len(parts))
    offsets = torch.cat([counts.new_zeros(1), counts.cumsum(0)])
    return PreparedReactions(tensors, offsets)


def training_digest(data: ReactionSet) -> str:
    """``sha256 <hex>`` of the training reactions (ids, atoms, R, P, TS, in order): what a checkpoint records, so
    that training resumed on other reactions (another file, another split) is refused, not mixed in."""
    h = hashlib.sha256()
    for a in (data.rxn_id, data.offsets, data.atomic_numbers, data.pos_reactant, data.pos_product, data.pos_ts):
        a = np.ascontiguousarray(np.asarray(a if a is not None else []))
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return f"sha256 {h.hexdigest()}"
