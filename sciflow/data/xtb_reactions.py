"""Generate reactions at GFN2-xTB: CI-NEB (ASE + tblite) from atom-mapped reactant/product pairs, optionally
refined by a Sella saddle search, written in the triplets layout (and optionally the Transition1x HDF5 layout).

Each finished reaction is saved at once under ``out/items/`` so an interrupted run resumes where it stopped;
a progress bar shows rate and ETA. Energies in the output are xTB energies (eV) of the relaxed end points and
of the TS (climbing image, or the Sella saddle with ``sella=True``).

Only reactions with a usable TS become triplets: an item with an error, or with a non-finite energy or coordinate,
is always left out, and so is one whose CI-NEB did not converge unless ``keep_unconverged=True`` (its climbing
image is then no converged saddle estimate; ``neb_converged`` in the output says which). Every item left out is
counted with its reason in ``out/cost.json`` (``left_out``) and on stderr; the per-reaction flags
(``neb_converged``, ``error``, ``sella_saddle`` with Sella) are kept in ``triplets.npz`` and as attributes in
``transition1x.h5``.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import InputError
from ..core.files import atomic_path, atomic_write_json, keep_settings
from ..core.training import progress
from .reactions import ReactionSet, save_triplets

__all__ = ["generate_xtb_reactions", "xtb_reaction"]


def xtb_reaction(numbers: np.ndarray, reactant: np.ndarray, product: np.ndarray, *, n_images: int = 8,
                 fmax: float = 0.05, steps: int = 500, sella: bool = False, sella_steps: int = 100) -> dict[str, Any]:
    """One reaction: relaxed end points, CI-NEB TS, optional Sella refinement; arrays and diagnostics."""
    from ..domains.molecules.xtb import ci_neb, saddle_search

    neb = ci_neb(numbers, reactant, product, n_images=n_images, fmax=fmax, steps=steps)
    out = {"pos_reactant": neb.reactant_positions, "pos_product": neb.product_positions,
           "pos_ts": neb.ts_positions, "energy_reactant": neb.reactant_energy, "energy_product": neb.product_energy,
           "energy_ts": neb.ts_energy, "neb_converged": neb.converged, "neb_steps": neb.steps,
           "force_calls": neb.force_calls, "seconds": neb.seconds, "path": np.stack(neb.images),
           "path_energies": np.asarray(neb.energies),
           "error": neb.error}
    if sella:
        sad = saddle_search(numbers, neb.ts_positions, steps=sella_steps)
        out.update(sella_saddle=sad.is_saddle, sella_steps=sad.steps, seconds=neb.seconds + sad.seconds)
        if sad.is_saddle:
            out.update(pos_ts=sad.positions, energy_ts=sad.energy)
    return out


def _item_path(out: Path, i: int, rxn: str) -> Path:
    return out / "items" / f"{i:06d}_{rxn}.npz"


def _input_digest(numbers: np.ndarray, reactant: np.ndarray, product: np.ndarray) -> str:
    """What a result was computed from: elements and both end geometries (a resumed item must match them)."""
    import hashlib
    h = hashlib.sha256(np.asarray(numbers, dtype=np.int64).tobytes())
    for pos in (reactant, product):
        h.update(np.asarray(pos, dtype=np.float64).tobytes())
    return h.hexdigest()


def _check_item(target: Path, digest: str, rxn: str) -> None:
    with np.load(target) as d:
        found = str(d["input_digest"]) if "input_digest" in d.files else None
    if found != digest:
        why = "made before inputs were recorded" if found is None else "different atoms or end geometries"
        raise InputError(f"out: {target} holds a result for other inputs than reaction {rxn!r} at this index "
                         f"({why}); use a new folder")


def generate_xtb_reactions(pairs: ReactionSet, out: str | os.PathLike, *, n_images: int = 8, fmax: float = 0.05,
                           steps: int = 500, sella: bool = False, sella_steps: int = 100,
                           hdf5: bool = False, keep_unconverged: bool = False,
                           show_progress: bool = True) -> ReactionSet:
    """Run ``xtb_reaction`` on every pair of ``pairs`` (``pos_ts`` is ignored), resuming from ``out/items``;
    writes ``out/triplets.npz`` (+ ``out/transition1x.h5`` with ``hdf5``) and ``out/cost.json``, and returns the
    reactions written. Items with an error or non-finite energies/coordinates are left out, and so are those whose
    CI-NEB did not converge unless ``keep_unconverged`` (it only changes which finished items are written, so a
    resumed run may change it); ``cost.json`` records every item left out and why (``left_out``)."""
    if not isinstance(keep_unconverged, (bool, np.bool_)):
        raise InputError(f"keep_unconverged: expected True or False, got {keep_unconverged!r}")
    out = Path(out)
    (out / "items").mkdir(parents=True, exist_ok=True)
    settings = {"n_images": n_images, "fmax": fmax, "steps": steps, "sella": sella, "sella_steps": sella_steps,
                "method": "GFN2-xTB (tblite)", "neb": "ASE CI-NEB, IDPP, improved tangent, FIRE"}
    keep_settings(out / "settings.json", settings, f"out: {out} holds a run with other settings ({{changed}}); use a "
                                                   "new folder")
    bar = progress(total=len(pairs), desc="xtb-neb", unit="rxn", enabled=show_progress)
    for i in range(len(pairs)):
        rxn = str(pairs.rxn_id[i])
        target = _item_path(out, i, rxn)
        s = pairs.rows(i)
        digest = _input_digest(pairs.atomic_numbers[s], pairs.pos_reactant[s], pairs.pos_product[s])
        if target.is_file():
            _check_item(target, digest, rxn)
        else:
            res = xtb_reaction(pairs.atomic_numbers[s], pairs.pos_reactant[s], pairs.pos_product[s],
                               n_images=n_images, fmax=fmax, steps=steps, sella=sella, sella_steps=sella_steps)
            with atomic_path(target) as tmp, open(tmp, "wb") as f:
                np.savez(f, input_digest=np.asarray(digest), **{k: np.asarray(v) for k, v in res.items()})
        bar.update(1)
    bar.close()
    return _assemble(pairs, out, hdf5, keep_unconverged=bool(keep_unconverged))


_POSITIONS = ("pos_reactant", "pos_ts", "pos_product")
_ENERGIES = ("energy_reactant", "energy_ts", "energy_product")


def _left_out_reason(d: Any, keep_unconverged: bool) -> str | None:
    """Why a finished item must not become a triplet (None: it may): an error, a non-finite energy or coordinate,
    or (unless ``keep_unconverged``) a CI-NEB that did not converge."""
    error = str(d["error"].item()) if "error" in d.files else ""
    if error:
        return f"error: {error}"
    for k in _POSITIONS + _ENERGIES:
        if k not in d.files:
            return f"missing: {k}"
        v = np.asarray(d[k])
        if v.dtype.kind not in "iuf" or not np.isfinite(v).all():
            return f"non-finite: {k}"
    if not keep_unconverged and "neb_converged" in d.files and not bool(d["neb_converged"]):
        return "neb_unconverged"
    return None


def _assemble(pairs: ReactionSet, out: Path, hdf5: bool, *, keep_unconverged: bool = False) -> ReactionSet:
    arrays: dict[str, list[Any]] = {k: [] for k in _POSITIONS}
    scalars: dict[str, list[Any]] = {}
    paths = {}
    kept: list[int] = []
    left_out: list[dict[str, Any]] = []
    seconds, force_calls, converged = [], [], []
    for i in range(len(pairs)):
        rxn = str(pairs.rxn_id[i])
        with np.load(_item_path(out, i, rxn)) as d:
            seconds.append(float(d["seconds"]) if "seconds" in d.files else float("nan"))
            force_calls.append(int(d["force_calls"]) if "force_calls" in d.files else 0)
            converged.append(bool(d["neb_converged"]) if "neb_converged" in d.files else False)
            reason = _left_out_reason(d, keep_unconverged)
            if reason is not None:
                left_out.append({"index": i, "rxn_id": rxn, "reason": reason})
                continue
            kept.append(i)
            for k in _POSITIONS:
                arrays[k].append(d[k].astype(np.float32))
            for k in d.files:
                if k not in _POSITIONS and k != "input_digest" and d[k].ndim == 0:
                    scalars.setdefault(k, []).append(d[k].item())
            paths[len(kept) - 1] = d["path"]
    reasons: dict[str, int] = {}
    for item in left_out:
        key = item["reason"].split(":")[0]
        reasons[key] = reasons.get(key, 0) + 1
    cost = {"reactions": len(kept), "items": len(pairs),
            "seconds_total": float(np.nansum(seconds)), "seconds_per_reaction": float(np.nanmean(seconds)),
            "force_calls_total": int(np.sum(force_calls)), "neb_converged_fraction": float(np.mean(converged)),
            "keep_unconverged": keep_unconverged,
            "left_out": {"count": len(left_out), "reasons": reasons, "items": left_out},
            "measured": time.strftime("%Y-%m-%d")}
    if left_out:
        print(f"xtb reactions: {len(left_out)} of {len(pairs)} left out of {out / 'triplets.npz'} "
              f"({', '.join(f'{k}: {v}' for k, v in sorted(reasons.items()))}); see {out / 'cost.json'}",
              file=sys.stderr)
    if not kept:
        atomic_write_json(out / "cost.json", cost)
        raise InputError(f"out: none of the {len(pairs)} reactions in {out} gave a usable transition state "
                         f"({', '.join(f'{k}: {v}' for k, v in sorted(reasons.items()))}); nothing written, see "
                         f"{out / 'cost.json'}" + ("; keep_unconverged=True writes unconverged CI-NEB results"
                                                    if "neb_unconverged" in reasons else ""))
    data = pairs.subset(kept)
    extra = {k: np.asarray(v) for k, v in scalars.items()}
    data = ReactionSet(data.rxn_id, data.offsets, data.atomic_numbers,
                       np.concatenate(arrays["pos_reactant"]), np.concatenate(arrays["pos_product"]),
                       np.concatenate(arrays["pos_ts"]), extra)
    if "sella_saddle" in extra:          # kept, with the CI-NEB image as TS where Sella found no saddle
        cost["sella_not_saddle"] = int(np.sum(~extra["sella_saddle"].astype(bool)))
    save_triplets(out / "triplets.npz", data)
    if hdf5:
        from .transition1x import write_transition1x
        write_transition1x(out / "transition1x.h5", data, paths=paths)
    else:                                # an earlier run's file would not match this triplets.npz
        (out / "transition1x.h5").unlink(missing_ok=True)
    atomic_write_json(out / "cost.json", cost)
    return data
