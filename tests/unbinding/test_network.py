"""Symmetry of the velocity network and of guided sampling, in float64; bipartite edges against brute force."""
from __future__ import annotations

import torch

from sciflow.core.flow_matching import FlowMatcher
from sciflow.core.solvers import Euler
from sciflow.methods.unbinding.encoding import batch_complexes, encode_complex
from sciflow.methods.unbinding.guidance import guided_field, project_clashes
from sciflow.methods.unbinding.network import PathVelocity
from sciflow.nn.bipartite import bipartite_edges
from sciflow.nn.symmetry import random_rotation

F = 4


def _inputs(make_ring, n_graphs: int = 2, seed: int = 0):
    torch.manual_seed(seed)
    cond = batch_complexes([encode_complex(make_ring(8 + i, 4.0 + 0.3 * i)) for i in range(n_graphs)])
    cond = {k: (v.double() if v.is_floating_point() else v) for k, v in cond.items()}
    nl = cond["ligand_pos"].shape[0]
    g = torch.Generator().manual_seed(seed)
    y = torch.randn(nl, 3 * F + 1, generator=g, dtype=torch.float64)
    t = torch.rand(n_graphs, generator=g, dtype=torch.float64)[cond["ligand_batch"]]
    return y, t, cond


def _net() -> PathVelocity:
    torch.manual_seed(1)
    return PathVelocity(F, hidden=16, n_vectors=4, n_layers=2, n_rbf=6).double()


def _rotate_state(y: torch.Tensor, rot: torch.Tensor) -> torch.Tensor:
    nl = y.shape[0]
    disp = y[:, : 3 * F].reshape(nl, F, 3) @ rot.T
    return torch.cat([disp.reshape(nl, -1), y[:, 3 * F:]], 1)


def test_velocity_e3_equivariant_and_pocket_permutation_invariant(make_ring):
    net = _net()
    y, t, cond = _inputs(make_ring)
    g = torch.Generator().manual_seed(3)
    for reflect in (False, True):
        rot = random_rotation(g, reflect=reflect)
        shift = torch.tensor([3.0, -1.0, 2.0], dtype=torch.float64)
        moved = dict(cond, ligand_pos=cond["ligand_pos"] @ rot.T + shift, pocket_pos=cond["pocket_pos"] @ rot.T + shift)
        out, out_m = net(y, t, **cond), net(_rotate_state(y, rot), t, **moved)
        torch.testing.assert_close(out_m, _rotate_state(out, rot), atol=1e-9, rtol=1e-7)
    # permuting the pocket atoms (within each graph) changes nothing
    pb = cond["pocket_batch"]
    perm = torch.cat([torch.nonzero(pb == k).squeeze(1)[torch.randperm(int((pb == k).sum()), generator=g)]
                      for k in range(2)])
    permuted = dict(cond, pocket_pos=cond["pocket_pos"][perm], pocket_types=cond["pocket_types"][perm])
    torch.testing.assert_close(net(y, t, **permuted), net(y, t, **cond), atol=1e-10, rtol=1e-8)


def test_ligand_permutation_equivariant_and_batched_equals_unbatched(make_ring):
    net = _net()
    y, t, cond = _inputs(make_ring)
    lb = cond["ligand_batch"]
    perm = torch.tensor([1, 0, 3, 2])                 # two heavy ligand atoms per ring complex
    moved = dict(cond, ligand_pos=cond["ligand_pos"][perm], ligand_types=cond["ligand_types"][perm])
    torch.testing.assert_close(net(y[perm], t[perm], **moved), net(y, t, **cond)[perm], atol=1e-10, rtol=1e-8)
    full = net(y, t, **cond)
    one = {k: v for k, v in cond.items()}
    keep_l, keep_p = lb == 1, cond["pocket_batch"] == 1
    single = {"ligand_pos": one["ligand_pos"][keep_l], "ligand_types": one["ligand_types"][keep_l],
              "ligand_batch": torch.zeros(int(keep_l.sum()), dtype=torch.long),
              "pocket_pos": one["pocket_pos"][keep_p], "pocket_types": one["pocket_types"][keep_p],
              "pocket_batch": torch.zeros(int(keep_p.sum()), dtype=torch.long)}
    torch.testing.assert_close(net(y[keep_l], t[keep_l], **single), full[keep_l], atol=1e-10, rtol=1e-8)


def test_guided_sampling_and_projection_are_equivariant(make_ring):
    """Rotating + translating the complex (and the prior draw) rotates + translates the generated path."""
    net = _net()
    y0, _, cond = _inputs(make_ring, seed=4)
    field = guided_field(net, n_frames=F, scale=5.0, strength=0.5)
    rot = random_rotation(torch.Generator().manual_seed(5))
    shift = torch.tensor([-2.0, 0.5, 4.0], dtype=torch.float64)
    moved = dict(cond, ligand_pos=cond["ligand_pos"] @ rot.T + shift, pocket_pos=cond["pocket_pos"] @ rot.T + shift)
    a = FlowMatcher.sample(field, y0, Euler(), steps=4, cond=cond, keep="last").last
    b = FlowMatcher.sample(field, _rotate_state(y0, rot), Euler(), steps=4, cond=moved, keep="last").last
    torch.testing.assert_close(b, _rotate_state(a, rot), atol=1e-8, rtol=1e-6)
    nl = y0.shape[0]
    frames = cond["ligand_pos"].unsqueeze(1) + 0.3 * a[:, : 3 * F].reshape(nl, F, 3)
    pa = project_clashes(frames, cond["pocket_pos"], cond["ligand_batch"], cond["pocket_batch"])
    pb = project_clashes(frames @ rot.T + shift, moved["pocket_pos"], cond["ligand_batch"], cond["pocket_batch"])
    torch.testing.assert_close(pb, pa @ rot.T + shift, atol=1e-8, rtol=1e-6)


def test_projection_removes_clashes_and_keeps_clean_frames(make_ring):
    from sciflow.domains.molecules.complexes import CLASH_DISTANCE
    from sciflow.methods.unbinding.guidance import frame_min_distance, pair_index
    cond = batch_complexes([encode_complex(make_ring())])
    lp = cond["ligand_pos"]
    clean = lp.unsqueeze(1).expand(-1, 1, 3)
    clash = (lp + torch.tensor([3.0, 0.0, 0.0])).unsqueeze(1)                 # pushed into the ring atoms
    frames = torch.cat([clean, clash], 1)
    pairs = pair_index(cond["ligand_batch"], cond["pocket_batch"])
    before = frame_min_distance(frames, cond["pocket_pos"], pairs, cond["ligand_batch"], 1)
    assert float(before[0, 1]) < CLASH_DISTANCE <= float(before[0, 0])
    out = project_clashes(frames, cond["pocket_pos"], cond["ligand_batch"], cond["pocket_batch"])
    after = frame_min_distance(out, cond["pocket_pos"], pairs, cond["ligand_batch"], 1)
    assert float(after.min()) >= CLASH_DISTANCE
    torch.testing.assert_close(out[:, 0], frames[:, 0])
    # the rigid step keeps the ligand's internal distances
    d0 = torch.cdist(frames[:, 1], frames[:, 1])
    assert float((torch.cdist(out[:, 1], out[:, 1]) - d0).abs().max()) < 0.2


def test_bipartite_edges_match_brute_force():
    bs = torch.tensor([0, 0, 1, 1, 1, 2])
    bd = torch.tensor([0, 1, 1, 2, 2])
    e = bipartite_edges(bs, bd, src_offset=10, dst_offset=100)
    want = {(10 + i, 100 + j) for i in range(6) for j in range(5) if bs[i] == bd[j]}
    assert set(map(tuple, e.T.tolist())) == want and e.shape[1] == len(want)


def test_projection_of_a_batch_equals_projection_of_each_sample_and_leaves_clean_frames(make_ring):
    """Only clashing (sample, frame) pairs are gathered and moved; the result does not depend on the batch."""
    from sciflow.domains.molecules.complexes import CLASH_DISTANCE
    from sciflow.methods.unbinding.guidance import frame_min_distance, pair_index
    single = batch_complexes([encode_complex(make_ring())])
    cond = batch_complexes([encode_complex(make_ring()) for _ in range(3)])
    lp = cond["ligand_pos"]
    offsets = torch.tensor([[0.0, 0.0, 0.0], [3.0, 0.0, 0.0], [2.5, 0.5, 0.0]], dtype=lp.dtype)   # (F, 3)
    g = cond["ligand_batch"]
    # sample 0 never clashes, sample 1 clashes in frames 1-2, sample 2 only in frame 1
    per_sample = torch.stack([offsets, offsets, torch.stack([offsets[0], offsets[1], offsets[0]])])  # (G, F, 3)
    frames = lp.unsqueeze(1) + per_sample[g] * (g > 0).to(lp.dtype).reshape(-1, 1, 1)
    out = project_clashes(frames, cond["pocket_pos"], g, cond["pocket_batch"])
    pairs = pair_index(g, cond["pocket_batch"])
    before = frame_min_distance(frames, cond["pocket_pos"], pairs, g, 3)
    assert int((before < CLASH_DISTANCE).sum()) == 3                                     # the three clashing frames
    for k in range(3):
        rows = g == k
        alone = project_clashes(frames[rows], single["pocket_pos"], single["ligand_batch"], single["pocket_batch"])
        torch.testing.assert_close(out[rows], alone, atol=1e-10, rtol=0)
    keep = (before >= CLASH_DISTANCE)[g]                                                 # (Nl, F) atoms of clean frames
    assert torch.equal(out[keep], frames[keep])
