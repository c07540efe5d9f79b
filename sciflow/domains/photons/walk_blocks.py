"""The tail of a walk batch: the last walks advanced a block of K events per pass, all K computed at once.

When only a few walks are left, one pass of the event loop advances a handful of walks at the cost of a full
pass (about forty small kernels), and the longest walk (hundreds of thousands of events in the densest spheres)
then takes most of the time. Here every walk is advanced by a block of K flights in one go (K x S about
``budget``; geometry in the walks' dtype, the reservoir in float64):

- the directions after each scattering are prefix products of unit quaternions (``quaternions.hg_frames``: an
  odd-even scan, about 2 K products in 2 log2 K passes): the frame F carried along a walk maps +z to its
  direction w, and a scattering by polar angle theta (Henyey-Greenstein, the inverse CDF of
  ``phase.hg_sample_cos`` as half angles) and azimuth phi (uniform) is F <- F Rz(phi) Ry(theta). Any frame
  about w gives the same law for the new direction, since phi is uniform and independent of everything else;
- the positions are cumulative sums of the flights t w (t ~ Exp(1) / sigma_r); the first flight at least as
  long as the distance d to the sphere along it ends the walk at its crossing point (as in the event loop);
- the reservoir event follows from all its draws at once: event n is taken when u wsum_n < albedo^n, and the last
  one taken before the exit is kept, exactly as the event-by-event update keeps it.

Walks that leave early in a block ignore the rest of it; the others carry on in the next block. Host syncs: a
couple per block (which walks left), none per event.
"""
from __future__ import annotations

import torch
from torch import Tensor

from ...core.random import rand
from .fields import EXIT_DIR, EXIT_POS, SCATTER_DIR, SCATTER_POS
from .quaternions import axis_z, block_length, frame_of, hg_frames

__all__ = ["run_tail"]


def run_tail(walk: Tensor, sig: Tensor, gs: Tensor, alb: Tensor, P: Tensor, W: Tensor, SP: Tensor, SW: Tensor,
             nev: Tensor, sk: Tensor, q: Tensor, wsum: Tensor, out: dict[str, Tensor], out_n: Tensor,
             out_k: Tensor, *, generator: torch.Generator | None = None, bar=None, budget: int = 1 << 17,
             k_max: int = 4096) -> None:
    """Finish the walks ``walk`` (S,) from their state and write their records into ``out`` / ``out_n`` /
    ``out_k`` (rows ``walk``).

    State, one column per walk (the layout of ``simulate_walks``): position P and next flight direction W (3, S),
    the kept event SP, SW (3, S) and its index sk, the events so far nev, q = albedo^nev, wsum = sum_k<=nev
    albedo^k; conditions sig, gs, alb (S,). ``budget``: about K x S, the size of one block's arrays.
    """
    f64, ft = torch.float64, P.dtype              # geometry in the walks' dtype, the reservoir in float64
    dev = P.device
    sig, gs = sig.to(ft), gs.to(ft)
    alb, q, wsum = alb.to(f64), q.to(f64), wsum.to(f64)
    W = W / W.norm(dim=0, keepdim=True)
    F = frame_of(W)                                                # (4, S)
    while walk.numel():
        S = walk.numel()
        K = block_length(S, budget, k_max)
        u = rand((4, K, S), generator=generator, device=dev, dtype=ft)
        t = torch.log1p(-u[0]).div_(sig).neg_()                                          # (K, S) flights
        frames = hg_frames(F, gs, u[2], u[3])                          # F_1 .. F_K, unit
        Wk = torch.empty(3, K, S, dtype=ft, device=dev)               # direction of flight j (0-based)
        Wk[:, 0] = W
        Wk[:, 1:] = axis_z(frames[:, :K - 1])
        Pk = torch.cumsum(Wk * t, 1).add_(P.unsqueeze(1))              # position after flight j
        Pprev = torch.empty_like(Pk)
        Pprev[:, 0] = P
        Pprev[:, 1:] = Pk[:, :-1]
        b = Pprev[0] * Wk[0]
        b.addcmul_(Pprev[1], Wk[1]).addcmul_(Pprev[2], Wk[2])
        cc = Pprev[0] * Pprev[0]
        cc.addcmul_(Pprev[1], Pprev[1]).addcmul_(Pprev[2], Pprev[2]).sub_(1)
        d = (b * b).sub_(cc).clamp_min_(0).sqrt_().sub_(b)
        idx = torch.arange(K, device=dev).unsqueeze(1)
        j = torch.where(t >= d, idx, K).amin(0)                        # flights before the exit (K: none)
        left = j < K
        # reservoir over events nev + 1 .. nev + K, those before the exit only
        steps = torch.arange(1, K + 1, device=dev, dtype=f64).unsqueeze(1)
        qk = alb ** steps * q                                                             # albedo^(nev + i)
        wk = torch.cumsum(qk, 0).add_(wsum)
        take = (u[1].to(f64) * wk < qk).logical_and_(idx < j)
        last = torch.where(take, idx + 1, 0).amax(0)                                     # 1-based, 0: none
        got = last > 0
        gi = (last - 1).clamp_min(0).view(1, 1, S).expand(3, 1, S)
        SP = torch.where(got, Pk.gather(1, gi)[:, 0], SP)
        SW = torch.where(got, Wk.gather(1, gi)[:, 0], SW)
        sk = torch.where(got, nev + last, sk)
        done = left.nonzero().squeeze(1)
        if done.numel():
            # walks that left: the crossing point of flight j
            jd = j.clamp_max(K - 1)
            ji = jd.view(1, 1, S).expand(3, 1, S)
            Wj = Wk.gather(1, ji)[:, 0, done]
            pe = Pprev.gather(1, ji)[:, 0, done] + d.gather(0, jd.view(1, S))[:, done] * Wj
            jd = jd[done]
            wid = walk[done]
            dt = out[EXIT_POS].dtype
            out[EXIT_POS][wid] = (pe / pe.norm(dim=0, keepdim=True)).T.to(dt)
            out[EXIT_DIR][wid] = Wj.T.to(dt)
            out[SCATTER_POS][wid] = SP[:, done].T.to(dt)
            out[SCATTER_DIR][wid] = SW[:, done].T.to(dt)
            out_n[wid] = nev[done] + jd
            out_k[wid] = sk[done]
            if bar is not None:
                bar.update(done.numel())
        keep = (~left).nonzero().squeeze(1)
        if not keep.numel():
            break
        F = frames[:, K - 1, keep]
        W = axis_z(F)
        P = Pk[:, K - 1, keep]
        SP, SW, sk = SP[:, keep], SW[:, keep], sk[keep]
        q, wsum = qk[K - 1, keep], wk[K - 1, keep]
        nev = nev[keep] + K
        walk, sig, gs, alb = walk[keep], sig[keep], gs[keep], alb[keep]
