"""Misused method APIs fail early with an InputError naming the argument (never a raw error, never silently)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sciflow.core.errors import InputError
from sciflow.core.random import make_generator
from sciflow.core.training import TrainConfig

# a small reaction: water stretching one O-H bond (elements the default TSGen knows)
Z = np.array([8, 1, 1])
R = np.array([[0.0, 0.0, 0.0], [0.96, 0.0, 0.0], [-0.24, 0.93, 0.0]])
P = np.array([[0.0, 0.0, 0.0], [1.40, 0.0, 0.0], [-0.24, 0.93, 0.0]])


@pytest.fixture(scope="module")
def tsgen():
    from sciflow.methods.tsgen import TSGen
    torch.manual_seed(0)
    return TSGen(hidden=16, n_vectors=4, n_layers=1, element_dim=8, time_dim=8, n_rbf=8, steps=2)


@pytest.fixture(scope="module")
def reactions():
    from sciflow.data.reactions import ReactionSet
    return ReactionSet(rxn_id=np.array(["a", "b"]), offsets=np.array([0, 3, 6]), atomic_numbers=np.tile(Z, 2),
                       pos_reactant=np.concatenate([R, R]), pos_product=np.concatenate([P, P]))


@pytest.fixture
def flow():
    from sciflow.methods.flow import ConditionalFlow
    torch.manual_seed(0)
    return ConditionalFlow(2, hidden=(8,), steps=3)


@pytest.fixture
def scenario():
    from sciflow.domains.robots import Scenario
    return Scenario.from_dict({"name": "open", "budget_s": 5.0, "map": {"bounds": [0, 0, 6, 6]},
                               "start": [1.0, 3.0, 0.0, 0.0, 0.0], "goal": {"x": 4.5, "y": 3.0, "radius": 0.5}})


@pytest.fixture(scope="module")
def ditree():
    from sciflow.methods.ditree import DiTree
    return DiTree(horizon=8, execute=4, widths=(8,), map_dim=8, cond_dim=8, batch=8)


# -- 1. TSGen.predict / generate -----------------------------------------------------------------------
@pytest.mark.parametrize("kw, match", [({"batch_reactions": -1}, "batch_reactions: must be >= 1"),
                                       ({"batch_reactions": 0}, "batch_reactions: must be >= 1"),
                                       ({"batch_reactions": 1.5}, "batch_reactions: expected an integer"),
                                       ({"n": -1}, "n: must be >= 1"), ({"n": 2.0}, "n: expected an integer"),
                                       ({"n": True}, "n: expected an integer")])
def test_tsgen_predict_refuses_bad_counts(tsgen, reactions, kw, match):
    with pytest.raises(InputError, match=match):
        tsgen.predict(reactions, **{"n": 2, **kw})


def test_tsgen_predict_refuses_a_list_and_still_predicts_in_batches(tsgen, reactions):
    with pytest.raises(InputError, match="reactions: expected a ReactionSet"):
        tsgen.predict([((Z, R), (Z, P))], n=1)
    one, _ = tsgen.predict(reactions, n=2, batch_reactions=1, generator=make_generator(0))
    assert one.shape == (2, 6, 3) and np.isfinite(one).all() and not (one == 0).all()


def test_tsgen_generate_pair_form_refuses_a_float_n(tsgen):
    with pytest.raises(InputError, match="n: expected an integer >= 1, got 2.0"):
        tsgen.generate(((Z, R), (Z, P)), 2.0)
    assert tsgen.generate(((Z, R), (Z, P)), 2).states.shape[1] == 6


# -- 2. ConditionalFlow --------------------------------------------------------------------------------
def test_flow_generate_refuses_steps_zero_and_mismatched_x0(flow):
    with pytest.raises(InputError, match="steps: must be >= 1, got 0"):
        flow.generate(None, 4, steps=0)
    for x0, match in [(torch.zeros(7, 2), r"x0: expected shape \(4, 2\)"), (torch.zeros(4, 3), "x0: expected shape"),
                      (torch.zeros(2), "x0: expected shape"), (torch.zeros(4, 2, dtype=torch.long), "floating"),
                      ([[0.0, 0.0]] * 4, "x0: expected a"), (torch.full((4, 2), math.nan), "x0: holds")]:
        with pytest.raises(InputError, match=match):
            flow.generate(None, 4, x0=x0)


def test_flow_generate_casts_x0_of_another_float_dtype_or_numpy(flow):
    x0 = torch.randn(4, 2, generator=make_generator(1))
    ref = flow.generate(None, 4, x0=x0).last
    torch.testing.assert_close(flow.generate(None, 4, x0=x0.double()).last, ref)
    torch.testing.assert_close(flow.generate(None, 4, x0=x0.numpy()).last, ref)


def test_flow_condition_checks(flow):
    from sciflow.methods.flow import ConditionalFlow
    with pytest.raises(InputError, match="condition: this flow is unconditional"):
        flow.generate(torch.ones(3), 4)
    fc = ConditionalFlow(2, cond_dim=1, hidden=(8,), steps=2)
    with pytest.raises(InputError, match=r"condition: expected shape \(1,\) or \(4, 1\), got \(4,\)"):
        fc.generate(torch.ones(4), 4)
    with pytest.raises(InputError, match="condition: expected shape"):
        fc.generate(torch.ones(3, 1), 4)
    assert fc.generate(torch.ones(1), 4).states.shape == (3, 4, 2)


@pytest.mark.parametrize("n, match", [(2.0, "n: expected an integer"), (-3, "n: must be >= 1"),
                                      (True, "n: expected an integer")])
def test_flow_generate_refuses_bad_n(flow, n, match):
    with pytest.raises(InputError, match=match):
        flow.generate(None, n)


@pytest.mark.parametrize("device", ["meta", "cuda:99"])
def test_flow_generate_refuses_an_unusable_device_and_the_model_stays_usable(flow, device):
    with pytest.raises(InputError, match="device"):
        flow.generate(None, 3, device=device)
    assert next(flow.model.parameters()).device.type == "cpu"
    assert flow.generate(None, 3).states.shape == (4, 3, 2)


@pytest.mark.parametrize("dataset, match", [
    ({"x1": torch.randn(20, 2), "x_0": torch.randn(20, 2)}, r"dataset: unknown key\(s\) \['x_0'\]; known: x1, x0, cond"),
    ({"x1": torch.randn(20, 2), "cond": torch.randn(20, 1)}, "dataset.cond: this flow is unconditional"),
    ({"x1": torch.zeros(0, 2)}, r"dataset.x1: holds no samples"),
    ({"x1": torch.randn(20, 2), "x0": torch.zeros(0, 2)}, r"dataset.x0: holds no samples"),
])
def test_flow_fit_refuses_bad_datasets(flow, dataset, match):
    with pytest.raises(InputError, match=match):
        flow.fit(dataset, TrainConfig(steps=2))


@pytest.mark.parametrize("kw, match", [({"solver": "rk5"}, "solver: unknown name 'rk5'"),
                                       ({"solver": "euler_maruyama"}, "solver: euler_maruyama integrates an SDE"),
                                       ({"steps": 0}, "steps: must be >= 1"), ({"batch_size": 0}, "batch_size"),
                                       ({"prior_std": -1}, "prior_std: must be > 0"),
                                       ({"steps": 2.5}, "steps: expected an integer")])
def test_flow_constructor_refuses_bad_settings(kw, match):
    from sciflow.methods.flow import ConditionalFlow
    with pytest.raises(InputError, match=match):
        ConditionalFlow(2, **kw)


# -- 3. n of DiTree, UnbindingFlow, ScatteringCVAEs, MMSB ---------------------------------------------------
@pytest.mark.parametrize("n, match", [(2.5, "n: expected an integer"), (0, "n: must be >= 1")])
def test_ditree_generate_checks_n_before_planning(ditree, scenario, n, match, monkeypatch):
    monkeypatch.setattr(type(ditree), "solve", lambda *a, **k: pytest.fail("planned before checking n"))
    with pytest.raises(InputError, match=match):
        ditree.generate(scenario, n)


@pytest.mark.parametrize("n", [True, 2.0])
def test_unbinding_generate_checks_n(n):
    from sciflow.domains.molecules.complexes import Complex, ComplexTopology
    from sciflow.methods.unbinding import UnbindingFlow
    ang = np.linspace(0, 2 * np.pi, 6, endpoint=False)
    pos = np.concatenate([np.stack([4 * np.cos(ang), 4 * np.sin(ang), np.zeros(6)], 1),
                          [[0.0, 0.0, -0.7], [0.0, 0.0, 0.7]]])
    topo = ComplexTopology(["C"] * 7 + ["O"], [f"A{i}" for i in range(8)], ["RNG"] * 6 + ["LIG"] * 2,
                           [1] * 6 + [2] * 2, [False] * 6 + [True] * 2, "ring")
    model = UnbindingFlow(n_frames=2, hidden=8, n_vectors=2, n_layers=1, steps=2)
    with pytest.raises(InputError, match="n: expected an integer"):
        model.generate(Complex(topo, pos), n)


def test_scattering_generate_checks_n_and_condition_keys():
    from sciflow.methods.scattering import ScatteringCVAEs
    model = ScatteringCVAEs()
    cond = {"sigma_r": 64.0, "g": 0.5, "albedo": 0.999}
    with pytest.raises(InputError, match="n: expected an integer"):
        model.generate(cond, 2.7)
    with pytest.raises(InputError, match=r"condition: unknown key\(s\) radius"):
        model.generate({**cond, "radius": 2.0}, 2)


@pytest.fixture(scope="module")
def mmsb():
    from sciflow.domains.cells import Snapshots
    from sciflow.methods.mmsb import MMSB
    g = torch.Generator().manual_seed(0)
    snaps = Snapshots.from_arrays([torch.randn(20, 2, generator=g, dtype=torch.float64) + k for k in range(3)],
                                  [0.0, 0.5, 1.0])
    model = MMSB(reference="linear", sigma=0.5, noise="additive", rounds=1, n_paths=20, h=0.1)
    model.fit(snaps, seed=0, show_progress=False)
    return model


@pytest.mark.parametrize("n, match", [(2.7, "n: expected an integer"), (True, "n: expected an integer"),
                                      (0, "n: must be >= 1")])
def test_mmsb_trajectories_and_predict_check_n(mmsb, n, match):
    with pytest.raises(InputError, match=match):
        mmsb.trajectories(n)
    with pytest.raises(InputError, match=match):
        mmsb.predict([0.5], n=n)


# -- 4. DiTree planners and budgets ------------------------------------------------------------------
@pytest.mark.parametrize("kind, kw, match", [
    ("ditree", {"random_fraction": 0.0}, r"planner 'ditree': unknown option\(s\) random_fraction"),
    ("ditree", {"batch": 0}, "batch: must be >= 1"), ("ditree", {"execute": 0}, "execute: must be >= 1"),
    ("ditree", {"execute": 9}, r"execute: must be in \[1, horizon=8\]"),
    ("ditree", {"flow_steps": 0}, "flow_steps: must be >= 1"), ("ditree", {"goal_bias": 5.0}, "goal_bias: must be <="),
    ("ditree", {"head": "yes"}, "head: expected True or False"),
    ("ditree", {"random_frac": "a"}, "random_frac: expected a number"),
    ("policy", {"goal_bias": 0.1}, r"planner 'policy': unknown option\(s\) goal_bias"),
    ("sst", {"foo": 1}, r"planner 'sst': unknown option\(s\) foo"), ("sst", {"batch": 0}, "batch: must be >= 1"),
    ("rrt-torch", {"foo": 1}, r"planner 'rrt-torch': unknown option\(s\) foo"),
    ("rrt-torch", {"goal_bias": -0.1}, "goal_bias: must be >="),
])
def test_ditree_planner_options_are_checked(ditree, kind, kw, match):
    with pytest.raises(InputError, match=match):
        ditree.planner(kind, **kw)


@pytest.mark.parametrize("budget", [0, -1, math.nan, math.inf, "2", True])
def test_ditree_budget_is_checked(ditree, scenario, budget):
    from sciflow.methods.ditree.problem import Problem
    with pytest.raises(InputError, match="budget_s"):
        ditree.plan(scenario, budget_s=budget, generator=make_generator(0))
    with pytest.raises(InputError, match="budget_s"):
        ditree.solve(scenario, planner="rrt-torch", budget_s=budget)
    with pytest.raises(InputError, match="budget_s"):
        ditree.planner("rrt-torch").solve(Problem.from_scenario(scenario), budget_s=budget)


# -- 5. scattering render / render_scene -------------------------------------------------------------
def test_render_scene_checks_out_before_rendering(tmp_path, monkeypatch):
    from sciflow.methods.scattering import api
    afile = tmp_path / "afile"
    afile.write_text("x")
    monkeypatch.setattr(api, "render", lambda *a, **k: pytest.fail("rendered before checking out"))
    for out in (afile, afile / "sub"):
        with pytest.raises(InputError, match="out: cannot write into"):
            api.render_scene("sphere", integrator="volpath", spp=1, width=4, height=4, out=out)


def test_render_checks_scene_model_and_options():
    from sciflow.domains.photons.scene import make_scene
    from sciflow.methods.scattering.api import render
    sc = make_scene("sphere", sigma_r=64, albedo=0.999, g=0.5, width=4, height=4)
    with pytest.raises(InputError, match="model: expected a ScatteringCVAEs"):
        render(sc, "cvae", spp=1, progress=False, model=object())
    with pytest.raises(InputError, match=r"volpath: unknown option\(s\) nee_event"):
        render(sc, "volpath", spp=1, progress=False, nee_event=4)
    with pytest.raises(InputError, match="scene: expected a Scene"):
        render(None, "volpath", spp=1, progress=False)
    with pytest.raises(InputError, match="integrator: expected one of"):
        render(sc, "path", spp=1, progress=False)


# -- 6. molecule coordinates given as tensors ------------------------------------------------------------
def test_molecule_and_complex_take_tensors_that_require_grad_and_refuse_meta():
    from sciflow.domains.molecules.complexes import Complex, ComplexTopology
    from sciflow.domains.molecules.io import as_molecule
    x = torch.tensor(R, requires_grad=True)
    mol = as_molecule((torch.as_tensor(Z), x))
    np.testing.assert_array_equal(mol.positions, R)
    assert as_molecule({"numbers": Z, "positions": x}).positions.shape == (3, 3)
    with pytest.raises(InputError, match="molecule.positions: is a meta tensor"):
        as_molecule((Z, torch.empty(3, 3, device="meta")))
    topo = ComplexTopology(["O", "H", "H"], ["O", "H1", "H2"], ["LIG", "HOH", "HOH"], [1, 2, 2],
                           [True, False, False])
    np.testing.assert_array_equal(Complex(topo, x).positions, R)
    with pytest.raises(InputError, match="positions: is a meta tensor"):
        Complex(topo, torch.empty(3, 3, device="meta"))


def test_tsgen_generate_takes_positions_that_require_grad(tsgen):
    traj = tsgen.generate((Z, torch.tensor(R, requires_grad=True)), (Z, P), n=1, generator=make_generator(0))
    ref = tsgen.generate((Z, R), (Z, P), n=1, generator=make_generator(0))
    torch.testing.assert_close(traj.last, ref.last)


def test_sampling_untrained_weights_warns_once_and_trained_weights_do_not(tmp_path, flow):
    """Random weights produce output that looks like a result: say so (once per object), and stay silent after
    fit() and for a saved trained model."""
    import warnings

    from sciflow.core.errors import UntrainedWarning
    from sciflow.methods.flow import ConditionalFlow
    assert not flow.trained
    with pytest.warns(UntrainedWarning, match="untrained"):
        flow.generate(None, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        flow.generate(None, 4)                        # once per object
        data = torch.randn(64, 2, generator=make_generator(0))
        trained = ConditionalFlow(2, hidden=(8,), steps=3)
        trained.fit({"x1": data}, TrainConfig(steps=3, progress=False))
        assert trained.trained
        trained.generate(None, 4)
        back = ConditionalFlow.load(trained.save(tmp_path / "flow"))
        assert back.trained
        back.generate(None, 4)
