"""Sphere-tracing path tracer that crosses the medium with the learned walks.

At a scattering event at x (incoming direction w) the largest sphere inside the medium centred at x has radius
|sdf(x)|. When it holds at least ``min_sigma_r`` mean free paths, the three CVAEs sample the walk inside it in
the frame of w: the path jumps to the exit point with the exit direction, its throughput is multiplied by
albedo^N, and next-event estimation is done once, from the representative event, weighted by sum_k albedo^k.
Thinner spheres (near the surface) fall back to one ordinary scattering event. The free flight after a jump
starts afresh at the sphere's surface (the exponential law is memoryless), exactly as in the brute-force tracer.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ...core.errors import check_in_range
from ...core.training.device import check_device
from ...domains.photons.conditions import MIN_SIGMA_R
from ...domains.photons.fields import EXIT_DIR, EXIT_POS, NEE_WEIGHT, SCATTER_DIR, SCATTER_POS, SURVIVAL
from ...domains.photons.frames import local_to_world
from ...domains.photons.scene import Scene
from ...domains.photons.volpath import RenderResult, VolumePathTracer
from .model import ScatteringCVAEs

__all__ = ["SphereTracingCVAETracer"]


class SphereTracingCVAETracer(VolumePathTracer):
    """The learned integrator. ``max_sigma_r`` caps the sphere at the training range (a smaller sphere
    centred at x is still inside the medium)."""

    name = "cvae"

    def __init__(self, scene: Scene, model: ScatteringCVAEs, *, min_sigma_r: float = MIN_SIGMA_R, max_sigma_r: float = 256.0,
                 nee_events: int = 1, **kw) -> None:
        super().__init__(scene, **kw)
        self.model = model
        self.nee_events = int(check_in_range("nee_events", nee_events, 1))
        self.min_sigma_r = check_in_range("min_sigma_r", min_sigma_r, 0.0, low_open=True)
        self.max_sigma_r = check_in_range("max_sigma_r", max_sigma_r, self.min_sigma_r)
        self.jumps = 0

    def render(self, *args: Any, **kw: Any) -> RenderResult:
        """As ``VolumePathTracer.render``; the jump count starts afresh like the event count, and the CVAEs run
        on the render's device (a model loaded on the CPU copied every jump's rows to the host and back)."""
        self.jumps = 0
        device = check_device(kw.get("device", "cpu"))                    # refused before anything moves
        net = getattr(self.model, "model", None)        # the CVAEs (an exact walk sampler has no network)
        if isinstance(net, torch.nn.Module):
            net.to(device)
        return super().render(*args, **kw)

    def medium_event(self, x: Tensor, w: Tensor, beta: Tensor, generator: torch.Generator | None
                     ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        m = self.scene.medium
        radius = (-self.scene.shape.sdf(x)).clamp_min(0)
        sig = (m.sigma_t * radius).clamp(max=self.max_sigma_r)
        big = sig >= self.min_sigma_r
        if not bool(big.any()):
            return super().medium_event(x, w, beta, generator)
        x, w, beta = x.clone(), w.clone(), beta.clone()
        contrib = torch.zeros_like(beta)
        small = ~big
        if bool(small.any()):
            si = small.nonzero().squeeze(1)
            xs, ws, bs, cs = super().medium_event(x[si], w[si], beta[si], generator)
            x[si], w[si], beta[si], contrib[si] = xs, ws, bs, cs
        bi = big.nonzero().squeeze(1)
        sb = sig[bi]
        r = (sb / m.sigma_t).unsqueeze(-1)
        wb, xb = w[bi], x[bi]
        dev = self.model.device
        rec = self.model.sample(sb.to(dev, torch.float32), torch.full_like(sb, m.g, dtype=torch.float32, device=dev),
                                torch.full_like(sb, m.albedo, dtype=torch.float64, device=dev), generator=generator,
                                check=False, **({"events": self.nee_events} if self.nee_events > 1 else {}))
        rec = {k: v.to(x.device) for k, v in rec.items()}
        frame = wb.to(torch.float32) if x.dtype == torch.float32 else wb
        k = self.nee_events
        # next-event estimates from k representative events per jump (independent given N and the exit), averaged
        fk, rk, xk = (frame, r, xb) if k == 1 else (frame.repeat_interleave(k, 0), r.repeat_interleave(k, 0),
                                                     xb.repeat_interleave(k, 0))
        xs = xk + rk * local_to_world(rec[SCATTER_POS].reshape(-1, 3).to(x.dtype), fk)
        ws = local_to_world(rec[SCATTER_DIR].reshape(-1, 3).to(x.dtype), fk)
        nee = self.direct(xs, ws / ws.norm(dim=-1, keepdim=True)).reshape(-1, k).mean(-1)
        contrib[bi] = beta[bi] * rec[NEE_WEIGHT].to(x.dtype) * nee
        beta[bi] = beta[bi] * rec[SURVIVAL].to(x.dtype)
        x[bi] = xb + r * local_to_world(rec[EXIT_POS].to(x.dtype), frame)
        wn = local_to_world(rec[EXIT_DIR].to(x.dtype), frame)
        w[bi] = wn / wn.norm(dim=-1, keepdim=True)
        self.jumps += int(bi.numel())
        self.events += int(bi.numel())
        return x, w, beta, contrib
