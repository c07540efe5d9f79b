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
