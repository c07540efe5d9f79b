"""Dynamics against hand-integrated cases (float64)."""
import math

import torch

from sciflow.domains.robots import Car, CarParams, wrap_angle

D = torch.float64


def test_straight_line_constant_acceleration_is_exact():
    car = Car()
    s = torch.tensor([[0.5, -1.0, 0.0, 0.2, 0.0]], dtype=D)
    u = torch.tensor([[1.5, 0.0]], dtype=D)
    n = 12                                     # 0.6 s: speed 0.2 -> 1.1 m/s, below the limit
    traj = car.simulate(s, u[:, None].expand(1, n, 2))[0]
    t = torch.arange(n + 1, dtype=D) * car.p.dt
    assert torch.allclose(traj[:, 0], 0.5 + 0.2 * t + 0.5 * 1.5 * t ** 2, atol=1e-12)
    assert torch.allclose(traj[:, 3], 0.2 + 1.5 * t, atol=1e-12)
    assert torch.allclose(traj[:, 1], torch.full_like(t, -1.0)) and torch.allclose(traj[:, 2], torch.zeros_like(t))


def test_constant_steering_follows_a_circle_of_radius_l_over_tan_delta():
    car = Car()
    delta, v = 0.4, 1.2
    r = car.p.wheelbase / math.tan(delta)
    s = torch.tensor([[0.0, 0.0, 0.0, v, delta]], dtype=D)
    n = 60                                     # 3 s, more than a full turn
    traj = car.simulate(s, torch.zeros(1, n, 2, dtype=D))[0]
    t = torch.arange(n + 1, dtype=D) * car.p.dt
    phi = v * t / r
    assert torch.allclose(traj[:, 0], r * torch.sin(phi), atol=1e-7)
    assert torch.allclose(traj[:, 1], r * (1 - torch.cos(phi)), atol=1e-7)
    assert torch.allclose(traj[:, 2], wrap_angle(phi), atol=1e-9)
    # every point at distance r from the centre (0, r)
    assert torch.allclose(torch.hypot(traj[:, 0], traj[:, 1] - r), torch.full_like(t, r), atol=1e-7)


def test_limits_hold_and_controls_are_clipped():
    p = CarParams()
    car = Car(p)
    s = torch.tensor([[0.0, 0.0, 0.0, 1.9, 0.55]], dtype=D)
    u = torch.tensor([[10.0, 10.0]], dtype=D)            # far beyond the bounds
    traj = car.simulate(s, u[:, None].expand(1, 10, 2))[0]
    assert float(traj[:, 3].max()) == p.max_speed and float(traj[:, 4].max()) == p.max_steer
    one = car.step(s, u)[0]
    assert abs(float(one[3]) - min(1.9 + p.max_accel * p.dt, p.max_speed)) < 1e-12
    assert abs(float(one[4]) - min(0.55 + p.max_steer_rate * p.dt, p.max_steer)) < 1e-12
    back = car.simulate(s, torch.tensor([[[-10.0, 0.0]]], dtype=D).expand(1, 200, 2))[0]
    assert float(back[:, 3].min()) == p.min_speed


def test_scalar_step_equals_batched_step_and_batching_is_consistent(gen):
    car = Car()
    s = torch.randn(16, 5, generator=gen, dtype=D) * torch.tensor([3, 3, 2, 0.5, 0.2], dtype=D)
    u = torch.randn(16, 2, generator=gen, dtype=D)
    batched = car.step(s, u)
    for k in range(16):
        scalar = car.step_scalar(*s[k].tolist(), *u[k].tolist())
        assert torch.allclose(batched[k], torch.tensor(scalar, dtype=D), atol=1e-12)
        assert torch.allclose(car.step(s[k:k + 1], u[k:k + 1])[0], batched[k], atol=1e-14)


def test_rollout_holds_each_control_for_a_control_period(gen):
    car = Car()
    s = torch.zeros(3, 5, dtype=D)
    held = torch.rand(3, 4, 2, generator=gen, dtype=D) * 2 - 1
    a = car.rollout(s, held)
    b = car.simulate(s, car.expand_controls(held))
    assert a.shape == (3, 4 * car.p.control_period + 1, 5) and torch.equal(a, b)


def test_footprint_discs_cover_the_body_rectangle():
    p = CarParams()
    car = Car(p)
    s = torch.tensor([1.0, 2.0, 0.7, 0.0, 0.0], dtype=D)
    c = car.disc_centres(s)
    u = torch.linspace(-p.rear_overhang, p.length - p.rear_overhang, 41, dtype=D)
    w = torch.linspace(-p.width / 2, p.width / 2, 11, dtype=D)
    uu, ww = torch.meshgrid(u, w, indexing="ij")
    pts = torch.stack([1.0 + uu * math.cos(0.7) - ww * math.sin(0.7), 2.0 + uu * math.sin(0.7) + ww * math.cos(0.7)],
                      -1).reshape(-1, 2)
    d = torch.cdist(pts, c).min(dim=1).values
    assert float(d.max()) <= p.disc_radius + 1e-12



def test_vectorised_simulate_equals_stepping_one_step_at_a_time(gen):
    """simulate (cumulative sums over time) against T calls of step: random states, controls beyond the bounds
    (clipping), 120 steps (headings cross +-pi many times)."""
    car = Car()
    s = torch.randn(32, 5, generator=gen, dtype=D) * torch.tensor([3, 3, 2, 1.0, 0.4], dtype=D)
    s[:, 3] = s[:, 3].clamp(car.p.min_speed, car.p.max_speed)
    s[:, 4] = s[:, 4].clamp(-car.p.max_steer, car.p.max_steer)
    u = torch.randn(32, 120, 2, generator=gen, dtype=D) * 3
    fast = car.simulate(s, u)
    x, slow = s, [s]
    for k in range(u.shape[1]):
        x = car.step(x, u[:, k])
        slow.append(x)
    slow = torch.stack(slow, dim=1)
    diff = fast - slow
    diff[..., 2] = wrap_angle(diff[..., 2])
    assert fast.shape == (32, 121, 5) and float(diff.abs().max()) < 1e-11
    assert float(fast[..., 2].abs().max()) <= math.pi
