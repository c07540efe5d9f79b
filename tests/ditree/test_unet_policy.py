"""The temporal U-Net and the flow-matching chunk policy."""
import pytest
import torch

from sciflow.core.errors import InputError
from sciflow.core.training import TrainConfig
from sciflow.methods.ditree import DiTree
from sciflow.methods.ditree.policy import ChunkPolicyNet, sample_chunks
from sciflow.methods.ditree.problem import Problem
from sciflow.nn.unet1d import UNet1D


def test_unet_shapes_conditioning_and_errors(gen):
    net = UNet1D(2, cond_dim=6, widths=(8, 16, 32), kernel_size=3, blocks=1)
    x = torch.randn(4, 2, 16, generator=gen)
    t, c = torch.rand(4, generator=gen), torch.randn(4, 6, generator=gen)
    y = net(x, t, c)
    assert y.shape == x.shape
    assert not torch.allclose(net(x, t, c + 1.0), y)                 # the condition matters
    assert not torch.allclose(net(x, t * 0.5, c), y)                 # the flow time matters
    # batched equals unbatched
    assert torch.allclose(torch.cat([net(x[k:k + 1], t[k:k + 1], c[k:k + 1]) for k in range(4)]), y, atol=1e-5)
    with pytest.raises(ValueError, match="divisible"):
        net(torch.randn(1, 2, 10), t[:1], c[:1])
    with pytest.raises(ValueError, match="cond"):
        net(x, t)


def _toy_demos(n_demos=6, length=30, size=20):
    """Demonstrations whose controls depend on the target side: turn left when the target is to the left."""
    g = torch.Generator().manual_seed(0)
    states, controls, goals, offsets = [], [], [], [0]
    for k in range(n_demos):
        side = 1.0 if k % 2 == 0 else -1.0
        s = torch.zeros(length, 5)
        s[:, 0] = torch.linspace(0, 3, length)
        s[:, 3] = 1.0
        states.append(s)
        controls.append(torch.stack([torch.zeros(length), torch.full((length,), 1.5 * side)], -1))
        goals.append(torch.tensor([3.0, 2.0 * side, 0.5]))
        offsets.append(offsets[-1] + length)
    return {"states": torch.cat(states).numpy(), "controls": torch.cat(controls).numpy(),
            "crops": torch.zeros(n_demos * length, size, size, dtype=torch.uint8).numpy(),
            "offsets": torch.tensor(offsets).numpy(), "goals": torch.stack(goals).numpy(), "g": g}


def test_training_learns_the_target_dependent_steering(open_scenario):
    torch.manual_seed(0)
    demos = _toy_demos()
    # widths of 32+ channels: with 8 GroupNorm groups each group spans several channels, so the per-channel FiLM
    # scale/shift survives the next normalisation (at 8 channels = 8 groups it is normalised away; see UNet1D).
    model = DiTree(widths=(32, 64), map_dim=8, cond_dim=16, batch_size=32, goal_prob=1.0)
    res = model.fit(demos, TrainConfig(steps=200, lr=5e-3, ema_decay=None, progress=False))
    assert res.history[-1] < 0.8 * res.history[0]          # the loss falls
    net = model.model.eval()
    crop = torch.zeros(64, 20, 20)
    states = torch.zeros(64, 5)
    states[:, 3] = 1.0
    for side in (1.0, -1.0):
        target = torch.tensor([[3.0, 2.0 * side]]).expand(64, 2)
        with torch.no_grad():
            cond = net.encode(crop, model.obs.proprio(model.robot, states, target))
            chunk = sample_chunks(net, cond, 8, torch.Generator().manual_seed(1))
        assert float(chunk[..., 1].mean()) * side > 0.4                 # steers towards the target's side
        # and the planner's controls turn the same way
        at = states.clone()
        at[:, :2] = 3.0                                  # the middle of the empty 6 m room: an empty crop
        problem = Problem.from_scenario(open_scenario)
        controls = model.sampler().sample(problem, at, target + 3.0, torch.Generator().manual_seed(2))[0]
        assert float(controls[:, 0, 1].mean()) * side > 0.5


def test_save_load_round_trip(tmp_path):
    model = DiTree(widths=(8, 16), map_dim=16, cond_dim=16)
    model.info["note"] = "x"
    path = model.save(tmp_path / "m")
    back = DiTree.load(tmp_path / "m")
    assert back.config() == model.config() and back.info["note"] == "x"
    crop, pro = torch.rand(3, 20, 20), torch.randn(3, 5)
    x, t = torch.randn(3, 16, 2), torch.rand(3)
    with torch.no_grad():
        a = model.model.eval()(x, t, model.model.encode(crop, pro))
        b = back.model.eval()(x, t, back.model.encode(crop, pro))
    assert torch.equal(a, b) and path.name == "model.pt"


def test_policy_net_declares_its_symmetry():
    assert ChunkPolicyNet.symmetry == "none" and UNet1D.symmetry == "none"


def test_per_node_map_cache_gives_the_uncached_conditions(open_scenario, wall_scenario, gen):
    """Cached map features equal fresh ones; an index whose state changed, or another world, is recomputed."""
    model = DiTree(widths=(8, 16), map_dim=16, cond_dim=16)
    sampler = model.sampler()
    prob, wall = Problem.from_scenario(open_scenario), Problem.from_scenario(wall_scenario)
    states = torch.rand(6, 5, generator=gen) * torch.tensor([6.0, 6.0, 6.0, 1.0, 0.5]) - torch.tensor([0, 0, 3, 0, 0])
    targets = torch.rand(6, 2, generator=gen) * 6
    nodes = torch.tensor([0, 3, 3, 1, 5, 0])            # repeated indices hold repeated states below
    states[2], states[5] = states[1], states[0]
    with torch.no_grad():
        fresh = sampler.conditions(prob, states, targets)
        cached = sampler.conditions(prob, states, targets, nodes)
        again = sampler.conditions(prob, states, targets, nodes)        # served from the cache
        assert torch.allclose(cached, fresh, atol=1e-6) and torch.equal(again, cached)
        moved = states.clone()
        moved[:, :2] = moved[:, :2].flip(0)               # same indices, other states: recomputed
        assert torch.allclose(sampler.conditions(prob, moved, targets, nodes),
                              sampler.conditions(prob, moved, targets), atol=1e-6)
        other = sampler.conditions(wall, states, targets, nodes)      # another world: recomputed
        assert torch.allclose(other, sampler.conditions(wall, states, targets), atol=1e-6)
        big = torch.tensor([5000, 3, 3, 1, 5, 0])                      # the cache grows past its capacity
        assert torch.allclose(sampler.conditions(wall, states, targets, big), other, atol=1e-6)


def test_map_cache_crops_each_node_once_per_batch(open_scenario, gen, monkeypatch):
    """A batch that asks for the same node many times crops it once; the features are the per-row ones."""
    model = DiTree(widths=(8, 16), map_dim=16, cond_dim=16)
    sampler = model.sampler()
    prob = Problem.from_scenario(open_scenario)
    base = torch.rand(3, 5, generator=gen) * torch.tensor([6.0, 6.0, 6.0, 1.0, 0.5]) - torch.tensor([0, 0, 3, 0, 0])
    nodes = torch.tensor([2, 0, 2, 2, 7, 0, 7, 2])
    states = base[torch.tensor([0, 1, 0, 0, 2, 1, 2, 0])]
    rows = []
    crop = sampler.obs.crop
    monkeypatch.setattr(sampler.obs, "crop", lambda world, s: rows.append(s.shape[0]) or crop(world, s))
    with torch.no_grad():
        got = sampler.map_features(prob, states, nodes)
        assert rows == [3]                                    # nodes 0, 2 and 7, once each
        want = model.model.encode_map(crop(prob.world, states))
    assert torch.allclose(got, want, atol=1e-6)


def test_training_refuses_crops_made_with_other_observation_settings():
    """Demonstrations whose crops were cut with 0.2 m cells cannot train a model that observes with 0.1 m cells
    (only the crop size was compared before)."""
    from sciflow.domains.robots.observation import LocalObservation
    demos = _toy_demos()
    demos["meta"] = {"observation": LocalObservation().config()}              # 20 cells of 0.2 m
    with pytest.raises(InputError, match="dataset.meta.observation"):
        DiTree(obs_cell=0.1)._windows(demos)
    assert DiTree()._windows(demos)["states"].shape[0] == demos["states"].shape[0]
