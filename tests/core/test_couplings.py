import pytest
import torch

from sciflow.core.couplings import (
    ExactOT,
    IndependentCoupling,
    MultiMarginalCoupling,
    Sinkhorn,
    sample_plan,
    squared_euclidean,
)
from sciflow.core.errors import InputError


def test_squared_euclidean_matches_cdist(gen):
    a, b = torch.randn(7, 3, generator=gen), torch.randn(5, 3, generator=gen)
    torch.testing.assert_close(squared_euclidean(a, b), torch.cdist(a, b) ** 2, atol=1e-5, rtol=1e-5)


def test_exact_ot_recovers_known_permutation(gen):
    x0 = torch.randn(64, 2, generator=gen) * 5
    perm = torch.randperm(64, generator=gen)
    x1 = x0[perm] + 0.01 * torch.randn(64, 2, generator=gen)
    a, b = ExactOT()(x0, x1)
    torch.testing.assert_close(a, x0)
    torch.testing.assert_close(b, x0, atol=0.05, rtol=0)
    inv = torch.argsort(perm)
    i, j = ExactOT().indices(x0, x1)
    assert torch.equal(j, inv)


def test_exact_ot_pairs_float32_clouds_far_from_the_origin(gen):
    """|a|^2 + |b|^2 - 2ab in float32 loses the distances of a cloud at 1e4 to rounding; the cost must not."""
    x0 = torch.randn(64, 3, generator=gen) + 1e4
    perm = torch.randperm(64, generator=gen)
    x1 = x0[perm] + 0.01 * torch.randn(64, 3, generator=gen)
    c = squared_euclidean(x0, x1)
    assert c.dtype == torch.float32
    torch.testing.assert_close(c, torch.cdist(x0.double() - 1e4, x1.double() - 1e4).float() ** 2,
                               atol=1e-3, rtol=1e-4)
    assert torch.equal(ExactOT().indices(x0, x1)[1], torch.argsort(perm))
    with pytest.raises(InputError, match="features"):
        squared_euclidean(x0, x1[:, :2])


def test_sample_plan_beyond_the_multinomial_limit():
    """Plans with more than 2**24 entries are drawn in two stages (with replacement) or by Gumbel top-k."""
    n = 4100                                                                # 16.81M entries > 2**24
    cols = (torch.arange(n) * 7) % n
    plan = torch.zeros(n, n)
    plan[torch.arange(n), cols] = torch.where(torch.arange(n) < n // 2, 3.0, 1.0)   # rows of two weights
    g = torch.Generator().manual_seed(0)
    i, j = sample_plan(plan, 20000, generator=g)
    assert torch.equal(j, cols[i])                                          # only the plan's entries
    frac = float((i < n // 2).double().mean())                              # 3/4 of the mass in the first half
    assert abs(frac - 0.75) < 4 * (0.75 * 0.25 / 20000) ** 0.5
    i, j = sample_plan(plan, n, generator=g, replace=False)
    assert torch.equal(j, cols[i]) and i.unique().numel() == n


def test_exact_ot_plan_marginals_unequal_sizes(gen):
    x0, x1 = torch.randn(30, 2, generator=gen), torch.randn(45, 2, generator=gen)
    p = ExactOT().plan(x0, x1)
    torch.testing.assert_close(p.sum(1), torch.full((30,), 1 / 30, dtype=p.dtype))
    torch.testing.assert_close(p.sum(0), torch.full((45,), 1 / 45, dtype=p.dtype))
    a, b = ExactOT()(x0, x1, generator=gen)
    assert a.shape == (30, 2) and b.shape == (30, 2)


def test_exact_ot_is_optimal_against_random_permutations(gen):
    x0, x1 = torch.randn(40, 3, generator=gen), torch.randn(40, 3, generator=gen)
    _, j = ExactOT().indices(x0, x1)
    best = squared_euclidean(x0, x1)[torch.arange(40), j].sum()
    for _ in range(50):
        q = torch.randperm(40, generator=gen)
        assert best <= squared_euclidean(x0, x1)[torch.arange(40), q].sum() + 1e-6


def test_injected_cost_changes_the_pairing(gen):
    x0 = torch.tensor([[0.0], [1.0]])
    x1 = torch.tensor([[0.0], [1.0]])
    anti = lambda a, b: -squared_euclidean(a, b) + 10.0
    _, j = ExactOT(cost=anti).indices(x0, x1)
    assert j.tolist() == [1, 0]


def test_sinkhorn_marginals_and_entropic_limit(gen):
    x0, x1 = torch.randn(50, 2, generator=gen), torch.randn(60, 2, generator=gen)
    p = Sinkhorn(reg=0.05).plan(x0, x1)
    torch.testing.assert_close(p.sum(1), torch.full((50,), 1 / 50, dtype=p.dtype), atol=1e-6, rtol=1e-4)
    torch.testing.assert_close(p.sum(0), torch.full((60,), 1 / 60, dtype=p.dtype), atol=1e-6, rtol=1e-4)
    # large regularisation -> independent coupling (uniform plan)
    p_big = Sinkhorn(reg=1e3).plan(x0, x1)
    torch.testing.assert_close(p_big, torch.full_like(p_big, 1 / 3000), atol=1e-6, rtol=1e-3)
    # small regularisation -> close to the exact OT cost
    y0, y1 = torch.randn(40, 2, generator=gen), torch.randn(40, 2, generator=gen)
    m = squared_euclidean(y0, y1).double()
    exact = (ExactOT().plan(y0, y1) * m).sum()
    ent = (Sinkhorn(reg=1e-3, num_iter_max=20_000).plan(y0, y1) * m).sum()
    assert float(ent) == pytest.approx(float(exact), rel=0.02)


def test_sampling_is_reproducible_with_a_generator():
    x0, x1 = torch.randn(32, 2), torch.randn(32, 2)
    s = Sinkhorn(reg=0.1)
    r1 = s(x0, x1, generator=torch.Generator().manual_seed(3))
    r2 = s(x0, x1, generator=torch.Generator().manual_seed(3))
    assert torch.equal(r1[1], r2[1])


def test_sample_plan_follows_plan(gen):
    plan = torch.tensor([[0.5, 0.0], [0.0, 0.5]])
    i, j = sample_plan(plan, 1000, generator=gen)
    assert torch.equal(i, j)
    with pytest.raises(InputError, match="plan"):
        sample_plan(torch.zeros(2, 2), 3)


def test_independent_coupling_keeps_rows():
    x0, x1 = torch.randn(5, 2), torch.randn(5, 2)
    a, b = IndependentCoupling()(x0, x1)
    assert a is x0 and b is x1
    with pytest.raises(InputError, match="batch sizes"):
        IndependentCoupling()(x0, torch.randn(4, 2))


def test_multimarginal_chain_recovers_chained_permutations(gen):
    base = torch.randn(50, 2, generator=gen) * 4
    p1, p2 = torch.randperm(50, generator=gen), torch.randperm(50, generator=gen)
    snaps = [base, base[p1] + 0.01, base[p1][p2] + 0.02]
    knots = MultiMarginalCoupling(ExactOT())(snaps, 200, generator=gen)
    assert knots.shape == (3, 200, 2)
    torch.testing.assert_close(knots[1], knots[0] + 0.01, atol=1e-5, rtol=0)
    torch.testing.assert_close(knots[2], knots[0] + 0.02, atol=1e-5, rtol=0)


def test_multimarginal_ragged_and_per_interval_couplings(gen):
    snaps = [torch.randn(30, 2, generator=gen), torch.randn(40, 2, generator=gen), torch.randn(25, 2, generator=gen)]
    mm = MultiMarginalCoupling([Sinkhorn(0.1), ExactOT()])
    knots = mm(snaps, 64, generator=gen)
    assert knots.shape == (3, 64, 2)
    for k in range(3):  # every knot is a row of its snapshot
        assert bool((squared_euclidean(knots[k], snaps[k]).min(1).values < 1e-5).all())
    with pytest.raises(InputError, match="couplings"):
        MultiMarginalCoupling([ExactOT()])(snaps, 4)
    with pytest.raises(InputError, match="snapshots"):
        MultiMarginalCoupling(ExactOT())(snaps[:1], 4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_couplings_on_cuda():
    x0, x1 = torch.randn(64, 2, device="cuda"), torch.randn(64, 2, device="cuda")
    g = torch.Generator(device="cuda").manual_seed(0)
    for c in (ExactOT(), Sinkhorn(0.1)):
        a, b = c(x0, x1, generator=g)
        assert a.device.type == "cuda" and b.device.type == "cuda"


def test_multimarginal_coupling_needs_plan_couplings():
    with pytest.raises(InputError, match="couplings: expected a plan coupling"):
        MultiMarginalCoupling(IndependentCoupling())
    with pytest.raises(InputError, match="couplings"):
        MultiMarginalCoupling([ExactOT(), "sinkhorn"])


def test_the_schrodinger_bridge_coupling_is_entropic_ot_at_two_sigma_squared():
    """The docs paired BrownianBridgePath(sigma) with Sinkhorn(reg=2 sigma^2), whose default normalize_cost=True
    makes reg relative to the largest cost: another coupling. sb_coupling(sigma) is the bridge's own one."""
    from sciflow.core.couplings import EntropicOT, sb_coupling
    g = torch.Generator().manual_seed(0)
    sigma = 0.5
    x0 = torch.randn(64, 2, generator=g, dtype=torch.float64)
    x1 = torch.randn(64, 2, generator=g, dtype=torch.float64) * 0.5 + 3
    cost = squared_euclidean(x0, x1)
    sb = sb_coupling(sigma, tol=1e-12, max_iter=5000)
    assert isinstance(sb, EntropicOT) and sb.eps == 2 * sigma ** 2
    plan = sb.plan(x0, x1)
    # pi = diag(u) K diag(v) with K = exp(-|x - y|^2 / (2 sigma^2)) and uniform marginals (plain matrix scaling)
    k = torch.exp(-cost / (2 * sigma ** 2))
    u, v = torch.ones(64, dtype=torch.float64), torch.ones(64, dtype=torch.float64)
    for _ in range(5000):
        u = (1 / 64) / (k @ v)
        v = (1 / 64) / (k.T @ u)
    assert float((u[:, None] * k * v[None, :] - plan).abs().sum()) < 1e-6
    raw = Sinkhorn(reg=2 * sigma ** 2, normalize_cost=False, stop_threshold=1e-12, num_iter_max=5000).plan(x0, x1)
    assert float((raw - plan).abs().sum()) < 1e-5
    assert float((Sinkhorn(reg=2 * sigma ** 2).plan(x0, x1) - plan).abs().sum()) > 0.5   # the relative reg
    with pytest.raises(InputError, match="sigma.*ExactOT"):
        sb_coupling(0.0)
