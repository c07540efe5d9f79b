"""The block mode of the walk tail (``walk_blocks.run_tail``) against the plain event-by-event loop: the same law
(other random numbers), reproducible with a fixed generator, and its building blocks exact."""
import math

import pytest
import torch

from sciflow.core.errors import InputError
from sciflow.core.random import make_generator
from sciflow.domains.photons import simulate_walks
from sciflow.domains.photons.quaternions import axis_z, frame_of, prefix_products, qmul


def _stats(w, albedo):
    n = w["n_events"].double()
    samples = {
        "mean N": n,
        "exit cosine": w["exit_dir"][:, 2].double(),
        "exit pos . dir": (w["exit_pos"] * w["exit_dir"]).sum(-1).double(),
        "event radius": w["scatter_pos"].norm(dim=-1).double(),
        "event index": w["scatter_index"].double(),
        f"survival {albedo}": albedo ** n,
        "survival 0.97": 0.97 ** n,
    }
    return {k: (float(v.mean()), float(v.std()) / math.sqrt(len(v))) for k, v in samples.items()}


def _assert_same_law(a, b, albedo, what=""):
    sa, sb = _stats(a, albedo), _stats(b, albedo)
    for key in sa:
        z = (sa[key][0] - sb[key][0]) / max(math.hypot(sa[key][1], sb[key][1]), 1e-12)
        assert abs(z) < 4, f"{what} {key}: plain {sa[key][0]:.5g} vs blocks {sb[key][0]:.5g} ({z:+.2f} s.e.)"


@pytest.mark.parametrize("sigma_r, g, albedo, n", [(6.0, 0.3, 0.9, 4000), (16.0, 0.7, 0.99, 3000),
                                                   (12.0, -0.6, 0.999, 3000)])
def test_block_mode_and_plain_loop_give_the_same_walks(sigma_r, g, albedo, n):
    """Every walk finished in blocks (tail >= n) against the event-by-event loop (tail=0), float64."""
    plain = simulate_walks(sigma_r, g, albedo, n, generator=make_generator(11), dtype=torch.float64, tail=0)
    blocks = simulate_walks(sigma_r, g, albedo, n, generator=make_generator(12), dtype=torch.float64, tail=n)
    _assert_same_law(plain, blocks, albedo, f"sigma_r={sigma_r} g={g}")


def test_handoff_from_a_refilled_pool_keeps_the_law_per_condition():
    """Mixed conditions in a small pool (refills from the queue, then the last 96 walks in float32 blocks)."""
    cond = (torch.tensor([3.0, 10.0] * 1500), torch.tensor([-0.3, 0.6] * 1500), torch.tensor([0.95, 0.99] * 1500))
    plain = simulate_walks(*cond, generator=make_generator(13), slots=256, tail=0)
    blocks = simulate_walks(*cond, generator=make_generator(14), slots=256, tail=96)
    for i, albedo in enumerate((0.95, 0.99)):
        sel = slice(i, None, 2)
        _assert_same_law({k: v[sel] for k, v in plain.items()}, {k: v[sel] for k, v in blocks.items()}, albedo,
                         f"condition {i}")


def test_block_mode_is_reproducible_and_physical():
    kw = {"generator": None, "slots": 512, "tail": 300}
    cond = (torch.tensor([0.5, 4.0, 25.0] * 300), torch.tensor([-0.5, 0.2, 0.9] * 300),
            torch.tensor([0.99, 0.5, 1.0] * 300))
    a = simulate_walks(*cond, **{**kw, "generator": make_generator(15)})
    b = simulate_walks(*cond, **{**kw, "generator": make_generator(15)})
    for key in a:
        assert torch.equal(a[key], b[key]), key
    w = simulate_walks(*cond, **{**kw, "generator": make_generator(16)}, dtype=torch.float64)
    one = torch.ones(900, dtype=torch.float64)
    for key in ("exit_pos", "exit_dir", "scatter_dir"):
        torch.testing.assert_close(w[key].norm(dim=-1), one)
    assert float((w["exit_pos"] * w["exit_dir"]).sum(-1).min()) > 0
    assert float(w["scatter_pos"].norm(dim=-1).max()) <= 1
    k, n = w["scatter_index"], w["n_events"]
    assert bool(((k >= 1) & (k <= n)).all())
    assert float((w["survival"] - w["albedo"] ** n.double()).abs().max()) == 0


def test_block_mode_keeps_the_reservoir_law():
    """P(k | N) = albedo^k / sum_j albedo^j for the walks finished in blocks."""
    alb = 0.8
    w = simulate_walks(6.0, 0.0, alb, 6000, generator=make_generator(17), dtype=torch.float64, tail=6000)
    for n in (5, 10, 20):
        sel = w["n_events"] == n
        ks = torch.arange(1, n + 1, dtype=torch.float64)
        p = alb ** ks / (alb ** ks).sum()
        mean, sd = float((p * ks).sum()), float(((p * ks * ks).sum() - (p * ks).sum() ** 2).sqrt())
        got = w["scatter_index"][sel].double()
        assert len(got) > 50
        assert abs(float(got.mean()) - mean) < 4 * sd / math.sqrt(len(got))


def test_quaternion_scan_and_frames_are_exact():
    gen = make_generator(18)
    q = torch.nn.functional.normalize(torch.randn(4, 37, 5, generator=gen, dtype=torch.float64), dim=0)
    ref = q.clone()
    for i in range(1, 37):
        ref[:, i] = qmul(ref[:, i - 1], q[:, i])
    torch.testing.assert_close(prefix_products(q), ref, atol=1e-13, rtol=0)
    # the product composes rotations: R(a b) z = R(a) (R(b) z), checked through the image of +z
    a, b = q[:, 0], q[:, 1]
    bz = axis_z(b)
    x, y, z = bz
    w0, w1, w2, w3 = a
    rot = torch.stack([(1 - 2 * (w2 * w2 + w3 * w3)) * x + 2 * (w1 * w2 - w0 * w3) * y + 2 * (w1 * w3 + w0 * w2) * z,
                       2 * (w1 * w2 + w0 * w3) * x + (1 - 2 * (w1 * w1 + w3 * w3)) * y + 2 * (w2 * w3 - w0 * w1) * z,
                       2 * (w1 * w3 - w0 * w2) * x + 2 * (w2 * w3 + w0 * w1) * y + (1 - 2 * (w1 * w1 + w2 * w2)) * z])
    torch.testing.assert_close(axis_z(qmul(a, b)), rot)
    W = torch.nn.functional.normalize(torch.randn(3, 200, generator=gen, dtype=torch.float64), dim=0)
    W[:, :3] = torch.tensor([[0, 0, 1e-9], [0, 0, 0], [-1.0, 1.0, -1.0]], dtype=torch.float64)
    torch.testing.assert_close(axis_z(frame_of(W)), W, atol=1e-14, rtol=0)


def test_tail_must_be_a_whole_number():
    for bad in (-1, 2.5, True):
        with pytest.raises(InputError, match="tail"):
            simulate_walks(2.0, 0.0, 1.0, 10, tail=bad)


def test_float32_block_mode_keeps_directions_unit():
    """Products of up to 4,096 float32 rotations drift off unit length; the directions read from them are
    normalised (float32 is the datasets' default dtype; the drift reached 4e-4 at sigma_r 64, g -0.95)."""
    w = simulate_walks(64.0, -0.95, 0.9999, 300, generator=make_generator(21), tail=300)
    for key in ("exit_dir", "scatter_dir"):
        assert float((w[key].double().norm(dim=-1) - 1).abs().max()) < 5e-6, key


def test_half_angles_are_those_of_the_hg_inverse_cdf():
    """The block mode's half angles come from hg_sample_cos's own formula: cos theta = c^2 - s^2 and
    sin theta = 2 c s for the same uniforms, for g of either sign and near +-1."""
    from sciflow.domains.photons.phase import hg_sample_cos, hg_sample_half_angle
    xi = torch.rand(4000, generator=make_generator(3), dtype=torch.float64)
    for g in (-0.999, -0.5, 0.0, 0.3, 0.95):
        mu, sin = hg_sample_cos(torch.tensor(g, dtype=torch.float64), xi)
        c, s = hg_sample_half_angle(g, xi)
        torch.testing.assert_close(c * c - s * s, mu, atol=1e-12, rtol=0)
        torch.testing.assert_close(2 * c * s, sin, atol=1e-7, rtol=0)
