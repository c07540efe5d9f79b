"""Brute-force volumetric path tracer over an SDF scene (the reference integrator).

Wavefront design: a pool of path slots advances together; a finished path's slot takes the next
(pixel, sample) item of the queue, so the batch stays full however long single paths run. Inside the medium
every scattering event is simulated (free flight, next-event estimation towards the directional light with
the medium's transmittance, Henyey-Greenstein scattering), with Russian roulette on low throughput.
Subclasses replace ``medium_event`` (the learned integrator jumps across whole spheres there).

Once no more paths are issued and at most ``tail`` are left, the brute-force tracer advances the paths in the
medium by blocks of many events per pass (``volpath_blocks.advance_block``: the same law, the random numbers
drawn in another order) instead of one pass per event of the longest path; a subclass that replaces
``medium_event`` keeps the event loop to the end.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ...core.errors import InputError, check_in_range
from ...core.random import rand
from ...core.training.device import check_device
from ...core.training.progress import progress as progress_bar
from .phase import hg_pdf, hg_sample
from .scene import Scene
from .volpath_blocks import advance_block, block_events

__all__ = ["RenderResult", "VolumePathTracer"]


@dataclass
class RenderResult:
    image: np.ndarray                   # (H, W) float64 radiance
    samples_per_pixel: np.ndarray       # (H, W) int64 paths traced per pixel
    seconds: float
    paths: int
    events: int                         # medium events (scatterings, or sphere jumps)
    info: dict[str, Any] = field(default_factory=dict)
    path_variance: np.ndarray | None = None   # (H, W) sample variance of one path's estimate; NaN below 2 paths

    @property
    def std_error(self) -> np.ndarray | None:
        """(H, W) standard error of each pixel's mean (from the paths' own spread); NaN where a pixel has fewer
        than 2 paths (one path's estimate says nothing of its variance)."""
        if self.path_variance is None:
            return None
        n = self.samples_per_pixel
        return np.where(n >= 2, np.sqrt(self.path_variance / np.maximum(n, 1)), np.nan)

    def relative_path_variance(self, reference: np.ndarray | None = None, lit: float = 0.05) -> float:
        """Variance of one path's estimate over the pixel value squared (``reference``, default this image), mean
        over the pixels brighter than ``lit`` x the brightest: the noise per path, independent of spp."""
        ref = self.image if reference is None else np.asarray(reference)
        mask = ref > lit * ref.max()
        return float(np.mean(self.path_variance[mask] / ref[mask] ** 2))

    def summary(self) -> dict[str, Any]:
        """Time, paths, events, spp range, mean radiance, the tracer's info and ``relative_std_error`` (the mean
        standard error over the mean radiance; NaN, null in JSON, when a pixel has fewer than 2 paths)."""
        out = {"seconds": self.seconds, "paths": self.paths, "events": self.events,
               "spp_min": int(self.samples_per_pixel.min()), "spp_max": int(self.samples_per_pixel.max()),
               "mean_radiance": float(self.image.mean()), **self.info}
        if self.path_variance is not None and self.image.mean() > 0:
            out["relative_std_error"] = float(self.std_error.mean() / self.image.mean())
        return out


class VolumePathTracer:
    """Render ``scene`` by following every scattering event.

    ``tail``: once no more paths will be issued (all ``spp`` issued, or the time budget spent) and at most
    ``tail`` paths are in flight, they finish in blocks of many events per pass (0: one event per pass to the
    end). The default covers the default ``slots``, so the whole drain runs in blocks: at sigma_r 64-256 the
    paths in flight when a time budget ends still hold about as many events as several seconds of full batches,
    which the block mode runs faster per event (and never at low occupancy).
    """

    name = "volpath"

    def __init__(self, scene: Scene, *, rr_threshold: float = 0.1, slots: int = 16384,
                 dtype: torch.dtype = torch.float64, tail: int = 16384) -> None:
        self.scene = scene
        self.rr = check_in_range("rr_threshold", rr_threshold, 0.0, 1.0, high_open=True)
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise InputError(f"dtype: expected a floating-point torch dtype, got {dtype!r}")
        if int(slots) < 1:
            raise InputError(f"slots: must be >= 1 (paths traced together), got {slots}")
        self.slots = int(slots)
        if isinstance(tail, bool) or not isinstance(tail, (int, np.integer)) or tail < 0:
            raise InputError(f"tail: expected a whole number >= 0 (paths in flight for the block mode), got {tail!r}")
        self.tail = int(tail)
        self.dtype = dtype
        self.events = 0

    # -- physics of one scattering event --------------------------------------------------------------
    def transmittance(self, x: Tensor, l: Tensor) -> Tensor:
        """(B,) exp(-sigma_t * length inside the medium) from inside points x towards the light."""
        shape = self.scene.shape
        length = shape.exit_distance(x, l)
        if not shape.convex:
            p = x + (length + 1e-3 * shape.radius).unsqueeze(-1) * l
            for _ in range(4):
                t = shape.intersect(p, l)
                hit = torch.isfinite(t)
                if not bool(hit.any()):
                    break
                q = p[hit] + (t[hit] + 1e-3 * shape.radius).unsqueeze(-1) * l[hit]
                seg = shape.exit_distance(q, l[hit])
                length[hit] = length[hit] + 1e-3 * shape.radius + seg      # the step past the entry is medium too
                p = p.clone()
                p[hit] = q + (seg + 1e-3 * shape.radius).unsqueeze(-1) * l[hit]
                p[~hit] = math.inf
        return torch.exp(-self.scene.medium.sigma_t * length)

    def direct(self, x: Tensor, w: Tensor) -> Tensor:
        """(B,) phase-weighted direct light arriving at inside points x for propagation directions w."""
        light = self.scene.light
        l = light.to_light(x.dtype, x.device).expand_as(x)
        return light.irradiance * hg_pdf((w * l).sum(-1), self.scene.medium.g) * self.transmittance(x, l)

    def medium_event(self, x: Tensor, w: Tensor, beta: Tensor, generator: torch.Generator | None
                     ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """A scattering event at x: returns (x, new w, new beta, radiance added to the pixel)."""
        m = self.scene.medium
        contrib = beta * m.albedo * self.direct(x, w)
        u = rand((2, x.shape[0]), generator=generator, device=x.device, dtype=x.dtype)
        g = torch.full_like(beta, m.g)
        w = hg_sample(w, g, u[0], u[1])
        self.events += x.shape[0]
        return x, w / w.norm(dim=-1, keepdim=True), beta * m.albedo, contrib

    # -- rendering ------------------------------------------------------------------------------------
    def render(self, spp: int | None = None, *, time_budget: float | None = None,
               generator: torch.Generator | None = None, device: str | torch.device = "cpu",
               progress: bool = True) -> RenderResult:
        """Trace ``spp`` paths per pixel, or as many whole passes as ``time_budget`` seconds allow (at least one)."""
        if spp is None and time_budget is None:
            raise InputError("render: give spp or time_budget")
        if spp is not None and (isinstance(spp, bool) or not float(spp).is_integer() or int(spp) < 1):
            raise InputError(f"spp: must be a whole number >= 1, got {spp}")
        if time_budget is not None:
            check_in_range("time_budget", time_budget, 0.0, low_open=True)
        device = check_device(device)
        cam, shape, med = self.scene.camera, self.scene.shape, self.scene.medium
        npix = cam.width * cam.height
        total = npix * int(spp) if spp is not None else 1 << 62
        acc = torch.zeros(npix, dtype=torch.float64, device=device)
        acc2 = torch.zeros(npix, dtype=torch.float64, device=device)     # sums of path totals and their squares
        cnt = torch.zeros(npix, dtype=torch.long, device=device)
        S = int(min(self.slots, total))
        dt = self.dtype
        self.events = 0
        start = time.perf_counter()
        issued = 0
        last_issue = 0.0        # when the last path was issued: the run's time without the tail of paths in flight
        bar = progress_bar(total=total if spp is not None else None, desc=self.name, enabled=progress, unit="path")

        def issue(k: int) -> Tensor:
            nonlocal issued, last_issue
            if time_budget is not None and time.perf_counter() - start > time_budget:
                k = min(k, (-issued) % npix if issued else npix)   # finish the current pass (at least one), then stop
            k = min(k, total - issued)
            pix = (torch.arange(issued, issued + k, device=device) % npix)
            issued += k
            if k:
                last_issue = time.perf_counter() - start
            return pix

        pix = issue(S)
        n = pix.shape[0]
        x = torch.zeros(n, 3, dtype=dt, device=device)
        w = torch.zeros(n, 3, dtype=dt, device=device)
        beta = torch.ones(n, dtype=dt, device=device)
        total_c = torch.zeros(n, dtype=torch.float64, device=device)    # radiance of each path so far
        inside = torch.zeros(n, dtype=torch.bool, device=device)
        fresh = torch.ones(n, dtype=torch.bool, device=device)
        back = torch.zeros(n, dtype=dt, device=device)    # how far behind x the current free flight starts
        cnt.index_add_(0, pix, torch.ones_like(pix))
        # geometry queries start a little past a surface crossing (a generic SDF march reports 0 from the surface
        # itself), but the first free flight after an entry is measured from the entry point, so the layer
        # behind x is not skipped (skipping it darkened dense low-albedo media by up to a few per cent)
        nudge = 1e-4 * shape.radius
        # the block mode for the tail: only with this class's own scattering event (a subclass's replaces it)
        blocks_ok = self.tail > 0 and type(self).medium_event is VolumePathTracer.medium_event
        draining = False        # no more paths will be issued
        tail_blocks = 0
        k_block, used = None, None
        while pix.shape[0]:
            if bool(fresh.any()):                 # new camera rays
                fi = fresh.nonzero().squeeze(1)
                j = rand((fi.shape[0], 2), generator=generator, device=device, dtype=dt)
                o, d = cam.rays(pix[fi], j, dt)
                x[fi], w[fi] = o, d
                fresh[fi] = False
            alive = torch.ones_like(beta, dtype=torch.bool)
            out = ~inside
            if bool(out.any()):                   # rays outside: find the medium or leave the scene
                oi = out.nonzero().squeeze(1)
                t = shape.intersect(x[oi], w[oi])
                hit = torch.isfinite(t)
                hi = oi[hit]
                x[hi] = x[hi] + (t[hit] + nudge).unsqueeze(-1) * w[hi]
                back[hi] = nudge
                inside[hi] = True
                alive[oi[~hit]] = False
            ii = (inside & alive).nonzero().squeeze(1)
            if blocks_ok and not draining:
                draining = issued >= total or (time_budget is not None and issued % npix == 0
                                               and time.perf_counter() - start > time_budget)
            if ii.numel() and draining and pix.shape[0] <= self.tail:      # the tail: many events per pass
                k_block = block_events(ii.numel(), k_block, used)
                st = advance_block(self, x[ii], w[ii], beta[ii], back[ii], generator, length=k_block, nudge=nudge)
                used = st.events / (k_block * ii.numel())
                x[ii], w[ii], beta[ii], inside[ii], back[ii] = st.x, st.w, st.beta, st.inside, 0.0
                alive[ii] = st.alive
                total_c[ii] += st.contrib
                self.events += st.events
                tail_blocks += 1
            elif ii.numel():                      # free flight inside, one event
                u = rand((ii.shape[0],), generator=generator, device=device, dtype=dt)
                tf = -torch.log1p(-u) / med.sigma_t
                de = shape.exit_distance(x[ii], w[ii])
                tf = tf - back[ii]                # the flight from the entry point, taken from x
                back[ii] = 0.0
                leave = tf >= de
                li = ii[leave]
                x[li] = x[li] + (de[leave] + nudge).unsqueeze(-1) * w[li]
                inside[li] = False
                if shape.convex:
                    alive[li] = False
                si = ii[~leave]
                if si.numel():
                    xs = x[si] + tf[~leave].unsqueeze(-1) * w[si]
                    xs, ws, bs, c = self.medium_event(xs, w[si], beta[si], generator)
                    total_c[si] += c.to(torch.float64)
                    # Russian roulette on low throughput
                    low = bs < self.rr
                    if bool(low.any()):
                        ur = rand((int(low.sum()),), generator=generator, device=device, dtype=dt)
                        keep = ur < bs[low] / self.rr
                        b_low = torch.where(keep, torch.full_like(ur, self.rr), torch.zeros_like(ur))
                        bs = bs.clone()
                        bs[low] = b_low
                    x[si], w[si], beta[si] = xs, ws, bs
                    alive[si[bs <= 0]] = False
            dead = (~alive).nonzero().squeeze(1)
            if dead.numel():
                bar.update(int(dead.numel()))
                acc.index_add_(0, pix[dead], total_c[dead])            # a path counts once it has ended
                acc2.index_add_(0, pix[dead], total_c[dead].square())
                total_c[dead] = 0.0
                new = issue(int(dead.numel()))
                k = new.shape[0]
                if k:
                    ref = dead[:k]
                    pix[ref] = new
                    cnt.index_add_(0, new, torch.ones_like(new))
                    beta[ref] = 1.0
                    inside[ref] = False
                    fresh[ref] = True
                    back[ref] = 0.0
                if k < dead.numel():
                    keep = torch.ones_like(beta, dtype=torch.bool)
                    keep[dead[k:]] = False
                    pix, x, w, beta, inside, fresh, total_c, back = (
                        pix[keep], x[keep], w[keep], beta[keep], inside[keep], fresh[keep], total_c[keep], back[keep])
        bar.close()
        seconds = time.perf_counter() - start
        n_pix = cnt.clamp_min(1).to(torch.float64)
        mean = acc / n_pix
        var = (acc2 / n_pix - mean.square()).clamp_min(0) * n_pix / (n_pix - 1).clamp_min(1)
        var = torch.where(cnt >= 2, var, torch.full_like(var, math.nan))     # one path: no spread to measure
        hw = (cam.height, cam.width)
        return RenderResult(mean.reshape(hw).cpu().numpy(), cnt.reshape(hw).cpu().numpy(), seconds, issued,
                            self.events, info={"integrator": self.name, "issue_seconds": last_issue,
                                                  "tail_blocks": tail_blocks},
                            path_variance=var.reshape(hw).cpu().numpy())
