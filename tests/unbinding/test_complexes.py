"""Complex topology checks, Kabsch alignment, pocket extraction and the clash metric on hand-made and real cases."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from sciflow.core.errors import InputError
from sciflow.domains.molecules.complexes import (
    CLASH_DISTANCE,
    ComplexTopology,
    align_frames,
    clash_energy,
    clash_mask,
    kabsch_rotation,
    min_pair_distance,
    pocket_indices,
)
from sciflow.methods.unbinding.metrics import path_clashes, sphere_w1, split_half_w1
from sciflow.nn.symmetry import random_rotation

PROLIF = Path(__file__).resolve().parents[3] / "shared/data/prolif_ligand_md"
if not PROLIF.is_dir():
    PROLIF = Path("/work/shared/data/prolif_ligand_md")


def test_topology_rejects_missing_ligand_and_empty_pocket():
    with pytest.raises(InputError, match="ligand not found"):
        ComplexTopology(["C", "C"], ["A", "B"], ["X", "X"], [1, 1], [False, False])
    with pytest.raises(InputError, match="empty pocket"):
        ComplexTopology(["C", "C"], ["A", "B"], ["X", "X"], [1, 1], [True, True])
    with pytest.raises(InputError, match="res_ids"):
        ComplexTopology(["C", "C"], ["A", "B"], ["X", "X"], [1], [True, False])


def test_ligand_masses_come_from_the_periodic_table_and_unknown_elements_are_refused():
    """Every element outside H, C, N, O, S, P and the halogens used to weigh 12.0 (a C-Se ligand's centre of mass
    was 0.74 A off) and deuterium counted as a heavy atom."""
    topo = ComplexTopology(["C", "Se", "D", "Zn"], ["C1", "SE1", "D1", "ZN"], ["LIG"] * 3 + ["ZN"], [1, 1, 1, 2],
                           [True, True, True, False])
    np.testing.assert_allclose(topo.masses, [12.011, 78.971, 2.014, 65.38])
    assert topo.is_heavy.tolist() == [True, True, False, True]
    with pytest.raises(InputError, match=r"ligand atom 1 \(X1\) .* element 'Xx'"):
        ComplexTopology(["C", "Xx", "C"], ["C1", "X1", "CA"], ["LIG", "LIG", "ALA"], [1, 1, 2], [True, True, False])
    # an unknown element in the receptor does not matter to the ligand's centre of mass
    assert np.isnan(ComplexTopology(["C", "Xx"], ["C1", "X"], ["LIG", "UNK"], [1, 2], [True, False]).masses[1])


def test_kabsch_recovers_rigid_motion():
    g = torch.Generator().manual_seed(0)
    p = torch.randn(10, 3, generator=g, dtype=torch.float64)
    r = random_rotation(g)
    q = p @ r.T + torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64)
    rot, pc, qc = kabsch_rotation(p, q)
    torch.testing.assert_close(rot, r, atol=1e-10, rtol=0)
    torch.testing.assert_close((p - pc) @ rot.T + qc, q, atol=1e-10, rtol=0)
    frames = torch.stack([p, q, q @ r.T])
    torch.testing.assert_close(align_frames(frames, p, torch.ones(10, dtype=torch.bool)), p.expand(3, -1, -1),
                               atol=1e-9, rtol=0)


def test_clash_metric_hand_made():
    pocket = torch.tensor([[0.0, 0.0, 0.0], [10.0, 0.0, 0.0]], dtype=torch.float64)
    close = torch.tensor([[[2.0, 0.0, 0.0]]], dtype=torch.float64)            # 2.0 Å < 2.2 Å: clash
    far = torch.tensor([[[3.0, 0.0, 0.0]]], dtype=torch.float64)              # 3.0 Å: no clash
    assert bool(clash_mask(close, pocket)) and not bool(clash_mask(far, pocket))
    torch.testing.assert_close(min_pair_distance(torch.cat([close, far]), pocket),
                               torch.tensor([2.0, 3.0], dtype=torch.float64))
    # closed form of the smooth energy: relu(2.2 + 0.3 - d)^2
    torch.testing.assert_close(clash_energy(close, pocket), torch.tensor([(CLASH_DISTANCE + 0.3 - 2.0) ** 2],
                                                                          dtype=torch.float64))
    assert float(clash_energy(far, pocket)) == 0.0
    path = torch.cat([far, close, far])
    assert path_clashes(path, pocket) == 1
    # finite-difference check of the energy gradient (used by guidance and projection)
    x = torch.tensor([[[2.1, 0.3, -0.2]]], dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(clash_energy(x, pocket).sum(), x)
    eps = 1e-6
    for k in range(3):
        dx = torch.zeros_like(x)
        dx[..., k] = eps
        fd = (clash_energy(x + dx, pocket) - clash_energy(x - dx, pocket)).detach() / (2 * eps)
        assert abs(float(fd) - float(g[..., k])) < 1e-6


def test_pocket_extraction_ring(make_ring):
    cx = make_ring()
    idx = pocket_indices(cx.topology, cx.positions, 5.0, whole_residues=False)
    assert list(idx[:3]) == [8, 9, 10] and len(idx) == 11                 # ligand first, then all 8 ring atoms
    with pytest.raises(InputError, match="empty pocket"):
        pocket_indices(cx.topology, cx.positions, 1.0)


@pytest.mark.skipif(not PROLIF.is_dir(), reason="shared prolif data not present")
def test_real_bound_md_has_no_clashes():
    """Bound-state MD of a real protein-ligand complex (ProLIF test trajectory) never clashes by our metric."""
    d = np.load(PROLIF / "ligand_pocket_8A.npz")
    x = torch.as_tensor(d["coords_A"][::5], dtype=torch.float64)
    heavy = d["element"] != "H"
    lig, poc = torch.as_tensor(d["is_ligand"] & heavy), torch.as_tensor(~d["is_ligand"] & heavy)
    dmin = torch.stack([min_pair_distance(f[lig], f[poc]) for f in x])
    assert float(dmin.min()) > CLASH_DISTANCE
    # pushing the ligand 2 Å into the protein makes clashes appear
    centre = x[0, poc].mean(0) - x[0, lig].mean(0)
    pushed = x[0, lig] + 2.0 * centre / centre.norm()
    assert float(min_pair_distance(pushed, x[0, poc])) < float(dmin[0])


def test_sphere_w1_closed_forms():
    z = np.array([[0.0, 0.0, 1.0]] * 4)
    assert sphere_w1(z, z) == pytest.approx(0.0, abs=1e-12)
    th = 0.7
    y = np.array([[np.sin(th), 0.0, np.cos(th)]] * 4)
    assert sphere_w1(z, y) == pytest.approx(th, abs=1e-9)
    # half at the north pole, half at the south pole vs all at the north pole: W1 = pi / 2
    mixed = np.concatenate([z[:2], -z[:2]])
    assert sphere_w1(mixed, z) == pytest.approx(np.pi / 2, abs=1e-9)
    assert split_half_w1(np.repeat(z, 3, 0), generator=torch.Generator().manual_seed(0)) == pytest.approx(0.0)
    with pytest.raises(InputError, match="directions"):
        sphere_w1(np.zeros((0, 3)), z)
    for row in ([0.0, 0.0, 0.0], [np.nan, 0.0, 1.0]):      # no direction: not a perfect match (W1 was 0 before)
        with pytest.raises(InputError, match=r"second set has zero-length or non-finite vectors \(rows \[1\]"):
            sphere_w1(z, np.array([[0.0, 0.0, 1.0], row]))


@pytest.mark.parametrize("axis", [(0.0, 0.0, 1.0), (1.0, 0.0, 0.0), (0.3, -0.8, 0.5)])
def test_hydrogens_of_a_ligand_with_collinear_heavy_atoms_follow_its_axis(axis):
    """Kabsch on collinear heavy atoms (a C-O ligand) leaves the spin about their axis arbitrary: the hydrogens
    moved by up to 1.8 A even in frame 0 (the bound pose), depending on how the axis lay."""
    from sciflow.domains.molecules.complexes import Complex
    from sciflow.methods.unbinding.encoding import place_hydrogens
    a = np.asarray(axis) / np.linalg.norm(axis)
    perp = np.cross(a, [0.0, 0.0, 1.0] if abs(a[2]) < 0.9 else [1.0, 0.0, 0.0])
    perp /= np.linalg.norm(perp)
    lig = np.array([[0, 0, 0], 1.43 * a, -0.36 * a + 1.0 * perp, 1.43 * a + 0.96 * np.cross(a, perp)])
    pos = np.concatenate([lig + 5.0, [[9.0, 9.0, 9.0], [-3.0, 2.0, 1.0]]])
    topo = ComplexTopology(["C", "O", "H", "H", "C", "C"], ["C1", "O1", "H1", "HO", "CA", "CB"],
                           ["LIG"] * 4 + ["ALA"] * 2, [1] * 4 + [2] * 2, [True] * 4 + [False] * 2)
    cx = Complex(topo, pos)
    heavy = np.array([0, 1])
    bound = torch.as_tensor(pos[:4], dtype=torch.float64)
    q = random_rotation(torch.Generator().manual_seed(3), dtype=torch.float64)
    moved = (bound[:2] - bound[:2].mean(0)) @ q.T + bound[:2].mean(0) + torch.tensor([0.5, -1.0, 2.0],
                                                                                         dtype=torch.float64)
    out = place_hydrogens(cx, torch.stack([bound[:2], moved]), heavy)
    torch.testing.assert_close(out[0], bound, atol=1e-9, rtol=0)          # frame 0 is the bound pose, hydrogens too
    # every bond length to the heavy atoms is kept in the moved frame (a rigid motion of the whole ligand)
    torch.testing.assert_close(torch.cdist(out[1], out[1]), torch.cdist(bound, bound), atol=1e-9, rtol=0)
    torch.testing.assert_close(out[1, :2], moved)
