"""The shapes keep their centre / half size per device and dtype; a changed attribute is picked up."""
from __future__ import annotations

import pickle

import torch

from sciflow.domains.photons.scene import Box, Sphere


def test_cached_geometry_follows_changes_and_is_not_pickled():
    p = torch.tensor([[0.5, 0.0, 0.0], [2.0, 1.0, 0.0]], dtype=torch.float32)
    s = Sphere((0.0, 0.0, 0.0), 1.0)
    before = s.sdf(p)
    s.center += torch.tensor([0.5, 0.0, 0.0], dtype=torch.float64)            # in place
    assert torch.equal(s.sdf(p), Sphere((0.5, 0.0, 0.0), 1.0).sdf(p)) and not torch.equal(s.sdf(p), before)
    s.center = torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64)            # reassigned
    assert torch.equal(s.sdf(p), Sphere((0.0, 1.0, 0.0), 1.0).sdf(p))
    b = Box((0.0, 0.0, 0.0), (0.5, 0.5, 0.5))
    b.sdf(p)
    b.half = torch.tensor([1.0, 1.0, 1.0], dtype=torch.float64)
    assert torch.equal(b.sdf(p), Box((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)).sdf(p))
    assert "_device_copies" not in pickle.loads(pickle.dumps(b)).__dict__
