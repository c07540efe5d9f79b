"""The egocentric crop rotates with the robot and agrees with exact geometry; target features are in the
robot frame."""
import math

import torch

from sciflow.domains.robots import LocalObservation, World


def _exact_crop(obs, world, x, y, th):
    c = (torch.arange(obs.size, dtype=torch.float64) + 0.5 - obs.size / 2) * obs.cell
    left, fwd = torch.meshgrid(c, c, indexing="ij")
    px = x + fwd * math.cos(th) - left * math.sin(th)
    py = y + fwd * math.sin(th) + left * math.cos(th)
    return world.exact_distance(torch.stack([px, py], -1))


def _agree(obs, world, crop, x, y, th):
    d = _exact_crop(obs, world, x, y, th)
    sure_occ = d < obs.threshold - world.margin
    sure_free = d > obs.threshold + world.margin
    assert bool((crop[sure_occ] == 1).all()) and bool((crop[sure_free] == 0).all())
    return sure_occ, sure_free


def test_crop_agrees_with_exact_geometry_at_any_pose(gen):
    obs = LocalObservation(size=20, cell=0.2)
    world = World([0, 0, 10, 10], rectangles=[[3, 3, 3.2, 7], [5, 6, 8, 6.3]], discs=[[6, 4, 0.6]])
    poses = torch.rand(12, 3, generator=gen, dtype=torch.float64) * torch.tensor([8, 8, 2 * math.pi]) + \
        torch.tensor([1, 1, -math.pi])
    crops = obs.crop(world, poses.float())
    n_sure = 0
    for k in range(12):
        occ, free = _agree(obs, world, crops[k], *poses[k].tolist())
        n_sure += int(occ.sum() + free.sum())
    assert n_sure > 0.9 * 12 * 400                 # almost every cell is decided away from the threshold


def test_wall_ahead_appears_in_the_front_columns_for_every_heading():
    obs = LocalObservation(size=20, cell=0.2)
    for k in range(4):
        th = k * math.pi / 2
        c, s = round(math.cos(th)), round(math.sin(th))
        cx, cy = 5.01 + 1.1 * c, 5.01 + 1.1 * s            # a thin wall 1.05-1.15 m ahead, 3 m wide
        w, h = (0.05, 1.5) if c != 0 else (1.5, 0.05)
        world = World([0, 0, 10, 10], rectangles=[[cx - w, cy - h, cx + w, cy + h]])
        crop = obs.crop(world, torch.tensor([[5.01, 5.01, th]]))[0]
        _agree(obs, world, crop, 5.01, 5.01, th)
        assert int(crop[:, 15].sum()) >= 14 and float(crop[:, :13].sum()) == 0    # column 15: 1.1 m ahead


def test_mirror_symmetry_of_the_crop():
    obs = LocalObservation()
    y0 = 5.013
    world = World([0, 0, 10, 10], discs=[[6.0, y0 + 0.8, 0.3]])           # ahead and to the left
    mirrored = World([0, 0, 10, 10], discs=[[6.0, y0 - 0.8, 0.3]])        # ahead and to the right
    a = obs.crop(world, torch.tensor([[5.0, y0, 0.0]]))[0]
    b = obs.crop(mirrored, torch.tensor([[5.0, y0, 0.0]]))[0]
    occ, free = _agree(obs, world, a, 5.0, y0, 0.0)
    decided = occ | free
    assert bool((a.flip(0)[decided.flip(0)] == b[decided.flip(0)]).all())
    assert float(a[10:, :].sum()) > 0 and float(a[:10, :].sum()) == 0        # left = upper rows


def test_target_features_in_the_robot_frame():
    obs = LocalObservation(max_range=5.0)
    states = torch.tensor([[0.0, 0.0, math.pi / 2], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    targets = torch.tensor([[0.0, 2.0], [1.0, 0.0], [30.0, 0.0]])
    f = obs.target_features(states, targets)
    assert torch.allclose(f[0], torch.tensor([1.0, 0.0, 0.4]), atol=1e-6)      # straight ahead, 2 m
    assert torch.allclose(f[1], torch.tensor([0.0, -1.0, 0.2]), atol=1e-6)     # to the right, 1 m
    assert torch.allclose(f[2], torch.tensor([1.0, 0.0, 1.0]), atol=1e-6)      # saturated at max_range


def test_crop_near_and_beyond_the_map_edge_reads_the_outside_as_occupied(gen):
    """The crop reads a cached occupancy raster with a ring for the outside: it must equal thresholding the
    distance field cell by cell (0 outside the map, so occupied), also for poses off the map and NaN poses."""
    obs = LocalObservation(size=20, cell=0.2)
    world = World([0, 0, 6, 4], rectangles=[[2, 1, 3, 3]], discs=[[5, 1, 0.4]])
    poses = torch.rand(64, 3, generator=gen) * torch.tensor([10.0, 8.0, 2 * math.pi]) - torch.tensor([2.0, 2.0, math.pi])
    poses[0] = torch.tensor([float("nan"), 1.0, 0.0])
    crops = obs.crop(world, poses)
    c = (torch.arange(obs.size, dtype=torch.float32) + 0.5 - obs.size / 2) * obs.cell
    left, fwd = torch.meshgrid(c, c, indexing="ij")
    x, y, th = (poses[:, k, None, None] for k in range(3))
    pts = torch.stack([x + fwd * torch.cos(th) - left * torch.sin(th), y + fwd * torch.sin(th) + left * torch.cos(th)], -1)
    direct = (world.distance(pts) < obs.threshold).float()
    outside = ~world.inside(pts)
    assert bool((crops[outside] == 1).all()) and bool((crops[0] == 1).all())
    assert torch.equal(crops, direct)                  # bit for bit: the policy was trained on these crops
    assert float(world.distance(torch.tensor([[-0.01, 2.0], [3.0, 4.0], [1e9, 1.0], [float("nan"), 1.0]])).abs().max()) == 0
