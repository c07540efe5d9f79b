"""Population dynamics: drift classes with named parameters and noise (diffusion) models.

A drift is a torch module f_theta(x): (B, d) -> (B, d), time homogeneous, in the data's units per unit time.
Mechanistic drifts keep positive rate constants on a log scale so that any optimiser keeps them positive;
``params()`` reports them in natural units.
"""
from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from ...core.errors import InputError, check_in_range
from ...nn.mlp import MLP
from .snapshots import Standardizer

__all__ = [
    "NOISE_MODELS",
    "AdditiveNoise",
    "Drift",
    "GradientMLPDrift",
    "LinearDrift",
    "LotkaVolterra",
    "MLPDrift",
    "MultiplicativeNoise",
    "NoiseModel",
    "Repressilator",
    "make_noise",
]


class Drift(nn.Module):
    """Base of reference drifts: ``forward(x (B, d)) -> (B, d)`` and ``params() -> {name: value}``.

    ``parametric`` drifts have few named parameters (fitted with a full-batch quasi-Newton method); the
    others are networks (fitted with stochastic gradients).
    """

    parametric: bool = False
    dim: int

    def params(self) -> dict[str, list[float] | float]:
        """Named parameters in natural units (plain floats / nested lists), for reports and JSON."""
        return {k: v.detach().cpu().tolist() for k, v in self.named_parameters()}


class _LogParams(Drift):
    """Positive scalar parameters stored as logs in one vector ``log_params`` (order of ``names``)."""

    parametric = True
    names: tuple[str, ...] = ()

    def __init__(self, values: Mapping[str, float]) -> None:
        super().__init__()
        unknown = set(values) - set(self.names)
        if unknown:
            raise InputError(f"params: unknown name(s) {sorted(unknown)} for {type(self).__name__}; "
                             f"known: {list(self.names)}")
        for n in self.names:
            check_in_range(n, values[n], 0.0, low_open=True)
        logs = torch.tensor([float(values[n]) for n in self.names], dtype=torch.float64).log()
        self.log_params = nn.Parameter(logs)

    def values(self, like: Tensor) -> list[Tensor]:
        return list(self.log_params.exp().to(like.dtype).unbind())

    def value(self, name: str) -> Tensor:
        return self.log_params[self.names.index(name)].exp()

    def params(self) -> dict[str, float]:
        return {n: float(v) for n, v in zip(self.names, self.log_params.detach().exp().tolist())}


class LotkaVolterra(_LogParams):
    """Predator-prey drift for x = (prey, predator):

        dx/dt = alpha x - beta x y,    dy/dt = delta x y - gamma y     (all four rates > 0).
    """

    names = ("alpha", "beta", "gamma", "delta")
    dim = 2

    def __init__(self, alpha: float = 1.0, beta: float = 1.0, gamma: float = 1.0, delta: float = 1.0) -> None:
        super().__init__(dict(alpha=alpha, beta=beta, gamma=gamma, delta=delta))

    def forward(self, x: Tensor) -> Tensor:
        a, b, g, d = self.values(x)
        prey, pred = x[..., 0], x[..., 1]
        return torch.stack([a * prey - b * prey * pred, d * prey * pred - g * pred], dim=-1)

    def jacobian(self, x: Tensor) -> Tensor:
        """(B, 2, 2) closed-form df/dx."""
        a, b, g, d = self.values(x)
        prey, pred = x[:, 0], x[:, 1]
        row0 = torch.stack([a - b * pred, -b * prey], -1)
        row1 = torch.stack([d * pred, d * prey - g], -1)
        return torch.stack([row0, row1], 1)


class Repressilator(_LogParams):
    """Cyclic repression of ``dim`` genes' mRNA (Elowitz & Leibler 2000, mRNA-only form):

        dm_i/dt = beta / (1 + (m_{i-1} / k)^n) - gamma m_i,   with m_{-1} = m_{dim-1}.

    Concentrations below ``floor`` are clamped inside the Hill term (n need not be an integer).
    """

    names = ("beta", "n", "k", "gamma")

    def __init__(self, beta: float = 1.0, n: float = 1.0, k: float = 1.0, gamma: float = 1.0, *, dim: int = 3,
                 floor: float = 1e-8) -> None:
        super().__init__(dict(beta=beta, n=n, k=k, gamma=gamma))
        if int(dim) < 2:
            raise InputError(f"dim: a repressilator needs at least 2 genes, got {dim}")
        self.dim = int(dim)
        self.floor = float(floor)

    def forward(self, x: Tensor) -> Tensor:
        beta, n, k, gamma = self.values(x)
        prev = torch.roll(x, 1, dims=-1).clamp_min(self.floor)
        return beta / (1 + (prev / k) ** n) - gamma * x

    def jacobian(self, x: Tensor) -> Tensor:
        """(B, d, d) closed-form df/dx: -gamma on the diagonal, the Hill slope on the cyclic sub-diagonal."""
        beta, n, k, gamma = self.values(x)
        raw = torch.roll(x, 1, dims=-1)
        prev = raw.clamp_min(self.floor)
        u = (prev / k) ** n
        slope = -beta * n * u / (prev * (1 + u) ** 2) * (raw > self.floor).to(x.dtype)
        d = x.shape[1]
        jac = torch.diag_embed(torch.full_like(x, -1.0) * gamma)
        rows = torch.arange(d, device=x.device)
        jac[:, rows, (rows - 1) % d] += slope
        return jac


class LinearDrift(Drift):
    """Ornstein-Uhlenbeck drift f(x) = A x + b with a learnable (d, d) matrix A and offset b.

    With additive noise the transition density is Gaussian in closed form (a test case of the bridges).
    """

    parametric = True

    def __init__(self, dim: int, A: Tensor | None = None, b: Tensor | None = None) -> None:
        super().__init__()
        if int(dim) < 1:
            raise InputError(f"dim: must be >= 1, got {dim}")
        self.dim = int(dim)
        a0 = torch.zeros(self.dim, self.dim) if A is None else torch.as_tensor(A, dtype=torch.float64)
        b0 = torch.zeros(self.dim) if b is None else torch.as_tensor(b, dtype=torch.float64)
        if a0.shape != (self.dim, self.dim) or b0.shape != (self.dim,):
            raise InputError(f"A/b: expected ({self.dim}, {self.dim}) and ({self.dim},), got "
                             f"{tuple(a0.shape)} and {tuple(b0.shape)}")
        self.A = nn.Parameter(a0.to(torch.float64).clone())
        self.b = nn.Parameter(b0.to(torch.float64).clone())

    def forward(self, x: Tensor) -> Tensor:
        return x @ self.A.to(x.dtype).T + self.b.to(x.dtype)

    def jacobian(self, x: Tensor) -> Tensor:
        return self.A.detach().to(x.dtype).expand(x.shape[0], self.dim, self.dim)


class _Standardized(Drift):
    """Networks see standardised inputs z = (x - mean) / scale and return a drift in data units."""

    def __init__(self, dim: int, standardizer: Standardizer | None) -> None:
        super().__init__()
        if int(dim) < 1:
            raise InputError(f"dim: must be >= 1, got {dim}")
        self.dim = int(dim)
        st = standardizer if standardizer is not None else Standardizer.identity(self.dim)
        if st.mean.numel() != self.dim:
            raise InputError(f"standardizer: has {st.mean.numel()} dimensions, the drift {self.dim}")
        self.register_buffer("mean", st.mean.clone())
        self.register_buffer("scale", st.scale.clone())

    def set_standardizer(self, standardizer: Standardizer) -> None:
        self.mean.copy_(standardizer.mean)
        self.scale.copy_(standardizer.scale)

    def params(self) -> dict[str, float]:
        return {"n_weights": float(sum(p.numel() for p in self.parameters()))}


class MLPDrift(_Standardized):
    """A general drift f(x) = scale * MLP((x - mean) / scale): rotational flows (ocean currents, cycles)."""

    def __init__(self, dim: int, hidden: tuple[int, ...] = (64, 64), activation: str = "silu",
                 standardizer: Standardizer | None = None) -> None:
        super().__init__(dim, standardizer)
        self.net = MLP(self.dim, self.dim, tuple(hidden), activation).to(torch.float64)
        nn.init.zeros_(self.net.net[-1].weight)
        nn.init.zeros_(self.net.net[-1].bias)

    def forward(self, x: Tensor) -> Tensor:
        z = (x - self.mean.to(x)) / self.scale.to(x)
        return self.net(z.to(self.net.net[0].weight.dtype)).to(x.dtype) * self.scale.to(x)


class GradientMLPDrift(_Standardized):
    """A gradient field f(x) = -grad_x U(x) of an MLP potential U (Waddington landscape of cell fates).

    U(x) = c * MLP((x - mean) / scale) with one number c = mean(scale^2) (a per-dimension factor would make
    the drift's Jacobian asymmetric, i.e. not a gradient field, when the dimensions have different scales); the
    gradient is taken by autograd (second derivatives stay available, so the drift's Jacobian and the fit work
    through it).
    """

    def __init__(self, dim: int, hidden: tuple[int, ...] = (64, 64), activation: str = "silu",
                 standardizer: Standardizer | None = None) -> None:
        super().__init__(dim, standardizer)
        self.net = MLP(self.dim, 1, tuple(hidden), activation).to(torch.float64)
        nn.init.zeros_(self.net.net[-1].weight)
        nn.init.zeros_(self.net.net[-1].bias)

    def potential(self, x: Tensor) -> Tensor:
        z = (x - self.mean.to(x)) / self.scale.to(x)
        return self.net(z.to(self.net.net[0].weight.dtype)).squeeze(-1).to(x.dtype)

    def forward(self, x: Tensor) -> Tensor:
        keep_graph = torch.is_grad_enabled()
        with torch.enable_grad():
            xi = x if x.requires_grad else x.detach().requires_grad_(True)
            u = self.potential(xi).sum()
            (g,) = torch.autograd.grad(u, xi, create_graph=keep_graph)
        # the potential is defined in standard units; the scalar mean(scale^2) gives the drift data units per time
        # while keeping it an exact gradient field
        return -g * (self.scale.to(x) ** 2).mean()


class NoiseModel:
    """Diagonal diffusion g(x): (B, d) -> (B, d) of dX = f dt + g(X) dW, in data units."""

    name = "noise"

    def __init__(self, sigma: float) -> None:
        self.sigma = check_in_range("sigma", sigma, 0.0, low_open=True)

    def __call__(self, x: Tensor, t: Tensor | None = None) -> Tensor:
        raise NotImplementedError

    def with_sigma(self, sigma: float) -> NoiseModel:
        raise NotImplementedError

    def config(self) -> dict[str, float | str]:
        return {"noise": self.name, "sigma": self.sigma}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(sigma={self.sigma:g})"


class AdditiveNoise(NoiseModel):
    """g(x) = sigma (Brownian noise of the same size everywhere)."""

    name = "additive"

    def __call__(self, x: Tensor, t: Tensor | None = None) -> Tensor:
        return torch.full_like(x, self.sigma)

    def with_sigma(self, sigma: float) -> AdditiveNoise:
        return AdditiveNoise(sigma)


class MultiplicativeNoise(NoiseModel):
    """g(x) = sigma max(|x|, floor): noise proportional to abundance (geometric noise of populations and
    gene expression). ``floor`` keeps the diffusion, and the likelihood weights 1/g^2, finite at zero."""

    name = "multiplicative"

    def __init__(self, sigma: float, floor: float = 1e-3) -> None:
        super().__init__(sigma)
        self.floor = check_in_range("floor", floor, 0.0, low_open=True)

    def __call__(self, x: Tensor, t: Tensor | None = None) -> Tensor:
        return self.sigma * x.abs().clamp_min(self.floor)

    def with_sigma(self, sigma: float) -> MultiplicativeNoise:
        return MultiplicativeNoise(sigma, self.floor)


NOISE_MODELS = {"additive": AdditiveNoise, "multiplicative": MultiplicativeNoise}


def make_noise(noise: str | NoiseModel, sigma: float) -> NoiseModel:
    """A noise model by name (``additive``, ``multiplicative``) or the given object."""
    if isinstance(noise, NoiseModel):
        return noise
    if noise not in NOISE_MODELS:
        raise InputError(f"noise: expected one of {sorted(NOISE_MODELS)}, got {noise!r}")
    return NOISE_MODELS[noise](sigma)
