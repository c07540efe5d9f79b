"""A reference SDE whose simulated paths blow up: noise selection scores the candidate as the worst (it used to
stop the whole fit with ``x0: holds non-finite value(s)``, the solver's internal name), and ``predict`` says the
fitted reference diverged and which settings to change."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from sciflow.core.errors import InputError
from sciflow.domains.cells.dynamics import make_noise
from sciflow.domains.cells.snapshots import Snapshots
from sciflow.methods.mmsb import MMSB
from sciflow.methods.mmsb.noise_select import score_noise, select_noise
from sciflow.methods.mmsb.predict import SimulationDiverged, simulate


class Square(nn.Module):
    """dx = x^2 dt: from x < 0 the paths creep towards 0; once noise pushes one above 0 it blows up in finite
    time."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * x


def _snaps(start: float = -1.0) -> Snapshots:
    g = torch.Generator().manual_seed(0)
    xs = [start + 0.01 * torch.randn(50, 1, generator=g, dtype=torch.float64) for _ in range(4)]
    return Snapshots.from_arrays(xs, [0.0, 1.0, 2.0, 3.0])


def test_score_noise_of_a_diverging_candidate_is_inf_not_an_error():
    snaps = _snaps()
    score = score_noise(Square(), make_noise("additive", 50.0), snaps, n=100,
                        generator=torch.Generator().manual_seed(0))
    assert score == math.inf


def test_select_noise_passes_over_a_diverging_candidate():
    snaps = _snaps()
    quiet, wild = make_noise("additive", 1e-3), make_noise("additive", 50.0)
    best, scores = select_noise(Square(), snaps, [wild, quiet], n=100)
    assert best is quiet
    assert scores[0]["train_w2"] == math.inf and math.isfinite(scores[1]["train_w2"])


def test_simulate_names_the_divergence_not_x0():
    x0 = torch.full((20, 1), 2.0, dtype=torch.float64)           # x' = x^2 from 2 blows up at t = 0.5
    with pytest.raises(SimulationDiverged, match="diverged") as e:
        simulate(lambda x, t: x * x, make_noise("additive", 1e-3), x0, 0.0, [1.0, 2.0], dt=0.01,
                 generator=torch.Generator().manual_seed(0))
    assert "x0" not in str(e.value)
    assert isinstance(e.value, InputError)


@pytest.mark.parametrize("times", [[1.0, 2.0], [1.0]])            # blows up before / at the last time
def test_predict_says_the_fitted_reference_diverged_and_what_to_change(times):
    model = MMSB(reference=Square(), sigma=1e-3, dim=1)
    model.snapshots = _snaps(start=2.0)
    with pytest.raises(InputError) as e:
        model.predict(times, n=20, generator=torch.Generator().manual_seed(0))
    msg = str(e.value)
    assert "fitted reference diverged" in msg
    for setting in ("--sigma", "--noise", "--rounds", "--paths"):
        assert setting in msg
    assert not msg.startswith("x0")


def test_predict_refuses_a_time_that_needs_more_than_a_million_steps_before_simulating():
    """A time in the wrong unit (1e9 instead of 1) used to run for hours in ``MMSB.predict``; only the workflow
    checked it."""
    model = MMSB(reference=Square(), sigma=1e-3, dim=1)
    model.snapshots = _snaps(start=-1.0)
    with pytest.raises(InputError, match=r"times: reaching t=1e\+09 .* steps"):
        model.predict([1.0, 1e9], n=5, generator=torch.Generator().manual_seed(0))
    with pytest.raises(InputError, match="dt: "):
        simulate(lambda x, t: x, make_noise("additive", 1e-3), torch.zeros(3, 1), 0.0, [1.0], dt=0.0)
