"""Evaluation of TS predictions against reference TSs: Kabsch RMSD (first, ranked, best-of-n), and at GFN2-xTB the
barrier error and the Sella saddle success. Used by ``sciflow tsgen evaluate`` and ``benchmarks/tsgen.py``."""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from ...core.errors import InputError
from ...core.random import make_generator
from ...core.training import progress
from ...data.reactions import ReactionSet
from ...domains.molecules.geometry import kabsch_rmsd

__all__ = ["evaluate", "medoid_index", "pairwise_kabsch", "rmsd_per_reaction", "summarize", "xtb_checks"]


def _diverged(data: ReactionSet, pred: np.ndarray) -> np.ndarray:
    """(R,) True for reactions whose predicted geometry holds a non-finite coordinate (a diverged sample)."""
    bad_rows = ~np.isfinite(np.asarray(pred)).all(axis=-1)
    return np.bincount(data.batch_index().numpy(), weights=bad_rows, minlength=len(data)) > 0


def _kabsch(data: ReactionSet, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(R,) Kabsch RMSD per reaction between geometries a and b (N_total, 3); NaN where either diverged."""
    bad = _diverged(data, a) | _diverged(data, b)
    rows = bad[data.batch_index().numpy()]
    a, b = np.where(rows[:, None], 0.0, a), np.where(rows[:, None], 0.0, b)     # keeps the SVD finite
    d = kabsch_rmsd(torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64),
                    data.batch_index()).numpy()
    return np.where(bad, np.nan, d)


def rmsd_per_reaction(data: ReactionSet, pred: np.ndarray) -> np.ndarray:
    """(R,) Kabsch RMSD (Å, proper rotations) of predicted geometries (N_total, 3) to ``data.pos_ts``; NaN for
    a reaction whose prediction diverged (non-finite coordinates), which ``summarize`` counts as failed."""
    if data.pos_ts is None:
        raise InputError("data: the reference TSs (pos_ts) are needed for RMSD")
    return _kabsch(data, pred, data.pos_ts)


def medoid_index(data: ReactionSet, samples: np.ndarray) -> np.ndarray:
    """(R,) index of each reaction's medoid sample: the one with the smallest mean Kabsch RMSD to the other
    samples of the same reaction (a ranking that needs no reference and no energy)."""
    n = samples.shape[0]
    if n == 1:
        return np.zeros(len(data), dtype=np.int64)
    ok = np.stack([~_diverged(data, samples[k]) for k in range(n)], axis=1)   # (R, n)
    dist = pairwise_kabsch(samples, data.batch_index(), ok)
    return mean_to_finite_others(dist, ok).argmin(-1)


def pairwise_kabsch(samples: np.ndarray, batch: torch.Tensor, ok: np.ndarray, *, fill: float = np.nan,
                    max_rows: int = 1 << 19) -> np.ndarray:
    """(G, n, n) Kabsch RMSD between every two of the n samples (n, N, 3) of each graph (``batch`` (N,) sorted
    graph index, G graphs); 0 on the diagonal, ``fill`` where either sample of graph g diverged (``ok`` (G, n)
    False). One batched ``kabsch_rmsd`` over the n (n - 1) / 2 pairs x G graphs (in chunks of at most
    ``max_rows`` atom rows), each pair (i < j) aligning sample i onto sample j in float64 as a call per pair
    does, with the same per-graph sums: the same distances as the pairwise loop, bit for bit."""
    x = torch.as_tensor(np.asarray(samples), dtype=torch.float64)
    n, n_rows = x.shape[0], x.shape[1]
    ok = np.asarray(ok, dtype=bool)
    g = ok.shape[0]
    dist = np.zeros((g, n, n))
    if n < 2 or g == 0:
        return dist
    batch = torch.as_tensor(batch, dtype=torch.long)
    bad_rows = torch.as_tensor(~ok.T)[:, batch]                                   # (n, N)
    x = torch.where(bad_rows[..., None], torch.zeros((), dtype=x.dtype), x)     # keeps the SVD finite
    ii, jj = torch.triu_indices(n, n, 1)
    per = max(1, int(max_rows) // max(n_rows, 1))                               # pairs per chunk
    d = torch.empty(ii.shape[0], g, dtype=torch.float64)
    for s in range(0, ii.shape[0], per):
        i, j = ii[s: s + per], jj[s: s + per]
        graph = (torch.arange(i.shape[0])[:, None] * g + batch[None, :]).reshape(-1)   # pair-major, sorted
        d[s: s + per] = kabsch_rmsd(x[i].reshape(-1, 3), x[j].reshape(-1, 3), graph).reshape(-1, g)
    ii, jj, d = ii.numpy(), jj.numpy(), d.numpy().T                              # d (G, P)
    d = np.where(ok[:, ii] & ok[:, jj], d, fill)
    dist[:, ii, jj] = dist[:, jj, ii] = d
    return dist


def mean_to_finite_others(dist: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """(..., n) mean distance of each sample to the other finite samples (``ok`` (..., n)), inf for a sample that
    is not finite: a diverged sample is never a medoid and does not count in the others' means (counted as
    infinitely far it made every mean infinite, and the first sample won whether or not it had diverged)."""
    pair = ok[..., :, None] & ok[..., None, :]
    mean = np.where(pair, dist, 0.0).sum(-1) / np.maximum(pair.sum(-1) - 1, 1)
    return np.where(ok, mean, np.inf)


def summarize(values: np.ndarray, prefix: str) -> dict[str, float]:
    """Mean and median over the finite values, and how many values were not finite (a failed xTB calculation
    gives NaN): ``{prefix}_failed`` says how many the mean and median leave out."""
    v = np.asarray(values, dtype=float)
    ok = np.isfinite(v)
    failed = {f"{prefix}_failed": int((~ok).sum())}
    v = v[ok]
    if not v.size:
        return {f"{prefix}_mean": float("nan"), f"{prefix}_median": float("nan"), **failed}
    return {f"{prefix}_mean": float(v.mean()), f"{prefix}_median": float(np.median(v)), **failed}


def xtb_checks(data: ReactionSet, pred: np.ndarray, *, sella_steps: int = 50, desc: str = "xtb",
               on_item: Callable[[int, dict[str, Any]], None] | None = None,
               exact_hessian: bool = True) -> list[dict[str, Any]]:
    """Per reaction: |E_xTB(pred) - E_xTB(reference TS)| (kcal/mol) and a Sella saddle search from ``pred``."""
    from ...domains.molecules.xtb import EV_TO_KCAL, saddle_search, xtb_calculator, xtb_energy

    out = []
    calc = xtb_calculator()
    for i in progress(range(len(data)), desc=desc, unit="rxn"):
        s = data.rows(i)
        z = data.atomic_numbers[s]
        t0 = time.perf_counter()
        if not np.isfinite(pred[s]).all():                 # a diverged sample: nothing to compute
            item = {"rxn_id": str(data.rxn_id[i]), "e_xtb_pred_ev": float("nan"), "e_xtb_ref_ev": float("nan"),
                    "barrier_error_kcal": float("nan"), "saddle": False, "saddle_converged": False,
                    "saddle_steps": 0, "n_imaginary": -1, "seconds": 0.0, "diverged": True}
            out.append(item)
            if on_item is not None:
                on_item(i, item)
            continue
        e_pred = xtb_energy(z, pred[s], calc)
        e_ref = xtb_energy(z, data.pos_ts[s], calc) if data.pos_ts is not None else float("nan")
        # a fresh calculator per search: tblite restarts its SCF from the last wavefunction, and a search near
        # its step budget can flip on that history (the refine pipeline does the same)
        sad = saddle_search(z, pred[s], steps=sella_steps, calc=xtb_calculator(), exact_hessian=exact_hessian)
        item = {"rxn_id": str(data.rxn_id[i]), "e_xtb_pred_ev": e_pred, "e_xtb_ref_ev": e_ref,
                "barrier_error_kcal": abs(e_pred - e_ref) * EV_TO_KCAL, "saddle": sad.is_saddle,
                "saddle_converged": sad.converged, "saddle_steps": sad.steps, "n_imaginary": sad.n_imaginary,
                "seconds": time.perf_counter() - t0}
        out.append(item)
        if on_item is not None:
            on_item(i, item)
    return out


def evaluate(model: Any, data: ReactionSet, *, n_samples: int = 1, steps: int | None = None,
             solver: str | None = None, device: str = "cpu", seed: int = 0, xtb: bool = False,
             limit: int | None = None, sella_steps: int = 50, batch_reactions: int = 256,
             xtb_all_samples: bool = False, exact_hessian: bool = True) -> dict[str, Any]:
    """Metrics of a TSGen model on reactions with reference TSs (keys: rmsd_mean, rmsd_median, n_reactions,
    seconds_per_reaction, ...; with ``xtb`` also barrier_error_kcal_* and saddle_success for the ranked sample,
    and with ``xtb_all_samples`` the same checks from every one of the n samples: saddle_success_all_samples)."""
    if data.pos_ts is None:
        raise InputError("data: evaluation needs the reference TSs (pos_ts)")
    if int(n_samples) < 1:
        raise InputError(f"n_samples: must be >= 1, got {n_samples}")
    if limit is not None:
        data = data.subset(np.arange(min(int(limit), len(data))))
    gen = make_generator(seed)
    samples, seconds = model.predict(data, n_samples, generator=gen, steps=steps, solver=solver, device=device,
                                     batch_reactions=batch_reactions)
    per = np.stack([rmsd_per_reaction(data, s) for s in samples])          # (n, R)
    ranked = medoid_index(data, samples)
    r_idx = np.arange(len(data))
    out: dict[str, Any] = {"n_reactions": len(data), "n_samples": int(n_samples),
                           "solver": solver or model.solver_name, "steps": steps or model.steps,
                           "device": str(device), "seconds_total": seconds,
                           "seconds_per_reaction": seconds / len(data),
                           "seconds_per_ts": seconds / (len(data) * n_samples)}
    out["diverged_samples"] = int(sum(_diverged(data, x).sum() for x in samples))
    out.update(summarize(per[0], "rmsd"))
    out.update(summarize(per[ranked, r_idx], "rmsd_ranked"))
    finite = np.isfinite(per)
    best = np.where(finite.any(0), np.where(finite, per, np.inf).min(0), np.nan)   # over the samples that did not diverge
    out.update(summarize(best, "rmsd_best"))
    out["rmsd_first_per_reaction"] = per[0].tolist()
    out["rmsd_definition"] = ("rmsd_*: first sample; rmsd_ranked_*: medoid of the n samples (no reference "
                              "used); rmsd_best_*: best of n against the reference (oracle); Kabsch, proper "
                              "rotations, Å")
    if xtb:
        chosen = _pick(data, samples, ranked)
        items = xtb_checks(data, chosen, sella_steps=sella_steps, exact_hessian=exact_hessian)
        out["xtb"] = items
        out.update(summarize(np.array([it["barrier_error_kcal"] for it in items]), "barrier_error_kcal"))
        out["saddle_success"] = float(np.mean([it["saddle"] for it in items]))
        out["sella_exact_hessian"] = bool(exact_hessian)
        out["xtb_definition"] = ("for the ranked sample: |E_GFN2-xTB(generated TS) - E_GFN2-xTB(reference TS)| "
                                 "in kcal/mol; saddle: Sella (order 1) converges to fmax 0.05 eV/Å within "
                                 f"{sella_steps} steps and the finite-difference Hessian has exactly one imaginary "
                                 "mode (< -50 cm^-1)")
        if xtb_all_samples:
            # sample order per reaction: the medoid (already checked above), then the others in index order
            every = [items] + [xtb_checks(data, _pick(data, samples, (ranked + j) % len(samples)),
                                          sella_steps=sella_steps, desc=f"xtb sample {j + 1}/{len(samples)}",
                                          exact_hessian=exact_hessian)
                               for j in range(1, len(samples))]
            flat = [it for its in every for it in its]
            out["xtb_all_samples"] = every
            out["saddle_success_all_samples"] = float(np.mean([it["saddle"] for it in flat]))
            out.update(summarize(np.array([it["barrier_error_kcal"] for it in flat]), "barrier_error_kcal_all"))
    return out


def _pick(data: ReactionSet, samples: np.ndarray, which: np.ndarray) -> np.ndarray:
    """(atoms, 3) geometry that takes, for reaction i, sample which[i]."""
    rows = np.arange(samples.shape[1])
    return samples[np.asarray(which)[data.batch_index().numpy()], rows]     # one gather, no loop over reactions
