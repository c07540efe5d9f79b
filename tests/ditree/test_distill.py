"""The distilled flow map: it reproduces the U-Net's Euler sampler, saves with the model and plans feasibly."""
import pytest
import torch

from sciflow.core.errors import InputError
from sciflow.core.random import make_generator
from sciflow.domains.robots import verify_plan
from sciflow.methods.ditree import DiTree
from sciflow.methods.ditree.distill import collect_conditions, distill_head, euler_chunks
from sciflow.methods.ditree.policy import FlowMapHead, integrate_chunks, sample_chunks


def _model(**kw):
    torch.manual_seed(0)
    return DiTree(widths=(8, 16), map_dim=16, cond_dim=16, batch=16, **kw)


def test_flow_map_head_shapes_and_identity_offset(gen):
    head = FlowMapHead(16, 8, (32,))
    x0, c = torch.randn(5, 16, 2, generator=gen), torch.randn(5, 8, generator=gen)
    y = head(x0, c)
    assert y.shape == (5, 16, 2)
    torch.nn.init.zeros_(head.mlp.net[-1].weight)
    torch.nn.init.zeros_(head.mlp.net[-1].bias)
    assert torch.equal(head(x0, c), x0)                       # zero residual: the identity map


def test_euler_chunks_in_pieces_equal_one_call(gen):
    net = _model().model.eval()
    x0, c = torch.randn(10, 16, 2, generator=gen), torch.randn(10, 16, generator=gen)
    with torch.no_grad():
        whole = integrate_chunks(net, x0, c, 3)
    assert torch.allclose(euler_chunks(net, x0, c, 3, rows=3), whole, atol=1e-6)


def test_distilled_head_reproduces_the_teacher(open_scenario, wall_scenario):
    model = _model()
    conds = collect_conditions(model, [open_scenario, wall_scenario], iterations=40, progress=False)
    assert conds.shape[1] == 16 and conds.shape[0] >= 40
    summary = distill_head(model, conds, teacher_steps=2, hidden=(64, 64), steps=600, batch_size=256, lr=3e-3,
                           progress=False)
    # held-out rows: the head's squared error is a small fraction of the teacher's spread across conditions
    assert summary["heldout_mse"] < 0.1 * summary["heldout_target_variance"]
    assert model.model.head is not None and model.config()["head_hidden"] == [64, 64]
    # the head's samples follow the teacher's from the same noise draws
    g1, g2 = make_generator(5), make_generator(5)
    with torch.no_grad():
        a = sample_chunks(model.model, conds[:32], 2, g1)
        b = sample_chunks(model.model, conds[:32], 2, g2, head=True)
    assert ((a - b) ** 2).mean() < 0.1 * ((a - a.mean(0)) ** 2).mean()


def test_head_saves_loads_and_plans_feasibly(tmp_path, open_scenario, tick_clock):
    model = _model()
    conds = collect_conditions(model, [open_scenario], iterations=4, progress=False)
    distill_head(model, conds, steps=50, batch_size=64, hidden=(32,), progress=False)
    model.set_sampling(use_head=True)
    model.save(tmp_path / "m")
    back = DiTree.load(tmp_path / "m")
    assert back.config()["use_head"] and back.info["distill"]["steps"] == 50
    x0, c = torch.randn(4, 16, 2), torch.randn(4, 16)
    with torch.no_grad():
        assert torch.equal(back.model.head(x0, c), model.model.head(x0, c))
    res = back.solve(open_scenario, generator=make_generator(2))          # 5 s budget: 500 clock ticks (tick_clock)
    assert res.success and verify_plan(open_scenario, res.states, res.controls)["ok"]
    assert bool(open_scenario.goal.contains(res.states[-1]))
    assert back.planner("ditree").sampler.primary.head                    # the head is the default sampler
    assert not back.planner("ditree", head=False).sampler.primary.head     # and the U-Net stays available


def test_head_options_are_checked(open_scenario):
    with pytest.raises(InputError, match="use_head"):
        DiTree(use_head=True)
    model = _model()
    with pytest.raises(ValueError, match="head"):
        model.sampler(head=True)
    with pytest.raises(InputError, match="use_head"):
        model.set_sampling(use_head=True)
    with pytest.raises(InputError, match="random_frac"):
        model.set_sampling(random_frac=1.5)
    with pytest.raises(InputError, match="conds"):
        distill_head(model, torch.zeros(30, 7))
    with pytest.raises(InputError, match="teacher_steps"):
        distill_head(model, torch.zeros(30, 16), teacher_steps=0)
