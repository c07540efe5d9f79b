"""TSGen.generate end to end is E(3)-equivariant sample by sample (the reaction frame, the prior, the ODE solve)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from sciflow.core.random import make_generator
from sciflow.nn.symmetry import random_rotation

from .conftest import ROOT


@pytest.mark.parametrize("reflect", [False, True])
def test_generate_follows_a_rigid_motion_of_the_reaction(example_reactions, monkeypatch, reflect):
    """generate(Q R + t, Q' P + t') = Q generate(R, P) per sample, in float64, when the moved reaction's prior
    draw is Q eps: the output is in the reactant's frame with the reactant centred (translations drop out) and the
    product is Kabsch-aligned onto the reactant (its own pose drops out; Q' is Q times any proper rotation). The
    network is E(3), so a reflection Q (applied to reactant and product) is followed too."""
    import sciflow.domains.molecules.adapter as adapter_module
    from sciflow.methods.tsgen import TSGen

    model = TSGen.load(ROOT / "models" / "tsgen")
    model.model.double()
    model.adapter.dtype = torch.float64
    r = example_reactions.reaction(2)
    z, xr, xp = r["atomic_numbers"], r["pos_reactant"].astype(np.float64), r["pos_product"].astype(np.float64)
    g = torch.Generator().manual_seed(3)
    q = random_rotation(g, reflect=reflect)
    q2 = q @ random_rotation(g)                                    # the product turned some more
    base = model.generate((z, xr), (z, xp), 4, generator=make_generator(0)).last
    draw = adapter_module.randn
    monkeypatch.setattr(adapter_module, "randn", lambda shape, **kw: draw(shape, **kw) @ q.to(kw["dtype"]).T)
    moved = model.generate((z, xr @ q.numpy().T + [1.0, -2.0, 5.0]), (z, xp @ q2.numpy().T - 4.0), 4,
                           generator=make_generator(0)).last
    assert moved.dtype == torch.float64 and (float(torch.det(q)) < 0) == reflect
    torch.testing.assert_close(moved, base @ q.T, atol=1e-9, rtol=0)
    # the samples differ from each other and from the prior mean: a real, noise-dependent map was checked
    x = base.reshape(4, -1, 3)
    assert float((x[0] - x[1]).abs().max()) > 1e-3
