import pytest
import torch

from sciflow.core.trajectory import Trajectory


@pytest.fixture
def molecule() -> Trajectory:
    """5 frames of a 6-atom molecule (Å), with times, per-frame energies and comments."""
    g = torch.Generator().manual_seed(7)
    t, n = 5, 6
    base = torch.randn(n, 3, generator=g, dtype=torch.float64) * 2.0
    states = (base + 0.1 * torch.randn(t, n, 3, generator=g, dtype=torch.float64)).float()
    return Trajectory(times=torch.linspace(0.0, 2.5, t), states=states,
                      extras={"atomic_numbers": torch.tensor([6, 6, 8, 1, 1, 7])},
                      step_extras={"energy": torch.linspace(-3.0, -1.0, t) + 0.123456},
                      info={"comments": [f"frame {k} of a test, with = and \"quotes\"" for k in range(t)]})


@pytest.fixture
def graph_batch() -> Trajectory:
    """3 samples (graphs of 2, 3 and 2 atoms) over 4 frames."""
    g = torch.Generator().manual_seed(8)
    batch = torch.tensor([0, 0, 1, 1, 1, 2, 2])
    return Trajectory(times=torch.linspace(0, 1, 4), states=torch.randn(4, 7, 3, generator=g) * 3,
                      extras={"batch": batch, "atomic_numbers": torch.tensor([1, 1, 8, 1, 1, 6, 8])},
                      step_extras={"energy": torch.randn(4, 3, generator=g)})
