"""The reference's Gaussian transition and bridges against closed forms for a linear (OU) drift with
additive noise, where the linear-noise approximation is exact."""
import math

import torch

from sciflow.domains.cells import AdditiveNoise, LinearDrift
from sciflow.methods.mmsb import TransitionCost
from sciflow.methods.mmsb.gaussian import linearize, sample_bridges, transition_cost

A = torch.tensor([[-0.8, 0.6], [-0.4, -0.5]], dtype=torch.float64)   # stable, non-normal, rotating
SIGMA = 0.3


def _ou_cov(a: torch.Tensor, q: torch.Tensor, t: float) -> torch.Tensor:
    """P_t = int_0^t e^{As} Q e^{A^T s} ds by Van Loan's block exponential."""
    d = a.shape[0]
    m = torch.zeros(2 * d, 2 * d, dtype=torch.float64)
    m[:d, :d], m[:d, d:], m[d:, d:] = -a, q, a.T
    f = torch.linalg.matrix_exp(m * t)
    return f[d:, d:].T @ f[:d, d:]


def test_linearize_matches_ou_transition_in_closed_form():
    drift, noise = LinearDrift(2, A=A), AdditiveNoise(SIGMA)
    x0 = torch.tensor([[1.0, -0.5], [0.2, 2.0]], dtype=torch.float64)
    t = 1.3
    lin = linearize(drift, noise, x0, t, h=0.01)
    expm = torch.linalg.matrix_exp(A * t)
    cov = _ou_cov(A, SIGMA ** 2 * torch.eye(2, dtype=torch.float64), t)
    torch.testing.assert_close(lin.mean, x0 @ expm.T, rtol=1e-8, atol=1e-10)
    torch.testing.assert_close(lin.cov, cov.expand(2, 2, 2), rtol=1e-7, atol=1e-10)
    # gain N_T = P_T Psi_T with Psi_T = Phi_T^{-T}
    torch.testing.assert_close(lin.gain, (cov @ torch.linalg.inv(expm).T).expand(2, 2, 2), rtol=1e-7, atol=1e-10)


def test_transition_cost_is_the_gaussian_negative_log_density():
    drift, noise = LinearDrift(2, A=A, b=torch.tensor([0.1, -0.2])), AdditiveNoise(SIGMA)
    x0 = torch.randn(4, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    y = torch.randn(5, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    lin = linearize(drift, noise, x0, 0.7, h=0.01)
    c = transition_cost(lin, y)
    want = torch.stack([-torch.distributions.MultivariateNormal(lin.mean[i], lin.cov[i]).log_prob(y)
                        for i in range(4)])
    torch.testing.assert_close(c, want, rtol=1e-7, atol=1e-7)  # the cost adds a 1e-9 relative jitter to P
    # Brownian reference: -log p = |y - x|^2 / (2 sigma^2 T) + d/2 log(2 pi sigma^2 T)
    zero = TransitionCost(lambda x: torch.zeros_like(x), AdditiveNoise(0.5), duration=2.0, h=0.1)
    t = 2.0 * 0.25
    want0 = torch.cdist(x0, y) ** 2 / (2 * t) + math.log(2 * math.pi * t)
    torch.testing.assert_close(zero(x0, y), want0, rtol=1e-9, atol=1e-9)


def test_bridge_matches_the_closed_form_ou_bridge():
    """Bridges pinned at x0 and y have the conditional Gaussian law of the OU process at every time."""
    drift, noise = LinearDrift(2, A=A), AdditiveNoise(SIGMA)
    n, t_end = 2000, 1.0
    x0 = torch.tensor([1.0, -0.5], dtype=torch.float64).expand(n, 2).clone()
    y = torch.tensor([0.3, 0.4], dtype=torch.float64).expand(n, 2).clone()
    g = torch.Generator().manual_seed(7)
    paths = sample_bridges(drift, noise, x0, y, t_end, h=0.02, h_lna=0.02, generator=g)   # (n, 51, 2)
    assert paths.shape == (n, 51, 2)
    torch.testing.assert_close(paths[:, 0], x0)
    torch.testing.assert_close(paths[:, -1], y)
    q = SIGMA ** 2 * torch.eye(2, dtype=torch.float64)
    p_end = _ou_cov(A, q, t_end)
    m_end = torch.linalg.matrix_exp(A * t_end) @ x0[0]
    for i in (12, 25, 40):
        s = i * 0.02
        p_s = _ou_cov(A, q, s)
        c = p_s @ torch.linalg.matrix_exp(A * (t_end - s)).T          # Cov(X_s, X_T)
        mean = torch.linalg.matrix_exp(A * s) @ x0[0] + c @ torch.linalg.solve(p_end, y[0] - m_end)
        cov = p_s - c @ torch.linalg.solve(p_end, c.T)
        emp = paths[:, i]
        se = (torch.diagonal(cov) / n).sqrt()
        assert ((emp.mean(0) - mean).abs() < 4 * se).all(), (s, emp.mean(0), mean)
        torch.testing.assert_close(torch.cov(emp.T), cov, rtol=0.1, atol=0.1 * float(cov.diagonal().max()))


def test_transition_cost_survives_a_slightly_indefinite_covariance_and_names_a_diverged_one():
    import pytest

    from sciflow.core.errors import SciflowError
    from sciflow.methods.mmsb.gaussian import Linearization
    # RK4 on a stiff drift can leave P with a tiny negative eigenvalue; the cost must stay finite and match the
    # density of the matrix with that eigenvalue raised to the floor
    cov = torch.tensor([[[1.0, 1.0], [1.0, 1.0 - 1e-6]]], dtype=torch.float64)   # eigenvalues ~2, ~-5e-7
    lin = Linearization(mean=torch.zeros(1, 2, dtype=torch.float64), cov=cov, gain=cov)
    y = torch.tensor([[0.3, 0.3], [0.0, 0.0]], dtype=torch.float64)
    c = transition_cost(lin, y)
    assert torch.isfinite(c).all()
    evals, evecs = torch.linalg.eigh(cov[0] + 1e-9 * torch.eye(2, dtype=torch.float64))
    fixed = evecs @ torch.diag(evals.clamp_min(1e-9 * evals.abs().sum())) @ evecs.T
    want = -torch.distributions.MultivariateNormal(torch.zeros(2, dtype=torch.float64), fixed).log_prob(y)
    torch.testing.assert_close(c[0], want, rtol=1e-6, atol=1e-6)
    lin_nan = Linearization(mean=lin.mean, cov=torch.full_like(cov, float("inf")), gain=cov)
    with pytest.raises(SciflowError, match="diverges"):
        transition_cost(lin_nan, y)
