import math

import pytest
import torch

from sciflow.core.errors import InputError, SciflowError
from sciflow.core.solvers import RK4, Dopri5, Euler, EulerMaruyama, Heun, Midpoint

# dx/dt = A x + b(t) with rotation-plus-decay A: closed form for checking convergence orders
A = torch.tensor([[-0.5, -2.0], [2.0, -0.5]], dtype=torch.float64)


def rot_field(x, t):
    return x @ A.T


def exact(x0, t):
    return x0 @ torch.linalg.matrix_exp(A * t).T


def _err(solver, n):
    x0 = torch.tensor([[1.0, 0.5], [-0.3, 2.0]], dtype=torch.float64)
    tr = solver.solve(rot_field, x0, torch.linspace(0, 2, n + 1, dtype=torch.float64), keep="last")
    return float((tr.last - exact(x0, 2.0)).abs().max())


@pytest.mark.parametrize("solver,order", [(Euler(), 1), (Midpoint(), 2), (Heun(), 2), (RK4(), 4)],
                         ids=["euler", "midpoint", "heun", "rk4"])
def test_order_of_convergence(solver, order):
    e1, e2 = _err(solver, 64), _err(solver, 128)
    assert math.log2(e1 / e2) == pytest.approx(order, abs=0.15)


def test_time_dependent_field_and_nfe():
    # dx/dt = cos(t) -> x(t) = x0 + sin(t)
    f = lambda x, t: torch.cos(t)[:, None].expand_as(x)
    x0 = torch.zeros(3, 1, dtype=torch.float64)
    s = RK4()
    tr = s.solve(f, x0, torch.linspace(0, 3, 31, dtype=torch.float64))
    torch.testing.assert_close(tr.states[:, 0, 0], torch.sin(tr.times), atol=1e-7, rtol=0)
    assert tr.info["nfe"] == 4 * 30 == s.nfe
    assert tr.states.shape == (31, 3, 1)


def test_a_list_grid_takes_the_states_dtype():
    """float64 states on a grid given as a list are integrated at float64 times (0.1 is not rounded to
    float32): the returned times are the given ones, and x(t) = x0 + sin(t) to RK4's error (one step of 0.6)."""
    f = lambda x, t: torch.cos(t)[:, None].expand_as(x)
    tr = RK4().solve(f, torch.zeros(2, 1, dtype=torch.float64), [0.0, 0.1, 0.7])
    assert tr.times.dtype == torch.float64 and tr.times.tolist() == [0.0, 0.1, 0.7]
    torch.testing.assert_close(tr.states[:, 0, 0], torch.sin(torch.tensor([0.0, 0.1, 0.7], dtype=torch.float64)),
                               atol=1e-3, rtol=0)
    assert RK4().solve(f, torch.zeros(2, 1), [0.0, 0.5]).times.dtype == torch.float32


def test_backward_integration_inverts_forward():
    x0 = torch.randn(4, 2, dtype=torch.float64)
    fwd = RK4().solve(rot_field, x0, torch.linspace(0, 1, 101, dtype=torch.float64), keep="last")
    back = RK4().solve(rot_field, fwd.last, torch.linspace(1, 0, 101, dtype=torch.float64), keep="last")
    torch.testing.assert_close(back.last, x0, atol=1e-9, rtol=0)


def test_dopri5_meets_tolerance_and_lands_on_grid():
    x0 = torch.tensor([[1.0, 0.5]], dtype=torch.float64)
    grid = torch.tensor([0.0, 0.3, 1.7, 2.0], dtype=torch.float64)
    tight = Dopri5(rtol=1e-9, atol=1e-9).solve(rot_field, x0, grid)
    loose = Dopri5(rtol=1e-3, atol=1e-3).solve(rot_field, x0, grid)
    for k, t in enumerate(grid.tolist()):
        torch.testing.assert_close(tight.states[k], exact(x0, t), atol=1e-7, rtol=0)
    assert float((loose.last - exact(x0, 2.0)).abs().max()) < 1e-2
    assert tight.info["nfe"] > loose.info["nfe"]
    assert tight.info["accepted_steps"] > 0


def test_dopri5_step_limit():
    with pytest.raises(SciflowError, match="max_steps"):
        Dopri5(rtol=1e-12, atol=1e-12, max_steps=3).solve(rot_field, torch.ones(1, 2, dtype=torch.float64),
                                                         torch.tensor([0.0, 5.0], dtype=torch.float64))


def test_euler_maruyama_ornstein_uhlenbeck_moments(gen):
    # dX = -theta X dt + s dW, X0 = 1: mean e^{-theta t}, var s^2 (1 - e^{-2 theta t}) / (2 theta)
    theta, s, t_end, n = 1.5, 0.8, 1.0, 40_000
    em = EulerMaruyama(s, substeps=4)
    tr = em.solve(lambda x, t: -theta * x, torch.ones(n, 1, dtype=torch.float64),
                  torch.linspace(0, t_end, 51, dtype=torch.float64), generator=gen, keep="last")
    mean = math.exp(-theta * t_end)
    var = s ** 2 * (1 - math.exp(-2 * theta * t_end)) / (2 * theta)
    assert float(tr.last.mean()) == pytest.approx(mean, abs=0.01)
    assert float(tr.last.var()) == pytest.approx(var, rel=0.03)


def test_euler_maruyama_is_reproducible_and_state_dependent_noise():
    g = lambda x, t: 0.1 * x.abs()
    x0 = torch.ones(10, 2)
    grid = torch.linspace(0, 1, 11)
    a = EulerMaruyama(g).solve(lambda x, t: x, x0, grid, generator=torch.Generator().manual_seed(5))
    b = EulerMaruyama(g).solve(lambda x, t: x, x0, grid, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a.states, b.states)
    z = EulerMaruyama(0.0).solve(lambda x, t: x, x0, grid)
    torch.testing.assert_close(z.last, Euler().solve(lambda x, t: x, x0, grid).last)


def test_cond_is_passed_to_the_field():
    f = lambda x, t, scale: scale * torch.ones_like(x)
    tr = Euler().solve(f, torch.zeros(2, 1), torch.linspace(0, 1, 5), cond={"scale": torch.tensor([[1.0], [3.0]])})
    torch.testing.assert_close(tr.last, torch.tensor([[1.0], [3.0]]))


def test_bad_inputs():
    with pytest.raises(InputError, match="times"):
        Euler().solve(rot_field, torch.zeros(1, 2), torch.tensor([0.0, 1.0, 0.5]))
    with pytest.raises(InputError, match="times"):
        Euler().solve(rot_field, torch.zeros(1, 2), torch.tensor([0.0]))
    with pytest.raises(InputError, match="x0"):
        Euler().solve(rot_field, torch.tensor([[float("nan"), 0.0]]), torch.tensor([0.0, 1.0]))
    with pytest.raises(InputError, match="keep"):
        Euler().solve(rot_field, torch.zeros(1, 2), torch.tensor([0.0, 1.0]), keep="some")
    with pytest.raises(InputError, match="rtol"):
        Dopri5(rtol=0.0)


def test_ito_heun_is_heun_without_noise_and_has_ou_moments(gen):
    from sciflow.core.solvers.sde_heun import ItoHeun
    x0 = torch.tensor([[1.0, 0.5], [-0.3, 2.0]], dtype=torch.float64)
    grid = torch.linspace(0, 1, 21, dtype=torch.float64)
    torch.testing.assert_close(ItoHeun(0.0).solve(rot_field, x0, grid).last, Heun().solve(rot_field, x0, grid).last)
    # OU dX = -theta X dt + s dW on a coarse grid (a = theta h): one step is
    # x' = x (1 - a + a^2/2) + (1 - a/2) s sqrt(h) xi, so mean and variance follow exact recursions
    theta, s, n, steps = 3.0, 0.5, 40_000, 5
    h, a = 1.0 / steps, 3.0 / steps
    grid = torch.linspace(0, 1, steps + 1, dtype=torch.float64)
    start = torch.ones(n, 1, dtype=torch.float64)
    heun = ItoHeun(s).solve(lambda x, t: -theta * x, start, grid, generator=gen, keep="last").last
    em = EulerMaruyama(s).solve(lambda x, t: -theta * x, start, grid, generator=gen, keep="last").last
    c, mean, var = 1 - a + a * a / 2, 1.0, 0.0
    for _ in range(steps):
        mean, var = c * mean, c * c * var + s * s * h * (1 - a / 2) ** 2
    assert float(heun.mean()) == pytest.approx(mean, abs=4 * math.sqrt(var / n))
    assert float(heun.var()) == pytest.approx(var, rel=0.03)
    # and the trapezoid drift is far closer to the true OU mean than Euler-Maruyama at the same step
    true_mean = math.exp(-theta)
    assert abs(float(heun.mean()) - true_mean) < 0.5 * abs(float(em.mean()) - true_mean)


def test_a_field_of_the_wrong_shape_or_one_that_turns_nan_is_named():
    with pytest.raises(InputError, match=r"field: returned \(3, 1\)"):
        RK4().solve(lambda x, t: x[:, :1], torch.ones(3, 2), torch.linspace(0, 1, 3))
    with pytest.raises(InputError, match="field: returned"):
        Dopri5().solve(lambda x, t: -x.sum(), torch.ones(3, 2), [0.0, 1.0])

    def nan_after_half(x, t):
        return torch.where(t[:, None] > 0.5, torch.full_like(x, float("nan")), -x)
    d = Dopri5()
    with pytest.raises(SciflowError, match="field: returned non-finite values near t=0.5"):
        d.solve(nan_after_half, torch.ones(4, 2), [0.0, 1.0])
    assert d.nfe < 1000                                  # named at once, not after max_steps rejections
    # a first step so long that its stages overflow float32 (x' = -x^3 from 2 with h = 1e3) is retried shorter
    x0 = torch.full((2, 1), 2.0)
    d = Dopri5(first_step=1e3)
    out = d.solve(lambda x, t: -x ** 3, x0, [0.0, 1.0])
    assert out.info["rejected_steps"] >= 1
    torch.testing.assert_close(out.last, torch.full((2, 1), 2.0 / 3.0), rtol=1e-4, atol=1e-5)
    # x' = -x^3: x(t) = x0 / sqrt(1 + 2 x0^2 t) = 2 / 3 at t = 1
    for kwargs, field in (({"first_step": -0.1}, "first_step"), ({"first_step": float("nan")}, "first_step"),
                          ({"safety": 0.0}, "safety"), ({"safety": 2.0}, "safety")):
        with pytest.raises(InputError, match=field):
            Dopri5(**kwargs)
    for g in (float("nan"), float("inf"), -1.0):
        with pytest.raises(InputError, match="diffusion"):
            EulerMaruyama(g)


@pytest.mark.parametrize("scheme", ["euler_maruyama", "ito_heun"])
def test_a_diffusion_of_one_value_per_row_scales_its_row(scheme):
    """g(x, t) of shape (B,) broadcast against (B, d) noise column by column (row i got the g of row j)."""
    from sciflow.core.solvers.sde_heun import ItoHeun
    cls = EulerMaruyama if scheme == "euler_maruyama" else ItoHeun
    x0 = torch.randn(3, 3, generator=torch.Generator().manual_seed(0)) + 2.0
    zero = lambda x, t: torch.zeros_like(x)
    grid = torch.tensor([0.0, 1.0])
    xi = torch.randn(3, 3, generator=torch.Generator().manual_seed(1))
    row = cls(lambda x, t: x.norm(dim=-1)).solve(zero, x0, grid, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(row.last, x0 + x0.norm(dim=-1)[:, None] * xi)
    same = cls(lambda x, t: x.norm(dim=-1, keepdim=True).expand_as(x)).solve(
        zero, x0, grid, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(row.last, same.last)
    scalar = cls(lambda x, t: torch.tensor(0.5)).solve(zero, x0, grid, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(scalar.last, x0 + 0.5 * xi)
    number = cls(lambda x, t: 0.5).solve(zero, x0, grid, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(number.last, scalar.last)
    for bad in (lambda x, t: x[:, :2], lambda x, t: torch.ones(4), lambda x, t: torch.ones(3, 3, 1),
                lambda x, t: "0.5"):
        with pytest.raises(InputError, match="diffusion: g"):
            cls(bad).solve(zero, x0, grid, generator=torch.Generator().manual_seed(1))


def test_dopri5_holds_each_row_to_the_tolerance_whatever_the_rest_of_the_batch():
    """The error norm was the RMS over the whole batch: one hard row among 999 resting ones was let through
    with 30x its tolerance. Now it is the largest per-row RMS, so the hard row is solved as if alone."""
    def field(x, t):                       # row 0: x' = 3 cos(3t) x, x = exp(sin 3t); the rest stay put
        return torch.cat([3 * torch.cos(3 * t[:1])[:, None] * x[:1], torch.zeros_like(x[1:])])
    exact_end = math.exp(math.sin(6.0))
    solver = Dopri5(rtol=1e-6, atol=1e-6)
    alone = solver.solve(field, torch.ones(1, 1, dtype=torch.float64), [0.0, 2.0])
    crowd = solver.solve(field, torch.ones(1000, 1, dtype=torch.float64), [0.0, 2.0])
    assert crowd.info["accepted_steps"] == alone.info["accepted_steps"]
    assert float(crowd.last[0, 0]) == float(alone.last[0, 0])
    assert abs(float(crowd.last[0, 0]) - exact_end) < 1e-6 + 1e-6 * exact_end
    # graph batches (nodes as rows, (N, 3)) and 1-D states are held per entry; an empty batch is no error
    nodes = solver.solve(lambda x, t: -x, torch.ones(7, 3, dtype=torch.float64), [0.0, 1.0])
    torch.testing.assert_close(nodes.last, torch.full((7, 3), math.exp(-1.0), dtype=torch.float64), rtol=1e-5,
                               atol=1e-6)
    flat = solver.solve(lambda x, t: -x, torch.ones(4, dtype=torch.float64), [0.0, 1.0])
    torch.testing.assert_close(flat.last, torch.full((4,), math.exp(-1.0), dtype=torch.float64), rtol=1e-5,
                               atol=1e-6)
    assert solver.solve(lambda x, t: -x, torch.zeros(0, 2), [0.0, 1.0]).last.shape == (0, 2)
