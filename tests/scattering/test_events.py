"""scatGen's event coordinates (depth and directions relative to the exit) and the exactly drawn first event."""
import math

import pytest
import torch

from sciflow.core.errors import InputError
from sciflow.core.random import make_generator
from sciflow.domains.photons import simulate_walks
from sciflow.domains.photons.encoding import PhotonAdapter
from sciflow.domains.photons.events import event_decode, event_encode, normal_to_radius, radius_to_normal
from sciflow.domains.photons.frames import plane_to_sphere, rotate_z, sphere_to_plane
from sciflow.domains.photons.walks import nee_weight
from sciflow.methods.scattering import ScatteringCVAEs


def _unit(x):
    return x / x.norm(dim=-1, keepdim=True)


def test_sphere_to_plane_round_trip_and_uniform_law_is_standard_normal():
    gen = make_generator(0)
    u = _unit(torch.randn(200_000, 3, generator=gen, dtype=torch.float64))
    v = sphere_to_plane(u[:, :2], u[:, 2])
    t, c = plane_to_sphere(v)
    torch.testing.assert_close(t, u[:, :2])
    torch.testing.assert_close(c, u[:, 2])
    # uniform directions -> N(0, I): mean 0, covariance I (4 standard errors), and |v|^2 ~ chi2(2), P(|v|^2 > 2) = 1/e
    se = 1 / math.sqrt(len(v))
    assert float(v.mean(0).abs().max()) < 4 * se
    cov = torch.cov(v.T)
    assert float((cov - torch.eye(2, dtype=torch.float64)).abs().max()) < 4 * math.sqrt(2) * se
    p = float(((v * v).sum(-1) > 2).double().mean())
    assert abs(p - math.exp(-1)) < 4 * math.sqrt(p * (1 - p)) * se
    # near the pole the map is t / sqrt(2) to first order, without cancellation
    t_small = torch.tensor([[1e-9, -2e-9]], dtype=torch.float64)
    torch.testing.assert_close(sphere_to_plane(t_small, torch.sqrt(1 - (t_small ** 2).sum(-1))),
                               t_small / math.sqrt(2), rtol=1e-6, atol=0)


def test_radius_map_makes_a_uniform_ball_standard_normal_and_resolves_small_depths():
    gen = make_generator(7)
    x = torch.randn(100_000, 3, generator=gen, dtype=torch.float64)
    r = _unit(x).norm(dim=-1) * torch.rand(100_000, generator=gen, dtype=torch.float64) ** (1 / 3)  # uniform ball
    y = radius_to_normal(r)
    se = 1 / math.sqrt(len(y))
    assert abs(float(y.mean())) < 4 * se and abs(float(y.var()) - 1) < 4 * math.sqrt(2) * se
    depth = torch.tensor([2e-7, 1e-6, 1e-3, 0.1, 0.5, 0.999], dtype=torch.float64)   # R_EPS = 1e-7 clamps below
    for radial in ("probit", "logit"):
        torch.testing.assert_close(1 - normal_to_radius(radius_to_normal(1 - depth, radial), radial), depth,
                                   rtol=1e-6, atol=0)
    # Gaussian tail of y at the surface: 1 - r ~ phi(y) / (3 y) (Mills ratio), i.e. a finite density at r = 1
    y = torch.tensor([4.0, 5.0], dtype=torch.float64)
    mills = torch.exp(-y * y / 2) / math.sqrt(2 * math.pi) / (3 * y) * (1 - 1 / y ** 2)
    torch.testing.assert_close(1 - normal_to_radius(y), mills, rtol=0.03, atol=0)


@pytest.mark.parametrize("radial", ["probit", "logit"])
def test_event_coordinates_round_trip_in_float64(radial):
    """encode -> decode is the identity for events anywhere in the ball (depths down to 1e-6), any exit."""
    gen = make_generator(1)
    b = 5000
    t = torch.rand(b, generator=gen, dtype=torch.float64) * math.pi
    exit_pos = torch.stack([torch.sin(t), torch.zeros_like(t), torch.cos(t)], dim=-1)
    depth = 10 ** (-6 * torch.rand(b, generator=gen, dtype=torch.float64))      # 1 - r in [1e-6, 1]
    r = (1 - depth).clamp_min(1e-3)
    x = _unit(torch.randn(b, 3, generator=gen, dtype=torch.float64)) * r.unsqueeze(-1)
    w = _unit(torch.randn(b, 3, generator=gen, dtype=torch.float64))
    y = event_encode(exit_pos, x, w, radial)
    assert y.shape == (b, 5) and bool(torch.isfinite(y).all())
    torch.testing.assert_close(normal_to_radius(y[:, 0], radial), r)
    x2, w2 = event_decode(exit_pos, y, radial)
    torch.testing.assert_close(x2, x, atol=1e-12, rtol=1e-10)
    torch.testing.assert_close(w2, w, atol=1e-12, rtol=1e-10)
    # and decode -> encode is the identity on R^5 (away from the antipodes, |v|^2 > ~30, where cos -> -1 rounds)
    y = torch.randn(b, 5, generator=gen, dtype=torch.float64) * 1.5
    # (and inside |y_0| < 4.5, i.e. depths above R_EPS = 1e-7, where the radius is clamped)
    y = y[((y[:, 1:3] ** 2).sum(-1) < 20) & ((y[:, 3:5] ** 2).sum(-1) < 20) & (y[:, 0].abs() < 4.5)]
    exit_pos = exit_pos[: len(y)]
    torch.testing.assert_close(event_encode(exit_pos, *event_decode(exit_pos, y, radial), radial), y, atol=1e-8,
                               rtol=1e-8)


def test_event_coordinates_are_relative_to_the_exit():
    """An event just below the exit point, moving straight out, has all four direction coordinates 0; rotating
    the exit and the event together about +z leaves the adapter's coordinates unchanged (canonical frame)."""
    gen = make_generator(2)
    ex = _unit(torch.randn(200, 3, generator=gen, dtype=torch.float64))
    y = PhotonAdapter("depth").scat_encode(ex, 0.9 * ex, ex)
    torch.testing.assert_close(y[:, 1:], torch.zeros(200, 4, dtype=torch.float64), atol=1e-7, rtol=0)
    torch.testing.assert_close(normal_to_radius(y[:, 0]), torch.full((200,), 0.9, dtype=torch.float64))
    x = _unit(torch.randn(200, 3, generator=gen, dtype=torch.float64)) * 0.5
    w = _unit(torch.randn(200, 3, generator=gen, dtype=torch.float64))
    phi = torch.rand(200, generator=gen, dtype=torch.float64) * 2 * math.pi
    c, s = torch.cos(phi), torch.sin(phi)
    a = PhotonAdapter("depth")
    torch.testing.assert_close(a.scat_encode(rotate_z(ex, c, s), rotate_z(x, c, s), rotate_z(w, c, s)),
                               a.scat_encode(ex, x, w))


def test_first_event_probability_matches_monte_carlo():
    """The reservoir keeps event 1 with probability albedo / sum_k albedo^k given N: the learned sampler draws
    it exactly with that probability, and Monte Carlo walks agree."""
    alb = 0.9
    mc = simulate_walks(2.0, 0.3, alb, 20000, generator=make_generator(3), dtype=torch.float64)
    p1 = alb / nee_weight(torch.tensor(alb, dtype=torch.float64), mc["n_events"])
    frac = float((mc["scatter_index"] == 1).double().mean())
    se = math.sqrt(frac * (1 - frac) / 20000)
    assert abs(frac - float(p1.mean())) < 4 * se
    model = ScatteringCVAEs()
    rec = model.sample(torch.full((20000,), 2.0), torch.full((20000,), 0.3),
                       torch.full((20000,), alb, dtype=torch.float64), generator=make_generator(4))
    centre = rec["scatter_pos"].norm(dim=-1) == 0
    expect = float((alb / rec["nee_weight"]).mean())
    assert abs(float(centre.double().mean()) - expect) < 4 * math.sqrt(expect * (1 - expect) / 20000)
    torch.testing.assert_close(rec["scatter_dir"][centre], torch.tensor([[0.0, 0.0, 1.0]]).expand(int(centre.sum()), 3))
    assert float(rec["scatter_pos"][~centre].norm(dim=-1).min()) > 0


def test_scat_coords_choice_and_old_files(tmp_path):
    with pytest.raises(InputError, match="scat_coords"):
        ScatteringCVAEs(scat_coords="cartesian")
    assert ScatteringCVAEs().config()["scat_coords"] == "depth"
    # a file written before scat_coords existed holds "ball" scatGen weights and still loads
    old = ScatteringCVAEs(scat_coords="ball")
    path = old.save(tmp_path / "old")
    ck = torch.load(path, weights_only=True)
    del ck["config"]["scat_coords"]
    torch.save(ck, path)
    back = ScatteringCVAEs.load(tmp_path / "old")
    assert back.config()["scat_coords"] == "ball" and back.model["scat"].x_dim == 6
    cond = {"sigma_r": 8.0, "g": 0.3, "albedo": 0.95}
    torch.testing.assert_close(back.generate(cond, 50, generator=make_generator(5)).extras["scatter_pos"],
                               old.generate(cond, 50, generator=make_generator(5)).extras["scatter_pos"])


def test_training_data_for_scatgen_excludes_the_first_event():
    w = simulate_walks(torch.tensor([1.0, 5.0] * 200), torch.tensor([0.0, 0.5] * 200),
                       torch.tensor([0.9, 0.99] * 200), generator=make_generator(6), dtype=torch.float64)
    enc = PhotonAdapter("depth").encode(w)
    torch.testing.assert_close(enc["scat_keep"], w["scatter_index"] >= 2)
    assert bool(torch.isfinite(enc["scat"][enc["scat_keep"]]).all())
    w.pop("scatter_index")
    with pytest.raises(InputError, match="scatter_index"):
        PhotonAdapter("depth").encode(w)


def test_several_events_per_walk_share_the_walk_and_the_event_law():
    """events=k draws k representative events per walk given the same N and exit: the walk fields equal those
    of a k = 1 draw with the same generator state up to the event draws, and the events' law does not depend on k."""
    model = ScatteringCVAEs()
    n = 4000
    args = (torch.full((n,), 6.0), torch.full((n,), 0.2), torch.full((n,), 0.99, dtype=torch.float64))
    one = model.sample(*args, generator=make_generator(8))
    many = model.sample(*args, generator=make_generator(8), events=4)
    assert many["scatter_pos"].shape == many["scatter_dir"].shape == (n, 4, 3)
    torch.testing.assert_close(many["n_events"], one["n_events"])
    torch.testing.assert_close(many["nee_weight"], one["nee_weight"])
    assert float(many["scatter_pos"].norm(dim=-1).max()) <= 1
    torch.testing.assert_close(many["scatter_dir"].norm(dim=-1), torch.ones(n, 4))
    r1, r4 = one["scatter_pos"].norm(dim=-1), many["scatter_pos"].norm(dim=-1)
    se = float(r1.std()) * math.sqrt(1 / n + 1 / (4 * n))
    assert abs(float(r1.mean()) - float(r4.mean())) < 4 * se
    with pytest.raises(InputError, match="events"):
        model.sample(*args, events=0)


def test_single_scattering_walks_are_drawn_exactly():
    """With exact_single, P(N = 1) = exp(-sigma_r) and such a walk leaves along its one HG direction about +z
    (exit point = exit direction, mean cosine g), whatever the (here untrained) CVAEs say."""
    torch.manual_seed(0)
    model = ScatteringCVAEs()
    assert model.config()["exact_single"]
    n, sigma, g = 40000, 0.7, 0.6
    tr = model.generate({"sigma_r": sigma, "g": g, "albedo": 1.0}, n, generator=make_generator(31))
    ne = tr.extras["n_events"]
    p1 = float((ne == 1).double().mean())
    assert abs(p1 - math.exp(-sigma)) < 4 * math.sqrt(p1 * (1 - p1) / n)
    one = ne == 1
    pos, d = tr.states[1, one, :3], tr.states[1, one, 3:]
    torch.testing.assert_close(pos, d)
    torch.testing.assert_close(pos.norm(dim=-1), torch.ones(int(one.sum())))
    mu = d[:, 2].double()
    assert abs(float(mu.mean()) - g) < 4 * float(mu.std()) / math.sqrt(mu.numel())
    # and every N = 1 walk keeps its only event, the centre
    assert float(tr.extras["scatter_pos"][one].abs().max()) == 0.0
    assert int(ne.min()) >= 1


def test_exact_single_training_excludes_single_walks_and_old_files_keep_the_cvae(tmp_path):
    w = simulate_walks(torch.tensor([0.5, 3.0] * 200), torch.tensor([0.0, 0.5] * 200),
                       torch.tensor([0.9, 0.99] * 200), generator=make_generator(8))
    enc = PhotonAdapter("depth").encode(w)
    torch.testing.assert_close(enc["multi"], w["n_events"] >= 2)
    old = ScatteringCVAEs(exact_single=False)
    path = old.save(tmp_path / "old")
    ck = torch.load(path, weights_only=True)
    del ck["config"]["exact_single"]
    torch.save(ck, path)
    assert ScatteringCVAEs.load(tmp_path / "old").config()["exact_single"] is False


def test_walk_dataset_concatenates_several_folders_in_order(tmp_path):
    from sciflow.data.scattering import generate_walk_dataset, load_walk_dataset
    generate_walk_dataset(tmp_path / "a", 30, chunk=20, seed=1, sigma_max=3.0, show_progress=False)
    generate_walk_dataset(tmp_path / "b", 10, chunk=10, seed=2, sigma_max=3.0, show_progress=False)
    a, b = load_walk_dataset(tmp_path / "a"), load_walk_dataset(tmp_path / "b")
    both = load_walk_dataset([tmp_path / "a", tmp_path / "b"], max_walks=35)
    assert both["n_events"].shape[0] == 35
    torch.testing.assert_close(both["exit_pos"], torch.cat([a["exit_pos"], b["exit_pos"]])[:35])
    with pytest.raises(InputError, match=r"no such file or folder: .*missing"):
        load_walk_dataset([tmp_path / "a", tmp_path / "missing"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no chunk_"):
        load_walk_dataset([tmp_path / "a", tmp_path / "empty"])


def test_walk_dataset_extends_only_what_the_same_settings_made(tmp_path):
    """A larger run extends a smaller one (its partial last chunk made again at full size); other settings in
    the same folder are refused; a smaller re-run loads only its own chunks."""
    from sciflow.data.scattering import generate_walk_dataset, load_walk_dataset
    out = tmp_path / "w"
    generate_walk_dataset(out, 30, chunk=20, seed=1, sigma_max=3.0, show_progress=False)
    m = generate_walk_dataset(out, 40, chunk=20, seed=1, sigma_max=3.0, show_progress=False)
    assert m["n_walks"] == 40 and load_walk_dataset(out)["n_events"].shape[0] == 40
    for kw, key in (({"seed": 7}, "seed"), ({"sigma_max": 300.0}, "sigma_max"), ({"chunk": 10}, "chunk")):
        with pytest.raises(InputError, match=f"other settings \\({key}"):
            generate_walk_dataset(out, 40, **{"chunk": 20, "seed": 1, "sigma_max": 3.0, **kw}, show_progress=False)
    generate_walk_dataset(out, 20, chunk=20, seed=1, sigma_max=3.0, show_progress=False)
    assert load_walk_dataset(out)["n_events"].shape[0] == 20


def test_exact_walk_sampler_and_tracer_refuse_what_they_cannot_do():
    from sciflow.domains.photons.scene import make_scene
    from sciflow.domains.photons.volpath import VolumePathTracer
    from sciflow.domains.photons.walks import MonteCarloWalkSampler, simulate_walks
    one = torch.ones(2, dtype=torch.float64)
    with pytest.raises(InputError, match="events: exact walks give one"):
        MonteCarloWalkSampler().sample(one, 0 * one, 0.9, events=2)
    with pytest.raises(InputError, match="slots: must be >= 1"):
        VolumePathTracer(make_scene("sphere", sigma_r=2.0, width=4, height=4), slots=0)
    with pytest.raises(InputError, match="slots: must be >= 1"):
        simulate_walks(one, 0 * one, 0.9, slots=0)


def test_a_damaged_chunk_is_made_again_on_resume(tmp_path):
    """Resuming a walk dataset read each chunk's size with np.load: a damaged chunk gave a raw error."""
    from sciflow.data.scattering import generate_walk_dataset, load_walks
    generate_walk_dataset(tmp_path / "w", 20, chunk=10, seed=1, sigma_max=3.0, show_progress=False)
    good = load_walks(tmp_path / "w" / "chunk_00000.npz")
    (tmp_path / "w" / "chunk_00000.npz").write_bytes(b"not an npz")
    generate_walk_dataset(tmp_path / "w", 20, chunk=10, seed=1, sigma_max=3.0, show_progress=False)
    again = load_walks(tmp_path / "w" / "chunk_00000.npz")
    assert all(torch.equal(good[k], again[k]) for k in good)          # the same seeded chunk, made again
