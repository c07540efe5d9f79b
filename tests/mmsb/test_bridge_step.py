"""Bridge step: exact couplings of the snapshots, chained paths through the observed points, marginals that
match the snapshots, and a Sinkhorn solver that agrees with POT's."""
import numpy as np
import ot
import torch

from sciflow.core.couplings.entropic import EntropicOT
from sciflow.domains.cells import AdditiveNoise, LinearDrift, Snapshots, simulate_snapshots
from sciflow.methods.mmsb import BridgeStep, w2_distance

A = torch.tensor([[-0.3, 1.0], [-1.0, -0.3]], dtype=torch.float64)   # a damped rotation


def _snaps(sizes=(40, 50, 45), seed=0, box=([1.0, -0.2], [1.4, 0.2]), sigma=0.2) -> Snapshots:
    return simulate_snapshots(LinearDrift(2, A=A), AdditiveNoise(sigma), times=[0.0, 0.5, 1.2], n=list(sizes),
                              box=box, dt=0.02, generator=torch.Generator().manual_seed(seed))


def test_entropic_ot_agrees_with_pot_and_has_exact_marginals():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(30, 2, generator=g, dtype=torch.float64), torch.randn(40, 2, generator=g, dtype=torch.float64)
    m = torch.cdist(x, y) ** 2
    plan = EntropicOT(0.5, max_iter=2000, tol=1e-12).solve(m)
    ref = ot.sinkhorn(ot.unif(30), ot.unif(40), m.numpy(), 0.5, method="sinkhorn_log", numItermax=3000,
                      stopThr=1e-13)
    np.testing.assert_allclose(plan.numpy(), ref, atol=1e-9)
    # capped iterations: still exact marginals after the rounding
    rough = EntropicOT(0.05, max_iter=3).solve(m)
    torch.testing.assert_close(rough.sum(1), torch.full((30,), 1 / 30, dtype=torch.float64), atol=1e-12, rtol=0)
    torch.testing.assert_close(rough.sum(0), torch.full((40,), 1 / 40, dtype=torch.float64), atol=1e-12, rtol=0)


def test_paths_pass_through_observed_points_and_match_every_snapshot():
    snaps = _snaps()
    step = BridgeStep(LinearDrift(2, A=A), AdditiveNoise(0.2), h=0.05)
    plans = step.plans(snaps)
    for k, p in enumerate(plans):   # static Schrödinger bridges: couplings of the two snapshots
        torch.testing.assert_close(p.sum(1), torch.full((snaps.sizes[k],), 1 / snaps.sizes[k], dtype=p.dtype))
        torch.testing.assert_close(p.sum(0), torch.full((snaps.sizes[k + 1],), 1 / snaps.sizes[k + 1],
                                                        dtype=p.dtype))
    n = 1000
    bs = step.sample(snaps, n, plans=plans, generator=torch.Generator().manual_seed(1))
    traj = bs.trajectory()
    assert traj.states.shape[1] == n
    for k in range(snaps.n_snapshots):
        frame = int(torch.argmin((traj.times - snaps.times[k]).abs()))
        assert abs(float(traj.times[frame] - snaps.times[k])) < 1e-12
        # every path is at one of the observed cells of snapshot k ...
        torch.testing.assert_close(traj.states[frame], snaps.samples[k][bs.rows[k]])
        # ... and the cells are visited uniformly: the path marginal is the snapshot
        counts = torch.bincount(bs.rows[k], minlength=snaps.sizes[k]).double() / n
        m = snaps.sizes[k]   # Pearson chi^2 of the visit counts against uniform: ~ chi^2(m - 1) if exact
        chi2 = float(n * ((counts - 1 / m) ** 2 * m).sum())
        assert chi2 < (m - 1) + 5 * (2 * (m - 1)) ** 0.5, (k, chi2)
        w_self = w2_distance(traj.states[frame][:500], snaps.samples[k])
        w_next = w2_distance(snaps.samples[k], snaps.samples[(k + 1) % snaps.n_snapshots])
        assert w_self < 0.25 * w_next, (k, w_self, w_next)
    # the chained pieces are continuous at the shared snapshots
    for k in range(snaps.n_snapshots - 2):
        torch.testing.assert_close(bs.pieces[k][:, -1], bs.pieces[k + 1][:, 0])


def test_coupling_follows_the_reference_not_the_straight_line():
    """With a rotating reference, the static bridge pairs x with points near its rotated image, which differs
    from the squared-distance OT pairing: the reference drift is used by the bridge step."""
    snaps = _snaps((60, 60, 60), seed=3, box=([-1.0, -1.0], [1.0, 1.0]), sigma=0.05).subset([0, 2])
    ref = BridgeStep(LinearDrift(2, A=A), AdditiveNoise(0.05), h=0.05).plans(snaps)[0]
    brown = BridgeStep(lambda x: torch.zeros_like(x), AdditiveNoise(0.05), h=0.05).plans(snaps)[0]
    x, y = snaps.samples
    flow = x @ torch.linalg.matrix_exp(A * 1.2).T
    err_ref = float((ref * torch.cdist(flow, y) ** 2).sum())
    err_brown = float((brown * torch.cdist(flow, y) ** 2).sum())
    assert err_ref < 0.7 * err_brown, (err_ref, err_brown)
