"""Conditional variational autoencoder with a Gaussian output head (Sohn et al. 2015; Kingma & Welling 2014).

q(z | x, c) = N(mu_q, diag sigma_q^2) from the encoder, p(z) = N(0, I), p(x | z, c) = N(mu, diag sigma^2)
from the decoder. Training minimises the negative ELBO  E_q[-log p(x | z, c)] + beta KL(q || p); sampling draws
z ~ p(z) and x ~ p(x | z, c), so only the decoder runs at generation time.

Optionally the prior is conditional, p(z | c) = N(mu_p(c), diag sigma_p(c)^2) from a small network that starts
as N(0, I). ``fit_prior`` fits it after training, with encoder and decoder fixed, by minimising the mean
KL(q(z | x, c) || p(z | c)) over data (best: walks not used in training): the ELBO-optimal prior for the
trained encoder. The ELBO hardly penalises a small offset between the prior and the aggregated posterior
q(z | c) = E_x q(z | x, c) (an offset d costs about d^2 / 2 nats), but samples drawn from the offset prior are
biased; the fitted prior follows the aggregated posterior's mean and spread per condition.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..core.random import randn
from .mlp import MLP

__all__ = ["CVAE", "gaussian_nll", "kl_gaussians", "kl_standard_normal"]

_LOG_2PI = math.log(2 * math.pi)


def gaussian_nll(x: Tensor, mean: Tensor, log_var: Tensor) -> Tensor:
    """(B,) negative log density of x under N(mean, diag exp(log_var)), summed over the last axis."""
    return 0.5 * (log_var + (x - mean) ** 2 * torch.exp(-log_var) + _LOG_2PI).sum(-1)


def kl_standard_normal(mean: Tensor, log_var: Tensor) -> Tensor:
    """(B,) KL(N(mean, diag exp(log_var)) || N(0, I)) in closed form (>= 0)."""
    return 0.5 * (torch.exp(log_var) + mean ** 2 - 1 - log_var).sum(-1)


def kl_gaussians(mean: Tensor, log_var: Tensor, mean_p: Tensor, log_var_p: Tensor) -> Tensor:
    """(B,) KL(N(mean, diag exp(log_var)) || N(mean_p, diag exp(log_var_p))) in closed form (>= 0)."""
    return 0.5 * (log_var_p - log_var + (torch.exp(log_var) + (mean - mean_p) ** 2) * torch.exp(-log_var_p)
                  - 1).sum(-1)


class CVAE(nn.Module):
    """x (B, x_dim) given c (B, c_dim); latent of size ``latent_dim``.

    The decoder maps [z, c] through ``decoder_hidden`` to a mean and a log-variance per output dimension
    (log-variances are bounded to [min_log_var, max_log_var] with a smooth clamp). ``conditional_prior``: a
    network c -> (mu_p, log sigma_p^2) through ``prior_hidden``, initialised to N(0, I) (see the module doc).
    """

    symmetry = "none"

    def __init__(self, x_dim: int, c_dim: int, latent_dim: int = 3, *, encoder_hidden: Sequence[int] = (64, 64),
                 decoder_hidden: Sequence[int] = (16, 16, 16), activation: str = "silu", min_log_var: float = -14.0,
                 max_log_var: float = 4.0, conditional_prior: bool = False,
                 prior_hidden: Sequence[int] = (16,)) -> None:
        super().__init__()
        if min(x_dim, latent_dim) < 1 or c_dim < 0:
            raise ValueError(f"CVAE: x_dim and latent_dim must be >= 1 and c_dim >= 0, got {x_dim}, {latent_dim}, "
                             f"{c_dim}")
        self.x_dim, self.c_dim, self.latent_dim = int(x_dim), int(c_dim), int(latent_dim)
        self.min_log_var, self.max_log_var = float(min_log_var), float(max_log_var)
        self.encoder = MLP(x_dim + c_dim, 2 * latent_dim, encoder_hidden, activation)
        self.decoder = MLP(latent_dim + c_dim, 2 * x_dim, decoder_hidden, activation)
        self.prior: nn.Module | None = None
        if conditional_prior:
            if c_dim < 1:
                raise ValueError("CVAE: a conditional prior needs c_dim >= 1")
            self.prior = MLP(c_dim, 2 * latent_dim, prior_hidden, activation)
            last = [m for m in self.prior.modules() if isinstance(m, nn.Linear)][-1]
            nn.init.zeros_(last.weight)                   # starts as the standard normal
            nn.init.zeros_(last.bias)

    def _bound(self, log_var: Tensor) -> Tensor:
        lo, hi = self.min_log_var, self.max_log_var
        return lo + (hi - lo) * torch.sigmoid((log_var - 0.5 * (lo + hi)) * (4.0 / (hi - lo)))

    def encode(self, x: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
        """(mean, log_var) of q(z | x, c), each (B, latent_dim)."""
        h = self.encoder(torch.cat([x, c], dim=-1))
        mean, log_var = h.chunk(2, dim=-1)
        return mean, log_var.clamp(-20, 8)

    def decode(self, z: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
        """(mean, log_var) of p(x | z, c), each (B, x_dim)."""
        h = self.decoder(torch.cat([z, c], dim=-1))
        mean, log_var = h.chunk(2, dim=-1)
        return mean, self._bound(log_var)

    def prior_params(self, c: Tensor) -> tuple[Tensor, Tensor] | None:
        """(mean, log_var) of p(z | c), each (B, latent_dim); None for the standard normal prior."""
        if self.prior is None:
            return None
        mean, log_var = self.prior(c).chunk(2, dim=-1)
        return mean, log_var.clamp(-10, 4)

    def kl(self, mq: Tensor, lq: Tensor, c: Tensor) -> Tensor:
        """(B,) KL(q(z | x, c) || p(z | c)) for posterior parameters (mq, lq)."""
        pp = self.prior_params(c)
        return kl_standard_normal(mq, lq) if pp is None else kl_gaussians(mq, lq, *pp)

    def elbo_terms(self, x: Tensor, c: Tensor, *, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """(reconstruction NLL (B,), KL (B,)) with one reparameterised draw of z."""
        mq, lq = self.encode(x, c)
        z = mq + torch.exp(0.5 * lq) * randn(mq.shape, generator=generator, device=mq.device, dtype=mq.dtype)
        mean, log_var = self.decode(z, c)
        return gaussian_nll(x, mean, log_var), self.kl(mq, lq, c)

    def loss(self, x: Tensor, c: Tensor, *, generator: torch.Generator | None = None, beta: float = 1.0,
             free_bits: float = 0.0) -> Tensor:
        """Negative ELBO per sample, averaged over the batch (nats).

        ``free_bits`` > 0: each latent dimension's batch-mean KL counts as at least ``free_bits`` nats (Kingma et
        al. 2016), so dimensions are not pushed to collapse onto the prior; 0 gives the plain ELBO.
        """
        if free_bits <= 0:
            rec, kl = self.elbo_terms(x, c, generator=generator)
            return (rec + beta * kl).mean()
        mq, lq = self.encode(x, c)
        z = mq + torch.exp(0.5 * lq) * randn(mq.shape, generator=generator, device=mq.device, dtype=mq.dtype)
        mean, log_var = self.decode(z, c)
        pp = self.prior_params(c)
        mp, lp = pp if pp is not None else (torch.zeros_like(mq), torch.zeros_like(lq))
        kl_dim = (0.5 * (lp - lq + (torch.exp(lq) + (mq - mp) ** 2) * torch.exp(-lp) - 1)).mean(0)
        return gaussian_nll(x, mean, log_var).mean() + beta * kl_dim.clamp_min(float(free_bits)).sum()

    def fit_prior(self, x: Tensor, c: Tensor, *, steps: int = 2000, batch_size: int = 4096, lr: float = 3e-3,
                  generator: torch.Generator | None = None) -> list[float]:
        """Fit the conditional prior to the trained encoder: minimise the mean KL(q(z | x, c) || p(z | c)) over
        the rows of (x, c), encoder and decoder fixed (their parameters are not touched). Each step draws
        ``batch_size`` rows with replacement; a ``batch_size`` of at least the number of rows uses every row every
        step (exact gradient). Returns the mean KL per step. Needs ``conditional_prior=True``."""
        if self.prior is None:
            raise ValueError("fit_prior: this CVAE has no conditional prior (conditional_prior=False)")
        if x.shape[0] != c.shape[0] or x.shape[0] < 1:
            raise ValueError(f"fit_prior: x and c need the same number (>= 1) of rows, got {x.shape[0]} and "
                             f"{c.shape[0]}")
        with torch.no_grad():
            post = [self.encode(x[i:i + 65536], c[i:i + 65536]) for i in range(0, x.shape[0], 65536)]
            mq, lq = torch.cat([m for m, _ in post]), torch.cat([v for _, v in post])
        opt = torch.optim.Adam(self.prior.parameters(), lr=lr)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(int(steps), 1), eta_min=lr * 0.02)
        history = []
        full = int(batch_size) >= mq.shape[0]         # a batch that covers every row: the exact mean, no resampling
        for _ in range(int(steps)):
            i = slice(None) if full else torch.randint(mq.shape[0], (int(batch_size),), generator=generator)
            loss = kl_gaussians(mq[i], lq[i], *self.prior_params(c[i])).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            history.append(float(loss.detach()))
        return history

    @torch.no_grad()
    def sample(self, c: Tensor, *, generator: torch.Generator | None = None, noise: bool = True) -> Tensor:
        """(B, x_dim) draws of x given conditions c (B, c_dim); ``noise=False`` returns the decoder mean."""
        z = randn((c.shape[0], self.latent_dim), generator=generator, device=c.device, dtype=c.dtype)
        pp = self.prior_params(c)
        if pp is not None:
            z = pp[0] + torch.exp(0.5 * pp[1]) * z
        mean, log_var = self.decode(z, c)
        if not noise:
            return mean
        return mean + torch.exp(0.5 * log_var) * randn(mean.shape, generator=generator, device=c.device,
                                                        dtype=c.dtype)
