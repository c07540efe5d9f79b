"""What the sampler builds once per generate() (graph edges, guidance pairs, sparse convergence checks) gives
bit for bit what building it at every step gives."""
from __future__ import annotations

import torch

from sciflow.core.flow_matching import FlowMatcher
from sciflow.core.solvers import Euler
from sciflow.methods.unbinding import guidance
from sciflow.methods.unbinding.encoding import batch_complexes, encode_complex
from sciflow.methods.unbinding.network import PathVelocity

F = 4


def _setup(make_ring):
    torch.manual_seed(1)
    net = PathVelocity(F, hidden=16, n_vectors=4, n_layers=2, n_rbf=6).double()
    cond = batch_complexes([encode_complex(make_ring(8 + i, 4.0 + 0.3 * i)) for i in range(3)])
    cond = {k: (v.double() if v.is_floating_point() else v) for k, v in cond.items()}
    g = torch.Generator().manual_seed(0)
    y = torch.randn(cond["ligand_pos"].shape[0], 3 * F + 1, generator=g, dtype=torch.float64)
    return net, cond, y


def test_precomputed_graph_gives_the_same_velocity(make_ring):
    net, cond, y = _setup(make_ring)
    t = torch.full((y.shape[0],), 0.3, dtype=torch.float64)
    graph = PathVelocity.graph(cond["ligand_batch"], cond["pocket_batch"])
    assert graph["n_graphs"] == 3
    assert torch.equal(net(y, t, **cond, **graph), net(y, t, **cond))


def test_guided_sampling_with_prebuilt_graph_and_pairs_is_unchanged(make_ring):
    net, cond, y0 = _setup(make_ring)
    plain = guidance.guided_field(net, n_frames=F, scale=5.0, strength=0.5)
    pairs = guidance.pair_index(cond["ligand_batch"], cond["pocket_batch"])
    prebuilt = guidance.guided_field(net, n_frames=F, scale=5.0, strength=0.5,
                                     clash=(cond["pocket_pos"], cond["pocket_batch"]), pairs=pairs)
    graph = PathVelocity.graph(cond["ligand_batch"], cond["pocket_batch"])
    a = FlowMatcher.sample(plain, y0, Euler(), steps=3, cond=cond, keep="last").last
    b = FlowMatcher.sample(prebuilt, y0, Euler(), steps=3, cond={**cond, **graph}, keep="last").last
    assert torch.equal(a, b)


def test_rigid_projection_checked_every_few_steps_equals_checking_every_step(make_ring, monkeypatch):
    """The rigid loop converges between two checks here, so the later (zero-gradient) steps must change nothing."""
    cond = batch_complexes([encode_complex(make_ring()) for _ in range(3)])
    frames = (cond["ligand_pos"] + torch.tensor([2.5, 0.5, 0.0])).unsqueeze(1).repeat(1, 2, 1)
    calls = [0]
    energy = guidance.frame_clash_energy

    def counted(*a, **k):
        calls[0] += 1
        return energy(*a, **k)

    monkeypatch.setattr(guidance, "frame_clash_energy", counted)
    out, n_calls = [], []
    for every in (1, guidance._CHECK_EVERY):
        monkeypatch.setattr(guidance, "_CHECK_EVERY", every)
        calls[0] = 0
        out.append(guidance.project_clashes(frames, cond["pocket_pos"], cond["ligand_batch"], cond["pocket_batch"]))
        n_calls.append(calls[0])
    assert n_calls[0] < n_calls[1] < 200                  # it converged, and not on a checked step
    assert torch.equal(out[0], out[1])
    assert not torch.equal(out[0], frames)
