import math

import pytest
import torch

from sciflow.core.couplings import ExactOT
from sciflow.core.errors import InputError
from sciflow.core.flow_matching import FlowMatcher, logit_normal_time
from sciflow.core.losses import cfm_loss, reduce_rows, score_loss
from sciflow.core.paths import BrownianBridgePath, LinearPath
from sciflow.core.solvers import RK4, Dopri5


def test_cfm_loss_zero_for_conditional_field_and_weighting(gen):
    x0, x1 = torch.randn(32, 2, generator=gen), torch.randn(32, 2, generator=gen)
    s = LinearPath().sample(x0, x1, torch.rand(32, generator=gen))
    assert float(cfm_loss(s.ut, s.ut)) == 0.0
    pred = s.ut + 1.0
    assert float(cfm_loss(pred, s.ut)) == pytest.approx(1.0)
    w = lambda t: 2 * torch.ones_like(t)
    assert float(cfm_loss(pred, s.ut, s.t, weighting=w)) == pytest.approx(2.0)
    with pytest.raises(InputError, match="t:"):
        cfm_loss(pred, s.ut, weighting=w)


def test_graph_reduction_counts_each_graph_once():
    rows = torch.tensor([1.0, 1.0, 1.0, 4.0])
    batch = torch.tensor([0, 0, 0, 1])
    assert float(reduce_rows(rows, batch)) == pytest.approx(2.5)
    assert float(reduce_rows(rows)) == pytest.approx(1.75)


def test_graph_reduction_skips_absent_graphs_and_refuses_misshapen_weights_and_indices():
    rows = torch.tensor([1.0, 1.0, 3.0, 3.0])
    # graph 1 has no rows: the mean is over graphs 0 and 2, (1 + 3) / 2
    assert float(reduce_rows(rows, torch.tensor([0, 0, 2, 2]))) == 2.0
    with pytest.raises(InputError, match="batch"):
        reduce_rows(rows, torch.tensor([0, 0, 1]))
    with pytest.raises(InputError, match="batch"):
        reduce_rows(rows, torch.tensor([0.0, 0.0, 1.0, 1.0]))
    pred, target, t = torch.ones(4, 3), torch.zeros(4, 3), torch.full((4,), 0.5)
    with pytest.raises(InputError, match="weight"):                       # (B, 1) would broadcast to (B, B)
        cfm_loss(pred, target, t, weighting=lambda s: s[:, None])
    assert float(cfm_loss(pred, target, t, weighting=lambda s: s)) == 0.5


def test_score_loss_parametrisations(gen):
    path = BrownianBridgePath(0.5)
    x0, x1 = torch.randn(16, 3, generator=gen), torch.randn(16, 3, generator=gen)
    s = path.sample(x0, x1, torch.full((16,), 0.3), generator=gen)
    assert float(score_loss(s.noise, s, parametrization="noise")) == 0.0
    assert float(score_loss(s.score, s, parametrization="score")) == pytest.approx(0.0, abs=1e-10)
    with pytest.raises(InputError, match="parametrization"):
        score_loss(s.noise, s, parametrization="v")


def test_sampler_with_the_exact_marginal_field_transports_gaussians():
    # x0 ~ N(0, 1), x1 ~ N(mu, s^2) independent, linear path: p_t = N(t mu, (1-t)^2 + t^2 s^2) and the marginal
    # velocity is u_t(x) = mu + (x - t mu) (t s^2 - (1 - t)) / ((1 - t)^2 + t^2 s^2)
    mu, s = 3.0, 0.5

    def field(x, t):
        t = t[:, None]
        return mu + (x - t * mu) * (t * s * s - (1 - t)) / ((1 - t) ** 2 + t * t * s * s)

    x0 = torch.randn(20_000, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for solver in (RK4(), Dopri5(rtol=1e-7, atol=1e-7)):
        tr = FlowMatcher.sample(field, x0, solver, steps=40)
        assert float(tr.last.mean()) == pytest.approx(mu + s * float(x0.mean()), abs=1e-4)
        assert float(tr.last.std()) == pytest.approx(s * float(x0.std()), rel=1e-4)
        # the flow map of an affine field between Gaussians is the monotone affine map x -> mu + s x
        assert torch.allclose(tr.last, mu + s * x0, atol=1e-4)


def test_loss_of_exact_marginal_field_is_the_irreducible_minimum(gen):
    # for paired data x1 = x0 + c (deterministic map) the conditional and marginal fields agree: loss -> 0
    c = torch.tensor([1.0, -2.0])
    fm = FlowMatcher(LinearPath())
    x0 = torch.randn(256, 2, generator=gen)
    loss = fm.loss(lambda x, t: c.expand_as(x), x0, x0 + c, generator=gen)
    assert float(loss) == pytest.approx(0.0, abs=1e-12)


def test_conditions_follow_the_coupling(gen):
    # exact OT permutes the x1 rows; v(x, t, target) = (target - x) / (1 - t) is the exact conditional velocity of
    # the linear path only if each row's condition is its own paired target
    x1 = torch.randn(64, 2, generator=gen) * 3
    x0 = x1[torch.randperm(64, generator=gen)] + 1e-3
    fm = FlowMatcher(LinearPath(), ExactOT(), time_sampler=lambda n, g, d, dt: torch.full((n,), 0.5))
    field = lambda x, t, target: (target - x) / (1 - t[:, None])
    assert float(fm.loss(field, x0, x1, cond={"target": x1}, generator=gen)) < 1e-10
    wrong = FlowMatcher(LinearPath(), time_sampler=lambda n, g, d, dt: torch.full((n,), 0.5))
    assert float(wrong.loss(field, x0, x1, cond={"target": x1.flip(0)}, generator=gen)) > 1.0


def test_graph_batches_draw_one_time_per_graph(gen):
    seen = {}

    def field(x, t):
        seen["t"] = t
        return torch.zeros_like(x)

    batch = torch.tensor([0, 0, 0, 1, 1])
    FlowMatcher(LinearPath(), time_sampler=logit_normal_time()).loss(
        field, torch.zeros(5, 3), torch.ones(5, 3), batch=batch, generator=gen)
    t = seen["t"]
    assert t[0] == t[1] == t[2] and t[3] == t[4] and t[0] != t[3]
    with pytest.raises(InputError, match="coupling"):
        FlowMatcher(LinearPath(), ExactOT()).loss(field, torch.zeros(5, 3), torch.ones(5, 3), batch=batch)


def test_logit_normal_time_is_in_unit_interval(gen):
    t = logit_normal_time(0.0, 1.0)(10_000, gen, torch.device("cpu"), torch.float32)
    assert bool(((t > 0) & (t < 1)).all()) and abs(float(t.mean()) - 0.5) < 0.02
    assert math.isfinite(float(t.std()))


def test_logit_normal_time_has_normal_logits_with_the_given_mean_and_std():
    """t = sigmoid(m + s z): logit(t) ~ N(m, s^2). With n draws the sample mean has standard error s / sqrt(n)
    and the sample std s / sqrt(2 n) (normal data); each is held to 4 standard errors. The mass within one std,
    0.6827 (s.e. sqrt(p (1 - p) / n) = 0.0015), pins the shape (a uniform on [m - s sqrt3, m + s sqrt3] with the
    same mean and std puts 0.577 there)."""
    m, s, n = 0.5, 0.7, 100_000
    t = logit_normal_time(mean=m, std=s)(n, torch.Generator().manual_seed(3), torch.device("cpu"), torch.float64)
    assert bool(((t > 0) & (t < 1)).all())
    z = torch.logit(t)
    assert abs(float(z.mean()) - m) < 4 * s / math.sqrt(n)
    assert abs(float(z.std()) - s) < 4 * s / math.sqrt(2 * n)
    p = math.erf(1 / math.sqrt(2))
    inside = float(((z - m).abs() < s).double().mean())
    assert abs(inside - p) < 4 * math.sqrt(p * (1 - p) / n)


def test_sampling_takes_a_list_grid_and_refuses_bad_step_counts():
    x0 = torch.ones(3, 2, dtype=torch.float64)
    out = FlowMatcher.sample(lambda x, t: -x, x0, RK4(), times=[0.0, 0.5, 1.0])   # was AttributeError
    torch.testing.assert_close(out.last, x0 * math.exp(-1.0), rtol=1e-3, atol=0)
    for steps in (0, -1, 2.5, True):
        with pytest.raises(InputError, match="steps"):
            FlowMatcher.sample(lambda x, t: -x, x0, RK4(), steps=steps)
