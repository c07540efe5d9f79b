"""The brute-force tracer's tail in block mode (``volpath_blocks.advance_block``) against its event loop: the same
law (other random numbers) for a convex and a non-convex shape, with Russian roulette and the entry-point offset
of a dense medium; the event count; the quaternion helpers both block modes share; the ``tail`` argument.

Every render here issues all its paths at once (spp x pixels <= slots), so with ``tail`` at least that many the
block mode runs from the first pass: every scattering event of those renders is simulated in blocks."""
import math

import numpy as np
import pytest
import torch

from sciflow.core.errors import InputError
from sciflow.core.random import make_generator
from sciflow.domains.photons.phase import hg_sample_cos
from sciflow.domains.photons.quaternions import (
    axis_z,
    frame_of,
    hg_frames,
    hg_rotations,
    qmul,
)
from sciflow.domains.photons.scene import (
    DirectionalLight,
    Medium,
    PinholeCamera,
    Scene,
    SmoothUnion,
    Sphere,
    make_scene,
)
from sciflow.domains.photons.volpath import VolumePathTracer


class _Counting(VolumePathTracer):
    """Each event adds its throughput beta (the next-event estimate replaced by 1 / albedo): at albedo 1 a path's
    radiance is its number of events, in general the sum of its throughputs (the Russian roulette's law)."""

    def direct(self, x, w):
        return torch.full_like(x[:, 0], 1.0 / self.scene.medium.albedo)


def _pair(tracer, scene, spp, seed, **kw):
    """(event loop, block mode) renders of ``scene`` with ``spp`` paths per pixel, all issued at once."""
    n = spp * scene.camera.width * scene.camera.height
    loop = tracer(scene, slots=n, tail=0, **kw).render(spp, generator=make_generator(seed), progress=False)
    blocks = tracer(scene, slots=n, tail=n, **kw).render(spp, generator=make_generator(seed + 1), progress=False)
    assert loop.info["tail_blocks"] == 0 and blocks.info["tail_blocks"] > 0
    assert loop.paths == blocks.paths == n
    return loop, blocks


def _assert_same_means(a, b, what, z_max=4.0):
    """Pixel by pixel and for the whole image, within ``z_max`` combined standard errors."""
    se2 = a.std_error ** 2 + b.std_error ** 2
    lit = se2 > 0
    assert lit.sum() >= 1, what
    z = (a.image - b.image)[lit] / np.sqrt(se2[lit])
    assert np.abs(z).max() < z_max, f"{what}: pixel z {np.round(z, 2)}"
    n = a.image.size
    zt = (a.image.mean() - b.image.mean()) / math.sqrt(se2.sum() / n ** 2)
    assert abs(zt) < z_max, f"{what}: image mean loop {a.image.mean():.5g} vs blocks {b.image.mean():.5g} ({zt:+.2f})"


def _camera(width, fov):
    return PinholeCamera(origin=(0.0, 0.0, 4.0), fov=fov, width=width, height=width)


def _events_are_counted(res):
    """At albedo 1 with the counting tracer the image holds the mean event count of each pixel's paths."""
    return float((res.image * res.samples_per_pixel).sum()) == pytest.approx(res.events, rel=1e-9)


def test_block_mode_renders_a_sphere_like_the_event_loop():
    """Lit from behind and strongly forward scattering (g = 0.7), so the next-event estimate's direction (the
    incoming one, before the scattering) matters; then the mean event count per path at albedo 1 (and
    ``events``, which must equal the paths' counts summed)."""
    light = DirectionalLight(direction=(0.3, 0.1, 0.95), irradiance=3.0)
    scene = Scene(Sphere(), Medium(sigma_t=3.0, albedo=0.97, g=0.7), light, _camera(3, 32.0))
    _assert_same_means(*_pair(VolumePathTracer, scene, 800, 10), "backlit sphere")
    count = Scene(Sphere(), Medium(sigma_t=8.0, albedo=1.0, g=0.5), light, _camera(2, 20.0))
    loop, blocks = _pair(_Counting, count, 500, 20)
    _assert_same_means(loop, blocks, "sphere: events per path")
    assert _events_are_counted(loop) and _events_are_counted(blocks)
    assert blocks.events / blocks.paths > 8


def test_block_mode_renders_non_convex_shapes_like_the_event_loop():
    """Two lobes (a smooth union) seen one behind the other, thin and dark, so most light reaches the far lobe
    through the near one: the state of a path that leaves (its exit point, direction and throughput) decides
    where and how bright it comes back. Then the blob scene (generic SDF marching) counting events."""
    lobes = SmoothUnion(Sphere((-0.8, 0.0, 0.0), 0.5), Sphere((0.8, 0.0, 0.0), 0.5), k=0.01)
    cam = PinholeCamera(origin=(4.0, 0.0, 0.3), target=(0.0, 0.0, 0.0), fov=8.0, width=2, height=2)
    light = DirectionalLight(direction=(-0.3, -0.2, -0.93), irradiance=3.0)
    scene = Scene(lobes, Medium(sigma_t=2.0, albedo=0.5, g=0.6), light, cam)
    _assert_same_means(*_pair(VolumePathTracer, scene, 1500, 30), "lobes")
    _assert_same_means(*_pair(_Counting, scene, 1500, 40), "lobes: sum of throughputs")
    count = make_scene("blob", sigma_r=4.0, albedo=1.0, g=0.6, width=2, height=2)
    loop, blocks = _pair(_Counting, count, 500, 50)
    _assert_same_means(loop, blocks, "blob: events per path")
    assert _events_are_counted(loop) and _events_are_counted(blocks)


def test_block_mode_keeps_the_roulette_and_the_entry_layer_of_a_dense_dark_medium():
    """sigma_t = 2000, albedo 0.7: the throughput falls below the roulette threshold 0.1 after 7 events, so most
    paths end by the roulette, and the light comes from the first mean free paths, where the first flight
    measured from the entry point (not from x, 1e-4 inside: 0.2 mean free paths) matters."""
    light = DirectionalLight(direction=(-0.5, -0.2, -0.84), irradiance=2.0)
    scene = Scene(Sphere(), Medium(sigma_t=2000.0, albedo=0.7, g=0.4), light, _camera(1, 1e-3))
    loop, blocks = _pair(VolumePathTracer, scene, 30000, 60)
    _assert_same_means(loop, blocks, "dense dark sphere")
    assert 6 < blocks.events / blocks.paths < 10          # the roulette ends the paths, not the boundary
    # each path's sum of throughputs: max(0.7^j, 0.1) while it lives, and when it dies
    _assert_same_means(*_pair(_Counting, scene, 40000, 70), "dense dark sphere: sum of throughputs")


def test_a_subclass_with_its_own_event_keeps_the_event_loop():
    """A tracer that replaces medium_event (the learned one) never takes the block mode: the same numbers as the
    event loop, bit for bit."""

    class Own(VolumePathTracer):
        def medium_event(self, x, w, beta, generator):
            return super().medium_event(x, w, beta, generator)

    scene = make_scene("sphere", sigma_r=4.0, albedo=0.99, width=3, height=3)
    a = VolumePathTracer(scene, tail=0).render(20, generator=make_generator(7), progress=False)
    b = Own(scene).render(20, generator=make_generator(7), progress=False)
    assert b.info["tail_blocks"] == 0
    np.testing.assert_array_equal(a.image, b.image)
    assert a.events == b.events


def test_a_budgeted_render_finishes_its_tail_in_blocks():
    scene = make_scene("sphere", sigma_r=8.0, albedo=0.99, g=0.5, width=4, height=4)
    r = VolumePathTracer(scene, slots=256).render(None, time_budget=0.3, generator=make_generator(8), progress=False)
    assert r.info["tail_blocks"] > 0 and r.paths % 16 == 0 and r.paths > 256
    assert np.isfinite(r.image).all() and r.image.max() > 0


def test_scattering_frames_match_hg_sampling_and_a_sequential_loop():
    # (the prefix-product scan itself is checked against a sequential loop in test_walk_tail.py)
    gen = make_generator(9)
    # one scattering: the image of +z under Rz(phi) Ry(theta) is hg_sample's local direction for the same uniforms
    xi = torch.rand(2, 30, 7, generator=gen, dtype=torch.float64)
    for g in (-0.9, 0.0, 0.7):
        mu, sin = hg_sample_cos(torch.tensor(g, dtype=torch.float64), xi[0])
        phi = 2 * math.pi * xi[1]
        local = torch.stack([sin * torch.cos(phi), sin * torch.sin(phi), mu])
        torch.testing.assert_close(axis_z(hg_rotations(g, xi[0], xi[1])), local, atol=1e-12, rtol=0)
    # K scatterings from the frames of directions W: the same directions as K sequential frame updates
    W = torch.nn.functional.normalize(torch.randn(3, 7, generator=gen, dtype=torch.float64), dim=0)
    F = frame_of(W)
    frames = hg_frames(F, 0.5, xi[0], xi[1])
    r = hg_rotations(0.5, xi[0], xi[1])
    for k in range(30):
        F = qmul(F, r[:, k])
        torch.testing.assert_close(axis_z(frames[:, k]), axis_z(F), atol=1e-12, rtol=0)
    torch.testing.assert_close(frames.norm(dim=0), torch.ones(30, 7, dtype=torch.float64), atol=1e-15, rtol=0)


@pytest.mark.parametrize("bad", [-1, True, 2.5, "8", None])
def test_tail_must_be_a_whole_number(bad):
    with pytest.raises(InputError, match="tail"):
        VolumePathTracer(make_scene("sphere", width=2, height=2), tail=bad)
    assert VolumePathTracer(make_scene("sphere", width=2, height=2), tail=np.int64(3)).tail == 3


def test_block_length_adapts_to_the_events_the_paths_use():
    from sciflow.domains.photons.volpath_blocks import block_events
    assert block_events(1000) == 16
    assert block_events(1000, 16, 0.9) == 32 and block_events(1000, 16, 0.3) == 16
    assert block_events(1000, 16, 0.1) == 8 and block_events(1000, 4, 0.0) == 4
    assert block_events(10, 4096, 1.0) == 4096                  # at most k_max
    assert block_events(1 << 14, 64, 1.0) == 16                 # the arrays stay about budget = 2^17 entries
