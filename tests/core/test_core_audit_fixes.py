"""Fixes from the core audit: plans drawn without replacement, path times outside [0, 1], named-tuple batches,
empty OT batches, odd Fourier embedding sizes, EGNN vector inputs, repeated frames, fields of another dtype."""
from typing import NamedTuple

import pytest
import torch

from sciflow.core.couplings import ExactOT
from sciflow.core.couplings.base import sample_plan
from sciflow.core.errors import InputError
from sciflow.core.paths import BrownianBridgePath, LinearPath
from sciflow.core.solvers import RK4
from sciflow.core.training.trainer import move_to
from sciflow.core.trajectory import Trajectory
from sciflow.nn.egnn import EGNN
from sciflow.nn.embeddings import GaussianFourierEmbedding


def test_plan_draws_without_replacement_only_pairs_of_positive_mass():
    plan = torch.eye(3) / 3
    i, j = sample_plan(plan, 3, replace=False, generator=torch.Generator().manual_seed(0))
    assert bool((plan[i, j] > 0).all()) and sorted(i.tolist()) == [0, 1, 2]
    with pytest.raises(InputError, match="n: cannot draw 5 distinct pairs .* 3 positive"):
        sample_plan(plan, 5, replace=False)      # torch.multinomial drew pairs of zero mass here


@pytest.mark.parametrize("path", [LinearPath(), BrownianBridgePath(0.5)])
@pytest.mark.parametrize("t", [1.5, -0.2, float("nan")])
def test_paths_refuse_times_outside_the_unit_interval(path, t):
    x0, x1 = torch.zeros(2, 1), torch.ones(2, 1)
    with pytest.raises(InputError, match=r"t: times must lie in \[0, 1\]"):
        path.sample(x0, x1, torch.tensor([0.5, t]), noise=torch.ones(2, 1))


def test_bridge_velocity_is_the_time_derivative_up_to_the_ends():
    """Inside [0, 1] the bridge's u_t is d/dt x_t (central differences, fixed noise); t = 1 is accepted."""
    path = BrownianBridgePath(0.5)
    x0, x1, z = torch.zeros(1, 1, dtype=torch.float64), torch.ones(1, 1, dtype=torch.float64), \
        torch.ones(1, 1, dtype=torch.float64)
    for t in (0.1, 0.5, 0.9):
        h = 1e-6
        xp = path.sample(x0, x1, torch.tensor([t + h], dtype=torch.float64), noise=z).xt
        xm = path.sample(x0, x1, torch.tensor([t - h], dtype=torch.float64), noise=z).xt
        u = path.sample(x0, x1, torch.tensor([t], dtype=torch.float64), noise=z).ut
        assert torch.allclose(u, (xp - xm) / (2 * h), atol=1e-6)
    assert torch.equal(path.sample(x0, x1, torch.ones(1, dtype=torch.float64), noise=z).xt, x1)


class Batch(NamedTuple):
    x: torch.Tensor
    c: torch.Tensor


def test_named_tuple_batches_move_to_a_device():
    b = move_to(Batch(torch.zeros(2), torch.ones(2)), torch.device("cpu"))
    assert isinstance(b, Batch) and torch.equal(b.c, torch.ones(2))


def test_ot_coupling_names_an_empty_batch():
    with pytest.raises(InputError, match="x0: an OT coupling needs at least one row"):
        ExactOT()(torch.zeros(0, 2), torch.zeros(0, 2))


def test_fourier_embedding_refuses_an_odd_size():
    assert GaussianFourierEmbedding(8)(torch.rand(3)).shape == (3, 8)
    with pytest.raises(InputError, match="dim: expected an even number"):
        GaussianFourierEmbedding(7)


def test_egnn_refuses_vector_inputs_it_has_no_weights_for_and_missing_ones():
    h, pos = torch.randn(3, 4), torch.randn(3, 3)
    ei = torch.tensor([[0, 1, 2, 1], [1, 0, 1, 2]])
    with pytest.raises(InputError, match="node_vec: .*node_vectors=0"):
        EGNN(4, node_vectors=0)(h, pos, ei, node_vec=torch.randn(3, 1, 3))
    net = EGNN(4, node_vectors=2)
    with pytest.raises(InputError, match="node_vec: .*node_vectors=2; pass node_vec"):
        net(h, pos, ei)
    with pytest.raises(InputError, match=r"node_vec: expected shape \(3, 2, 3\)"):
        net(h, pos, ei, node_vec=torch.randn(3, 1, 3))


def test_frames_refuses_a_repeated_frame_of_a_timed_trajectory():
    traj = Trajectory(times=torch.tensor([0.0, 0.5, 1.0]), states=torch.zeros(3, 2, 2))
    with pytest.raises(InputError, match=r"frames: the index repeats frame\(s\) \[1\]"):
        traj.frames([1, 1])
    assert traj.frames([2, 0]).times.tolist() == [1.0, 0.0]
    untimed = Trajectory(times=torch.zeros(2), states=torch.zeros(2, 1, 2))
    assert untimed.frames([0, 0]).n_frames == 2          # frames without times may repeat


def test_solver_names_a_field_of_another_dtype():
    x0 = torch.ones(4, 2)
    with pytest.raises(InputError, match="field: returned torch.float64 for states of torch.float32"):
        RK4().solve(lambda x, t: -x.double(), x0, [0.0, 1.0])


def test_flow_matcher_probes_its_time_sampler_once_at_construction():
    """The paths check their times on the host only (no read-back per training step on an accelerator), so a
    custom time sampler is checked when the matcher is built."""
    from sciflow.core.flow_matching import FlowMatcher, logit_normal_time
    FlowMatcher(LinearPath(), time_sampler=logit_normal_time(0.0, 3.0))
    with pytest.raises(InputError, match=r"time_sampler: drew times outside \[0, 1\]"):
        FlowMatcher(LinearPath(), time_sampler=lambda n, g, d, dt: 2 * torch.rand(n, generator=g, dtype=dt))
    with pytest.raises(InputError, match=r"time_sampler: returned \(4096, 1\)"):
        FlowMatcher(LinearPath(), time_sampler=lambda n, g, d, dt: torch.rand(n, 1, generator=g, dtype=dt))
