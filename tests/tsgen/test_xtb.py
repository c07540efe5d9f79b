"""GFN2-xTB helpers: physical sanity of the finite-difference Hessian and frequencies (chem extra)."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tblite")


def test_water_minimum_has_three_real_modes_and_no_imaginary_one():
    from sciflow.domains.molecules.xtb import frequencies, hessian, relax

    z = np.array([8, 1, 1])
    x = np.array([[0.0, 0.0, 0.12], [0.0, 0.76, -0.48], [0.0, -0.76, -0.48]])
    pos, energy, _ = relax(z, x, fmax=0.01)
    freqs = frequencies(z, pos, hessian(z, pos))
    assert len(freqs) == 3                                   # 3N - 6 vibrations
    assert np.all(freqs > 1000) and np.all(freqs < 4500)     # bend ~1500-1600, stretches ~3600-3800 cm^-1
    assert np.sort(freqs)[0] < 2000 < np.sort(freqs)[1]
    d = np.linalg.norm(pos[1] - pos[0])                      # O-H bond length of the relaxed molecule
    assert 0.9 < d < 1.05 and energy < 0


def test_saddle_search_internal_and_cartesian_reach_the_same_order_one_saddle():
    """From a slightly displaced DFT TS of a shipped reaction, Sella in internal coordinates and in Cartesian ones,
    and Sella started from the exact xTB Hessian, all converge to a first-order saddle (one imaginary mode), the
    same one: same energy, same geometry (at a tight fmax; at 0.05 eV/Å the end points still differ by ~6 meV /
    0.05 Å along soft modes)."""
    pytest.importorskip("sella")
    from sciflow.domains.molecules.geometry import kabsch_rmsd
    from sciflow.domains.molecules.io import read_molecules
    from sciflow.domains.molecules.xtb import saddle_search

    from .conftest import EXAMPLES

    ts = read_molecules(EXAMPLES / "rxn009328.xyz")[1]
    x = ts.positions + 0.03 * np.random.default_rng(0).standard_normal(ts.positions.shape)
    cart = saddle_search(ts.numbers, x, steps=100, fmax=0.01, internal=False, exact_hessian=False)
    intl = saddle_search(ts.numbers, x, steps=100, fmax=0.01, internal=True, exact_hessian=False)
    hess = saddle_search(ts.numbers, x, steps=100, fmax=0.01, internal=True)       # the default: exact Hessian
    for r in (cart, intl, hess):
        assert r.converged and r.is_saddle and r.n_imaginary == 1 and r.steps <= 100
        assert r.lowest_frequencies[0] < -50 < r.lowest_frequencies[1]
    import torch
    for r in (intl, hess):
        assert abs(cart.energy - r.energy) < 1e-3                      # eV: the same stationary point
        rmsd = float(kabsch_rmsd(torch.as_tensor(cart.positions), torch.as_tensor(r.positions))[0])
        assert rmsd < 0.01


def test_saddle_search_rejects_a_non_boolean_internal_flag():
    from sciflow.core.errors import InputError
    from sciflow.domains.molecules.xtb import saddle_search

    with pytest.raises(InputError, match="internal: expected True or False, got 'no'"):
        saddle_search(np.array([1, 1]), np.zeros((2, 3)), internal="no")
    with pytest.raises(InputError, match="exact_hessian: expected True or False"):
        saddle_search(np.array([1, 1]), np.zeros((2, 3)), exact_hessian=1)


def test_ci_neb_counts_the_climbing_steps_of_a_band_that_fails_while_climbing(example_reactions, monkeypatch):
    """An SCF failure during the climbing phase ends the band; its reported steps include the climbing steps
    already run (only the pre-climb steps were counted). EMT stands in for xTB and fails after a set number of
    calls."""
    from ase.calculators.emt import EMT

    import sciflow.domains.molecules.xtb as xtb

    state = {"calls": 0, "limit": 10**9}

    class FailingEMT(EMT):
        def calculate(self, *args, **kwargs):
            state["calls"] += 1
            if state["calls"] > state["limit"]:
                raise RuntimeError("SCF failure (simulated)")
            super().calculate(*args, **kwargs)

    monkeypatch.setattr(xtb, "xtb_calculator", lambda *a, **k: FailingEMT())
    s = example_reactions.rows(0)
    z, r, p = example_reactions.atomic_numbers[s], example_reactions.pos_reactant[s], example_reactions.pos_product[s]
    full = xtb.ci_neb(z, r, p, n_images=4, relax_endpoints=False, presteps=3, steps=20)
    assert not full.error and full.steps == 20          # EMT does not converge these bands in 20 steps
    state.update(calls=0, limit=2 + 4 * 10)             # 2 end points, then 10 band evaluations of 4 images
    failed = xtb.ci_neb(z, r, p, n_images=4, relax_endpoints=False, presteps=3, steps=20)
    assert "SCF failure" in failed.error
    assert failed.steps > 3                             # 3 pre-climb steps plus the climbing steps before the failure
