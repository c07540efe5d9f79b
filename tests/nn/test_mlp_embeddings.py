import math

import pytest
import torch

from sciflow.nn import MLP, GaussianFourierEmbedding, RadialBasis, SinusoidalEmbedding, TimeConditionedMLP


def test_sinusoidal_embedding_values():
    e = SinusoidalEmbedding(8, max_freq=1000.0)
    out = e(torch.tensor([0.0, 0.5]))
    assert out.shape == (2, 8)
    torch.testing.assert_close(out[0], torch.tensor([0.0] * 4 + [1.0] * 4))
    assert float(out[1, 0]) == pytest.approx(math.sin(0.5))


def test_fourier_and_radial_basis():
    assert GaussianFourierEmbedding(16)(torch.rand(5)).shape == (5, 16)
    rb = RadialBasis(8, cutoff=4.0)(torch.tensor([0.0, 4.0]))
    assert int(rb[0].argmax()) == 0 and int(rb[1].argmax()) == 7


def test_time_conditioned_mlp_uses_condition():
    torch.manual_seed(0)
    f = TimeConditionedMLP(2, cond_dim=1, hidden=(16,))
    x, t = torch.randn(4, 2), torch.rand(4)
    a, b = f(x, t, torch.zeros(4, 1)), f(x, t, torch.ones(4, 1))
    assert a.shape == (4, 2) and not torch.allclose(a, b)
    with pytest.raises(ValueError, match="cond"):
        f(x, t)
    with pytest.raises(ValueError, match="activation"):
        MLP(2, 2, activation="swish2")
