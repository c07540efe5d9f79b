"""Refinement: maximum likelihood of the reference drift along paths recovers known parameters; a full fit
on snapshots simulated from a known linear reference recovers it and reproduces the snapshots."""
import torch
from torch import nn

from sciflow.core.solvers.sde_heun import ItoHeun
from sciflow.domains.cells import (AdditiveNoise, LinearDrift, LotkaVolterra, MultiplicativeNoise,
                                   simulate_snapshots, uniform_box)
from sciflow.methods.mmsb import MMSB, w2_distance
from sciflow.methods.mmsb.refine import fit_drift, increments

TRUE_LV = {"alpha": 1.0, "beta": 0.4, "gamma": 0.4, "delta": 0.1}


def test_refinement_recovers_lotka_volterra_rates_from_paths():
    g = torch.Generator().manual_seed(0)
    truth, noise = LotkaVolterra(**TRUE_LV).double(), MultiplicativeNoise(0.02)
    x0 = uniform_box([4.0, 3.0], [6.0, 5.0], 200, generator=g)
    grid = torch.linspace(0.0, 8.0, 401, dtype=torch.float64)
    with torch.no_grad():
        paths = ItoHeun(lambda x, t: noise(x)).solve(lambda x, t: truth(x), x0, grid, generator=g).states
    inc = increments([paths.transpose(0, 1)], [0.02], noise)
    model = LotkaVolterra(alpha=0.5, beta=1.0, gamma=1.0, delta=0.5).double()   # far from the truth
    fit_drift(model, inc, parametric=True, max_iter=200)
    for name, value in model.params().items():
        assert abs(value - TRUE_LV[name]) < 0.03 * TRUE_LV[name], (name, value)


class Linear(nn.Module):
    """A user's own reference f_theta(x) = A x (no offset), passed to MMSB as a torch module."""

    def __init__(self) -> None:
        super().__init__()
        self.A = nn.Parameter(torch.zeros(2, 2, dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.A.T


def test_fit_on_linear_snapshots_recovers_the_drift_and_reproduces_marginals():
    a_true = torch.tensor([[-0.5, 1.0], [-1.0, -0.5]], dtype=torch.float64)
    noise = AdditiveNoise(0.1)
    snaps = simulate_snapshots(LinearDrift(2, A=a_true), noise, times=[0.0, 0.5, 1.0, 1.5, 2.0], n=150,
                               box=([1.0, -0.5], [2.0, 0.5]), dt=0.01, generator=torch.Generator().manual_seed(1))
    model = MMSB(reference=Linear(), sigma=0.1, noise="additive", rounds=4, n_paths=200, h=0.05)
    summary = model.fit(snaps, seed=0, show_progress=False)
    a_fit = torch.tensor(model.reference_params["A"], dtype=torch.float64)
    assert float((a_fit - a_true).abs().max()) < 0.1, a_fit
    assert summary["rounds"] == 4 and len(model.history) >= 4
    # simulated populations at the observed times match the snapshots (and the zero-drift guess does not)
    pred = model.predict(snaps.times.tolist()[1:], n=150, generator=torch.Generator().manual_seed(2))
    for i, k in enumerate(range(1, snaps.n_snapshots)):
        spread = w2_distance(snaps.samples[0], snaps.samples[k])
        assert w2_distance(pred.states[i], snaps.samples[k]) < 0.3 * spread, k
