"""Audit fixes: DiTree and UnbindingFlow refuse bad input with an InputError naming the field before any work.

Devices are checked by the shared ``check_device``; a Scenario changed after it was validated is checked again
before planning; a Complex whose pose is not a bound one (non-finite, collapsed, ligand out of its pocket) is
refused when it is encoded; an SDE solver is refused as TS-GEN and ConditionalFlow refuse it.
"""
from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from sciflow.core.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "datasets" / "ditree" / "scenarios" / "maze" / "maze-0003.yaml"
COMPLEXES = ROOT / "datasets" / "unbinding" / "complexes"

# a device name that exists on no machine: refused on CPU-only machines and on GPU ones alike
BAD_DEVICES = ["gpu", "cuda:99"]

needs_ditree = pytest.mark.skipif(not (ROOT / "models" / "ditree" / "model.pt").is_file() or not SCENARIO.is_file(),
                                  reason="shipped DiTree weights or scenario missing")
needs_unbinding = pytest.mark.skipif(not (ROOT / "models" / "unbinding" / "model.pt").is_file()
                                     or not (COMPLEXES / "cb7-b2.pdb").is_file(),
                                     reason="shipped UnbindingFlow weights or complex missing")


@pytest.fixture(scope="module")
def ditree():
    from sciflow.domains.robots import load_scenario
    from sciflow.methods.ditree import DiTree
    return DiTree.load(ROOT / "models" / "ditree"), load_scenario(SCENARIO)


@pytest.fixture(scope="module")
def unbinding():
    from sciflow.data.dissociation import load_complex
    from sciflow.methods.unbinding import UnbindingFlow
    return UnbindingFlow.load(ROOT / "models" / "unbinding"), load_complex(COMPLEXES / "cb7-b2.pdb")


# -- 1. devices ------------------------------------------------------------------------------------
@needs_ditree
@pytest.mark.parametrize("device", BAD_DEVICES)
@pytest.mark.parametrize("call", ["plan", "solve", "generate"])
def test_ditree_bad_device_is_input_error(ditree, call, device):
    model, sc = ditree
    kw = {"generate": {"n": 1}}.get(call, {"budget_s": 0.5})
    with pytest.raises(InputError, match=r"^device: "):
        getattr(model, call)(sc, device=device, **kw)


@needs_unbinding
@pytest.mark.parametrize("device", BAD_DEVICES)
def test_unbinding_bad_device_is_input_error(unbinding, device):
    model, cx = unbinding
    with pytest.raises(InputError, match=r"^device: "):
        model.generate(cx, 1, device=device)


# -- 2. a Scenario changed after validation ---------------------------------------------------------
@needs_ditree
@pytest.mark.parametrize("change, field", [
    ({"start": (5.0, 4.0, 0.0, 0.0, 0.0)}, r"\.start: .*in collision"),
    ({"start": (float("nan"), 9.0, 0.0, 0.0, 0.0)}, r"\.start\.x: .*nan"),
    ({"start": "heading"}, r"\.start\.heading: .*nan"),
    ({"start": (1.0, 2.0)}, r"\.start: expected"),
    ({"budget_s": -1.0}, r"\.budget_s: .*-1"),
    ({"budget_s": float("inf")}, r"\.budget_s: .*inf"),
])
def test_ditree_changed_scenario_refused_before_planning(ditree, change, field, monkeypatch):
    from sciflow.methods.ditree.problem import Problem
    model, sc = ditree
    if change.get("start") == "heading":
        change = {"start": (sc.start[0], sc.start[1], float("nan"), 0.0, 0.0)}
    bad = dataclasses.replace(sc, **change)

    def no_search(*args, **kwargs):                   # refused up front: no planning problem is even built
        raise AssertionError("planning started on a scenario that should have been refused")
    monkeypatch.setattr(Problem, "from_scenario", no_search)
    with pytest.raises(InputError, match=r"^scenario maze-0003" + field):
        model.plan(bad, budget_s=1.0 if "budget_s" not in change else None)
    with pytest.raises(InputError, match=field):           # the planner objects check it too
        model.planner("rrt-torch").solve(bad, budget_s=0.5)


@needs_ditree
def test_ditree_goal_in_obstacle_after_change_refused(ditree):
    model, sc = ditree
    bad = dataclasses.replace(sc, goal=dataclasses.replace(sc.goal, x=5.0, y=4.0))
    with pytest.raises(InputError, match=r"\.goal: .*obstacle"):
        model.generate(bad, 1)


# -- 3, 4. poses that are not a bound complex ------------------------------------------------------
@needs_unbinding
def test_unbinding_nan_set_after_loading_names_the_atom(unbinding):
    model, cx = unbinding
    bad = copy.deepcopy(cx)
    i = int(bad.topology.ligand_index[0])
    bad.positions[i, 0] = np.nan
    with pytest.raises(InputError, match=rf"complex 'cb7-b2': atom {i} \(ligand .*non-finite") as e:
        model.generate(bad, 2)
    assert "steps" not in str(e.value)


@needs_unbinding
def test_unbinding_ligand_out_of_pocket_refused(unbinding):
    from sciflow.domains.molecules.complexes import Complex
    model, cx = unbinding
    pos = cx.positions.copy()
    pos[cx.topology.ligand_index] += 100.0
    with pytest.raises(InputError, match=r"complex 'cb7-b2': the ligand is not in its pocket"):
        model.generate(Complex(cx.topology, pos, receptor_heavy=cx.receptor_heavy), 2)


@needs_unbinding
def test_unbinding_collapsed_ligand_refused(unbinding):
    from sciflow.domains.molecules.complexes import Complex
    model, cx = unbinding
    li = cx.topology.ligand_index
    pos = cx.positions.copy()
    pos[li] = pos[li].mean(0)
    with pytest.raises(InputError, match=r"complex 'cb7-b2': ligand atoms 0 and 1 are 0 Å apart"):
        model.generate(Complex(cx.topology, pos, receptor_heavy=cx.receptor_heavy), 2)


@pytest.mark.skipif(not COMPLEXES.is_dir(), reason="shipped complexes missing")
def test_shipped_bound_poses_pass_with_margin():
    """Every bound pose the project ships (PDB complexes, first frames of the HDF5 replicas) is accepted, its
    nearest ligand-pocket heavy-atom distance at least 2 Å inside the contact threshold."""
    from sciflow.data.dissociation import load_complex, read_dataset
    from sciflow.methods.unbinding.encoding import POCKET_CONTACT_DISTANCE, encode_complex
    poses = [load_complex(p) for p in sorted(COMPLEXES.glob("*.pdb"))]
    for h5 in sorted((ROOT / "datasets" / "unbinding").glob("*.h5")):
        poses += [t.bound for t in read_dataset(h5)]
    assert len(poses) >= 3
    for cx in poses:
        enc = encode_complex(cx)
        near = float(torch.cdist(enc.ligand_pos.double(), enc.pocket_pos.double()).min())
        assert near < POCKET_CONTACT_DISTANCE - 2.0, (cx.name, near)


# -- 5. SDE solvers --------------------------------------------------------------------------------
@needs_unbinding
def test_unbinding_sde_solver_refused_like_tsgen(unbinding):
    from sciflow.methods.unbinding import UnbindingFlow
    model, cx = unbinding
    with pytest.raises(InputError, match=r"^solver: euler_maruyama integrates an SDE"):
        model.generate(cx, 2, solver="euler_maruyama")
    with pytest.raises(InputError, match=r"^solver: euler_maruyama integrates an SDE"):
        UnbindingFlow(solver="euler_maruyama")
    with pytest.raises(InputError, match=r"solver: unknown name 'nope'"):
        model.generate(cx, 2, solver="nope")
