"""Generate reactions at GFN2-xTB: CI-NEB (ASE + tblite) from atom-mapped reactant/product pairs, optionally
refined by a Sella saddle search, written in the triplets layout (and optionally the Transition1x HDF5 layout).

Each finished reaction is saved at once under ``out/items/`` so an interrupted run resumes where it stopped;
a progress bar shows rate and ETA. Energies in the output are xTB energies (eV) of the relaxed end points and
of the TS (climbing image, or the Sella saddle with ``sella=True``).
"""
from __future__ import annotations

import os
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
                           hdf5: bool = False, show_progress: bool = True) -> ReactionSet:
    """Run ``xtb_reaction`` on every pair of ``pairs`` (``pos_ts`` is ignored), resuming from ``out/items``;
    writes ``out/triplets.npz`` (+ ``out/transition1x.h5`` with ``hdf5``) and ``out/cost.json``."""
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
    return _assemble(pairs, out, hdf5)


def _assemble(pairs: ReactionSet, out: Path, hdf5: bool) -> ReactionSet:
    keys = ("pos_reactant", "pos_ts", "pos_product")
    arrays: dict[str, list[Any]] = {k: [] for k in keys}
    scalars: dict[str, list[Any]] = {}
    paths = {}
    for i in range(len(pairs)):
        with np.load(_item_path(out, i, str(pairs.rxn_id[i]))) as d:
            for k in keys:
                arrays[k].append(d[k].astype(np.float32))
            for k in d.files:
                if k not in keys and k != "input_digest" and d[k].ndim == 0:
                    scalars.setdefault(k, []).append(d[k].item())
            paths[i] = d["path"]
    extra = {k: np.asarray(v) for k, v in scalars.items()}
    data = ReactionSet(pairs.rxn_id, pairs.offsets, pairs.atomic_numbers,
                       np.concatenate(arrays["pos_reactant"]), np.concatenate(arrays["pos_product"]),
                       np.concatenate(arrays["pos_ts"]), extra)
    save_triplets(out / "triplets.npz", data)
    if hdf5:
        from .transition1x import write_transition1x
        write_transition1x(out / "transition1x.h5", data, paths=paths)
    cost = {"reactions": len(pairs), "seconds_total": float(np.sum(extra["seconds"])),
            "seconds_per_reaction": float(np.mean(extra["seconds"])),
            "force_calls_total": int(np.sum(extra["force_calls"])),
            "neb_converged_fraction": float(np.mean(extra["neb_converged"])),
            "measured": time.strftime("%Y-%m-%d")}
    atomic_write_json(out / "cost.json", cost)
    return data
