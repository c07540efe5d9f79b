"""The tail of a brute-force render: the last paths in the medium advanced a block of K scattering events per pass.

Once no more paths are issued, the paths still in flight finish one event per pass of ``VolumePathTracer.render``
(a few dozen small kernels), and in a dense medium the deepest of them need thousands of passes at tiny
occupancy. Here each path inside the medium is advanced by K events at once, with the law of the event loop and
``VolumePathTracer.medium_event`` (the random numbers are drawn in another order):

- flights t_j ~ Exp(sigma_t); the first one is measured from the entry point, ``back`` behind x, as in the loop;
- the directions W_j of the flights are prefix products of unit quaternions (``quaternions.hg_frames``: W_0 is
  the path's direction, W_{j+1} its Henyey-Greenstein scattering at event j), the positions P_j cumulative sums
  of t_j W_j;
- the first flight at least as long as the distance to the boundary along it (``shape.exit_distance``, batched,
  so any SDF shape works; only on the flights longer than -sdf at their start) leaves the medium at its
  crossing point, nudged past it;
- event j (at P_j, before the exit) adds beta_j albedo direct(P_j, W_j), the next-event estimate for the
  incoming direction, then beta <- beta albedo and Russian roulette: below ``rr`` the path survives with
  probability beta / rr at beta = rr. While it lives beta_j = max(beta_0 albedo^j, rr) (once the roulette has
  started beta stays at rr), so every event's throughput and survival probability follow at once; the first
  event that kills the path is its last (it still adds its estimate), and nothing after the exit counts.

A path that leaves is outside the medium (dead for a convex shape, whose rays cannot come back); the others carry
on in the next block from their last event. Host syncs: a few per block, none per event. The caller picks K
(``block_events``: the renderer adapts it to how many events of each block the paths use). Measured on one CPU
thread (24x24 sphere, g 0.5, albedo 0.999, 16,384 slots, 30 s budget, sigma_r 256): the paths in flight at the
budget took 11.8 s event by event and 4.8 s in blocks (3.4e4 -> 4.1e4 paths/s over the whole run).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from ...core.random import rand
from .quaternions import axis_z, block_length, frame_of, hg_frames

if TYPE_CHECKING:
    from .scene import SDFShape
    from .volpath import VolumePathTracer

__all__ = ["BlockStep", "advance_block", "block_events"]


@dataclass
class BlockStep:
    """Paths after one block: their state, which are still inside / alive, radiance added, events simulated."""

    x: Tensor            # (S, 3) position: the last event, or just past the exit point
    w: Tensor            # (S, 3) unit propagation direction
    beta: Tensor         # (S,) throughput (0 for the paths killed by the roulette)
    inside: Tensor       # (S,) bool: still in the medium
    alive: Tensor        # (S,) bool
    contrib: Tensor      # (S,) float64 radiance added to each path's total
    events: int          # scattering events simulated (those before the exit and up to the death)
    length: int          # K, the events per path drawn for this block


def _exit_distances(shape: SDFShape, Pprev: Tensor, W: Tensor, t: Tensor, idx: Tensor) -> Tensor:
    """(K, S) ``shape.exit_distance`` from the flights' starts Pprev along W (K, S, 3), where it decides whether
    the flight t (K, S) leaves; inf elsewhere. A flight shorter than -sdf at its start stays inside whatever the
    direction (the distance to the boundary is at least -sdf, and the generic march's first step is -sdf), so
    the march runs only on the others: first on each path's first such flight, then on the later ones of the
    paths that did not leave there (flights after a path's exit start outside and do not matter)."""
    K, S = t.shape
    Pf, Wf = Pprev.view(-1, 3), W.reshape(-1, 3)                      # flat over (K, S): row j S + s
    sd = -shape.sdf(Pf).view(K, S)
    need = (t >= sd) | (sd <= shape.eps)
    d = torch.full((K * S,), math.inf, dtype=t.dtype, device=t.device)
    first = torch.where(need, idx, K).amin(0)
    s1 = (first < K).nonzero().squeeze(1)
    if s1.numel():
        f1 = first[s1] * S + s1
        d1 = shape.exit_distance(Pf.index_select(0, f1), Wf.index_select(0, f1))
        d[f1] = d1
        stay = torch.zeros(S, dtype=torch.bool, device=t.device)
        stay[s1] = t.view(-1).index_select(0, f1) < d1
        f2 = (need & (idx > first) & stay).view(-1).nonzero().squeeze(1)
        if f2.numel():
            d[f2] = shape.exit_distance(Pf.index_select(0, f2), Wf.index_select(0, f2))
    return d.view(K, S)


def advance_block(tracer: VolumePathTracer, x: Tensor, w: Tensor, beta: Tensor, back: Tensor,
                  generator: torch.Generator | None = None, *, length: int, nudge: float) -> BlockStep:
    """Advance the paths inside the medium at ``x`` (S, 3), direction ``w`` (S, 3), throughput ``beta`` (S,)
    whose next flight starts ``back`` (S,) behind x, by up to K = ``length`` events (see the module docstring);
    a path that leaves stops ``nudge`` past its exit point."""
    shape, med = tracer.scene.shape, tracer.scene.medium
    S, dt, dev = x.shape[0], x.dtype, x.device
    K = int(length)
    u = rand((4, K, S), generator=generator, device=dev, dtype=dt)
    t = torch.log1p(-u[0]).div_(med.sigma_t).neg_()                    # (K, S) free flights
    t[0] -= back                                                       # the first one from the entry point
    w = w / w.norm(dim=-1, keepdim=True)
    frames = hg_frames(frame_of(w.T.contiguous()), med.g, u[1], u[2])  # (4, K, S): after events 0 .. K-1
    Wk = torch.empty(K + 1, S, 3, dtype=dt, device=dev)                # direction of flight j; Wk[K] the last
    Wk[0] = w
    Wk[1:] = axis_z(frames).permute(1, 2, 0)
    W = Wk[:K]
    P = torch.cumsum(W * t.unsqueeze(-1), 0).add_(x)                   # event j's position (if before the exit)
    Pprev = torch.cat([x.unsqueeze(0), P[:-1]], 0)                     # where flight j starts
    idx = torch.arange(K, device=dev).unsqueeze(1)
    d = _exit_distances(shape, Pprev, W, t, idx)
    J = torch.where(t >= d, idx, K).amin(0)                            # the flight that leaves (K: none)

    # throughput before each event while the path lives, and the roulette after it
    a, rr = med.albedo, tracer.rr
    c = torch.empty(K + 1, S, dtype=dt, device=dev)
    c[0] = beta
    c[1:] = a
    bb = torch.cumprod(c, 0).clamp_min_(rr)                            # (K + 1, S) beta_j = max(beta_0 a^j, rr)
    pre = bb[:K] * a                                                   # after the albedo at event j
    low = pre < rr
    kept = u[3] < pre / (rr if rr > 0 else 1.0)
    after = torch.where(low, torch.where(kept, torch.full_like(pre, rr), torch.zeros_like(pre)), pre)
    D = torch.where(after <= 0, idx, K).amin(0)                        # the event that kills the path (K: none)
    n = torch.minimum(J, D + 1)                                        # events simulated per path
    died = D < J
    left = (J < K) & ~died

    contrib = torch.zeros(S, dtype=torch.float64, device=dev)
    v = (idx < n).view(-1).nonzero().squeeze(1)                        # events simulated, flat over (K, S)
    if v.numel():
        est = bb[:K].reshape(-1).index_select(0, v) * a * tracer.direct(
            P.view(-1, 3).index_select(0, v), W.reshape(-1, 3).index_select(0, v))   # the incoming direction
        contrib.index_add_(0, v % S, est.to(torch.float64))

    x_new, w_new, beta_new = P[K - 1].clone(), Wk[K].clone(), bb[K].clone()
    inside = torch.ones(S, dtype=torch.bool, device=dev)
    alive = ~died
    beta_new[died] = 0.0
    li = left.nonzero().squeeze(1)
    if li.numel():
        jl = J[li]
        wl = W[jl, li]
        x_new[li] = Pprev[jl, li] + (d[jl, li] + nudge).unsqueeze(-1) * wl
        w_new[li], beta_new[li] = wl, bb[jl, li]
        inside[li] = False
        if shape.convex:                                               # a ray leaving a convex shape never returns
            alive[li] = False
    return BlockStep(x_new, w_new, beta_new, inside, alive, contrib, int(n.sum()), K)


def block_events(paths: int, previous: int | None = None, used: float | None = None, *, budget: int = 1 << 17,
                 k_max: int = 4096) -> int:
    """Events per path of the next block: starts at 16 and doubles while the paths use at least half of each
    block (``used``: events simulated over K x S of the ``previous`` block), halves (down to 4) when they use less
    than a quarter (paths that end early leave the rest of their block unused: in thin media a long block is mostly
    waste); at most ``k_max`` and about ``budget`` / ``paths``, the size of the block's arrays."""
    k = 16 if previous is None else previous
    if used is not None:
        k = min(2 * k, k_max) if used >= 0.5 else max(k // 2, 4) if used < 0.25 else k
    return min(k, block_length(paths, budget, k_max))
