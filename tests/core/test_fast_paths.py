"""The shortcuts taken in the CFM training loop give the same numbers as the general forms they replace."""
import pytest
import torch

from sciflow.core.couplings import IndependentCoupling
from sciflow.core.flow_matching import FlowMatcher
from sciflow.core.losses import cfm_loss, per_row_mse, reduce_rows
from sciflow.core.paths import LinearPath
from sciflow.core.paths.interpolant import InterpolantPath
from sciflow.core.random import make_generator
from sciflow.core.schedules import LinearSchedule


@pytest.mark.parametrize("sigma", [0.0, 0.3])
def test_linear_path_shortcut_equals_the_schedule_form(sigma):
    g = make_generator(0)
    x0 = torch.randn(64, 3, 2, generator=g, dtype=torch.float64)
    x1 = torch.randn(64, 3, 2, generator=g, dtype=torch.float64)
    t = torch.rand(64, generator=g, dtype=torch.float64)
    eps = torch.randn(64, 3, 2, generator=g, dtype=torch.float64)
    fast = LinearPath(sigma).sample(x0, x1, t, noise=eps)
    ref = InterpolantPath(LinearSchedule(sigma)).sample(x0, x1, t, noise=eps)
    for name in ("xt", "ut", "t", "noise", "sigma"):
        a, b = getattr(fast, name), getattr(ref, name)
        assert a.shape == b.shape, name
        torch.testing.assert_close(a, b, rtol=0, atol=1e-14, msg=name)
    # exact endpoints
    ends = LinearPath(0.0).sample(x0, x1, torch.cat([torch.zeros(32), torch.ones(32)]).double())
    assert torch.equal(ends.xt[:32], x0[:32]) and torch.equal(ends.xt[32:], x1[32:])


def test_linear_path_draws_noise_only_when_sigma_is_positive():
    x0, x1 = torch.zeros(5, 2), torch.ones(5, 2)
    assert torch.equal(LinearPath(0.0).sample(x0, x1, torch.full((5,), 0.5)).noise, torch.zeros(5, 2))
    s = LinearPath(0.2).sample(x0, x1, torch.full((5,), 0.5), generator=make_generator(1))
    torch.testing.assert_close(s.xt, 0.5 + 0.2 * s.noise)


def test_unweighted_cfm_loss_equals_the_per_row_reduction():
    g = make_generator(2)
    pred, target = torch.randn(17, 4, 3, generator=g), torch.randn(17, 4, 3, generator=g)
    torch.testing.assert_close(cfm_loss(pred, target), reduce_rows(per_row_mse(pred, target)))
    with pytest.raises(Exception, match="shapes differ"):
        cfm_loss(pred, target[:, :3])


def test_independent_loss_equals_the_written_out_objective():
    g = make_generator(3)
    x0, x1 = torch.randn(32, 2, generator=g), torch.randn(32, 2, generator=g)
    field = torch.nn.Linear(3, 2)

    def velocity(x, t):
        return field(torch.cat([x, t[:, None]], 1))

    fm = FlowMatcher(LinearPath(0.1), IndependentCoupling())
    loss = fm.loss(velocity, x0, x1, generator=make_generator(4))
    g2 = make_generator(4)          # the same draws in the same order: t, then the path noise
    t = torch.rand(32, generator=g2)
    eps = torch.randn(32, 2, generator=g2)
    xt = (1 - t[:, None]) * x0 + t[:, None] * x1 + 0.1 * eps
    ref = ((velocity(xt, t) - (x1 - x0)) ** 2).mean()
    torch.testing.assert_close(loss, ref)
