"""Shared fixtures of the TS-GEN tests: a few real reactions (shared data when present, else the shipped examples)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "datasets" / "reactions" / "examples"


@pytest.fixture(scope="session")
def example_reactions():
    """The three shipped example reactions (reactant, reference TS, product) as a ReactionSet."""
    from sciflow.data.reactions import ReactionSet
    from sciflow.domains.molecules.io import read_molecules

    ids, z, r, t, p, counts = [], [], [], [], [], []
    for f in sorted(EXAMPLES.glob("*.xyz")):
        mols = read_molecules(f)
        ids.append(f.stem)
        z.append(mols[0].numbers)
        r.append(mols[0].positions)
        t.append(mols[1].positions)
        p.append(mols[2].positions)
        counts.append(len(mols[0]))
    return ReactionSet(np.array(ids), np.concatenate([[0], np.cumsum(counts)]), np.concatenate(z),
                       np.concatenate(r), np.concatenate(p), np.concatenate(t))
