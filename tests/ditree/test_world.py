"""Collision checks on known configurations; soundness of the certified clearance against exact geometry."""
import math

import pytest
import torch

from sciflow.core.errors import InputError
from sciflow.domains.robots import Car, CollisionChecker, World, grid_to_rectangles


def _world():
    return World([0, 0, 6, 4], rectangles=[[2.0, 1.0, 3.0, 3.0]], discs=[[5.0, 1.0, 0.4]])


def test_exact_distance_closed_forms():
    w = _world()
    pts = torch.tensor([[1.5, 2.0], [2.5, 2.0], [3.5, 3.5], [5.0, 2.0], [0.1, 2.0], [6.5, 1.0]], dtype=torch.float64)
    d = w.exact_distance(pts)
    # left of the box (0.5), inside the box (0), corner (3.5,3.5)-(3,3) vs top wall 0.5, disc 1.0-0.4, wall 0.1, out
    expected = [0.5, 0.0, min(math.hypot(0.5, 0.5), 0.5), 0.6, 0.1, 0.0]
    assert torch.allclose(d, torch.tensor(expected, dtype=torch.float64), atol=1e-12)


def test_field_is_within_half_a_cell_diagonal_and_clearance_is_sound(gen):
    w = _world()
    pts = torch.rand(4000, 2, generator=gen, dtype=torch.float64) * torch.tensor([6.0, 4.0], dtype=torch.float64)
    exact = w.exact_distance(pts)
    field = w.distance(pts.float()).double()
    assert float((field - exact).abs().max()) <= w.margin + 1e-6
    assert bool((w.clearance(pts.float()).double() <= exact + 1e-6).all())        # never optimistic
    r = 0.2
    free = ~w.points_collide(pts.float(), r)
    assert bool((exact[free] >= r - 1e-6).all())


def test_car_footprint_known_configurations():
    w = _world()
    car = Car()
    chk = CollisionChecker(car, w)
    p = car.p
    front = p.length - p.rear_overhang
    # facing the box's left face (x = 2.0): nose at 2.0 - gap
    def at(gap):
        return torch.tensor([2.0 - gap - front, 2.0, 0.0, 0.0, 0.0])
    assert not bool(chk.states_valid(at(-0.05)))           # nose inside the box
    assert not bool(chk.states_valid(at(0.0)))             # touching
    assert bool(chk.states_valid(at(0.4)))                 # 40 cm clear
    # parked alongside the disc, 0.5 m to its left with the body axis vertical
    assert bool(chk.states_valid(torch.tensor([5.0 - 0.4 - 0.5, 0.8, math.pi / 2, 0.0, 0.0])))
    assert not bool(chk.states_valid(torch.tensor([5.0, 0.2, math.pi / 2, 0.0, 0.0])))
    # outside the map or across the boundary
    assert not bool(chk.states_valid(torch.tensor([0.05, 2.0, 0.0, 0.0, 0.0])))
    assert chk.state_valid_scalar(0.8, 2.0, 0.0) and not chk.state_valid_scalar(2.5, 2.0, 0.0)


def test_exact_clearance_is_the_footprint_distance_and_bounds_the_certified_one(gen):
    w = _world()
    car = Car()
    chk = CollisionChecker(car, w)
    p = car.p
    # nose disc facing the box's left face (x = 2.0) with a 1 cm gap between the disc and the face
    x_rear = 2.0 - 0.01 - chk.radius - p.disc_offsets[-1]     # chk.radius: the discs widened by the sweep
    st = torch.tensor([x_rear, 2.0, 0.0, 0.0, 0.0], dtype=torch.float64)
    assert abs(float(chk.exact_clearance(st)) - 0.01) < 1e-12
    assert not bool(chk.states_valid(st.float()))          # 1 cm is inside the field's conservative margin
    states = torch.rand(3000, 5, generator=gen, dtype=torch.float64) * torch.tensor([6.0, 4.0, 6.3, 0, 0],
                                                                                   dtype=torch.float64)
    exact, cert = chk.exact_clearance(states), chk.clearance(states.float()).double()
    assert bool((cert <= exact + 1e-6).all())                          # the certified bound is never optimistic
    assert float((exact - cert).max()) <= 2 * w.margin + 1e-6          # and at most a cell's worth too cautious
    # a margin on the fast check: a state counts as free only with that much certified clearance
    ok0, ok1 = chk.states_valid(states.float()), chk.states_valid(states.float(), 0.1)
    assert bool((ok1 <= ok0).all()) and bool((cert[ok1] >= 0.1 - 1e-6).all())


def test_first_collision_of_an_edge_driving_into_a_wall():
    w = World([0, 0, 10, 4], rectangles=[[5.0, 0.0, 5.2, 4.0]])
    car = Car()
    chk = CollisionChecker(car, w)
    s0 = torch.tensor([[1.0, 2.0, 0.0, 1.5, 0.0]], dtype=torch.float64)
    edge = car.rollout(s0, torch.zeros(1, 40, 2, dtype=torch.float64))          # 4 s straight at 1.5 m/s
    k = int(chk.first_collision(edge.float())[0])
    # the nose reaches x = 5.0 when x_rear + (length - overhang) >= 5.0 (minus the covering-disc bulge)
    x_rear = edge[0, :, 0]
    nose = x_rear + car.p.length - car.p.rear_overhang
    exact_first = int((nose >= 5.0 - 1e-9).nonzero()[0])
    assert k <= exact_first                                      # conservative: never later than the true contact
    assert float(x_rear[k - 1] + car.p.disc_offsets[-1] + car.p.disc_radius) >= 5.0 - w.margin - 0.08
    assert bool(chk.edges_valid(edge[:, :k].float())) and not bool(chk.edges_valid(edge[:, : k + 1].float()))


def test_grid_worlds_match_rectangle_worlds():
    cells = [[0, 0, 0, 0], [0, 1, 1, 0], [0, 0, 1, 0]]
    boxes = grid_to_rectangles(torch.tensor(cells).numpy(), (0.0, 0.0), 0.5)
    assert boxes.tolist() == [[0.5, 0.5, 1.5, 1.0], [1.0, 1.0, 1.5, 1.5]]
    g = World([0, 0, 2, 1.5], grid={"origin": [0, 0], "resolution": 0.5, "cells": cells})
    r = World([0, 0, 2, 1.5], rectangles=boxes.tolist())
    assert torch.equal(g.field, r.field)


def test_bad_worlds_are_rejected():
    with pytest.raises(InputError, match="map.bounds"):
        World([0, 0, -1, 3])
    with pytest.raises(InputError, match=r"map.rectangles\[1\]"):
        World([0, 0, 5, 5], rectangles=[[1, 1, 2, 2], [3, 3, 2, 4]])
    with pytest.raises(InputError, match=r"map.discs\[0\]"):
        World([0, 0, 5, 5], discs=[[1, 1, -0.2]])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_field_reads_pick_the_cell_holding_each_point(gen, dtype):
    """``distance`` reads the field at the cell that holds each point (integer cell indices computed directly
    here), and 0 (the ring outside the map) for points off the map, at infinity or NaN."""
    world = World([-1.0, 0.5, 5.0, 4.5], rectangles=[[2, 1, 3, 3]], resolution=0.1)
    pts = (torch.rand(5000, 2, generator=gen, dtype=torch.float64) * 10 - 2.5).to(dtype)
    pts[:4] = torch.tensor([[float("nan"), 1.0], [1.0, float("inf")], [-float("inf"), 2.0], [1e30, -1e30]],
                           dtype=dtype)
    j = torch.floor((pts[:, 0] - world.bounds[0]) / world.resolution)
    i = torch.floor((pts[:, 1] - world.bounds[1]) / world.resolution)
    inside = (i >= 0) & (i < world.rows) & (j >= 0) & (j < world.cols)
    want = torch.zeros(pts.shape[0], dtype=dtype)
    want[inside] = world.field.to(dtype)[i[inside].long(), j[inside].long()]
    assert torch.equal(world.distance(pts), want)
    assert inside.sum() > 1000 and (~inside).sum() > 1000


class _Allocated(Exception):
    """Raised by the stand-ins for the raster constructors: the field was about to be built."""


@pytest.mark.parametrize("bounds", [[0, 0, 300, 300], [0, 0, 1e6, 1e6]])
def test_a_map_too_large_for_its_distance_field_is_refused_before_allocating(bounds, monkeypatch):
    """300 m x 300 m used to take half a minute and gigabytes, 1e6 m x 1e6 m a raw allocation RuntimeError. The
    size is refused before the raster is made: every way the world module builds it (the cell-centre ranges, the
    grid, the exact distances) raises here instead of allocating."""
    import types

    from sciflow.domains.robots import world as world_module

    def refuse(name):
        def f(*a, **k):
            raise _Allocated(name)
        return f
    fake_torch = types.SimpleNamespace(**{k: getattr(torch, k) for k in dir(torch) if not k.startswith("__")})
    for name in ("arange", "meshgrid", "zeros", "empty", "full", "ones", "linspace"):
        setattr(fake_torch, name, refuse(f"torch.{name}"))
    with monkeypatch.context() as m:
        m.setattr(world_module, "torch", fake_torch)
        m.setattr(World, "exact_distance", refuse("World.exact_distance"))
        with pytest.raises(InputError, match=r"map.bounds: .* cells, more than the 4,000,000 allowed") as e:
            World(bounds, discs=[[5.0 + 10 * k, 5.0, 1.0] for k in range(20)])
        assert "resolution 0.05" in str(e.value)
        # the stand-ins do catch a raster: a map within the limit reaches one of them
        with pytest.raises(_Allocated):
            World([0, 0, 10, 10], discs=[[5.0, 5.0, 1.0]])


def test_the_field_limit_counts_cells_so_a_fine_resolution_is_refused_too():
    from sciflow.domains.robots.world import MAX_FIELD_CELLS
    World([0, 0, 100, 100])                                      # 2000 x 2000 cells: the largest allowed size
    assert 2000 * 2000 <= MAX_FIELD_CELLS
    with pytest.raises(InputError, match=r"resolution 0.001 m .* 10000 x 10000"):
        World([0, 0, 10, 10], resolution=0.001)


def test_a_scenario_file_with_huge_bounds_names_the_field(tmp_path):
    from sciflow.domains.robots import load_scenario
    f = tmp_path / "huge.yaml"
    f.write_text("name: huge\nbudget_s: 1\nmap:\n  bounds: [0, 0, 1000000, 1000000]\nstart: [1, 1, 0]\n"
                 "goal: {x: 9, y: 9, radius: 0.5}\n")
    with pytest.raises(InputError, match=r"huge.yaml.map.bounds: .*cells"):
        load_scenario(f)
