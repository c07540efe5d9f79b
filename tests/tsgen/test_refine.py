"""Refining several TS-GEN guesses with Sella: the choice rules, the medoid order, one real xTB run, bad input."""
from __future__ import annotations

import numpy as np
import pytest

from sciflow.core.errors import InputError
from sciflow.methods.tsgen.refine import GuessRefinement, medoid_order, refine, refine_guesses, select

from .conftest import EXAMPLES, ROOT


def _search(index: int, saddle: bool, energy: float, seconds: float = 1.0) -> GuessRefinement:
    return GuessRefinement(index, saddle, saddle, 1 if saddle else 0, energy, 10, seconds,
                           np.full((3, 3), float(index)))


def test_lowest_rule_picks_the_lowest_energy_saddle_and_ignores_lower_non_saddles():
    runs = [_search(2, False, -10.0), _search(0, True, -5.0), _search(3, True, -7.0), _search(1, True, -6.0)]
    out = select(np.array([1, 1, 8]), runs, "lowest")
    assert out.converged and out.chosen == 3 and out.energy == -7.0
    assert np.all(out.positions == 3.0)
    assert out.n_saddles == 3 and len(out.guesses) == 4 and out.seconds_search == 4.0


def test_first_rule_stops_at_the_first_saddle_and_counts_only_the_searches_run():
    runs = [_search(2, False, -10.0), _search(0, True, -5.0), _search(3, True, -7.0)]
    out = select(np.array([1, 1, 8]), runs, "first")
    assert out.converged and out.chosen == 0 and out.energy == -5.0
    assert [g.index for g in out.guesses] == [2, 0] and out.seconds_search == 2.0


@pytest.mark.parametrize("rule", ["lowest", "first"])
def test_no_saddle_falls_back_to_the_medoid_end_point(rule):
    runs = [_search(1, False, -3.0), _search(0, False, -9.0)]      # the first search run is the medoid's
    out = select(np.array([1, 1, 8]), runs, rule)
    assert not out.converged and out.chosen == 1 and out.energy == -3.0 and len(out.guesses) == 2


def test_medoid_order_puts_the_central_guess_first_and_is_rigid_motion_invariant():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 3))
    d = rng.normal(size=(6, 3))
    c, s = np.cos(0.7), np.sin(0.7)
    rot = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])
    samples = np.stack([x + 0.3 * d, x, (x - 0.1 * d) @ rot.T + 5.0])   # guess 1 lies between 0 and 2
    order = medoid_order(samples)
    assert order[0] == 1 and sorted(order.tolist()) == [0, 1, 2]
    assert order.tolist() == [1, 2, 0]                                  # guess 2 is closer to the centre
    # a diverged guess goes last and leaves the ranking of the others unchanged (it made every mean NaN)
    bad = np.full_like(x, np.nan)
    assert medoid_order(np.concatenate([bad[None], samples])).tolist() == [2, 3, 1, 0]


def test_bad_input_fails_before_any_search():
    z = np.array([8, 1, 1])
    with pytest.raises(InputError, match="n: must be an integer >= 1, got 0"):
        refine(None, None, None, n=0)
    with pytest.raises(InputError, match="n: must be an integer >= 1, got -2"):
        refine(None, None, None, n=-2)
    with pytest.raises(InputError, match="rule: expected one of"):
        refine(None, None, None, n=2, rule="fastest")
    with pytest.raises(InputError, match="steps: must be >= 1, got 0"):
        refine_guesses(z, np.zeros((2, 3, 3)), steps=0)
    with pytest.raises(InputError, match=r"guesses: expected shape \(n >= 1, 3, 3\), got \(2, 4, 3\)"):
        refine_guesses(z, np.zeros((2, 4, 3)))
    with pytest.raises(InputError, match="guesses: hold NaN"):
        refine_guesses(z, np.full((1, 3, 3), np.nan))
    with pytest.raises(InputError, match="order: expected a permutation"):
        refine_guesses(z, np.zeros((2, 3, 3)), order=np.array([0, 0]))
    with pytest.raises(InputError, match="internal: expected True or False, got 'yes'"):
        refine_guesses(z, np.zeros((2, 3, 3)), internal="yes")
    with pytest.raises(InputError, match="internal: expected True or False, got 1"):
        refine(None, None, None, internal=1)


def test_refine_two_guesses_of_a_shipped_reaction_at_xtb():
    pytest.importorskip("tblite")
    pytest.importorskip("sella")
    from sciflow.core.random import make_generator
    from sciflow.domains.molecules.io import read_molecules
    from sciflow.domains.molecules.xtb import xtb_energy
    from sciflow.methods.tsgen import TSGen

    frames = read_molecules(EXAMPLES / "rxn009328.xyz")
    reactant, product = frames[0], frames[-1]
    model = TSGen.load(ROOT / "models" / "tsgen")
    out = refine(model, reactant, product, n=2, generator=make_generator(0))
    atoms = out.atoms()
    assert len(atoms) == len(reactant.numbers) and np.array_equal(atoms.numbers, reactant.numbers)
    assert len(out.guesses) == 2 and sorted(g.index for g in out.guesses) == [0, 1]
    assert isinstance(atoms.info["converged"], bool) and atoms.info["guesses"][0]["steps"] <= 50
    assert all(np.isfinite(g.energy) and g.seconds > 0 for g in out.guesses)
    assert np.isfinite(out.energy) and out.seconds >= out.seconds_search > 0
    saddles = [g for g in out.guesses if g.saddle]
    # seed 0 converges (the no-saddle fallback is tested by test_no_saddle_falls_back_to_the_medoid_end_point)
    assert out.converged and saddles
    assert out.energy == min(g.energy for g in saddles)          # the lowest-energy order-1 saddle is returned
    assert all(g.n_imaginary == 1 and g.converged for g in saddles)
    # a transition state lies above both minima it connects. The end points are the DFT geometries, not xTB
    # minima; relaxing them at xTB could only lower their energies, so being above both unrelaxed energies is
    # the stronger test (measured: TS -507.02 eV, reactant -511.83, product -509.10)
    e_r = xtb_energy(reactant.numbers, reactant.positions)
    e_p = xtb_energy(product.numbers, product.positions)
    assert out.energy > max(e_r, e_p) + 0.5, (out.energy, e_r, e_p)


def test_each_search_is_independent_of_the_order_of_the_searches():
    """A fresh calculator per search: the same guess gives the same end point whichever search ran before it."""
    pytest.importorskip("tblite")
    pytest.importorskip("sella")
    from sciflow.core.random import make_generator
    from sciflow.domains.molecules.io import read_molecules
    from sciflow.methods.tsgen import TSGen

    frames = read_molecules(EXAMPLES / "rxn009328.xyz")
    traj = TSGen.load(ROOT / "models" / "tsgen").generate(frames[0], frames[-1], n=2, generator=make_generator(1))
    x = traj.last.double().numpy().reshape(2, -1, 3)
    a = refine_guesses(frames[0].numbers, x, order=np.array([0, 1]))
    b = refine_guesses(frames[0].numbers, x, order=np.array([1, 0]))
    assert [g.index for g in a.guesses] == [0, 1] and [g.index for g in b.guesses] == [1, 0]
    # equal up to the last bits: tblite's OpenMP reductions may sum in another order from run to run
    for ga, gb in zip(a.guesses, b.guesses[::-1]):
        assert ga.saddle == gb.saddle and ga.steps == gb.steps and abs(ga.energy - gb.energy) < 1e-6
        np.testing.assert_allclose(ga.positions, gb.positions, atol=1e-5)
    assert a.chosen == b.chosen and abs(a.energy - b.energy) < 1e-6


def test_workflow_refine_block_writes_the_refined_saddle(tmp_path):
    pytest.importorskip("tblite")
    pytest.importorskip("sella")
    import csv

    from sciflow.domains.molecules.io import read_molecules
    from sciflow.workflows import run_workflow

    src = tmp_path / "in"
    src.mkdir()
    (src / "rxn009328.xyz").write_text((EXAMPLES / "rxn009328.xyz").read_text())
    wf = {"version": 1, "task": "tsgen", "seed": 0, "device": "cpu", "output": str(tmp_path / "out"),
          "tsgen": {"model": str(ROOT / "models" / "tsgen"), "reactions": str(src), "n_samples": 2,
                    "refine": {"rule": "lowest", "steps": 50}}}
    summary = run_workflow(wf)
    assert summary["outputs"]["refined"] == "refined/"
    (row,) = list(csv.DictReader((tmp_path / "out" / "summary.csv").read_text().splitlines()))
    assert row["refined_saddle"] in ("True", "False") and row["refined_searches"] == "2"
    assert np.isfinite(float(row["refined_energy_eV"])) and int(row["refined_from_sample"]) in (0, 1)
    (ts,) = read_molecules(tmp_path / "out" / row["refined_xyz"])
    assert np.array_equal(ts.numbers, read_molecules(EXAMPLES / "rxn009328.xyz")[0].numbers)


@pytest.mark.parametrize("block, field", [({"rule": "fastest"}, r"tsgen\.refine\.rule: .*got 'fastest'"),
                                          ({"steps": 0}, r"tsgen\.refine\.steps: .*got 0"),
                                          ({"fmax": -1.0}, r"tsgen\.refine\.fmax: .*got -1\.0"),
                                          ({"n": 3}, r"tsgen\.refine\.n: Extra inputs"),
                                          ({"internal": "sometimes"}, r"tsgen\.refine\.internal: .*'sometimes'")])
def test_workflow_refine_block_is_validated_before_any_work(tmp_path, block, field):
    from sciflow.workflows import run_workflow

    wf = {"version": 1, "task": "tsgen", "output": str(tmp_path / "o"),
          "tsgen": {"model": str(ROOT / "models" / "tsgen"), "reactions": str(EXAMPLES), "refine": block}}
    with pytest.raises(InputError, match=field):
        run_workflow(wf)
    assert not (tmp_path / "o" / "xyz").exists()
