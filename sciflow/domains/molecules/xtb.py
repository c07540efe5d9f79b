"""GFN2-xTB helpers (tblite's ASE calculator, ASE NEB, Sella): energies, relaxations, CI-NEB, saddle checks.

Everything imports tblite / ase / sella inside the functions (the ``chem`` extra). Energies in eV, forces in
eV/Å, frequencies in cm^-1 (negative numbers mean imaginary). Run with OMP_NUM_THREADS=1 on shared machines.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...core.errors import InputError, check_bool
from .io import to_atoms

__all__ = [
    "EV_TO_KCAL",
    "IMAG_THRESHOLD",
    "XTB_METHODS",
    "NEBResult",
    "SaddleResult",
    "check_xtb_method",
    "ci_neb",
    "frequencies",
    "hessian",
    "relax",
    "saddle_search",
    "xtb_calculator",
    "xtb_energy",
]

#: 1 eV in kcal/mol
EV_TO_KCAL = 23.060547830619
#: imaginary modes weaker than this (cm^-1) are treated as numerical noise of the finite-difference Hessian
IMAG_THRESHOLD = 50.0
#: the xTB parametrisations tblite's calculator accepts (its names, case as written)
XTB_METHODS = ("GFN2-xTB", "GFN1-xTB", "IPEA1-xTB")


def check_xtb_method(method: Any, field: str = "method") -> str:
    """``method`` if tblite knows it. An unknown name would otherwise fail only at the first energy, inside the
    searches and single points that count a failed SCF as "no result", so it is refused up front."""
    if not isinstance(method, str) or method not in XTB_METHODS:
        close = [m for m in XTB_METHODS if isinstance(method, str) and m.lower() == method.lower()]
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise InputError(f"{field}: expected one of {', '.join(XTB_METHODS)}, got {method!r}{hint}")
    return method


def xtb_calculator(method: str = "GFN2-xTB", charge: int = 0, multiplicity: int = 1) -> Any:
    """tblite's ASE calculator (quiet)."""
    check_xtb_method(method)
    try:
        from tblite.ase import TBLite
    except ImportError as e:
        raise InputError("xtb: needs the tblite package (pip install 'sciflow[chem]')") from e
    return TBLite(method=method, charge=charge, multiplicity=multiplicity, verbosity=0)


def _atoms(numbers: np.ndarray, positions: np.ndarray, calc: Any | None) -> Any:
    a = to_atoms(numbers, positions)
    a.calc = calc if calc is not None else xtb_calculator()
    return a


def xtb_energy(numbers: np.ndarray, positions: np.ndarray, calc: Any | None = None) -> float:
    """Single-point GFN2-xTB energy (eV); NaN when the SCF fails."""
    try:
        return float(_atoms(numbers, positions, calc).get_potential_energy())
    except Exception:  # noqa: BLE001 - tblite raises on SCF failure for broken geometries
        return float("nan")


def relax(numbers: np.ndarray, positions: np.ndarray, *, fmax: float = 0.05, steps: int = 200,
          calc: Any | None = None) -> tuple[np.ndarray, float, int]:
    """BFGS minimisation: (positions, energy eV, steps taken)."""
    from ase.optimize import BFGS

    a = _atoms(numbers, positions, calc)
    opt = BFGS(a, logfile=None)
    opt.run(fmax=fmax, steps=steps)
    return a.get_positions(), float(a.get_potential_energy()), int(opt.nsteps)


def hessian(numbers: np.ndarray, positions: np.ndarray, *, delta: float = 0.005, calc: Any | None = None) -> np.ndarray:
    """(3N, 3N) Cartesian Hessian (eV/Å^2) by central differences of the forces, symmetrised."""
    a = _atoms(numbers, positions, calc)
    x0 = a.get_positions().copy()
    n = len(a)
    h = np.zeros((3 * n, 3 * n))
    for i in range(n):
        for k in range(3):
            f = []
            for s in (1, -1):
                x = x0.copy()
                x[i, k] += s * delta
                a.set_positions(x)
                f.append(a.get_forces().reshape(-1))
            h[3 * i + k] = -(f[0] - f[1]) / (2 * delta)
    a.set_positions(x0)
    return 0.5 * (h + h.T)


def frequencies(numbers: np.ndarray, positions: np.ndarray, hess: np.ndarray) -> np.ndarray:
    """Harmonic frequencies (cm^-1, imaginary as negative), translations and rotations projected out."""
    import torch
    from ase import units

    from .elements import masses_of

    m = masses_of(torch.as_tensor(np.asarray(numbers))).double().numpy()
    x = np.asarray(positions, float)
    com = (m[:, None] * x).sum(0) / m.sum()
    r = x - com
    sq = np.sqrt(m)
    basis = []
    for k in range(3):   # translations
        v = np.zeros_like(r)
        v[:, k] = 1.0
        basis.append((v * sq[:, None]).reshape(-1))
    for k in range(3):   # rotations about the axes
        e = np.zeros(3)
        e[k] = 1.0
        basis.append((np.cross(e, r) * sq[:, None]).reshape(-1))
    q, s, _ = np.linalg.svd(np.stack(basis, 1), full_matrices=False)
    q = q[:, s > 1e-6 * s.max()]
    proj = np.eye(len(q)) - q @ q.T
    w = 1.0 / np.repeat(sq, 3)
    mw = proj @ (w[:, None] * hess * w[None, :]) @ proj
    lam = np.linalg.eigvalsh(mw)
    # drop the projected (zero) rigid-body modes: the q.shape[1] eigenvalues closest to zero
    order = np.argsort(np.abs(lam))
    lam = np.sort(lam[order[q.shape[1]:]])
    s_conv = units._hbar * 1e10 / np.sqrt(units._e * units._amu) / units.invcm
    return np.sign(lam) * np.sqrt(np.abs(lam)) * s_conv


@dataclass
class SaddleResult:
    """Outcome of a Sella first-order saddle search from a guess."""

    converged: bool
    steps: int
    n_imaginary: int
    is_saddle: bool                 # converged within the step budget and exactly one imaginary mode
    energy: float                   # eV at the final geometry
    positions: np.ndarray
    lowest_frequencies: list[float] = field(default_factory=list)
    seconds: float = 0.0


def saddle_search(numbers: np.ndarray, positions: np.ndarray, *, steps: int = 50, fmax: float = 0.05,
                  calc: Any | None = None, imag_threshold: float = IMAG_THRESHOLD,
                  internal: bool = True, exact_hessian: bool = True) -> SaddleResult:
    """Sella (order 1) for at most ``steps`` steps, then a finite-difference Hessian at the end point: a success
    is convergence to fmax within the budget and exactly one imaginary frequency. ``internal`` (default): Sella's
    redundant internal coordinates, ``False``: Cartesian ones. Internal coordinates reached more order-1 saddles
    within 50 steps for every guess source but one on the benchmark's 20 reactions, at about 2x the wall time per
    search (benchmarks/results/tsgen_sella_internal.md). ``exact_hessian`` (default): Sella starts from (and,
    where it would re-estimate curvature, recomputes) the finite-difference xTB Hessian instead of its iterative
    estimate; each Hessian costs 6N force calls, not counted as steps. Chosen on the validation reactions (order-1
    saddles from every TS-GEN sample 82.5 % -> 90.0 %, fewer steps, less wall time;
    benchmarks/results/tsgen_saddle_hessian.md); ``False``: Sella's own iterative estimate."""
    internal, exact_hessian = check_bool("internal", internal), check_bool("exact_hessian", exact_hessian)
    from sella import Sella

    t0 = time.perf_counter()
    a = _atoms(numbers, positions, calc)
    try:
        kw = {}
        if exact_hessian:       # with its own calculator of the same method (no shared SCF history)
            hcalc = type(a.calc)(**a.calc.parameters)
            kw["hessian_function"] = lambda atoms: hessian(numbers, atoms.get_positions(), calc=hcalc)
        opt = Sella(a, order=1, internal=internal, logfile=None, trajectory=None, **kw)
        converged = bool(opt.run(fmax=fmax, steps=steps))
        n_steps = int(opt.nsteps)
    except Exception:  # noqa: BLE001 - SCF failure or a singular step on a broken guess counts as a failed search
        return SaddleResult(False, steps, -1, False, float("nan"), np.asarray(positions, float),
                            seconds=time.perf_counter() - t0)
    x = a.get_positions()
    energy = float(a.get_potential_energy())
    freqs = frequencies(numbers, x, hessian(numbers, x, calc=a.calc))
    n_imag = int((freqs < -imag_threshold).sum())
    return SaddleResult(converged, n_steps, n_imag, converged and n_imag == 1, energy, x,
                        [float(f) for f in freqs[:3]], time.perf_counter() - t0)


@dataclass
class NEBResult:
    """A climbing-image NEB: the highest image is the TS estimate."""

    ts_positions: np.ndarray
    ts_energy: float
    reactant_positions: np.ndarray
    reactant_energy: float
    product_positions: np.ndarray
    product_energy: float
    converged: bool
    steps: int
    force_calls: int                # xTB force/energy evaluations, end-point relaxations included
    seconds: float
    images: list[np.ndarray] = field(default_factory=list)
    energies: list[float] = field(default_factory=list)
    error: str = ""                 # why the band stopped early (e.g. an SCF failure), empty when it ran


def ci_neb(numbers: np.ndarray, reactant: np.ndarray, product: np.ndarray, *, n_images: int = 8,
           fmax: float = 0.05, steps: int = 500, relax_endpoints: bool = True, endpoint_steps: int = 200,
           presteps: int = 150, spring: float = 0.1, method: str = "GFN2-xTB") -> NEBResult:
    """CI-NEB at xTB: relax the endpoints (BFGS), IDPP interpolation of ``n_images`` intermediate images, plain
    NEB to fmax 0.5 (at most ``presteps``), then climbing image to ``fmax`` (at most ``steps`` in total).
    Every image has its own tblite calculator; force calls are counted."""
    from ase.mep import NEB
    from ase.optimize import FIRE

    t0 = time.perf_counter()
    numbers = np.asarray(numbers)
    if relax_endpoints:
        r, er, nr = relax(numbers, reactant, steps=endpoint_steps, calc=xtb_calculator(method))
        p, ep, np_ = relax(numbers, product, steps=endpoint_steps, calc=xtb_calculator(method))
        end_calls = (nr + 1) + (np_ + 1)                 # BFGS evaluates once per step plus the start
    else:
        r, p = np.asarray(reactant, float), np.asarray(product, float)
        er, ep = xtb_energy(numbers, r), xtb_energy(numbers, p)
        end_calls = 2
    import torch

    from .geometry import kabsch_align
    p = kabsch_align(torch.as_tensor(p), torch.as_tensor(r)).numpy()
    images = [to_atoms(numbers, r)] + [to_atoms(numbers, r) for _ in range(n_images)] + [to_atoms(numbers, p)]
    calls = [end_calls]                                  # the cost of the whole search, end points included
    for img in images:   # the end points' energies are computed once (the calculator caches them)
        img.calc = xtb_calculator(method)
    neb = NEB(images, k=spring, climb=False, method="improvedtangent")
    neb.interpolate(method="idpp")
    opt = FIRE(neb, logfile=None)

    def count() -> None:
        calls[0] += n_images
    opt.attach(count, interval=1)
    error = ""
    done = 0
    converged = False
    opt2 = None
    try:
        opt.run(fmax=0.5, steps=presteps)
        done = opt.nsteps
        neb.climb = True
        opt2 = FIRE(neb, logfile=None)
        opt2.attach(count, interval=1)
        converged = bool(opt2.run(fmax=fmax, steps=max(1, steps - done)))
        done += opt2.nsteps
    except Exception as e:  # noqa: BLE001 - an SCF failure on some image ends the band: a failed NEB, reported as such
        error = f"{type(e).__name__}: {e}"
        # steps of both phases: a band that failed while climbing had already run opt's steps and some of opt2's
        done = getattr(opt, "nsteps", 0) + (getattr(opt2, "nsteps", 0) if opt2 is not None else 0)

    def safe_energy(img: Any) -> float:
        try:
            return float(img.get_potential_energy())
        except Exception:  # noqa: BLE001 - an image whose SCF failed has no energy
            return float("nan")
    energies = [er] + [safe_energy(img) for img in images[1:-1]] + [ep]
    inner = np.asarray(energies[1:-1])
    k = 1 + (int(np.nanargmax(inner)) if np.isfinite(inner).any() else n_images // 2)
    return NEBResult(images[k].get_positions(), energies[k], r, er, p, ep, converged, done,
                     calls[0], time.perf_counter() - t0, [img.get_positions() for img in images], energies, error)
