"""The refinement likelihood is consistent for state-dependent drifts: the trapezoid drift alone rewarded a
positive divergence (the noise in dX correlates with f(X_{t+h})), so on a stationary OU path with theta = 1,
sigma = 1 it fitted A = +0.01 instead of -1, and full MMSB rounds started at the true OU drift walked away from
it. Now the fit recovers A from exact OU paths, and the truth is (near) a fixed point of the rounds."""
import math

import pytest
import torch

from sciflow.core.errors import SciflowError
from sciflow.domains.cells import LinearDrift, simulate_snapshots
from sciflow.domains.cells.dynamics import make_noise
from sciflow.methods.mmsb import MMSB
from sciflow.methods.mmsb.refine import drift_nll, fit_drift, increments


def _ou_paths(theta: float, sigma: float, h: float, steps: int, n: int, x0: torch.Tensor | None,
              g: torch.Generator) -> torch.Tensor:
    """Exact OU paths dX = -theta X dt + sigma dW, (n, steps + 1, 1); stationary start unless x0 is given."""
    a = math.exp(-theta * h)
    sd = sigma * math.sqrt((1 - a * a) / (2 * theta))
    x = sigma / math.sqrt(2 * theta) * torch.randn(n, 1, generator=g, dtype=torch.float64) if x0 is None else x0
    xs = [x]
    for _ in range(steps):
        x = a * x + sd * torch.randn(n, 1, generator=g, dtype=torch.float64)
        xs.append(x)
    return torch.stack(xs, 1)


@pytest.mark.parametrize("start", ["stationary", "transient"])
@pytest.mark.parametrize("scheme", ["trapezoid", "euler"])
def test_ou_drift_is_recovered_from_exact_paths(start, scheme, monkeypatch):
    from sciflow.methods.mmsb import refine
    monkeypatch.setattr(refine, "SCHEME", scheme, raising=False)
    g = torch.Generator().manual_seed(0)
    x0 = None if start == "stationary" else torch.full((1000, 1), 3.0, dtype=torch.float64)
    paths = _ou_paths(1.0, 1.0, 0.01, 300, 1000, x0, g)                 # 300k increments, T = 3
    inc = increments([paths], [0.01], make_noise("additive", 1.0))
    drift = LinearDrift(1)
    fit_drift(drift, inc, parametric=True)
    assert abs(float(drift.A) + 1.0) < 0.05, float(drift.A)             # was +0.01 (stationary), -0.48 (transient)
    assert abs(float(drift.b)) < 0.05, float(drift.b)


def test_the_corrected_trapezoid_adds_the_ito_term():
    """Against the plain trapezoid, the objective gains (h / 2) div f(X_t) per row."""
    g = torch.Generator().manual_seed(1)
    paths = _ou_paths(1.0, 1.0, 0.05, 20, 50, None, g)
    inc = increments([paths], [0.05], make_noise("additive", 1.0))
    drift = LinearDrift(1, A=torch.tensor([[-0.7]]), b=torch.tensor([0.2]))
    fbar = 0.5 * (drift(inc.x) + drift(inc.x_next))
    plain = ((inc.dx - fbar * inc.h) ** 2 * inc.weight / (2 * inc.h)).sum(-1).mean()
    torch.testing.assert_close(drift_nll(drift, inc, scheme="trapezoid"), plain + 0.5 * 0.05 * -0.7)
    euler = ((inc.dx - drift(inc.x) * inc.h) ** 2 * inc.weight / (2 * inc.h)).sum(-1).mean()
    torch.testing.assert_close(drift_nll(drift, inc, scheme="euler"), euler)
    with pytest.raises(SciflowError, match="scheme"):
        drift_nll(drift, inc, scheme="midpoint")
    # above MAX_DIV_DIM dimensions the default is Euler (the exact divergence costs d backward passes)
    from sciflow.methods.mmsb.refine import MAX_DIV_DIM
    wide = increments([torch.randn(4, 6, MAX_DIV_DIM + 1, generator=g, dtype=torch.float64)], [0.05],
                      make_noise("additive", 1.0))
    lin = LinearDrift(MAX_DIV_DIM + 1, A=-torch.eye(MAX_DIV_DIM + 1))
    torch.testing.assert_close(drift_nll(lin, wide), drift_nll(lin, wide, scheme="euler"))


def test_mmsb_rounds_started_at_the_true_ou_drift_stay_there():
    a_true = torch.tensor([[-0.5, 0.0], [0.0, -0.5]], dtype=torch.float64)
    b_true = torch.tensor([1.0, 1.0], dtype=torch.float64)
    sigma = 0.7
    snaps = simulate_snapshots(LinearDrift(2, A=a_true, b=b_true), make_noise("additive", sigma),
                               times=[0.0, 1.0, 2.0, 3.0, 4.0], n=1000, box=([3.0, 3.0], [3.5, 3.5]), dt=0.01,
                               generator=torch.Generator().manual_seed(1))
    model = MMSB(reference="linear", sigma=sigma, noise="additive", rounds=3, n_paths=1000, accelerate="none",
                 calibrate="none", reference_kwargs={"A": a_true.tolist(), "b": b_true.tolist()})
    model.fit(snaps, seed=0, show_progress=False)
    p = model.reference_params
    a_fit, b_fit = torch.tensor(p["A"]), torch.tensor(p["b"])
    # the plain trapezoid ended at A = [[0.06, -0.19], [0.03, 0.08]], b = [0.05, -0.58]: an unstable drift.
    # The remaining error is the sampling error of 5 x 1,000 cells and 1,000 bridge paths: max |A - A_true| =
    # 0.028 / 0.044 / 0.017 and max |b - b_true| = 0.10 / 0.11 / 0.08 for data seeds 1 / 2 / 3 (with 300 cells
    # and 300 paths, 0.14 and 0.45). b errs more than A because b = -A mu with the mean mu = (2, 2): an error
    # in A moves b twice as far
    assert float((a_fit - a_true).abs().max()) < 0.1, a_fit
    assert float(a_fit.diagonal().max()) < -0.4, a_fit
    assert float((b_fit - b_true).abs().max()) < 0.15, b_fit
