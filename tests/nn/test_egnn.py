import torch

from sciflow.nn.egnn import EGNN
from sciflow.nn.graph import fully_connected_edges, graph_ptr, radius_edges
from sciflow.nn.symmetry import assert_e3_equivariant, assert_permutation_equivariant, random_rotation

SIZES = [5, 7, 3]
BATCH = torch.repeat_interleave(torch.arange(3), torch.tensor(SIZES))


def make_net(seed=0):
    torch.manual_seed(seed)
    return EGNN(node_dim=4, n_channels=3, hidden=32, n_vectors=6, n_layers=3, out_vectors=2, node_vectors=2).double()


def inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    n = len(BATCH)
    return {"h": torch.randn(n, 4, generator=g, dtype=torch.float64),
            **{k: torch.randn(n, 3, generator=g, dtype=torch.float64) * 2 for k in ("x", "r", "p")}}


def run(net, batch=BATCH):
    def fn(d):
        ei = fully_connected_edges(batch)
        pos = torch.stack([d["x"], d["r"], d["p"]], 1)
        nv = torch.stack([d["x"] - d["r"], d["x"] - d["p"]], 1)
        return net(d["h"], pos, ei, node_vec=nv)[1].reshape(len(batch), -1)
    return fn


def test_e3_equivariance_rotation_reflection_translation():
    net = make_net()
    g = torch.Generator().manual_seed(1)
    for reflect in (False, True):
        fn = lambda d: run(net)(d).reshape(-1, 2, 3)[:, 0]
        assert_e3_equivariant(fn, inputs(), positions=["x", "r", "p"], reflect=reflect, generator=g)


def test_permutation_equivariance_within_graphs():
    net = make_net()
    g = torch.Generator().manual_seed(2)
    ptr = graph_ptr(BATCH)
    perm = torch.cat([ptr[i] + torch.randperm(SIZES[i], generator=g) for i in range(3)])
    assert_permutation_equivariant(run(net), inputs(), node_keys=["h", "x", "r", "p"], perm=perm)


def test_batched_equals_unbatched():
    net = make_net()
    d = inputs()
    full = run(net)(d)
    ptr = graph_ptr(BATCH)
    for i in range(3):
        sl = slice(int(ptr[i]), int(ptr[i + 1]))
        single = run(net, torch.zeros(SIZES[i], dtype=torch.long))({k: v[sl] for k, v in d.items()})
        torch.testing.assert_close(single, full[sl], atol=1e-10, rtol=1e-8)


def test_output_is_not_trivially_zero_and_depends_on_geometry():
    net = make_net()
    d = inputs()
    a = run(net)(d)
    d2 = dict(d)
    d2["x"] = d["x"] + 0.3
    d2["x"][0] += 1.0
    assert a.abs().max() > 1e-3
    assert (run(net)(d2) - a).abs().max() > 1e-4


def test_edges_stay_inside_graphs_and_radius_filters():
    ei = fully_connected_edges(BATCH)
    assert ei.shape[1] == sum(s * (s - 1) for s in SIZES)
    assert torch.equal(BATCH[ei[0]], BATCH[ei[1]])
    pos = torch.randn(len(BATCH), 3)
    r = radius_edges(pos, BATCH, 1.0)
    assert bool(((pos[r[0]] - pos[r[1]]).norm(dim=-1) < 1.0).all())


def test_random_rotation_is_orthogonal():
    q = random_rotation(torch.Generator().manual_seed(0))
    torch.testing.assert_close(q @ q.T, torch.eye(3, dtype=q.dtype))
    assert float(torch.det(q)) == 1.0 or abs(float(torch.det(q)) - 1) < 1e-12
    assert abs(float(torch.det(random_rotation(reflect=True))) + 1) < 1e-12
