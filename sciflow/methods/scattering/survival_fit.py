"""Fit lenGen's conditional prior so that its walks' survival E[albedo^N] matches Monte Carlo walks.

Why: lenGen's samples at high density have a mean N 1-3 % below MC although its posterior reconstructions match
(docs/scattering.md): the latent the sampler draws is slightly off, the ELBO hardly penalises that, and the
survival E[albedo^N] is sensitive to it. Fitting the prior by KL (``fit_priors``) moves it too little. This fit
targets the survival itself.

How: encoder and decoder stay fixed; only the prior network p(z | c) (started at N(0, I), so the first step is
the shipped model) is trained. Each row is one MC walk (condition c_i, events N_i >= 2) with an albedo drawn
log-uniformly in 1 - albedo in [1e-4, 1e-1]; Y_i = albedo^N_i. The model draws ``3 k`` walk lengths at c_i
through the reparameterised prior and decoder, A and B are the means of albedo^N over two thirds, and the
loss is the mean of w_i (A - Y_i)(B - Y_i). A, B and Y_i are independent given c_i, so its expectation is
w_i ((S_model(c_i) - S_MC(c_i))^2 + Var Y_i): an unbiased estimate of the squared survival error plus a
constant, although each Y_i is one walk. w_i = 1 / max(S_i, 0.01)^2 weighs relative errors; S_i is the mean
of a third, independent half of draws without gradient (a weight computed from A and B themselves is
correlated with them and biases the fit towards high survival: seen in a first version). N = floor(exp(y) E0[N]) in the forward pass; the gradient is that of exp(y) E0[N] - 1/2
(straight through the floor). Matching E[albedo^N] over a range of albedos matches the Laplace transform of
the distribution of N, not one moment.
"""
from __future__ import annotations

import math
import time
from collections.abc import Mapping

import torch
from torch import Tensor

from ...core.errors import InputError
from ...core.random import rand, randint, randn
from ...core.training.progress import progress as bar
from ...domains.photons.conditions import expected_events
from ...domains.photons.fields import N_EVENTS, SIGMA_R, G
from .model import ScatteringCVAEs
from .training import _rows, _subset, encode_dataset, with_priors

__all__ = ["fit_len_survival", "survival_loss"]

#: 1 - albedo is drawn log-uniformly in [10^-4, 10^-1] (albedo 0.9 ... 0.9999, the benchmark's range)
LOG10_ABSORB = (-4.0, -1.0)


def survival_loss(model: ScatteringCVAEs, cond: Tensor, sigma_r: Tensor, g: Tensor, n_mc: Tensor,
                  albedo: Tensor, k: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """(loss, model survival (B,)) for rows of MC walks; see the module doc. ``k`` draws per third."""
    cvae = model.model["len"]
    b = cond.shape[0]
    c = cond.repeat(3 * k, 1)                                         # (3 k B, 3), row r is walk r mod B
    pp = cvae.prior_params(c)
    z = randn((c.shape[0], cvae.latent_dim), generator=gen, dtype=c.dtype)
    if pp is not None:
        z = pp[0] + torch.exp(0.5 * pp[1]) * z
    mean, log_var = cvae.decode(z, c)
    y = mean[:, 0] + torch.exp(0.5 * log_var[:, 0]) * randn((c.shape[0],), generator=gen, dtype=c.dtype)
    e0 = expected_events(sigma_r.double(), g.double()).repeat(3 * k)
    x = torch.exp(y.double().clamp(max=30)) * e0
    n_hard = torch.floor(x).clamp_min(2)                              # the sampler's N (lenGen models N >= 2)
    n_soft = (x - 0.5).clamp_min(2)
    n = n_soft + (n_hard - n_soft).detach()
    log_a = torch.log(albedo.double()).repeat(3 * k)
    s = torch.exp(n * log_a).reshape(3 * k, b)
    a, bb, s_model = s[:k].mean(0), s[k:2 * k].mean(0), s[2 * k:].mean(0).detach()
    y_mc = torch.exp(n_mc.double() * torch.log(albedo.double()))
    w = 1.0 / s_model.clamp_min(0.01) ** 2
    return (w * (a - y_mc) * (bb - y_mc)).mean(), s_model


def fit_len_survival(model: ScatteringCVAEs, walks: Mapping[str, Tensor], *, steps: int = 2000,
                     batch_size: int = 4096, draws: int = 4, lr: float = 3e-3, seed: int = 0,
                     progress: bool = True) -> ScatteringCVAEs:
    """A copy of ``model`` whose lenGen draws its latent from a conditional prior fitted to the survival of
    ``walks`` (MC walk records; prefer walks lenGen was not trained on). ``draws``: model draws per third (see
    the module doc). Returns the copy; ``info["survival_fit"]`` records the settings and the loss."""
    if int(steps) < 1 or int(batch_size) < 1 or int(draws) < 1:
        raise InputError(f"steps, batch_size, draws: must be >= 1, got {steps}, {batch_size}, {draws}")
    if not lr > 0:
        raise InputError(f"lr: must be > 0, got {lr}")
    new = with_priors(model, ["len"], seed)
    cvae = new.model["len"]
    data = encode_dataset(new, walks)
    sel = _rows("len", new, data)
    rows = data if sel is None else _subset({}, data, *sel)
    m = rows["cond"].shape[0]
    gen = torch.Generator().manual_seed(int(seed))
    for p in cvae.parameters():
        p.requires_grad_(False)
    params = list(cvae.prior.parameters())
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.Adam(params, lr=float(lr))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, int(steps), eta_min=0.05 * float(lr))
    lo, hi = LOG10_ABSORB
    hist, t0 = [], time.perf_counter()
    for _ in bar(range(int(steps)), desc="survival fit", enabled=progress):
        i = randint(m, (int(batch_size),), generator=gen)
        albedo = 1.0 - 10.0 ** (lo + (hi - lo) * rand((int(batch_size),), generator=gen, dtype=torch.float64))
        loss, _ = survival_loss(new, rows["cond"][i], rows[SIGMA_R][i], rows[G][i], rows[N_EVENTS][i],
                                albedo, int(draws), gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        hist.append(float(loss.detach()))
    for p in cvae.parameters():
        p.requires_grad_(True)
    cvae.eval()
    tail = hist[-max(1, len(hist) // 10):]
    new.info["survival_fit"] = {"rows": int(m), "steps": int(steps), "batch_size": int(batch_size),
                                "draws": int(draws), "lr": float(lr), "seed": int(seed),
                                "loss_first_10pct": float(sum(hist[:max(1, len(hist) // 10)]) / max(1, len(hist) // 10)),
                                "loss_last_10pct": float(sum(tail) / len(tail)),
                                "seconds": round(time.perf_counter() - t0, 1)}
    if not all(math.isfinite(v) for v in hist):
        raise InputError("survival fit: the loss became non-finite; lower lr")
    return new
