"""Refine several TS-GEN guesses: a Sella order-1 saddle search (GFN2-xTB) from each, keep the best saddle.

TS-GEN guesses cost milliseconds, the saddle search about a second each, so a chemist can afford several. The
pipeline: draw ``n`` guesses, order them medoid first (smallest mean RMSD to the others), run the same search as
the benchmark's saddle check from each (``saddle_search``: Sella in internal coordinates, or Cartesian with ``internal=False``,
<= ``steps`` steps to ``fmax``, then a finite-difference Hessian; an order-1 saddle = converged with exactly one
imaginary mode), and return

- ``rule="lowest"`` (default): of the guesses that reached an order-1 saddle, the one with the LOWEST xTB energy
  (the kinetically relevant TS when several saddles connect the same end points; no reference is used);
- ``rule="first"``: stop at the first guess (in medoid-first order) that reaches an order-1 saddle (cheaper).

When no search reaches an order-1 saddle the medoid guess's Sella end point is returned, flagged not converged.
Every search gets a fresh xTB calculator: tblite restarts its SCF from the last wavefunction it computed, and a
Sella search that ends near its step budget can flip on such differences, so a shared calculator would make a
search's outcome depend on what was computed before it (and the "first" rule would not be a prefix of "lowest").
An order-1 saddle need not be the saddle of THIS reaction; check it (e.g. an IRC) before trusting it.

tblite, sella and ase are imported inside the functions (the ``chem`` extra).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ...core.errors import InputError, check_bool
from ...core.fields import ATOMIC_NUMBERS
from ...core.training import check_device
from ...domains.molecules.xtb import XTB_METHODS, check_xtb_method
from .evaluate import mean_to_finite_others, pairwise_kabsch
from .model import check_not_diverged

__all__ = ["RULES", "XTB_METHODS", "GuessRefinement", "Refinement", "medoid_order", "refine", "refine_guesses",
           "select"]

#: how the returned saddle is chosen among the converged ones
RULES = ("lowest", "first")


@dataclass
class GuessRefinement:
    """The Sella search from one guess."""

    index: int                      # the guess's index among the n samples
    saddle: bool                    # converged within the budget to exactly one imaginary mode
    converged: bool                 # Sella reached fmax within the budget (any number of imaginary modes)
    n_imaginary: int                # -1 when the search failed (SCF failure)
    energy: float                   # eV at the end point (NaN on failure)
    steps: int
    seconds: float
    positions: np.ndarray = field(repr=False)

    def info(self) -> dict[str, Any]:
        return {"index": self.index, "saddle": self.saddle, "converged": self.converged,
                "n_imaginary": self.n_imaginary, "energy_ev": self.energy, "steps": self.steps,
                "seconds": self.seconds}


@dataclass
class Refinement:
    """The returned geometry and how it was chosen."""

    positions: np.ndarray           # (N, 3) Å, the chosen saddle (or the medoid's end point)
    numbers: np.ndarray
    chosen: int                     # index of the guess it came from
    converged: bool                 # the chosen geometry is an order-1 saddle
    energy: float                   # eV
    rule: str
    guesses: list[GuessRefinement]  # the searches run, in the order run (medoid first)
    seconds_generate: float = 0.0
    seconds_search: float = 0.0

    @property
    def seconds(self) -> float:
        return self.seconds_generate + self.seconds_search

    @property
    def n_saddles(self) -> int:
        return sum(g.saddle for g in self.guesses)

    def atoms(self) -> Any:
        """The chosen geometry as ase.Atoms, with the per-guess records in ``atoms.info``."""
        from ...domains.molecules.io import to_atoms

        return to_atoms(self.numbers, self.positions, self.info())

    def info(self) -> dict[str, Any]:
        return {"chosen": self.chosen, "converged": self.converged, "energy_ev": self.energy, "rule": self.rule,
                "n_saddles": self.n_saddles, "seconds_generate": self.seconds_generate,
                "seconds_search": self.seconds_search, "guesses": [g.info() for g in self.guesses]}


def medoid_order(samples: np.ndarray) -> np.ndarray:
    """Guess indices sorted by mean Kabsch RMSD to the other guesses (the medoid first); samples (n, N, 3)."""
    x = np.asarray(samples)
    n = x.shape[0]
    ok = np.isfinite(x.reshape(n, -1)).all(1)
    d = pairwise_kabsch(x, torch.zeros(x.shape[1], dtype=torch.long), ok[None], fill=0.0)[0]   # one batched call
    return np.argsort(mean_to_finite_others(d, ok), kind="stable")   # a diverged guess goes last


def _check(rule: str, steps: int, fmax: float, internal: bool = True, exact_hessian: bool = True,
           method: str = "GFN2-xTB") -> None:
    check_bool("internal", internal)
    check_bool("exact_hessian", exact_hessian)
    if rule not in RULES:
        raise InputError(f"rule: expected one of {RULES}, got {rule!r}")
    check_xtb_method(method)      # before any sampling or search (a failed SCF counts as "no saddle" there)
    if int(steps) < 1:
        raise InputError(f"steps: must be >= 1, got {steps}")
    if not float(fmax) > 0:
        raise InputError(f"fmax: must be > 0, got {fmax}")


def refine_guesses(numbers: np.ndarray, guesses: np.ndarray, *, rule: str = "lowest", steps: int = 50,
                   fmax: float = 0.05, order: np.ndarray | None = None, method: str = "GFN2-xTB",
                   internal: bool = True, exact_hessian: bool = True) -> Refinement:
    """Saddle searches from guesses (n, N, 3) of one reaction, in ``order`` (default medoid first), each with a
    fresh tblite calculator of ``method``; ``internal=False`` runs Sella in Cartesian coordinates,
    ``exact_hessian=False`` lets Sella estimate the Hessian itself instead of starting from the finite-difference
    xTB one (``saddle_search``)."""
    from ...domains.molecules.xtb import saddle_search, xtb_calculator

    _check(rule, steps, fmax, internal, exact_hessian, method)
    g = np.asarray(guesses, dtype=float)
    z = np.asarray(numbers)
    if g.ndim != 3 or g.shape[0] < 1 or g.shape[1:] != (len(z), 3):
        raise InputError(f"guesses: expected shape (n >= 1, {len(z)}, 3), got {g.shape}")
    if not np.isfinite(g).all():
        raise InputError("guesses: hold NaN or infinite coordinates")
    order = medoid_order(g) if order is None else np.asarray(order, dtype=int)
    if sorted(order.tolist()) != list(range(len(g))):
        raise InputError(f"order: expected a permutation of 0..{len(g) - 1}, got {order.tolist()}")
    done: list[GuessRefinement] = []
    for k in order:
        r = saddle_search(z, g[k], steps=steps, fmax=fmax, calc=xtb_calculator(method), internal=internal,
                          exact_hessian=exact_hessian)
        done.append(GuessRefinement(int(k), bool(r.is_saddle), bool(r.converged), int(r.n_imaginary),
                                    float(r.energy), int(r.steps), float(r.seconds), np.asarray(r.positions, float)))
        if rule == "first" and r.is_saddle:
            break
    return select(z, done, rule)


def select(numbers: np.ndarray, searches: list[GuessRefinement], rule: str = "lowest") -> Refinement:
    """The pick of ``rule`` among searches listed in the order run (the first one: the medoid's). With "first"
    the searches after the first order-1 saddle are dropped (they would not have been run)."""
    _check(rule, 1, 1.0)
    if not searches:
        raise InputError("searches: expected at least one saddle search")
    done = list(searches)
    if rule == "first":
        hit = next((i for i, d in enumerate(done) if d.saddle), len(done) - 1)
        done = done[: hit + 1]
    saddles = [d for d in done if d.saddle and np.isfinite(d.energy)]
    best = min(saddles, key=lambda d: d.energy) if saddles else done[0]   # done[0]: the medoid's end point
    return Refinement(best.positions, np.asarray(numbers), best.index, bool(saddles), best.energy, rule, done,
                      seconds_search=float(sum(d.seconds for d in done)))


def refine(model: Any, reactant: Any, product: Any, n: int = 4, *, rule: str = "lowest", steps: int = 50,
           fmax: float = 0.05, generator: torch.Generator | None = None, device: str | torch.device = "cpu",
           method: str = "GFN2-xTB", internal: bool = True, exact_hessian: bool = True) -> Refinement:
    """Draw ``n`` TS-GEN guesses for one reaction and refine them (see the module doc).

    ``model``: a TSGen; reactant / product as for ``TSGen.generate``. ``result.atoms()`` is the returned TS
    (ase.Atoms, in the frame of ``TSGen.generate``: the reactant's, centred), ``result.guesses`` the per-guess
    records (saddle, energy, steps, seconds)."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or int(n) < 1:
        raise InputError(f"n: must be an integer >= 1, got {n!r}")
    _check(rule, steps, fmax, internal, exact_hessian, method)
    device = check_device(device)
    cond = model.condition([(reactant, product)])          # bad reactions fail here, before any search
    t0 = time.perf_counter()
    traj = model.sample(cond, int(n), generator=generator, device=device)
    check_not_diverged(traj, "reaction")                   # as generate says it (no guesses were passed here)
    x = traj.last.detach().cpu().to(torch.float64).numpy().reshape(int(n), -1, 3)
    seconds_generate = time.perf_counter() - t0
    z = traj.extras[ATOMIC_NUMBERS].cpu().numpy()[: x.shape[1]]
    out = refine_guesses(z, x, rule=rule, steps=steps, fmax=fmax, method=method, internal=internal,
                         exact_hessian=exact_hessian)
    out.seconds_generate = seconds_generate
    return out
