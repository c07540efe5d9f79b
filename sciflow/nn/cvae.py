"""Conditional variational autoencoder with a Gaussian output head (Sohn et al. 2015; Kingma & Welling 2014).

q(z | x, c) = N(mu_q, diag sigma_q^2) from the encoder, p(z) = N(0, I), p(x | z, c) = N(mu, diag sigma^2)
from the decoder. Training minimises the negative ELBO  E_q[-log p(x | z, c)] + beta KL(q || p); sampling draws
z ~ p(z) and x ~ p(x | z, c), so only the decoder runs at generation time.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..core.random import randn
from .mlp import MLP

__all__ = ["CVAE", "gaussian_nll", "kl_standard_normal"]

_LOG_2PI = math.log(2 * math.pi)


def gaussian_nll(x: Tensor, mean: Tensor, log_var: Tensor) -> Tensor:
    """(B,) negative log density of x under N(mean, diag exp(log_var)), summed over the last axis."""
    return 0.5 * (log_var + (x - mean) ** 2 * torch.exp(-log_var) + _LOG_2PI).sum(-1)


def kl_standard_normal(mean: Tensor, log_var: Tensor) -> Tensor:
    """(B,) KL(N(mean, diag exp(log_var)) || N(0, I)) in closed form (>= 0)."""
    return 0.5 * (torch.exp(log_var) + mean ** 2 - 1 - log_var).sum(-1)


class CVAE(nn.Module):
    """x (B, x_dim) given c (B, c_dim); latent of size ``latent_dim``.

    The decoder maps [z, c] through ``decoder_hidden`` to a mean and a log-variance per output dimension
    (log-variances are bounded to [min_log_var, max_log_var] with a smooth clamp).
    """

    symmetry = "none"

    def __init__(self, x_dim: int, c_dim: int, latent_dim: int = 3, *, encoder_hidden: Sequence[int] = (64, 64),
                 decoder_hidden: Sequence[int] = (16, 16, 16), activation: str = "silu", min_log_var: float = -14.0,
                 max_log_var: float = 4.0) -> None:
        super().__init__()
        if min(x_dim, latent_dim) < 1 or c_dim < 0:
            raise ValueError(f"CVAE: x_dim and latent_dim must be >= 1 and c_dim >= 0, got {x_dim}, {latent_dim}, "
                             f"{c_dim}")
        self.x_dim, self.c_dim, self.latent_dim = int(x_dim), int(c_dim), int(latent_dim)
        self.min_log_var, self.max_log_var = float(min_log_var), float(max_log_var)
        self.encoder = MLP(x_dim + c_dim, 2 * latent_dim, encoder_hidden, activation)
        self.decoder = MLP(latent_dim + c_dim, 2 * x_dim, decoder_hidden, activation)

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

    def elbo_terms(self, x: Tensor, c: Tensor, *, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """(reconstruction NLL (B,), KL (B,)) with one reparameterised draw of z."""
        mq, lq = self.encode(x, c)
        z = mq + torch.exp(0.5 * lq) * randn(mq.shape, generator=generator, device=mq.device, dtype=mq.dtype)
        mean, log_var = self.decode(z, c)
        return gaussian_nll(x, mean, log_var), kl_standard_normal(mq, lq)

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
        kl_dim = (0.5 * (torch.exp(lq) + mq ** 2 - 1 - lq)).mean(0)
        return gaussian_nll(x, mean, log_var).mean() + beta * kl_dim.clamp_min(float(free_bits)).sum()

    @torch.no_grad()
    def sample(self, c: Tensor, *, generator: torch.Generator | None = None, noise: bool = True) -> Tensor:
        """(B, x_dim) draws of x given conditions c (B, c_dim); ``noise=False`` returns the decoder mean."""
        z = randn((c.shape[0], self.latent_dim), generator=generator, device=c.device, dtype=c.dtype)
        mean, log_var = self.decode(z, c)
        if not noise:
            return mean
        return mean + torch.exp(0.5 * log_var) * randn(mean.shape, generator=generator, device=c.device,
                                                        dtype=c.dtype)
