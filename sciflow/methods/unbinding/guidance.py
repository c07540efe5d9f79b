"""Collision handling for generated paths: clash guidance during sampling and a projection afterwards.

Both use the smooth clash energy of ``sciflow.domains.molecules.complexes`` between ligand and receptor heavy
atoms of the same sample (pairs found with ``bipartite_edges``, so ragged batches of different complexes work).
The "pocket" arguments below are the receptor atoms to test against: ``UnbindingFlow.generate`` passes every
receptor heavy atom a path can reach (``Complex.clash_atoms``), not only the pocket the network sees.

Guidance (reconstruction guidance, as in classifier-free-style steering of flows): at state y_t with velocity v,
the predicted end point is y_1 ~ y_t + (1 - t) v; the velocity is moved down the clash energy gradient taken
at that prediction, v <- v - w * grad E(y_1). Projection: each clashing frame is moved rigidly (translation, then
all-atom steps with a restraint to the raw frame) until no pair is closer than the clash distance.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from ...domains.molecules.complexes import CLASH_DISTANCE
from ...nn.bipartite import bipartite_edges
from ...nn.graph import scatter_sum

__all__ = ["enforce_exit", "frame_clash_energy", "frame_min_distance", "guided_field", "pair_index",
           "project_clashes"]


def pair_index(ligand_batch: Tensor, pocket_batch: Tensor) -> tuple[Tensor, Tensor]:
    """(ligand index, pocket index) of every ligand-pocket pair of the same sample."""
    e = bipartite_edges(pocket_batch, ligand_batch)
    return e[1], e[0]


def frame_clash_energy(frames: Tensor, pocket_pos: Tensor, pairs: tuple[Tensor, Tensor], n_nodes: int,
                       threshold: float = CLASH_DISTANCE, margin: float = 0.3) -> Tensor:
    """frames (Nl, F, 3) Å -> (Nl, F) clash energy attributed to each ligand atom and frame."""
    li, pi = pairs
    d = (frames[li] - pocket_pos[pi].unsqueeze(1)).pow(2).sum(-1).add(1e-12).sqrt()      # (E, F)
    return scatter_sum(torch.relu(threshold + margin - d).pow(2), li, n_nodes)


def frame_min_distance(frames: Tensor, pocket_pos: Tensor, pairs: tuple[Tensor, Tensor], ligand_batch: Tensor,
                       n_graphs: int) -> Tensor:
    """(G, F) closest ligand-pocket heavy-atom distance of every sample and frame."""
    li, pi = pairs
    d = (frames[li] - pocket_pos[pi].unsqueeze(1)).pow(2).sum(-1).sqrt()               # (E, F)
    g = ligand_batch[li]
    out = torch.full((n_graphs, frames.shape[1]), float("inf"), dtype=frames.dtype, device=frames.device)
    return out.scatter_reduce(0, g.unsqueeze(1).expand_as(d), d, reduce="amin")


def guided_field(velocity: Callable[..., Tensor], *, n_frames: int, scale: float, strength: float,
                 threshold: float = CLASH_DISTANCE,
                 clash: tuple[Tensor, Tensor] | None = None,
                 pairs: tuple[Tensor, Tensor] | None = None) -> Callable[..., Tensor]:
    """Wrap a velocity v(y, t, **cond) with clash guidance of weight ``strength`` (0 returns ``velocity``). The
    clash energy is taken against ``clash`` = (receptor positions (M, 3), their sample index (M,)) when given,
    else against the condition's pocket. ``pairs``: ``pair_index`` of the condition's ligand batch and those
    receptor atoms, when the caller has built it (else built at every call, each time reading sizes back from
    the device)."""
    if strength <= 0:
        return velocity

    def field(y: Tensor, t: Tensor, **cond: Tensor) -> Tensor:
        v = velocity(y, t, **cond)
        nl = y.shape[0]
        with torch.enable_grad():
            y1 = (y + (1 - t).reshape(-1, 1) * v).detach().requires_grad_(True)
            frames = cond["ligand_pos"].unsqueeze(1) + scale * y1[:, : 3 * n_frames].reshape(nl, n_frames, 3)
            rec_pos, rec_batch = (cond["pocket_pos"], cond["pocket_batch"]) if clash is None else clash
            ij = pair_index(cond["ligand_batch"], rec_batch) if pairs is None else pairs
            e = frame_clash_energy(frames, rec_pos, ij, nl, threshold).sum()
            (grad,) = torch.autograd.grad(e, y1)
        return v - strength * grad

    return field


def _members(batch: Tensor, owners: Tensor) -> tuple[Tensor, Tensor]:
    """For K owners (sample indices), the rows of ``batch`` that belong to each, concatenated: (row index,
    position k of its owner), ordered owner by owner."""
    order = torch.argsort(batch, stable=True)
    counts = torch.bincount(batch, minlength=int(owners.max()) + 1 if owners.numel() else 0)
    ptr = torch.cumsum(counts, 0) - counts
    sizes = counts[owners]
    k = torch.repeat_interleave(torch.arange(owners.numel(), device=batch.device), sizes)
    within = torch.arange(k.numel(), device=batch.device) - torch.repeat_interleave(torch.cumsum(sizes, 0) - sizes,
                                                                                     sizes)
    return order[ptr[owners][k] + within], k


def project_clashes(frames: Tensor, pocket_pos: Tensor, ligand_batch: Tensor, pocket_batch: Tensor, *,
                    threshold: float = CLASH_DISTANCE, margin: float = 0.3, rigid_steps: int = 200,
                    atom_steps: int = 200, lr: float = 0.05, restraint: float = 0.1) -> Tensor:
    """Remove clashes from frames (Nl, F, 3) Å: rigid per-sample-per-frame translations first, then all-atom
    gradient steps with a harmonic restraint to the input. Only the (sample, frame) pairs with a clash are
    worked on (gathered into a batch of their own); every other frame is returned unchanged."""
    n_graphs = int(ligand_batch.max()) + 1
    pairs = pair_index(ligand_batch, pocket_batch)
    clash = frame_min_distance(frames, pocket_pos, pairs, ligand_batch, n_graphs) < threshold      # (G, F)
    out = frames.detach().clone()
    if not bool(clash.any()):
        return out
    gi, fi = clash.nonzero(as_tuple=True)                                    # K clashing (sample, frame) pairs
    lig, lk = _members(ligand_batch, gi)
    poc, pk = _members(pocket_batch, gi)
    sub = _project(out[lig, fi[lk]].unsqueeze(1), pocket_pos[poc], lk, pk, threshold=threshold, margin=margin,
                   rigid_steps=rigid_steps, atom_steps=atom_steps, lr=lr, restraint=restraint)
    out[lig, fi[lk]] = sub[:, 0]
    return out


#: rigid projection steps between two convergence checks (each check waits for the device)
_CHECK_EVERY = 10


def _project(frames: Tensor, pocket_pos: Tensor, ligand_batch: Tensor, pocket_batch: Tensor, *, threshold: float,
             margin: float, rigid_steps: int, atom_steps: int, lr: float, restraint: float) -> Tensor:
    """``project_clashes`` on every frame of the batch."""
    nl, f = frames.shape[:2]
    n_graphs = int(ligand_batch.max()) + 1
    pairs = pair_index(ligand_batch, pocket_batch)
    x = frames.detach().clone()
    shift = torch.zeros(n_graphs, f, 3, dtype=x.dtype, device=x.device)

    def energy_of(pos: Tensor) -> Tensor:            # (G, F)
        e = frame_clash_energy(pos, pocket_pos, pairs, nl, threshold, margin)
        return torch.zeros(n_graphs, f, dtype=x.dtype, device=x.device).index_add_(0, ligand_batch, e)

    with torch.enable_grad():
        shift.requires_grad_(True)
        for i in range(rigid_steps):
            e = energy_of(x + shift[ligand_batch])
            # once no frame has energy left every later step has a zero gradient and leaves ``shift`` as it is
            # (bit for bit), so reading the energy back from the device every few steps ends with the same shift
            if i % _CHECK_EVERY == 0 and float(e.detach().max()) <= 0:
                break
            (g,) = torch.autograd.grad(e.sum(), shift)
            with torch.no_grad():
                shift -= lr * g
        x = (x + shift.detach()[ligand_batch]).detach()
        ref = x.clone()
        for _ in range(atom_steps):
            still = frame_min_distance(x, pocket_pos, pairs, ligand_batch, n_graphs) < threshold   # (G, F)
            if not bool(still.any()):
                break
            xr = x.clone().requires_grad_(True)
            e = energy_of(xr).sum() + restraint * (xr - ref).pow(2).sum()
            (g,) = torch.autograd.grad(e, xr)
            move = still[ligand_batch].unsqueeze(-1).to(x.dtype)
            x = (x - lr * g * move).detach()
    return x


def enforce_exit(frames: Tensor, pocket_pos: Tensor, ligand_batch: Tensor, pocket_batch: Tensor, weights: Tensor,
                 centre: Tensor, exit_distance: float, *, rounds: int = 4, slack: float = 0.25,
                 threshold: float = CLASH_DISTANCE) -> tuple[Tensor, Tensor]:
    """Frames (Nl, F, 3) Å of paths starting at the bound pose (frame 0, never moved) -> frames whose last frame
    has the ligand centre (``weights``-weighted, e.g. heavy-atom masses) at least ``exit_distance`` Å from
    ``centre`` and no frame closer than ``threshold`` to the pocket, and the (G,) per-path centre distance at the end.

    A path that stops short is stretched along its own exit direction (0 at the bound pose growing linearly to
    0.5 Å past the exit distance at the end); clashes are then projected away. The projection can pull an end
    back inside the exit distance (a ligand stretched against the outside of the receptor), so both steps repeat,
    at most ``rounds`` times, each round aiming 1.5 Å further out, until both hold. An end within ``slack`` Å
    outside the exit distance counts as short too: atoms left out of ``weights`` (the hydrogens) move the full
    centre of mass by about a tenth of an Å."""
    n = int(ligand_batch.max()) + 1
    pairs = pair_index(ligand_batch, pocket_batch)
    w = weights.to(frames).unsqueeze(-1)
    total = scatter_sum(w, ligand_batch, n)
    ramp = torch.linspace(0, 1, frames.shape[1], dtype=frames.dtype, device=frames.device).reshape(1, -1, 1)

    def end_offset(x: Tensor) -> Tensor:                  # (G, 3) ligand centre minus ``centre``, last frame
        return scatter_sum(x[:, -1] * w, ligand_batch, n) / total - centre

    x = frames
    for k in range(int(rounds)):
        end = end_offset(x)           # a path the projection pulled back is stretched further the next round
        short = end.norm(dim=-1) < exit_distance + slack
        gap = (exit_distance + 0.5 + 1.5 * k - end.norm(dim=-1)).clamp_min(0) * short
        if bool((gap > 0).any()):
            push = end / end.norm(dim=-1, keepdim=True).clamp_min(1e-6) * gap.unsqueeze(-1)
            x = x + ramp * push[ligand_batch].unsqueeze(1)
        clashing = bool((frame_min_distance(x, pocket_pos, pairs, ligand_batch, n)[:, 1:] < threshold).any())
        if clashing:
            x = torch.cat([x[:, :1], project_clashes(x[:, 1:], pocket_pos, ligand_batch, pocket_batch,
                                                     threshold=threshold)], dim=1)
        if not clashing and not bool((gap > 0).any()):
            break
    return x, end_offset(x).norm(dim=-1)
