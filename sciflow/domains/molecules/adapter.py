"""The molecules adapter: atoms <-> ragged graph batches, frames, priors and projector.

A batch of molecules is a set of tensors keyed by the names of ``sciflow.core.fields``: ``atomic_numbers`` (N,),
``pos`` (N, 3) Å, ``batch`` (N,) sorted graph index. A batch of reactions adds ``pos_reactant`` and ``pos_product``
(the conditions) and ``pos_midpoint``, all in one common frame: the reactant centred at the origin, the product
Kabsch-rotated onto it, the midpoint (R + P) / 2 between them. That frame is an equivariant function of the inputs
(rotating the reactant rotates it; moving the product does nothing), so an equivariant network fed with it gives
outputs that follow the reactant.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ...core.errors import InputError, check_finite
from ...core.fields import ATOMIC_NUMBERS, BATCH, POS, POS_PRODUCT, POS_REACTANT
from ...core.random import randn
from ...core.trajectory import Trajectory
from ...nn.graph import fully_connected_edges, radius_edges
from ..base import DomainAdapter
from .geometry import center, kabsch_align, kabsch_rmsd
from .io import Molecule, as_molecule, check_neutral_closed_shell, is_elements_positions, to_atoms

__all__ = [
    "POS_MIDPOINT",
    "MoleculesAdapter",
    "check_atoms_apart",
    "check_distinct",
    "check_reaction",
    "collate_molecules",
    "reaction_frame",
    "replicate_graphs",
]

#: (N, 3) float, Å. Midpoint of the reactant and the Kabsch-aligned product (TS-GEN prior mean).
POS_MIDPOINT = "pos_midpoint"


#: Å. Reactant and product closer than this Kabsch RMSD (after centring and rotation) are one geometry: no reaction
SAME_GEOMETRY_RMSD = 1e-3


def check_reaction(reactant: Molecule, product: Molecule, *, name: str = "reaction", scope: str = "this model"
                   ) -> None:
    """Reactant and product must hold the same atoms in the same order (an atom-mapped pair), at least two, and be
    neutral closed-shell molecules (``scope``, the method that needs it, is named in the message). That they
    differ is checked by a method that needs a reaction (``check_distinct``); an encoding alone does not."""
    if len(reactant) < 2:
        raise InputError(f"{name}: the reactant holds {len(reactant)} atom(s); a reaction needs at least 2")
    if len(reactant) != len(product):
        raise InputError(f"{name}: reactant has {len(reactant)} atoms but product has {len(product)}; "
                         f"both must hold the same atoms in the same order")
    diff = np.nonzero(reactant.numbers != product.numbers)[0]
    if diff.size:
        i = int(diff[0])
        raise InputError(f"{name}: atom order differs between reactant and product at atom {i} "
                         f"({reactant.symbols[i]} vs {product.symbols[i]}); atoms must be mapped 1:1 in order")
    for role, mol in (("reactant", reactant), ("product", product)):
        named = mol.title and mol.title != f"{name}.{role}"
        check_neutral_closed_shell(mol, f"{name} {role} ({mol.title})" if named else f"{name} {role}", scope)


def check_distinct(pos_r: Tensor, pos_p: Tensor, batch: Tensor, labels: Sequence[str] | None = None,
                   tolerance: float = SAME_GEOMETRY_RMSD) -> None:
    """Refuse a reaction whose reactant and product are the same geometry: Kabsch RMSD (after centring and the
    best rotation) below ``tolerance`` Å, e.g. one file passed as both; the error names the reaction by
    ``labels[g]`` (default ``reaction g``) and says that reactant and product coincide."""
    d = kabsch_rmsd(pos_p.to(torch.float64), pos_r.to(torch.float64), batch)
    same = (d < tolerance).nonzero()
    if same.numel():
        g = int(same[0])
        name = labels[g] if labels is not None else f"reaction {g}"
        raise InputError(f"{name}: reactant and product are the same geometry (Kabsch RMSD {float(d[g]):.2g} Å < "
                         f"{tolerance:g} Å); a reaction needs a product that differs from the reactant")


#: Å. No two atoms of a stable geometry come closer (H2's bond is 0.74 Å); closer ones are a unit or input error
MIN_ATOM_DISTANCE = 0.4


def check_atoms_apart(what: str, pos: Tensor, batch: Tensor, labels: Sequence[str] | None = None,
                      min_distance: float = MIN_ATOM_DISTANCE) -> None:
    """Refuse a geometry with two atoms closer than ``min_distance`` Å (e.g. coordinates in nm or Bohr mixed up,
    or all atoms at one point), naming the reaction, the atoms and their distance."""
    src, dst = fully_connected_edges(batch)
    if src.numel() == 0:
        return
    d = (pos[src] - pos[dst]).norm(dim=-1)
    close = (d < min_distance).nonzero()
    if close.numel():
        e = int(close[0])
        g = int(batch[src[e]])
        first = int((batch < g).sum())
        i, j = sorted((int(src[e]) - first, int(dst[e]) - first))
        name = labels[g] if labels is not None else f"reaction {g}"
        raise InputError(f"{name}: {what} atoms {i} and {j} are {float(d[e]):.3g} Å apart (less than "
                         f"{min_distance} Å); positions must be in Å, one atom per position")


def reaction_frame(pos_r: Tensor, pos_p: Tensor, batch: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(R centred, P Kabsch-aligned onto R, midpoint) per graph."""
    r = center(pos_r, batch)
    p = kabsch_align(pos_p, r, batch)
    return r, p, 0.5 * (r + p)


def collate_molecules(mols: Sequence[Molecule], dtype: torch.dtype = torch.float32) -> dict[str, Tensor]:
    """Molecules -> ragged graph batch {atomic_numbers, pos, batch}."""
    if not mols:
        raise InputError("molecules: need at least one molecule")
    z = torch.as_tensor(np.concatenate([m.numbers for m in mols]), dtype=torch.long)
    x = torch.as_tensor(np.concatenate([m.positions for m in mols]), dtype=dtype)
    b = torch.repeat_interleave(torch.arange(len(mols)), torch.tensor([len(m) for m in mols]))
    return {ATOMIC_NUMBERS: z, POS: x, BATCH: b}


def replicate_graphs(cond: dict[str, Tensor], n: int) -> dict[str, Tensor]:
    """Repeat every graph of a batch n times (copies of graph g are graphs g*n .. g*n+n-1, kept sorted)."""
    b = cond[BATCH]
    g = int(b.max()) + 1
    counts = torch.bincount(b, minlength=g)
    ptr = torch.cat([counts.new_zeros(1), counts.cumsum(0)])
    rows = torch.cat([torch.arange(int(ptr[i]), int(ptr[i + 1]), device=b.device).repeat(n) for i in range(g)])
    new_b = torch.repeat_interleave(torch.arange(g * n, device=b.device), counts.repeat_interleave(n))
    out = {k: v[rows] for k, v in cond.items() if torch.is_tensor(v) and v.dim() and v.shape[0] == b.shape[0]}
    out[BATCH] = new_b
    return out


class MoleculesAdapter(DomainAdapter):
    """Molecules and reactions as ragged graphs.

    Args:
        prior_std: standard deviation (Å) of the Gaussian prior per coordinate, centred per graph.
        prior_mean: key of the prior mean in the condition (``pos_midpoint``), or None for a prior at the origin.
        edges: "full" (all pairs of a graph) or "radius" (pairs closer than ``cutoff`` Å in ``edge_key``).
        dtype: floating dtype of encoded positions.
        scope: what the reactions are checked for, named in the neutral / closed-shell refusals (a method sets
            its own name).
    """

    symmetry = "E(3) x S_n"

    def __init__(self, prior_std: float = 0.1, prior_mean: str | None = POS_MIDPOINT, edges: str = "full",
                 cutoff: float = 5.0, dtype: torch.dtype = torch.float32, scope: str = "this model") -> None:
        if not prior_std >= 0:
            raise InputError(f"prior_std: must be >= 0, got {prior_std}")
        if edges not in ("full", "radius"):
            raise InputError(f"edges: expected 'full' or 'radius', got {edges!r}")
        self.prior_std, self.prior_mean, self.edges, self.cutoff, self.dtype = (
            float(prior_std), prior_mean, edges, float(cutoff), dtype)
        self.scope = str(scope)

    # -- encoding -------------------------------------------------------------------------------
    def encode(self, raw: Any) -> dict[str, Tensor]:
        """One molecule or a list of them (any form ``as_molecule`` reads) -> {atomic_numbers, pos, batch}."""
        items = raw if isinstance(raw, (list, tuple)) and raw and not is_elements_positions(raw) else [raw]
        mols = [as_molecule(m, field=f"molecule[{i}]") for i, m in enumerate(items)]
        return collate_molecules(mols, self.dtype)

    def encode_reactions(self, pairs: Sequence[tuple[Any, Any]], names: Sequence[str] | None = None
                         ) -> dict[str, Tensor]:
        """(reactant, product) pairs -> a batch with ``atomic_numbers``, ``pos_reactant``, ``pos_product``,
        ``pos_midpoint`` (common frame, see the module doc) and ``batch``. Every pair is checked first; errors name
        the pair by ``names[i]`` (default ``reactions[i]``)."""
        if not pairs:
            raise InputError("reactions: need at least one (reactant, product) pair")
        if names is not None and len(names) != len(pairs):
            raise InputError(f"names: expected {len(pairs)} (one per pair), got {len(names)}")
        rs, ps = [], []
        for i, pair in enumerate(pairs):
            label = f"reactions[{i}]" if names is None else str(names[i])
            if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
                raise InputError(f"{label}: expected a (reactant, product) pair, got {type(pair).__name__}")
            r = as_molecule(pair[0], field=f"{label}.reactant")
            p = as_molecule(pair[1], field=f"{label}.product")
            check_reaction(r, p, name=label, scope=self.scope)
            rs.append(r)
            ps.append(p)
        br, bp = collate_molecules(rs, torch.float64), collate_molecules(ps, torch.float64)
        labels = [f"reactions[{i}]" for i in range(len(pairs))] if names is None else [str(n) for n in names]
        return self.reaction_batch(br[ATOMIC_NUMBERS], br[POS], bp[POS], br[BATCH], labels=labels)

    def reaction_batch(self, z: Tensor, pos_r: Tensor, pos_p: Tensor, batch: Tensor, *,
                       labels: Sequence[str] | None = None) -> dict[str, Tensor]:
        """Tensors of checked reactions -> the condition dict in the common frame (float64 alignment). Errors name
        a reaction by ``labels[g]`` (default ``reaction g``)."""
        check_finite(POS_REACTANT, pos_r)
        check_finite(POS_PRODUCT, pos_p)
        check_atoms_apart("reactant", pos_r, batch, labels)
        check_atoms_apart("product", pos_p, batch, labels)
        r, p, mid = reaction_frame(pos_r.to(torch.float64), pos_p.to(torch.float64), batch)
        return {ATOMIC_NUMBERS: z.long(), POS_REACTANT: r.to(self.dtype), POS_PRODUCT: p.to(self.dtype),
                POS_MIDPOINT: mid.to(self.dtype), BATCH: batch.long()}

    def edge_index(self, cond: dict[str, Tensor]) -> Tensor:
        """(2, E) edges of the batch (within graphs)."""
        if self.edges == "full":
            return fully_connected_edges(cond[BATCH])
        return radius_edges(cond.get(POS_MIDPOINT, cond.get(POS)), cond[BATCH], self.cutoff)

    # -- decoding -------------------------------------------------------------------------------
    def decode(self, traj: Trajectory, frame: int = -1) -> list[Any]:
        """The geometry of every sample at ``frame`` (default the last) as ase.Atoms, one per graph."""
        z = traj.extras[ATOMIC_NUMBERS].cpu().numpy()
        b = traj.extras[BATCH].cpu().numpy()
        x = traj.states[frame].detach().cpu().to(torch.float64).numpy()
        # rows grouped by graph in one stable sort (a no-op order for the usual sorted batch) and split by counts:
        # each graph's atoms in their row order, as a mask per graph gave them, without G passes over N rows
        order = np.argsort(b, kind="stable")
        cuts = np.cumsum(np.bincount(b, minlength=int(b.max()) + 1))[:-1]
        t = float(traj.times[frame])
        return [to_atoms(zg, xg, {"sample": g, "flow_time": t})
                for g, (zg, xg) in enumerate(zip(np.split(z[order], cuts), np.split(x[order], cuts)))]

    # -- prior, projector, cost -----------------------------------------------------------------
    def prior(self, cond: dict[str, Tensor], n: int | None = None, *,
              generator: torch.Generator | None = None) -> Tensor:
        """mean (the midpoint) + prior_std * noise with zero centroid per graph; one row per atom of ``cond``."""
        b = cond[BATCH]
        if n is not None and int(b.max()) + 1 != n:
            raise InputError(f"n: the condition holds {int(b.max()) + 1} graphs, asked for {n} samples; "
                             f"replicate the graphs first")
        ref = cond[self.prior_mean] if self.prior_mean else cond.get(POS, cond.get(POS_REACTANT))
        noise = center(randn(ref.shape, generator=generator, device=ref.device, dtype=ref.dtype), b)
        mean = ref if self.prior_mean else torch.zeros_like(ref)
        return mean + self.prior_std * noise

    def project(self, x: Tensor, cond: dict[str, Tensor]) -> Tensor:
        """Remove each graph's centroid."""
        return center(x, cond[BATCH])

    def cost(self, x0: Tensor, x1: Tensor) -> Tensor:
        """(B0, B1) squared Kabsch RMSD between single molecules given as (B, N, 3) rows."""
        b0, b1, n = x0.shape[0], x1.shape[0], x0.shape[1]
        a = x0.reshape(b0, 1, n, 3).expand(b0, b1, n, 3).reshape(-1, 3)
        c = x1.reshape(1, b1, n, 3).expand(b0, b1, n, 3).reshape(-1, 3)
        batch = torch.arange(b0 * b1, device=x0.device).repeat_interleave(n)
        return kabsch_rmsd(a, c, batch).reshape(b0, b1).pow(2)

