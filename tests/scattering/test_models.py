"""CVAE mathematics, the ScatteringCVAEs method (generate, save/load, bad input) and a short training run."""
import math
from pathlib import Path

import pytest
import torch

from sciflow.core.errors import InputError
from sciflow.core.generator import Generator
from sciflow.core.random import make_generator
from sciflow.core.training import TrainConfig
from sciflow.domains.photons import sample_conditions, simulate_walks
from sciflow.methods.scattering import ScatteringCVAEs
from sciflow.methods.scattering.training import fit_models
from sciflow.nn.cvae import CVAE, gaussian_nll, kl_standard_normal

SHIPPED = Path(__file__).resolve().parents[2] / "models" / "scattering" / "model.pt"


def test_cvae_shapes_and_kl():
    torch.manual_seed(0)
    net = CVAE(3, 5, 2).double()
    x, c = torch.randn(7, 3, dtype=torch.float64), torch.randn(7, 5, dtype=torch.float64)
    mq, lq = net.encode(x, c)
    assert mq.shape == lq.shape == (7, 2)
    mean, lv = net.decode(mq, c)
    assert mean.shape == lv.shape == (7, 3)
    assert net.sample(c, generator=make_generator(0)).shape == (7, 3)
    rec, kl = net.elbo_terms(x, c, generator=make_generator(1))
    assert rec.shape == kl.shape == (7,) and bool((kl >= 0).all())
    zero = torch.zeros(4, 2, dtype=torch.float64)
    assert float(kl_standard_normal(zero, zero).abs().max()) == 0
    # closed-form KL against torch.distributions
    m, l = torch.randn(4, 2, dtype=torch.float64), torch.randn(4, 2, dtype=torch.float64)
    q = torch.distributions.Normal(m, torch.exp(0.5 * l))
    p = torch.distributions.Normal(torch.zeros_like(m), torch.ones_like(m))
    torch.testing.assert_close(kl_standard_normal(m, l), torch.distributions.kl_divergence(q, p).sum(-1))
    torch.testing.assert_close(gaussian_nll(x[:4], m.repeat(1, 2)[:, :3], l.repeat(1, 2)[:, :3]),
                               -torch.distributions.Normal(m.repeat(1, 2)[:, :3],
                                                           torch.exp(0.5 * l.repeat(1, 2)[:, :3])).log_prob(x[:4]).sum(-1))



def test_free_bits_loss_is_the_elbo_above_the_floor_and_the_floor_below_it():
    torch.manual_seed(0)
    net = CVAE(3, 5, 2).double()
    x, c = torch.randn(64, 3, dtype=torch.float64), torch.randn(64, 5, dtype=torch.float64)
    plain = net.loss(x, c, generator=make_generator(3))
    # a floor below every dimension's KL leaves the ELBO unchanged (same reparameterisation draw)
    torch.testing.assert_close(net.loss(x, c, generator=make_generator(3), free_bits=1e-12), plain)
    # a floor above every dimension's KL replaces the KL term by latent_dim * floor
    rec, kl = net.elbo_terms(x, c, generator=make_generator(3))
    assert float(kl.mean().detach()) < 2 * 50.0
    torch.testing.assert_close(net.loss(x, c, generator=make_generator(3), free_bits=50.0), rec.mean() + 2 * 50.0)


def test_decoder_size_limits_are_enforced():
    with pytest.raises(InputError, match="decoder_hidden"):
        ScatteringCVAEs(decoder_hidden=(32, 16))
    with pytest.raises(InputError, match="decoder_hidden"):
        ScatteringCVAEs(decoder_hidden=(16, 16, 16, 16))
    with pytest.raises(InputError, match="latent_dims"):
        ScatteringCVAEs(latent_dims=(1, 3, 3))


def test_generate_is_a_physical_trajectory_and_round_trips(tmp_path):
    m = ScatteringCVAEs()
    assert isinstance(m, Generator)
    tr = m.generate({"sigma_r": 8.0, "g": 0.3, "albedo": 0.95}, 200, generator=make_generator(0))
    assert tr.states.shape == (2, 200, 6)
    torch.testing.assert_close(tr.states[1, :, :3].norm(dim=-1), torch.ones(200))
    torch.testing.assert_close(tr.states[1, :, 3:].norm(dim=-1), torch.ones(200))
    assert float((tr.states[1, :, :3] * tr.states[1, :, 3:]).sum(-1).min()) >= 0
    assert float(tr.extras["scatter_pos"].norm(dim=-1).max()) <= 1
    n = tr.extras["n_events"].double()
    torch.testing.assert_close(tr.extras["survival"], 0.95 ** n)
    torch.testing.assert_close(tr.extras["nee_weight"], 0.95 * (1 - 0.95 ** n) / 0.05)
    m.save(tmp_path / "m")
    m2 = ScatteringCVAEs.load(tmp_path / "m")
    tr2 = m2.generate(torch.tensor([8.0, 0.3, 0.95]), 200, generator=make_generator(0))
    torch.testing.assert_close(tr2.states, tr.states)
    tr3 = m2.generate(torch.tensor([[8.0, 0.3, 0.95]]), 200, generator=make_generator(0))     # one row: broadcast
    torch.testing.assert_close(tr3.states, tr.states)


@pytest.mark.parametrize("cond, field", [({"sigma_r": -2.0, "g": 0.0, "albedo": 0.9}, "sigma_r"),
                                         ({"sigma_r": 2.0, "g": 1.0, "albedo": 0.9}, "g"),
                                         ({"sigma_r": 2.0, "g": 0.0, "albedo": 1.5}, "albedo"),
                                         ({"sigma_r": 2.0, "g": 0.0}, "albedo")])
def test_generate_rejects_bad_conditions(cond, field):
    with pytest.raises(InputError, match=field):
        ScatteringCVAEs().generate(cond, 4)


def _log_length_w1(model, walks, groups=4):
    """W1 between the CVAE's and the Monte Carlo walks' log N, within each sigma_r quartile of the walks,
    averaged (a model that ignored its condition would miss within the groups even if it had the pooled law)."""
    sig, g = walks["sigma_r"], walks["g"]
    n_cv = model.sample(sig, g, torch.full_like(sig, 0.7, dtype=torch.float64), generator=make_generator(3))["n_events"]
    order = sig.argsort()
    out = []
    for idx in order.chunk(groups):
        a = torch.log(n_cv[idx].double()).sort().values
        b = torch.log(walks["n_events"][idx].double()).sort().values
        out.append(float((a - b).abs().mean()))            # W1 of two equal-size samples: sorted differences
    return sum(out) / groups


def test_short_training_lowers_loss_and_fits_the_walk_length_law():
    """150 steps of lenGen on 1,000 walks: the training loss falls by more than 15 % (0.901 -> 0.655 here; 22-27 %
    over six seed pairs) and the learned law of log N moves to within about MC noise of the walks' own
    (grouped W1 0.188 -> 0.044 here; after/before 0.23-0.56 over six seed pairs; 0.64-0.82 when lenGen is
    trained on misaligned conditions). The survival error E[0.7^N] is no criterion at this size: the untrained
    one is often already within MC noise, and 150 steps made it worse on three of six seed pairs."""
    torch.manual_seed(0)
    gen = make_generator(11)
    cond = sample_conditions(1000, generator=gen, sigma_max=6.0)
    walks = simulate_walks(cond["sigma_r"], cond["g"], cond["albedo"], generator=gen)
    model = ScatteringCVAEs()
    w0 = _log_length_w1(model, walks)
    cfg = TrainConfig(steps=150, lr=5e-3, ema_decay=None, progress=False, warmup_steps=0)
    summary = fit_models(model, walks, cfg, batch_size=256, only=["len"])
    hist = summary["len"]["history"]
    assert hist[-1] < 0.85 * hist[0]
    w1 = _log_length_w1(model, walks)
    assert w1 < 0.6 * w0, (w0, w1)


@pytest.mark.skipif(not SHIPPED.is_file(), reason="shipped weights not present")
def test_shipped_model_matches_monte_carlo_at_moderate_density():
    model = ScatteringCVAEs.load(SHIPPED)
    mc = simulate_walks(4.0, 0.0, 1.0, 3000, generator=make_generator(21))
    cv = model.generate({"sigma_r": 4.0, "g": 0.0, "albedo": 0.99}, 20000, generator=make_generator(22))
    n_mc, n_cv = mc["n_events"].double(), cv.extras["n_events"].double()
    assert abs(float(n_cv.mean()) / float(n_mc.mean()) - 1) < 0.1
    # exit points of a centred walk cover the sphere: mean cosine to +z is positive but well below 1
    z_mc, z_cv = float(mc["exit_pos"][:, 2].mean()), float(cv.states[1, :, 2].mean())
    assert abs(z_mc - z_cv) < 0.08
    # survival E[0.99^N] (the MC walks have no absorption, so 0.99^N reweights them): the CVAE's mean agrees
    # with MC within 4 combined standard errors (measured 0.8887 vs 0.8892, s.e. of the difference 0.0013)
    s_cv, s_mc = cv.extras["survival"], 0.99 ** n_mc
    torch.testing.assert_close(s_cv, 0.99 ** n_cv)
    se = math.sqrt(float(s_cv.var()) / s_cv.numel() + float(s_mc.var()) / s_mc.numel())
    assert abs(float(s_cv.mean()) - float(s_mc.mean())) < 4 * se, (float(s_cv.mean()), float(s_mc.mean()), se)


def test_cli_evaluate_writes_metrics(tmp_path):
    import json

    from sciflow.cli import main
    ScatteringCVAEs().save(tmp_path / "m")
    out = tmp_path / "metrics.json"
    assert main(["scattering", "evaluate", "--model", str(tmp_path / "m"), "--out", str(out), "--walks", "64",
                 "--sigma-r", "1", "--g", "0"]) == 0
    d = json.loads(out.read_text())
    row = d["rows"][0]
    assert d["summary"]["conditions"] == 1 and row["w1_exit_pos_floor"] > 0
    assert 0 < row["survival"][0]["mc"] <= 1


@pytest.mark.skipif(not SHIPPED.is_file(), reason="shipped weights not present")
def test_shipped_scatgen_places_events_at_the_monte_carlo_radius():
    """The first release put the representative event at about half the true radius (0.21 vs 0.43 here)."""
    model = ScatteringCVAEs.load(SHIPPED)
    mc = simulate_walks(4.0, 0.5, 0.999, 4000, generator=make_generator(23))
    n = 20000
    cv = model.sample(torch.full((n,), 4.0), torch.full((n,), 0.5), torch.full((n,), 0.999, dtype=torch.float64),
                      generator=make_generator(24))
    r_mc, r_cv = mc["scatter_pos"].norm(dim=-1), cv["scatter_pos"].norm(dim=-1)
    assert abs(float(r_cv.mean()) - float(r_mc.mean())) < 0.03
    # the centre (event 1) is kept as often as in Monte Carlo
    f_mc, f_cv = float((r_mc == 0).double().mean()), float((r_cv == 0).double().mean())
    assert abs(f_mc - f_cv) < 4 * math.sqrt(f_mc * (1 - f_mc) / 4000) + 0.005


def test_conditional_prior_starts_standard_and_fits_the_aggregated_posterior():
    from sciflow.nn.cvae import kl_gaussians
    torch.manual_seed(0)
    cv = CVAE(1, 3, 2, conditional_prior=True)
    c = torch.rand(4000, 3) * 2 - 1
    plain = CVAE(1, 3, 2)
    plain.load_state_dict(cv.state_dict(), strict=False)
    a = cv.sample(c[:8], generator=torch.Generator().manual_seed(2))
    b = plain.sample(c[:8], generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, b)                                     # an unfitted prior is N(0, I)
    # an encoder whose posterior is N((0.5 c0, -0.3), 0.25 I) whatever x: the ELBO-optimal prior is that Gaussian
    last = [m for m in cv.encoder.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.copy_(torch.tensor([0.0, -0.3, math.log(0.25), math.log(0.25)]))
    enc_before = [p.clone() for p in cv.encoder.parameters()]
    shift = torch.stack([0.5 * c[:, 0], torch.zeros(4000)], dim=-1)
    orig_encode = cv.encode
    cv.encode = lambda x, cc: (orig_encode(x, cc)[0] + torch.stack([0.5 * cc[:, 0], torch.zeros(len(cc))], -1),
                               orig_encode(x, cc)[1])
    hist = cv.fit_prior(torch.randn(4000, 1), c, steps=1500, batch_size=1024, lr=1e-2,
                        generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        mp, lp = cv.prior_params(c)
    assert hist[-1] < 0.01 < hist[0]                              # KL to the posterior goes to ~0
    assert torch.allclose(mp, shift + torch.tensor([0.0, -0.3]), atol=0.05)
    assert torch.allclose(lp, torch.full_like(lp, math.log(0.25)), atol=0.1)
    assert all(torch.equal(p, q) for p, q in zip(cv.encoder.parameters(), enc_before))  # encoder untouched
    assert float(kl_gaussians(mp, lp, mp, lp).abs().max()) < 1e-6
    with pytest.raises(ValueError, match="conditional prior"):
        CVAE(1, 3, 2).fit_prior(torch.randn(4, 1), c[:4])


def test_scattering_model_with_a_fitted_prior_round_trips(tmp_path):
    from sciflow.methods.scattering.training import fit_priors
    g = make_generator(5)
    cond = sample_conditions(400, generator=g, sigma_max=8.0)
    walks = simulate_walks(cond["sigma_r"], cond["g"], cond["albedo"], generator=g)
    base = ScatteringCVAEs()
    fitted = fit_priors(base, walks, ["len"], steps=20, batch_size=128)
    assert fitted.config()["conditional_prior"] == ["len"] and "conditional_prior" not in base.config()
    assert fitted.model["len"].prior is not None and fitted.model["path"].prior is None
    for name in ("len", "path", "scat"):                           # encoders and decoders copied unchanged
        for k, v in base.model[name].state_dict().items():
            assert torch.equal(fitted.model[name].state_dict()[k], v)
    fitted.save(tmp_path / "m")
    back = ScatteringCVAEs.load(tmp_path / "m")
    c = torch.tensor([[4.0, 0.5, 0.99]]).expand(64, 3)
    a = fitted.generate(c, 64, generator=make_generator(1))
    b = back.generate(c, 64, generator=make_generator(1))
    assert torch.equal(a.states, b.states)
    torch.manual_seed(123)                                         # the global RNG state does not matter
    again = fit_priors(base, walks, ["len"], steps=20, batch_size=128)
    for k, v in fitted.model["len"].state_dict().items():          # same seed, same data: the same prior
        assert torch.equal(again.model["len"].state_dict()[k], v)
    with pytest.raises(InputError, match="names"):
        fit_priors(base, walks, ["nope"])


def test_full_batch_prior_fit_is_exact_and_does_not_draw_random_numbers():
    torch.manual_seed(0)
    cv = CVAE(1, 3, 2, conditional_prior=True)
    x, c = torch.randn(300, 1), torch.rand(300, 3)
    gen = torch.Generator().manual_seed(4)
    state = gen.get_state()
    hist = cv.fit_prior(x, c, steps=50, batch_size=300, lr=1e-2, generator=gen)
    assert torch.equal(gen.get_state(), state)                      # every row each step: no resampling
    with torch.no_grad():
        from sciflow.nn.cvae import kl_gaussians
        assert hist[-1] < hist[0]                                     # exact gradient steps lower the mean KL
        m, lv = cv.encode(x, c)
        assert abs(float(kl_gaussians(m, lv, *cv.prior_params(c)).mean()) - hist[-1]) < 0.05


def test_retraining_refuses_a_checkpoint_of_other_settings_and_only_needs_a_model(tmp_path):
    from sciflow.data.scattering import generate_walk_dataset
    from sciflow.methods.scattering.training import train_from_folder
    generate_walk_dataset(tmp_path / "w", 200, chunk=200, seed=3, sigma_max=4.0, show_progress=False)
    with pytest.raises(InputError, match="only: .* holds no model.pt"):
        train_from_folder(tmp_path / "w", tmp_path / "new", steps=2, batch_size=32, only=["scat"])
    ck = tmp_path / "ck"
    train_from_folder(tmp_path / "w", tmp_path / "m", steps=2, batch_size=32, checkpoint_dir=ck)
    with pytest.raises(InputError, match=r"checkpoint: .*scat\.pt was made with other settings \(.*free_bits"):
        train_from_folder(tmp_path / "w", tmp_path / "m", steps=2, batch_size=32, checkpoint_dir=ck, only=["scat"],
                          free_bits=0.5)
    train_from_folder(tmp_path / "w", tmp_path / "m", steps=2, batch_size=32, checkpoint_dir=ck, only=["scat"])


def test_sample_checks_shapes_and_the_trained_range():
    model = ScatteringCVAEs()
    ok = torch.full((3,), 4.0)
    with pytest.raises(InputError, match="sigma_r, g, albedo"):
        model.sample(ok, torch.zeros(2), torch.ones(3))
    with pytest.raises(InputError, match="sigma_r, g, albedo"):
        model.sample(4.0, torch.zeros(3), torch.ones(3))
    with pytest.raises(InputError, match="trained on sigma_r <= 300"):
        model.sample(torch.tensor([1e6]), torch.zeros(1), torch.ones(1))
    with pytest.raises(InputError, match="trained on sigma_r <= 300"):
        model.generate({"sigma_r": 1e6, "g": 0.0, "albedo": 1.0}, 2)
    assert model.sample(ok, torch.zeros(3), torch.ones(3))["n_events"].shape == (3,)


def test_mc_sets_are_the_same_with_and_without_the_cache(tmp_path):
    """The walks of a job depend on its batch and the batch seed; a cache hit must return exactly those."""
    from sciflow.methods.scattering.metrics import simulate_sets
    job = (1.0, 0.0, 32, 7)

    def exits(seed, cache=None, jobs=(job,)):
        return simulate_sets(list(jobs), seed=seed, cache=cache, progress=False)[(1.0, 0.0)][0]["exit_pos"]

    plain0, plain1 = exits(0), exits(1)
    assert not torch.equal(plain0, plain1)
    cache = tmp_path / "mc"
    cache.mkdir()
    assert torch.equal(exits(0, cache), plain0)
    assert torch.equal(exits(1, cache), plain1)             # was the seed-0 walks read from the cache
    assert torch.equal(exits(0, cache), plain0)             # a real hit
    both = (job, (4.0, 0.5, 32, 9))
    assert torch.equal(exits(0, cache, both), exits(0, None, both))
