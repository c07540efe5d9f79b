"""The fast paths of DiTree's CPU hot loop give bitwise the values of the plain computations they replace.

Each check compares the fast path with the straightforward torch code it stands in for (written out here), on
inputs that exercise the edge cases: clipping at the bounds, points outside the map, NaN and infinite states.
"""
from __future__ import annotations

import pytest
import torch

from sciflow.domains.robots import Car, CollisionChecker, LocalObservation, Scenario, World
from sciflow.domains.robots.car import _clipped_cumsum
from sciflow.methods.ditree.planners import CLEARANCE_MARGIN
from sciflow.methods.ditree.policy import ChunkPolicyNet, _run
from sciflow.methods.ditree.problem import MixedSampler, Problem, RandomControls, sample_targets


def _world() -> World:
    return World([0, 0, 6, 4], rectangles=[[2.0, 0.0, 2.4, 2.5]], discs=[[4.5, 2.5, 0.5]])


def _states(g: torch.Generator, n: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    s = torch.rand(n, 5, generator=g, dtype=dtype) * torch.tensor([8.0, 6.0, 8.0, 4.0, 1.6], dtype=dtype)
    return s - torch.tensor([1.0, 1.0, 4.0, 1.5, 0.8], dtype=dtype)          # some outside the map / the limits


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_clipped_cumsum_matches_torch_loop(dtype):
    g = torch.Generator().manual_seed(0)
    car = Car()
    _, _, vlo, vhi, *_ = car._constants(torch.zeros(1, dtype=dtype))
    v0 = _states(g, 64, dtype)[:, 3:5]
    v0[0] = float("nan")
    du = (torch.rand(64, 20, 2, generator=g, dtype=dtype) - 0.5) * 0.8          # often runs into the bounds
    ref = [v0]
    for k in range(du.shape[1]):
        ref.append(torch.maximum(torch.minimum(ref[-1] + du[:, k], vhi), vlo))
    ref = torch.stack(ref, dim=1)
    with torch.inference_mode():
        fast = _clipped_cumsum(v0, du, vlo, vhi, {})
    assert torch.allclose(fast, ref, rtol=0, atol=0, equal_nan=True)
    assert torch.equal(fast[1:], ref[1:])


def test_rollout_matches_unvectorised_time_loop():
    """``simulate`` (NumPy speed loop, index_select stage picks, cached constants) against the original formulas."""
    g = torch.Generator().manual_seed(1)
    car = Car()
    p, h = car.p, car.p.dt
    s0 = _states(g, 50)
    controls = (torch.rand(50, 10, 2, generator=g) * 2 - 1) * 3.0              # beyond the bounds: clipped
    lo, hi, vlo, vhi, idx_stage, c_stage, idx_speed, w_speed, w_theta = car._constants(s0)
    steps = controls.repeat_interleave(p.control_period, dim=1)
    du = torch.maximum(torch.minimum(steps, hi), lo) * h
    vd = [s0[:, 3:5]]
    for k in range(du.shape[1]):
        vd.append(torch.maximum(torch.minimum(vd[-1] + du[:, k], vhi), vlo))
    vd = torch.stack(vd, dim=1)
    v0, v1 = vd[:, :-1], vd[:, 1:]
    prof = torch.stack([v0, 0.5 * (v0 + v1), v1], dim=-2)
    rate = prof[..., 0] * torch.tan(prof[..., 1]) * (1.0 / p.wheelbase)
    dth = h * (rate * w_theta).sum(-1)
    th = torch.cumsum(torch.cat([s0[:, 2:3], dth], dim=1), dim=1)
    ang = th[:, :-1, None] + (h * c_stage) * rate[..., idx_stage]
    wv = prof[..., idx_speed, 0] * (h * w_speed)
    dxy = torch.stack([(torch.cos(ang) * wv).sum(-1), (torch.sin(ang) * wv).sum(-1)], dim=-1)
    xy = torch.cumsum(torch.cat([s0[:, None, 0:2], dxy], dim=1), dim=1)
    th = th - 2 * torch.pi * torch.floor((th + torch.pi) / (2 * torch.pi))
    ref = torch.cat([xy, th[..., None], vd], dim=-1)
    with torch.inference_mode():
        assert torch.equal(car.rollout(s0, controls), ref)
    assert torch.equal(car.rollout(s0, controls), ref)                          # outside inference mode too


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_world_read_matches_integer_index(dtype):
    w = _world()
    g = torch.Generator().manual_seed(2)
    pts = torch.rand(3000, 2, generator=g, dtype=dtype) * 10 - 2
    pts[:5] = torch.tensor([[float("nan"), 1.0], [1.0, float("inf")], [-float("inf"), 2.0], [0.0, 0.0], [6.0, 4.0]],
                           dtype=dtype)
    raster = w._raster((pts.device, dtype, "distance"), lambda: w.field.to(pts.device, dtype), 0.0)
    lo = torch.tensor([-1, -1], dtype=dtype)
    hi = torch.tensor([w.cols, w.rows], dtype=dtype)
    origin = torch.tensor(w.bounds[:2], dtype=dtype)
    ij = torch.floor((pts - origin) / w.resolution).nan_to_num_(nan=-1.0).clamp_(lo, hi).long()
    ref = raster[ij[..., 1] * (w.cols + 2) + ij[..., 0] + (w.cols + 3)]
    assert torch.equal(w.distance(pts), ref)
    assert torch.equal(w.distance(pts.reshape(30, 100, 2)), ref.reshape(30, 100))


def test_first_collision_matches_clearance():
    car = Car()
    w = _world()
    checker = CollisionChecker(car, w)
    g = torch.Generator().manual_seed(3)
    edges = car.rollout(_states(g, 200), (torch.rand(200, 10, 2, generator=g) * 2 - 1) * 2)[:, 1:]
    edges[0, 3] = float("nan")
    for margin in (0.0, CLEARANCE_MARGIN, 0.05):
        bad = ~(checker.clearance(edges) >= margin)
        t = edges.shape[1]
        idx = torch.arange(t).expand_as(bad)
        ref = torch.where(bad, idx, torch.full_like(idx, t)).min(dim=1).values
        got = checker.first_collision(edges, margin)
        assert torch.equal(got, ref)
        assert 0 < int((ref < t).sum()) < len(ref)                              # both kinds present
    assert int(checker.first_collision(edges)[0]) <= 3


def test_functional_layers_match_modules():
    torch.manual_seed(0)
    net = ChunkPolicyNet(head_hidden=(32, 32)).eval()
    crop = (torch.rand(7, 1, 20, 20) < 0.3).float()
    cond_in = torch.randn(7, net.map_dim + 5)
    head_in = torch.randn(7, 2 * net.horizon + 64)
    with torch.inference_mode():
        for seq, x in ((net.map_enc, crop), (net.cond, cond_in), (net.head.mlp.net, head_in)):
            assert torch.equal(_run(seq, x), seq(x))
        calls = []
        h = net.cond[0].register_forward_hook(lambda *a: calls.append(1))   # hooks still run
        _run(net.cond, cond_in)
        h.remove()
        assert calls == [1]
    out = _run(net.cond, cond_in.requires_grad_())                          # autograd: the module call
    assert out.requires_grad


def test_targets_and_mixed_controls_match_plain_formulas():
    sc = Scenario.from_dict({"name": "t", "budget_s": 5.0, "map": {"bounds": [-1.5, 0.25, 6.3, 4.1]},
                             "start": [1.0, 2.0, 0.0, 0.0, 0.0], "goal": {"x": 5.1, "y": 1.3, "radius": 0.5}})
    problem = Problem.from_scenario(sc)
    g1, g2 = torch.Generator().manual_seed(4), torch.Generator().manual_seed(4)
    for _ in range(3):
        got = sample_targets(problem, 257, 0.3, g1)
        xmin, ymin, xmax, ymax = problem.world.bounds
        u = torch.rand((257, 3), generator=g2)
        pts = torch.stack([xmin + (xmax - xmin) * u[:, 0], ymin + (ymax - ymin) * u[:, 1]], dim=-1)
        goal = torch.tensor([problem.goal.x, problem.goal.y])
        assert torch.equal(got, torch.where((u[:, 2] < 0.3)[:, None], goal.expand_as(pts), pts))

    class Short(RandomControls):                                              # 3 held controls, padded to 10
        def sample(self, problem, states, targets, generator, nodes=None):
            c, n = super().sample(problem, states, targets, generator, nodes)
            return c[:, :3] * 0.5 + torch.arange(3.0)[None, :, None], n.clamp(max=3)

    states = _states(torch.Generator().manual_seed(5), 16)
    mixed = MixedSampler(Short(), 0.25)
    ga, gb = torch.Generator().manual_seed(6), torch.Generator().manual_seed(6)
    controls, n = mixed.sample(problem, states, states[:, :2], ga)
    r = RandomControls().sample(problem, states[:4], states[:4, :2], gb)
    s = Short().sample(problem, states[4:], states[4:, :2], gb)
    pad = torch.cat([s[0], s[0][:, -1:].expand(-1, 7, -1)], dim=1)
    assert torch.equal(controls, torch.cat([r[0], pad])) and torch.equal(n, torch.cat([r[1], s[1]]))
    assert mixed.last_random.tolist() == [True] * 4 + [False] * 12


def test_policy_proprio_matches_plain_formula():
    obs = LocalObservation()
    car = Car()
    g = torch.Generator().manual_seed(7)
    states, targets = _states(g, 100), torch.rand(100, 2, generator=g) * 6
    dx, dy = targets[:, 0] - states[:, 0], targets[:, 1] - states[:, 1]
    c, s = torch.cos(states[:, 2]), torch.sin(states[:, 2])
    fx, fy = dx * c + dy * s, -dx * s + dy * c
    dist = torch.hypot(fx, fy)
    safe = dist.clamp(min=1e-6)
    tf = torch.stack([fx / safe, fy / safe, dist.clamp(max=obs.max_range) / obs.max_range], dim=-1)
    own = torch.stack([states[:, 3] / car.p.max_speed, states[:, 4] / car.p.max_steer], dim=-1)
    assert torch.equal(obs.proprio(car.p, states, targets), torch.cat([own, tf], dim=-1))


def test_car_simulate_keeps_forward_mode_derivatives_vmap_and_dtype_promotion():
    # the NumPy recursion runs only for plain CPU tensors in inference mode: dual numbers and torch.func wrappers
    # take the torch loop (the fast path once dropped forward-mode tangents silently)
    import torch.autograd.forward_ad as fwAD

    from sciflow.domains.robots.car import Car

    car = Car()
    g = torch.Generator().manual_seed(0)
    s0 = torch.rand(4, 5, generator=g, dtype=torch.float64) * 0.3
    u = torch.randn(4, 12, 2, generator=g, dtype=torch.float64)
    du = torch.randn(4, 12, 2, generator=g, dtype=torch.float64)
    with fwAD.dual_level():
        out = car.simulate(s0, fwAD.make_dual(u, du))
        tangent = fwAD.unpack_dual(out).tangent
    eps = 1e-6
    fd = (car.simulate(s0, u + eps * du) - car.simulate(s0, u - eps * du)) / (2 * eps)
    torch.testing.assert_close(tangent, fd, atol=1e-6, rtol=1e-5)
    _, jvp = torch.func.jvp(lambda c: car.simulate(s0, c), (u,), (du,))
    torch.testing.assert_close(jvp, tangent)
    batched = torch.func.vmap(lambda s, c: car.simulate(s[None], c[None])[0])(s0, u)
    torch.testing.assert_close(batched, car.simulate(s0, u))
    with torch.inference_mode():                  # the fast path, and the same values as the torch loop
        torch.testing.assert_close(car.simulate(s0, u), car.simulate(s0, u).clone(), rtol=0, atol=0)
        mixed = car.simulate(s0.float(), u)       # float32 states, float64 controls: promoted, as before
    assert mixed.dtype == torch.float64
    torch.testing.assert_close(mixed, car.simulate(s0.float(), u), rtol=0, atol=0)


def test_new_car_parameters_replace_every_cached_constant():
    """The car and the checker cache constants made from the parameters (bounds, RK4 weights, disc offsets, the
    swept radius); assigning ``car.p`` must give exactly what a car built with the new parameters gives."""
    from sciflow.domains.robots import CarParams
    g = torch.Generator().manual_seed(3)
    s0, u = _states(g, 16)[:, :5], torch.randn(16, 12, 2, generator=g) * 3.0
    new = CarParams(max_speed=0.7, max_steer=0.3, max_accel=0.5, dt=0.02, length=0.6, n_discs=3)
    car, world = Car(), _world()
    checker = CollisionChecker(car, world)
    for mode in (torch.inference_mode, torch.no_grad):                       # NumPy and torch recursions
        with mode():
            car.simulate(s0, u), car.disc_centres(s0), checker.first_collision(car.simulate(s0, u))
    car.p = new
    fresh = Car(new)
    fresh_checker = CollisionChecker(fresh, World(world.bounds, rectangles=world.rectangles, discs=world.discs))
    for mode in (torch.inference_mode, torch.no_grad):
        with mode():
            got, ref = car.simulate(s0, u), fresh.simulate(s0, u)
            assert torch.equal(got, ref)
            assert float(got[:, 1:, 3].max()) <= 0.7 + 1e-6 and float(got[:, 1:, 4].abs().max()) <= 0.3 + 1e-6
            assert torch.equal(car.disc_centres(s0), fresh.disc_centres(s0))
            assert torch.equal(checker.first_collision(got), fresh_checker.first_collision(ref))
    assert checker.radius == fresh_checker.radius == new.disc_radius + new.sweep_margin
    assert checker.state_valid_scalar(1.0, 1.0, 0.3) == fresh_checker.state_valid_scalar(1.0, 1.0, 0.3)


def test_flow_map_head_fast_path_only_for_a_plain_mlp():
    """The head's fast path runs ``mlp.net`` layer by layer, which equals ``MLP.forward``; a replaced module with
    its own forward must be called as itself."""
    from sciflow.nn.mlp import MLP

    class Scaled(MLP):
        def forward(self, x):
            return 2.0 * self.net(x)

    torch.manual_seed(1)
    net = ChunkPolicyNet(head_hidden=(16,)).eval()
    x0, cond = torch.randn(5, net.horizon, 2), torch.randn(5, 64)
    with torch.inference_mode():
        plain = net.head(x0, cond)
        assert torch.equal(plain, x0 + net.head.mlp(torch.cat([x0.reshape(5, -1), cond], -1)).reshape(5, -1, 2))
        scaled = Scaled(2 * net.horizon + 64, 2 * net.horizon, (16,))
        scaled.load_state_dict(net.head.mlp.state_dict())
        net.head.mlp = scaled
        assert torch.allclose(net.head(x0, cond) - x0, 2.0 * (plain - x0), atol=1e-5)
