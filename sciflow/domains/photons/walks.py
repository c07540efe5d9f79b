"""Batched Monte Carlo random walks in a unit sphere of homogeneous medium (the ground truth of the CVAEs).

A walk starts at the centre with incoming direction +z and scatters there (event 1). It then flies
exponential distances (in units of the mean free path 1 / sigma_r) and scatters with the Henyey-Greenstein
phase function until a flight crosses the sphere. Absorption is not simulated: a walk of N events survives
with probability albedo^N, applied analytically. Along the way one event k is kept by reservoir sampling with
probability albedo^k / sum_j albedo^j, so that its next-event estimate times ``nee_weight`` is an unbiased
estimate of the sum of the estimates at every event.

Walks run in a pool of slots: a slot whose walk ends takes the next walk of the queue, the queue starts with
the walks expected to be longest, and the pool is compacted when it empties, so the batch stays full. When the
queue is empty and at most ``tail`` walks are left, they finish in blocks of many events per pass
(``walk_blocks.run_tail``: the same law, drawn in another order), instead of one pass per event of the longest.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from ...core.errors import InputError
from ...core.random import rand
from ...core.training.progress import progress as progress_bar
from .conditions import check_conditions, expected_events
from .fields import (
    ALBEDO,
    EXIT_DIR,
    EXIT_POS,
    N_EVENTS,
    NEE_WEIGHT,
    SCATTER_DIR,
    SCATTER_INDEX,
    SCATTER_POS,
    SIGMA_R,
    SURVIVAL,
    G,
)
from .phase import hg_sample_cos
from .walk_blocks import run_tail

__all__ = ["MonteCarloWalkSampler", "nee_weight", "simulate_walks", "survival"]


def nee_weight(albedo: Tensor, n: Tensor) -> Tensor:
    """sum_{k=1..n} albedo^k, in float64 (= n at albedo 1)."""
    a = albedo.to(torch.float64)
    n = n.to(torch.float64)
    one_minus = (1 - a).clamp_min(1e-300)
    val = a * -torch.expm1(n * torch.log(a.clamp_min(1e-300))) / one_minus
    return torch.where(a >= 1, n, val)


def survival(albedo: Tensor, n: Tensor) -> Tensor:
    """albedo^n in float64."""
    return albedo.to(torch.float64) ** n.to(torch.float64)


def _scatter(W: Tensor, g: Tensor, xi1: Tensor, xi2: Tensor) -> Tensor:
    """Henyey-Greenstein scattering of directions stored as (3, S) components (see ``phase.hg_sample``)."""
    mu, sin = hg_sample_cos(g, xi1)
    phi = xi2 * (2 * math.pi)
    lx, ly = sin * torch.cos(phi), sin * torch.sin(phi)
    x, y, z = W[0], W[1], W[2]
    sign = torch.where(z >= 0, 1.0, -1.0).to(z.dtype)
    a = -1.0 / (sign + z)
    b = x * y * a
    # frame of Duff et al. 2017: t1 = (1 + s x^2 a, s b, -s x), t2 = (b, s + y^2 a, -y)
    sx = sign * x
    out = torch.empty_like(W)
    out[0] = lx * (1.0 + sx * x * a) + ly * b + mu * x
    out[1] = lx * (sign * b) + ly * (sign + y * y * a) + mu * y
    out[2] = -(lx * sx) - ly * y + mu * z
    return out


def simulate_walks(sigma_r: Tensor | float, g: Tensor | float, albedo: Tensor | float, n: int | None = None, *,
                   generator: torch.Generator | None = None, device: torch.device | str = "cpu",
                   dtype: torch.dtype = torch.float32, slots: int = 32768, progress: bool = False,
                   desc: str = "walks", renormalise_every: int = 16, tail: int = 4096) -> dict[str, Tensor]:
    """Simulate one walk per condition (or ``n`` walks of one condition when scalars are given).

    Args:
        sigma_r, g, albedo: (M,) conditions or scalars (then ``n`` walks).
        slots: walks advanced together (the batch of each step).
        tail: once every walk has started, the last ``tail`` walks finish in blocks of many events per pass
            (0: event by event to the end; the law is the same, the random stream differs).
    Returns:
        dict of the condition fields, ``n_events`` (M,), ``exit_pos`` / ``exit_dir`` / ``scatter_pos`` /
        ``scatter_dir`` (M, 3), ``scatter_index`` (M,), ``nee_weight`` and ``survival`` (M,), on ``device``.
    """
    s, gg, a = check_conditions(sigma_r, g, albedo)
    device = torch.device(device)
    try:
        s, gg, a = torch.broadcast_tensors(s.reshape(-1), gg.reshape(-1), a.reshape(-1))
    except RuntimeError:
        raise InputError(f"sigma_r, g, albedo: expected scalars or (M,) tensors of one length, got "
                         f"{tuple(torch.as_tensor(sigma_r).shape)}, {tuple(torch.as_tensor(g).shape)}, "
                         f"{tuple(torch.as_tensor(albedo).shape)}") from None
    if n is not None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise InputError(f"n: expected a whole number >= 1, got {n!r}")
        if s.numel() == 1:
            s, gg, a = s.expand(n), gg.expand(n), a.expand(n)
        elif s.numel() != n:
            raise InputError(f"n: {n} walks asked for {s.numel()} conditions; give n only with one condition")
    M = s.numel()
    s, gg, a = s.to(device, dtype).contiguous(), gg.to(device, dtype).contiguous(), a.to(device, dtype).contiguous()
    out_n = torch.zeros(M, dtype=torch.long, device=device)
    out_k = torch.zeros(M, dtype=torch.long, device=device)
    out = {key: torch.zeros(M, 3, dtype=dtype, device=device) for key in (EXIT_POS, EXIT_DIR, SCATTER_POS, SCATTER_DIR)}
    order = torch.argsort(expected_events(s.double(), gg.double()), descending=True)
    if int(slots) < 1:
        raise InputError(f"slots: must be >= 1 (walks advanced together), got {slots}")
    S = min(int(slots), M)
    if isinstance(tail, bool) or not isinstance(tail, int) or tail < 0:
        raise InputError(f"tail: expected a whole number >= 0 (walks left for the block mode), got {tail!r}")

    walk = order[:S].clone()
    queue_pos = S
    sig, gs, alb = s[walk], gg[walk], a[walk].double()
    # structure of arrays: one 1-D tensor per component keeps every op a plain contiguous kernel
    P = torch.zeros(3, S, dtype=dtype, device=device)          # position
    W = torch.zeros(3, S, dtype=dtype, device=device)          # propagation direction
    W[2] = 1
    SP, SW = P.clone(), W.clone()                               # the kept (reservoir) event
    nev = torch.ones(S, dtype=torch.long, device=device)
    sk = torch.ones(S, dtype=torch.long, device=device)
    q = alb.clone()                # albedo^n of the current event
    wsum = alb.clone()             # sum_{k<=n} albedo^k
    alive = torch.ones(S, dtype=torch.bool, device=device)
    u = rand((2, S), generator=generator, device=device, dtype=dtype)
    W = _scatter(W, gs, u[0], u[1])   # the first event, at the centre
    done = 0
    bar = progress_bar(total=M, desc=desc, enabled=progress, unit="walk")
    step = 0
    while done < M:
        step += 1
        u = rand((4, P.shape[1]), generator=generator, device=device, dtype=dtype)
        t = torch.log1p(-u[0]).div_(sig).neg_()
        b = (P * W).sum(0)
        c = (P * P).sum(0).sub_(1)
        d = (b * b).sub_(c).clamp_min_(0).sqrt_().sub_(b)
        leave = (t >= d).logical_and_(alive)
        P.addcmul_(torch.minimum(t, d).unsqueeze(0), W)
        # a scattering event for the walks that stay: reservoir update, then a new direction
        nev += 1
        q.mul_(alb)
        wsum.add_(q)
        take = (u[1].double() * wsum < q).logical_and_(~leave)
        if bool(take.any()):
            ti = take.nonzero().squeeze(1)
            SP[:, ti] = P[:, ti]
            SW[:, ti] = W[:, ti]
            sk[ti] = nev[ti]
        if bool(leave.any()):
            idx = leave.nonzero().squeeze(1)
            wid = walk[idx]
            pos = P[:, idx].T
            out[EXIT_POS][wid] = pos / pos.norm(dim=-1, keepdim=True)
            out[EXIT_DIR][wid] = W[:, idx].T
            out[SCATTER_POS][wid] = SP[:, idx].T
            out[SCATTER_DIR][wid] = SW[:, idx].T
            out_n[wid] = nev[idx] - 1
            out_k[wid] = sk[idx]
            done += idx.numel()
            bar.update(idx.numel())
            k = min(idx.numel(), M - queue_pos)       # refill from the queue
            if k:
                ref = idx[:k]
                new = order[queue_pos:queue_pos + k]
                queue_pos += k
                walk[ref] = new
                sig[ref], gs[ref], alb[ref] = s[new], gg[new], a[new].double()
                P[:, ref] = 0
                SP[:, ref] = 0
                W[:, ref] = 0
                W[2, ref] = 1
                SW[:, ref] = W[:, ref]
                nev[ref] = 1       # the event at the centre, scattered just below
                sk[ref] = 1
                q[ref] = alb[ref]
                wsum[ref] = alb[ref]
            alive[idx[k:]] = False
        W = _scatter(W, gs, u[2], u[3])
        if step % renormalise_every == 0:
            W = W / W.norm(dim=0, keepdim=True)
        if queue_pos >= M and step % 8 == 0:
            n_alive = int(alive.sum())
            if 0 < n_alive <= tail:
                keep = alive.nonzero().squeeze(1)
                run_tail(walk[keep], sig[keep], gs[keep], alb[keep], P[:, keep], W[:, keep], SP[:, keep],
                         SW[:, keep], nev[keep], sk[keep], q[keep], wsum[keep], out, out_n, out_k,
                         generator=generator, bar=bar)
                done = M
                break
            if 0 < n_alive < P.shape[1] // 2:
                keep = alive.nonzero().squeeze(1)
                walk, sig, gs, alb, nev, sk, q, wsum, alive = (walk[keep], sig[keep], gs[keep], alb[keep], nev[keep],
                                                               sk[keep], q[keep], wsum[keep], alive[keep])
                P, W, SP, SW = P[:, keep], W[:, keep], SP[:, keep], SW[:, keep]
    bar.close()
    res = {SIGMA_R: s, G: gg, ALBEDO: a, N_EVENTS: out_n, SCATTER_INDEX: out_k, **out}
    res[NEE_WEIGHT] = nee_weight(a, out_n)
    res[SURVIVAL] = survival(a, out_n)
    return res


class MonteCarloWalkSampler:
    """Exact Monte Carlo walks behind the sampler interface of ``ScatteringCVAEs.sample``: the sphere-tracing
    tracer run with it is the learned integrator with perfect models (slow; a reference for its jump logic)."""

    def __init__(self, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)

    def sample(self, sigma_r: Tensor, g: Tensor, albedo: Tensor | float, *, generator: torch.Generator | None = None,
               check: bool = False, events: int | None = None) -> dict[str, Tensor]:
        if events is not None and int(events) > 1:   # one walk holds one representative event (its reservoir draw)
            raise InputError(f"events: exact walks give one next-event sample per walk, got {events}; use "
                             "nee_events=1 with MonteCarloWalkSampler")
        return simulate_walks(sigma_r.double(), g.double(), albedo, generator=generator, device=self.device,
                              dtype=torch.float64)
