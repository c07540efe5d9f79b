"""Shooting initialisation: the snapshot-pair groups it shoots over, and recovery of known parameters from
snapshots that a known ODE flow produced (where the mean-shooting loss is zero at the truth)."""
import torch

from sciflow.domains.cells import LotkaVolterra, Repressilator, uniform_box
from sciflow.domains.cells.snapshots import Snapshots
from sciflow.methods.mmsb.init import flow, shooting_groups, shooting_init, shooting_loss


def _snapshots(drift, x0, times):
    with torch.no_grad():
        xs, x, t = [x0], x0, times[0]
        for t_next in times[1:]:
            x = flow(drift, x, t_next - t, 0.01)
            xs.append(x)
            t = t_next
    return Snapshots.from_arrays(xs, torch.tensor(times, dtype=torch.float64))


def test_groups_cover_every_pair_within_the_span_grouped_by_duration():
    g = torch.Generator().manual_seed(0)
    samples = [torch.randn(n, 2, generator=g, dtype=torch.float64) for n in (5, 6, 7, 8)]
    snaps = Snapshots.from_arrays(samples, torch.tensor([0.0, 1.0, 2.0, 4.0], dtype=torch.float64))
    one = {dur: (x.shape[0], t.shape[0]) for x, _, t, dur in shooting_groups(snaps, 1, 100)}
    assert one == {1.0: (5 + 6, 2), 2.0: (7, 1)}            # (0,1), (1,2) | (2,3)
    groups = shooting_groups(snaps, 3, 100)
    pairs = {dur: t.shape[0] for _, _, t, dur in groups}
    assert pairs == {1.0: 2, 2.0: 2, 3.0: 1, 4.0: 1}          # all 6 pairs: (0,2), (2,3) | (1,3) | (0,3)
    x, which, targets, _ = next(gr for gr in groups if gr[3] == 4.0)
    assert torch.equal(x, samples[0]) and bool((which == 0).all())
    assert torch.allclose(targets[0], samples[3].mean(0))
    sub = shooting_groups(snaps, 1, 3, generator=g)             # subsampled to 3 rows per start snapshot
    assert sum(int(x.shape[0]) for x, _, _, _ in sub) == 9


def test_shooting_recovers_lotka_volterra_rates_and_polishing_never_raises_the_all_pairs_loss():
    g = torch.Generator().manual_seed(1)
    truth = LotkaVolterra(alpha=1.0, beta=0.4, gamma=0.4, delta=0.1).double()
    snaps = _snapshots(truth, uniform_box([4.0, 3.0], [6.0, 5.0], 20, generator=g), [0.0, 2.0, 4.0, 6.0, 8.0])
    model = LotkaVolterra(alpha=0.5, beta=1.0, gamma=1.0, delta=0.5).double()
    info = shooting_init(model, snaps, n_starts=4, generator=g)
    for name, value in model.params().items():
        assert abs(value - truth.params()[name]) < 0.02 * truth.params()[name], (name, value)
    allx, _ = snaps.stacked()
    scale, long = allx.std(0), shooting_groups(snaps, 4, 1000)
    unpolished = LotkaVolterra(alpha=0.5, beta=1.0, gamma=1.0, delta=0.5).double()
    shooting_init(unpolished, snaps, n_starts=4, polish=False, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        polished_loss = float(shooting_loss(model, long, scale, 0.1))
        assert polished_loss <= float(shooting_loss(unpolished, long, scale, 0.1)) + 1e-8   # both ~0 at the truth
    assert set(info) == {"loss", "starts", "polished"}


def test_polishing_pins_the_period_of_an_oscillator():
    """Repressilator snapshots from its ODE flow: the all-pairs fit lands on the true rates."""
    g = torch.Generator().manual_seed(2)
    truth = Repressilator(beta=10.0, n=3.0, k=1.0, gamma=1.0).double()
    x0 = uniform_box([1.0, 1.0, 2.0], [2.0, 1.5, 3.0], 30, generator=g)
    snaps = _snapshots(truth, x0, [0.0, 2.0, 4.0, 6.0, 8.0])
    model = Repressilator(beta=5.0, n=2.0, k=2.0, gamma=0.5).double()
    info = shooting_init(model, snaps, n_starts=4, generator=g)
    for name, value in model.params().items():
        assert abs(value - truth.params()[name]) < 0.03 * truth.params()[name], (name, value, info)
