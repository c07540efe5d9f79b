import math

import pytest
import torch

from sciflow.core.errors import InputError
from sciflow.core.paths import BrownianBridgePath, CosinePath, LinearPath, MultiMarginalPath, VPPath
from sciflow.core.schedules import VPSchedule

PATHS = [LinearPath(), LinearPath(sigma=0.3), BrownianBridgePath(0.5), VPPath(), CosinePath()]


@pytest.fixture(autouse=True)
def _f64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


@pytest.mark.parametrize("path", PATHS, ids=repr)
def test_velocity_is_time_derivative_at_fixed_noise(path, gen):
    x0, x1 = torch.randn(64, 3, generator=gen), torch.randn(64, 3, generator=gen)
    t = 0.05 + 0.9 * torch.rand(64, generator=gen)
    eps = torch.randn(64, 3, generator=gen)
    h = 1e-5
    plus = path.sample(x0, x1, t + h, noise=eps).xt
    minus = path.sample(x0, x1, t - h, noise=eps).xt
    fd = (plus - minus) / (2 * h)
    torch.testing.assert_close(path.sample(x0, x1, t, noise=eps).ut, fd, atol=1e-6, rtol=1e-5)


def test_linear_closed_form(gen):
    x0, x1 = torch.randn(8, 2, generator=gen), torch.randn(8, 2, generator=gen)
    t = torch.rand(8, generator=gen)
    s = LinearPath().sample(x0, x1, t)
    torch.testing.assert_close(s.xt, (1 - t)[:, None] * x0 + t[:, None] * x1)
    torch.testing.assert_close(s.ut, x1 - x0)


def test_bridge_endpoints_and_marginal_variance(gen):
    sigma = 0.7
    path = BrownianBridgePath(sigma)
    x0, x1 = torch.zeros(200_000, 1), torch.ones(200_000, 1)
    for t in (0.0, 1.0):
        s = path.sample(x0[:10], x1[:10], torch.full((10,), t), generator=gen)
        torch.testing.assert_close(s.xt, x0[:10] * (1 - t) + x1[:10] * t)
    t = 0.3
    s = path.sample(x0, x1, torch.full((200_000,), t), generator=gen)
    assert abs(float(s.xt.mean()) - t) < 5e-3
    assert abs(float(s.xt.var()) - sigma ** 2 * t * (1 - t)) < 3e-3


def test_bridge_matches_conditioned_brownian_motion(gen):
    # simulate W on a grid, condition on W_1 = 0 by the bridge construction B_t = W_t - t W_1: Var = t (1 - t)
    n, steps, sigma = 100_000, 50, 1.3
    dw = torch.randn(n, steps, generator=gen) * math.sqrt(1 / steps) * sigma
    w = dw.cumsum(1)
    k = 19
    t = (k + 1) / steps
    b = w[:, k] - t * w[:, -1]
    s = BrownianBridgePath(sigma).sample(torch.zeros(n, 1), torch.zeros(n, 1), torch.full((n,), t), generator=gen)
    assert abs(float(b.var()) - float(s.xt.var())) < 0.02


def test_vp_path_limits(gen):
    path = VPPath()
    x0, x1 = torch.randn(16, 2, generator=gen), torch.randn(16, 2, generator=gen)
    s1 = path.sample(x0, x1, torch.ones(16))
    torch.testing.assert_close(s1.xt, x1)
    s0 = path.sample(x0, x1, torch.zeros(16))
    alpha0 = float(VPSchedule()(torch.tensor(0.0)).b)
    assert alpha0 == pytest.approx(math.exp(-(0.1 + 0.5 * 19.9) / 2))   # alpha(0) = exp(-T(1)/2)
    torch.testing.assert_close(s0.xt, x0, atol=0.05, rtol=0)
    c = VPSchedule()(torch.linspace(0, 1, 11))
    torch.testing.assert_close(c.a ** 2 + c.b ** 2, torch.ones(11))  # variance preserving


def test_score_of_bridge_is_gaussian_score(gen):
    path = BrownianBridgePath(0.5)
    x0, x1 = torch.randn(10, 3, generator=gen), torch.randn(10, 3, generator=gen)
    t = torch.full((10,), 0.4)
    s = path.sample(x0, x1, t, generator=gen)
    mu = 0.6 * x0 + 0.4 * x1
    var = 0.25 * 0.4 * 0.6
    torch.testing.assert_close(s.score, -(s.xt - mu) / var)


def test_multimarginal_hits_knots_and_fd(gen):
    times = torch.tensor([0.0, 1.0, 3.0, 3.5])
    knots = torch.randn(4, 32, 2, generator=gen)
    path = MultiMarginalPath(times, sigma=0.4)
    for k, tk in enumerate(times.tolist()):
        s = path.sample(knots, torch.full((32,), tk), generator=gen)
        torch.testing.assert_close(s.xt, knots[k])
    t = torch.rand(32, generator=gen) * 3.4 + 0.05
    t = t[(t - 1.0).abs() > 1e-3]
    t = t[(t - 3.0).abs() > 1e-3]
    kn = knots[:, : t.numel()]
    eps = torch.randn(t.numel(), 2, generator=gen)
    h = 1e-6
    fd = (path.sample(kn, t + h, noise=eps).xt - path.sample(kn, t - h, noise=eps).xt) / (2 * h)
    torch.testing.assert_close(path.sample(kn, t, noise=eps).ut, fd, atol=1e-5, rtol=1e-5)


def test_multimarginal_variance_scales_with_interval(gen):
    sigma, n = 0.5, 200_000
    path = MultiMarginalPath(torch.tensor([0.0, 4.0]), sigma=sigma)
    knots = torch.zeros(2, n, 1)
    s = path.sample(knots, torch.full((n,), 1.0), generator=gen)
    assert abs(float(s.xt.var()) - sigma ** 2 * 1.0 * 3.0 / 4.0) < 3e-3   # sigma^2 (t - a)(b - t) / (b - a)


def test_bad_inputs():
    with pytest.raises(InputError, match="sigma"):
        BrownianBridgePath(-1.0)
    with pytest.raises(InputError, match="x0/x1"):
        LinearPath().sample(torch.zeros(3, 2), torch.zeros(4, 2), torch.zeros(3))
    with pytest.raises(InputError, match="t:"):
        LinearPath().sample(torch.zeros(3, 2), torch.zeros(3, 2), torch.zeros(5))
    with pytest.raises(InputError, match="knot_times"):
        MultiMarginalPath(torch.tensor([0.0, 2.0, 1.0]))
    mm, knots = MultiMarginalPath(torch.tensor([0.0, 1.0, 2.0]), sigma=0.5), torch.zeros(3, 4, 2)
    for t in (torch.tensor([-1.0, 0.5, 0.5, 0.5]), torch.tensor([0.5, 0.5, 0.5, 2.5]),
              torch.tensor([float("nan"), 0.5, 0.5, 0.5]), torch.full((3,), 0.5)):
        with pytest.raises(InputError, match="t:"):                      # no extrapolation past the knots
            mm.sample(knots, t)
    with pytest.raises(InputError, match="noise"):
        mm.sample(knots, torch.full((4,), 0.5), noise=torch.ones(2))
    with pytest.raises(InputError, match="noise"):
        BrownianBridgePath(0.1).sample(torch.zeros(3, 2), torch.zeros(3, 2), torch.zeros(3), noise=torch.zeros(2, 2))


def test_a_schedule_whose_noise_vanishes_at_one_half_still_draws_noise(gen):
    from sciflow.core.paths import InterpolantPath
    from sciflow.core.schedules import Coefficients, Schedule

    class Dip(Schedule):                       # s(t) = (1 - 2t)^2 / 2: zero at t = 1/2 only
        def __call__(self, t):
            one = torch.ones_like(t)
            return Coefficients(1 - t, t, 0.5 * (1 - 2 * t) ** 2, -one, one, -2 * (1 - 2 * t))

    path = InterpolantPath(Dip())
    assert path.stochastic
    x = torch.zeros(20000, 1)
    s = path.sample(x, x, torch.full((20000,), 0.1), generator=gen)
    assert abs(float(s.xt.var()) - 0.32 ** 2) < 0.01                   # s(0.1)^2 = 0.1024


def test_vp_schedule_keeps_its_noise_scale_in_float32_near_the_data_end():
    """a = sqrt(1 - alpha^2) cancelled in float32 near t = 1 (5% off at t = 1 - 1e-5, 0 closer); -expm1 keeps it."""
    schedule = VPSchedule()
    t = torch.tensor([1 - 1e-3, 1 - 1e-4, 1 - 1e-5, 1 - 3e-7, 0.5], dtype=torch.float32)
    single, double = schedule(t), schedule(t.double())
    torch.testing.assert_close(single.a.double(), double.a, rtol=1e-5, atol=0)
    torch.testing.assert_close(single.da.double(), double.da, rtol=1e-4, atol=0)
    assert bool((single.a > 0).all())


@pytest.mark.parametrize("t", [0.0, 0.3, 0.5, 1.0])
def test_cosine_path_closed_form(t, gen):
    """x0 is the noise end: x_t = cos(pi t / 2) x0 + sin(pi t / 2) x1, u_t = (pi / 2)(-sin x0 + cos x1), no eps."""
    x0, x1 = torch.randn(8, 3, generator=gen), torch.randn(8, 3, generator=gen)
    s = CosinePath().sample(x0, x1, torch.full((8,), t))
    c, si = math.cos(math.pi * t / 2), math.sin(math.pi * t / 2)
    torch.testing.assert_close(s.xt, c * x0 + si * x1, atol=1e-12, rtol=0)
    torch.testing.assert_close(s.ut, (math.pi / 2) * (-si * x0 + c * x1), atol=1e-12, rtol=0)
    torch.testing.assert_close(s.noise, x0)                    # the noise is x0 itself, with scale a(t) = cos
    torch.testing.assert_close(s.sigma.reshape(-1), torch.full((8,), c), atol=1e-12, rtol=0)


@pytest.mark.parametrize("t", [0.1, 0.3, 0.5, 0.8, 0.95])
def test_vp_path_matches_its_closed_form_at_interior_times(t, gen):
    """Diffusion time tau = 1 - t with beta(tau) = beta_min + (beta_max - beta_min) tau (Song et al. 2021):
    alpha(t) = exp(-1/2 int_0^{1-t} beta), sigma = sqrt(1 - alpha^2), x_t = sigma x0 + alpha x1 and
    u_t = sigma' x0 + alpha' x1 with alpha' = beta(1 - t) alpha / 2, sigma' = -alpha alpha' / sigma.
    The integral is done by Simpson's rule here, independently of the schedule's own closed form."""
    beta_min, beta_max = 0.3, 12.0
    beta = lambda tau: beta_min + (beta_max - beta_min) * tau
    r, n = 1 - t, 200                                            # Simpson is exact for a linear integrand
    h = r / n
    integral = h / 3 * sum((1 if k in (0, n) else 4 if k % 2 else 2) * beta(k * h) for k in range(n + 1))
    alpha = math.exp(-0.5 * integral)
    sigma = math.sqrt(1 - alpha ** 2)
    dalpha = 0.5 * beta(r) * alpha
    dsigma = -alpha * dalpha / sigma
    x0, x1 = torch.randn(8, 3, generator=gen), torch.randn(8, 3, generator=gen)
    s = VPPath(beta_min, beta_max).sample(x0, x1, torch.full((8,), t))
    torch.testing.assert_close(s.xt, sigma * x0 + alpha * x1, atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(s.ut, dsigma * x0 + dalpha * x1, atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(s.sigma.reshape(-1), torch.full((8,), sigma), atol=1e-10, rtol=1e-10)
