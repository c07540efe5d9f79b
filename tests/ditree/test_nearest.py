"""The k-d tree + brute-force-tail nearest-node index returns what brute force over every node returns."""
import torch

from sciflow.core.random import make_generator
from sciflow.methods.ditree.nearest import NearestNodes


def _brute(targets, points):
    return torch.cdist(targets.double(), points.double()).min(dim=1).indices


def test_nearest_nodes_match_brute_force_while_the_tree_grows():
    g = make_generator(0)
    index = NearestNodes(min_tail=64, tail_fraction=0.25)
    points = torch.rand(10, 2, generator=g) * 20
    rebuilt = set()
    for step in range(60):                       # grow by uneven batches: the index rebuilds several times
        points = torch.cat([points, torch.rand(1 + step * 7 % 53, 2, generator=g) * 20])
        targets = torch.rand(128, 2, generator=g) * 24 - 2      # some outside the nodes' box
        got = index.index(targets, points)
        want = _brute(targets, points)
        d = (points[got].double() - targets.double()).norm(dim=1)
        d_want = (points[want].double() - targets.double()).norm(dim=1)
        torch.testing.assert_close(d, d_want, rtol=0, atol=1e-12)    # the same distance (the same node barring ties)
        assert torch.equal(got, want)
        rebuilt.add(index._built)
    assert len(rebuilt) > 3                      # the k-d tree was rebuilt as the tail grew


def test_nearest_nodes_prefer_the_earlier_node_on_an_exact_tie():
    index = NearestNodes(min_tail=4)
    base = torch.tensor([[0.0, 0.0], [5.0, 5.0], [9.0, 1.0], [3.0, 7.0], [1.0, 1.0]])
    assert index.index(torch.tensor([[0.9, 0.9]]), base).tolist() == [4]          # builds the k-d tree on 5 points
    grown = torch.cat([base, torch.tensor([[1.0, 1.0]])])                        # a duplicate in the tail
    assert index.index(torch.tensor([[1.0, 1.2]]), grown).tolist() == [4]
