"""E(3) and permutation equivariance of the EGNN and of TS-GEN's velocity network, in float64."""
from __future__ import annotations

import torch

from sciflow.methods.tsgen.network import TSVelocityNet
from sciflow.nn.egnn import EGNN
from sciflow.nn.graph import fully_connected_edges
from sciflow.nn.symmetry import assert_e3_equivariant, assert_permutation_equivariant


def _inputs(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    batch = torch.tensor([0] * 5 + [1] * 7)
    n = batch.numel()
    z = torch.tensor([6, 1, 1, 8, 7, 6, 6, 1, 1, 1, 8, 1])
    r = torch.randn(n, 3, generator=g, dtype=torch.float64) * 1.2
    return {"x": r + 0.3 * torch.randn(n, 3, generator=g, dtype=torch.float64),
            "t": torch.full((n,), 0.3, dtype=torch.float64), "atomic_numbers": z, "pos_reactant": r,
            "pos_product": r + 0.4 * torch.randn(n, 3, generator=g, dtype=torch.float64), "batch": batch}


def _net():
    torch.manual_seed(0)
    net = TSVelocityNet([1, 6, 7, 8], hidden=24, n_vectors=6, n_layers=3, element_dim=8, time_dim=8).double()
    return net.requires_grad_(False)


def test_velocity_net_e3_equivariant_with_reflections_and_translations():
    net = _net()
    fn = lambda d: net(d["x"], d["t"], **{k: v for k, v in d.items() if k not in ("x", "t")})
    for seed in range(2):
        assert_e3_equivariant(fn, _inputs(seed), positions=["x", "pos_reactant", "pos_product"], output="vector",
                              reflect=True, translate=True, generator=torch.Generator().manual_seed(seed))
        assert_e3_equivariant(fn, _inputs(seed), positions=["x", "pos_reactant", "pos_product"], output="vector",
                              reflect=False, generator=torch.Generator().manual_seed(seed + 7))
        assert float(fn(_inputs(seed)).abs().max()) > 1e-3                 # not the trivially equivariant zero


def test_velocity_net_permutation_equivariant_and_batched_equals_unbatched():
    net = _net()
    d = _inputs(3)
    fn = lambda d: net(d["x"], d["t"], **{k: v for k, v in d.items() if k not in ("x", "t")})
    perm = torch.cat([torch.randperm(5, generator=torch.Generator().manual_seed(1)),
                      5 + torch.randperm(7, generator=torch.Generator().manual_seed(2))])
    assert_permutation_equivariant(fn, d, node_keys=["x", "t", "atomic_numbers", "pos_reactant", "pos_product"],
                                   perm=perm)
    full = fn(d)
    assert float(full.abs().max()) > 1e-3
    second = {k: v[5:] for k, v in d.items()}
    second["batch"] = torch.zeros(7, dtype=torch.long)
    torch.testing.assert_close(fn(second), full[5:], atol=1e-10, rtol=1e-8)
    # zero mean displacement per graph (no drift of the centroid)
    assert float(full[:5].sum(0).abs().max()) < 1e-10 and float(full[5:].sum(0).abs().max()) < 1e-10


def test_egnn_message_layer_matches_concatenated_formula():
    """The node-level evaluation of the first message layer equals the Linear on the concatenation."""
    torch.manual_seed(0)
    net = EGNN(5, n_channels=2, hidden=12, n_vectors=3, n_layers=1, edge_dim=2).double()
    layer = net.layers[0]
    g = torch.Generator().manual_seed(0)
    h = torch.randn(6, 12, generator=g, dtype=torch.float64)
    ei = fully_connected_edges(torch.zeros(6, dtype=torch.long))
    rel_feats = torch.randn(ei.shape[1], 2 * 16 + 1, generator=g, dtype=torch.float64)
    ea = torch.randn(ei.shape[1], 2, generator=g, dtype=torch.float64)
    u = torch.randn(6, 3, 3, generator=g, dtype=torch.float64)
    rel = torch.randn(ei.shape[1], 2, 3, generator=g, dtype=torch.float64)
    inv_deg = torch.full((6,), 0.2, dtype=torch.float64)
    _, u_out = layer(h, u, ei, rel, rel_feats, ea, inv_deg)
    src, dst = ei
    uu = (u[src] * u[dst]).sum(-1)
    m = layer.msg(torch.cat([h[dst], h[src], rel_feats, uu, ea], dim=-1))
    unit = rel / (rel.norm(dim=-1, keepdim=True) + 1.0)
    w = layer.vec_from_rel(m).reshape(-1, 2, 3)
    vmsg = torch.einsum("eck,ecx->ekx", w, unit) + layer.vec_from_nbr(m).unsqueeze(-1) * u[src]
    expected = u + torch.zeros_like(u).index_add_(0, dst, vmsg) * 0.2
    torch.testing.assert_close(u_out, expected, atol=1e-12, rtol=1e-10)
