"""What TSGen.sample settles once per call (the atoms checked, the graph count) changes no result, and every
other call still checks the atoms."""
from __future__ import annotations

import pytest
import torch

from sciflow.core.errors import InputError
from sciflow.domains.molecules.elements import covalent_radii_of
from sciflow.domains.molecules.features import ElementEmbedding


def test_checked_block_gives_the_same_embedding_and_checks_everything_else():
    torch.manual_seed(0)
    emb = ElementEmbedding([1, 6, 7, 8], 8)
    z = torch.tensor([6, 1, 1, 8, 7])
    out = emb(z)
    assert torch.equal(out[:, -1], covalent_radii_of(z, out.dtype))
    bad = torch.tensor([6, 50])
    with emb.checked(z):
        assert torch.equal(emb(z), out)
        with pytest.raises(InputError, match="Sn"):
            emb(bad)                                   # another tensor is still checked inside the block
    with pytest.raises(InputError, match="Sn"), emb.checked(bad):
        pass
    with pytest.raises(InputError, match="Sn"):
        emb(bad)                                       # and after it
    assert torch.equal(emb.double()(z)[:, -1], covalent_radii_of(z, torch.float64))


def test_network_given_the_graph_count_and_checked_atoms_gives_the_same_displacement():
    from sciflow.methods.tsgen.network import TSVelocityNet
    torch.manual_seed(0)
    net = TSVelocityNet([1, 6, 7, 8], hidden=24, n_vectors=6, n_layers=2, element_dim=8, time_dim=8).double()
    g = torch.Generator().manual_seed(0)
    batch = torch.tensor([0] * 5 + [1] * 7)
    z = torch.tensor([6, 1, 1, 8, 7, 6, 6, 1, 1, 1, 8, 1])
    r = torch.randn(12, 3, generator=g, dtype=torch.float64)
    kw = {"atomic_numbers": z, "pos_reactant": r, "pos_product": r + 0.4, "batch": batch}
    x, t = r + 0.3 * torch.randn(12, 3, generator=g, dtype=torch.float64), torch.full((12,), 0.3, dtype=torch.float64)
    plain = net(x, t, **kw)
    with net.elements.checked(z):
        assert torch.equal(net(x, t, **kw, n_graphs=2), plain)
