"""Kabsch alignment and RMSD against hand-computed cases; centring; batched == per graph."""
from __future__ import annotations

import math

import torch

from sciflow.domains.molecules.geometry import center, centroid, kabsch_align, kabsch_rmsd, rmsd
from sciflow.nn.symmetry import random_rotation


def _rot_z(a: float) -> torch.Tensor:
    c, s = math.cos(a), math.sin(a)
    return torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)


def test_rotated_translated_copy_has_zero_rmsd():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(9, 3, generator=g, dtype=torch.float64)
    y = x @ random_rotation(g).T + torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64)
    assert float(kabsch_rmsd(x, y)[0]) < 1e-10
    torch.testing.assert_close(kabsch_align(x, y), y, atol=1e-10, rtol=0)


def test_hand_computed_two_atom_cases():
    # a bond of length 1 vs a bond of length 2: after centring, each atom is 0.5 Å off -> RMSD 0.5
    x = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]], dtype=torch.float64)
    y = torch.tensor([[0.0, 0.0, 0.0], [0.0, 2.0, 0.0]], dtype=torch.float64)
    assert abs(float(kabsch_rmsd(x, y)[0]) - 0.5) < 1e-12
    # without alignment: |(1,0,0)-(0,2,0)|^2 = 5 on one of two atoms -> sqrt(5/2)
    assert abs(float(rmsd(x, y)[0]) - math.sqrt(2.5)) < 1e-12


def test_mirror_image_is_not_superposed():
    # a chiral tetrahedron and its mirror image: proper rotations cannot superpose them
    x = torch.tensor([[0.0, 0, 0], [1.0, 0, 0], [0, 1.5, 0], [0, 0, 2.0]], dtype=torch.float64)
    y = x * torch.tensor([1.0, 1.0, -1.0], dtype=torch.float64)
    assert float(kabsch_rmsd(x, y)[0]) > 0.3
    # while a pure rotation of x is
    assert float(kabsch_rmsd(x, x @ _rot_z(0.7).T)[0]) < 1e-10


def test_known_rotation_recovered_and_rmsd_of_displacement():
    x = torch.tensor([[1.0, 0, 0], [-1.0, 0, 0], [0, 2.0, 0], [0, -2.0, 0]], dtype=torch.float64)
    y = x @ _rot_z(0.4).T
    # stretch the two x atoms radially by 0.1 Å: the covariance stays symmetric positive definite, so the
    # optimal rotation is exactly the known one and the residual is sqrt((0.1^2 + 0.1^2) / 4)
    x2 = x.clone()
    x2[0, 0], x2[1, 0] = 1.1, -1.1
    assert abs(float(kabsch_rmsd(x2, y)[0]) - math.sqrt(0.005)) < 1e-12
    from sciflow.domains.molecules.geometry import kabsch_rotation
    rot, _, _ = kabsch_rotation(x2, y)
    torch.testing.assert_close(rot[0], _rot_z(0.4), atol=1e-12, rtol=0)


def test_batched_equals_per_graph_and_centring():
    g = torch.Generator().manual_seed(1)
    xs = [torch.randn(n, 3, generator=g, dtype=torch.float64) for n in (4, 7, 5)]
    ys = [torch.randn(n, 3, generator=g, dtype=torch.float64) for n in (4, 7, 5)]
    b = torch.cat([torch.full((len(x),), i) for i, x in enumerate(xs)])
    batched = kabsch_rmsd(torch.cat(xs), torch.cat(ys), b)
    single = torch.stack([kabsch_rmsd(x, y)[0] for x, y in zip(xs, ys)])
    torch.testing.assert_close(batched, single, atol=1e-12, rtol=0)
    c = center(torch.cat(xs), b)
    torch.testing.assert_close(centroid(c, b), torch.zeros(3, 3, dtype=torch.float64), atol=1e-12, rtol=0)
    w = torch.rand(16, generator=g, dtype=torch.float64)
    cw = center(torch.cat(xs), b, w)
    torch.testing.assert_close(centroid(cw, b, w), torch.zeros(3, 3, dtype=torch.float64), atol=1e-12, rtol=0)
