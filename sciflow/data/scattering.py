"""Chunked generator of Monte Carlo photon walks (the training data of the Scattering CVAEs).

Each chunk draws its conditions from the paper's range (``sample_conditions``) with a generator derived from
(seed, chunk index), simulates one walk per condition and is written atomically as ``chunk_XXXXX.npz``; a
finished chunk is skipped when the command runs again, so an interrupted run resumes where it stopped.
"""
from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..core.errors import InputError
from ..core.files import atomic_path, atomic_write_json, keep_settings, open_npz
from ..core.random import make_generator
from ..core.training.progress import progress
from ..domains.photons.conditions import G_MAX, SIGMA_MAX, check_conditions, sample_conditions
from ..domains.photons.fields import (
    ALBEDO,
    CONDITION_KEYS,
    EXIT_DIR,
    EXIT_POS,
    N_EVENTS,
    RECORD_KEYS,
    SCATTER_DIR,
    SCATTER_INDEX,
    SCATTER_POS,
    SIGMA_R,
    G,
)
from ..domains.photons.walks import simulate_walks

__all__ = ["generate_walk_dataset", "load_walk_dataset", "load_walks", "save_walks"]

_KEYS = CONDITION_KEYS + RECORD_KEYS
_VECTOR_KEYS = (EXIT_POS, EXIT_DIR, SCATTER_POS, SCATTER_DIR)     # (B, 3); every other field is (B,)


def save_walks(path: str | Path, walks: dict[str, Tensor]) -> Path:
    """Write the condition and record fields of a walk batch to ``.npz`` atomically."""
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez_compressed(tmp, **{k: walks[k].detach().cpu().numpy() for k in _KEYS})
    return Path(path)


def _n_walks(path: Path) -> int:
    """Walks in a chunk file, or -1 when it cannot be read or fails ``load_walks``'s checks (a damaged chunk is
    then made again on resume; it gave a raw numpy or zipfile error)."""
    try:
        return int(load_walks(path)[_KEYS[0]].shape[0])
    except (InputError, KeyError, ValueError, OSError):
        return -1


def _check_walks(p: Path, data: dict) -> None:
    """Refuse a walk chunk whose fields disagree in length or shape, hold NaN / inf (it gave a raw error deep in
    training, or trained on NaN) or conditions out of range (``check_conditions``), naming the file. Vectorised:
    one pass per field."""
    n = int(data[_KEYS[0]].shape[0]) if data[_KEYS[0]].ndim else -1
    for k in _KEYS:
        a = data[k]
        want = (n, 3) if k in _VECTOR_KEYS else (n,)
        if tuple(a.shape) != want:
            raise InputError(f"walks: {p} field '{k}' has shape {tuple(a.shape)}, expected {want} (the first "
                             f"dimension of every field is the walk count, {n} in '{_KEYS[0]}'); make this chunk again")
        if a.dtype.kind == "f":
            ok = np.isfinite(a)
            if not ok.all():
                row = int(np.flatnonzero(~ok.reshape(n, -1).all(axis=1))[0])
                raise InputError(f"walks: {p} field '{k}' holds a non-finite value ({a[row].tolist()} in walk "
                                 f"{row}); make this chunk again")
        elif a.dtype.kind not in "iu":
            raise InputError(f"walks: {p} field '{k}' has dtype {a.dtype}, expected numbers")
    # records that cannot come from a walk (they gave "non-finite" errors in training, or trained on them)
    nev, k = np.asarray(data[N_EVENTS]), np.asarray(data[SCATTER_INDEX])
    for name, bad, want in (
            (N_EVENTS, (nev < 1) | (nev != np.round(nev)), "a whole number >= 1"),
            (SCATTER_INDEX, (k < 1) | (k > nev) | (k != np.round(k)), f"a whole number in 1..{N_EVENTS}"),
            (EXIT_POS, np.abs(np.linalg.norm(data[EXIT_POS], axis=1) - 1) > 1e-3, "on the unit sphere"),
            (EXIT_DIR, np.abs(np.linalg.norm(data[EXIT_DIR], axis=1) - 1) > 1e-3, "a unit vector"),
            (SCATTER_DIR, np.abs(np.linalg.norm(data[SCATTER_DIR], axis=1) - 1) > 1e-3, "a unit vector"),
            (SCATTER_POS, np.linalg.norm(data[SCATTER_POS], axis=1) > 1 + 1e-3, "inside the unit sphere")):
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise InputError(f"walks: {p} field '{name}' must be {want}, got {np.asarray(data[name])[row].tolist()} "
                             f"in walk {row}; make this chunk again")
    # conditions in their ranges (|g| < 1, ...): training's own check would not say which file
    check_conditions(*(torch.from_numpy(np.asarray(data[k])) for k in CONDITION_KEYS),
                     names=tuple(f"walks: {p} field '{k}'" for k in CONDITION_KEYS))


def load_walks(path: str | Path) -> dict[str, Tensor]:
    """Read one ``.npz`` written by ``save_walks``; fields of unequal length or shape, or with NaN / inf, are
    refused (InputError naming the file and the field)."""
    p = Path(path)
    with open_npz(p, "walks", "a walk .npz written by `sciflow scattering data`") as f:
        missing = [k for k in _KEYS if k not in f]
        if missing:
            raise InputError(f"walks: {p} lacks the field(s) {', '.join(missing)}")
        data = {k: f[k] for k in _KEYS}
    _check_walks(p, data)
    return {k: torch.from_numpy(v) for k, v in data.items()}


def generate_walk_dataset(out: str | Path, n_walks: int, *, chunk: int = 20000, seed: int = 0,
                          sigma_max: float = SIGMA_MAX, g_max: float = G_MAX, slots: int = 32768,
                          device: str | torch.device = "cpu", show_progress: bool = True) -> dict:
    """Write ceil(n_walks / chunk) chunks of walks to ``out`` and a ``manifest.json``; returns the manifest."""
    if int(n_walks) < 1:
        raise InputError(f"n_walks: must be >= 1, got {n_walks}")
    if int(chunk) < 1:
        raise InputError(f"chunk: must be >= 1, got {chunk}")
    if not 0 < float(sigma_max):
        raise InputError(f"sigma_max: must be > 0, got {sigma_max}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    # chunks found here are kept only when this run would have made them: same settings, same size
    settings = {"seed": int(seed), "chunk": int(chunk), "sigma_max": float(sigma_max), "g_max": float(g_max)}
    recorded = out / "settings.json"
    if not recorded.is_file() and (out / "manifest.json").is_file():      # a folder made before settings.json
        manifest = json.loads((out / "manifest.json").read_text())
        atomic_write_json(recorded, {k: manifest.get(k) for k in settings})
    elif not recorded.is_file() and any(out.glob("chunk_*.npz")):
        raise InputError(f"out: {out} holds chunks without a record of their settings; use another folder")
    keep_settings(recorded, settings, f"out: {out} holds walks made with other settings ({{changed}}); use another "
                                      "folder to make a different set")
    n_chunks = -(-int(n_walks) // int(chunk))
    manifest = {"format": "sciflow.walks/1", "n_walks": int(n_walks), "chunk": int(chunk), "n_chunks": n_chunks,
                "seed": int(seed), "sigma_max": float(sigma_max), "g_max": float(g_max),
                "condition_law": "sigma_r = sigma_max u^3, g ~ U[-g_max, g_max], albedo = 1 - u^6",
                "fields": list(_KEYS)}
    # until every chunk is written the manifest says so: an interrupted run is not loaded as a finished dataset
    atomic_write_json(out / "manifest.json", {**manifest, "complete": False})
    bar = progress(total=int(n_walks), desc="walk dataset", enabled=show_progress, unit="walk")
    seconds, events = 0.0, 0
    for i in range(n_chunks):
        size = min(int(chunk), int(n_walks) - i * int(chunk))
        path = out / f"chunk_{i:05d}.npz"
        if path.is_file() and _n_walks(path) == size:
            bar.update(size)
            continue                            # (a smaller run's partial last chunk is made again, full size)
        gen = make_generator(seed * 1_000_003 + i, device)
        cond = sample_conditions(size, generator=gen, device=device, sigma_max=sigma_max, g_max=g_max)
        t0 = time.perf_counter()
        walks = simulate_walks(cond[SIGMA_R], cond[G], cond[ALBEDO], generator=gen, device=device, slots=slots,
                               progress=show_progress, desc=f"chunk {i + 1}/{n_chunks}")
        seconds += time.perf_counter() - t0
        events += int(walks["n_events"].sum())
        save_walks(path, walks)
        bar.update(size)
    bar.close()
    manifest = {**manifest, "complete": True, "seconds_this_run": seconds, "events_this_run": events,
                "device": str(device), "torch": torch.__version__}
    atomic_write_json(out / "manifest.json", manifest)
    return manifest


def _chunk_index(f: Path) -> int:
    try:
        return int(f.stem.split("_")[1])
    except (IndexError, ValueError):
        return -1


def _dataset_chunks(p: Path, partial: bool = False) -> tuple[list[Path], list[int | None], str | None]:
    """The chunk files of the walk folder ``p`` that its manifest lists, the walks its manifest expects in each
    (None: no finished manifest), and why the folder is not a whole dataset (None when it is). ``partial``: a
    damaged manifest counts as none (the chunks found are used)."""
    found = sorted(p.glob("chunk_*.npz"))
    again = (f"finish it with `sciflow scattering data --out {p}` and the same settings (it resumes), or pass its "
             "chunk files themselves (or --partial, partial=True in Python) to use only those")
    mpath = p / "manifest.json"
    manifest = None
    if mpath.is_file():
        try:
            manifest = json.loads(mpath.read_text())
            n_walks, chunk, n_chunks = (int(manifest[k]) for k in ("n_walks", "chunk", "n_chunks"))
        except (ValueError, KeyError, TypeError) as e:
            if not partial:
                raise InputError(f"dataset: {mpath} is damaged ({type(e).__name__}: {e}); {again}") from None
            return found, [None] * len(found), None        # (partial: the chunks found, as they are)
        if n_walks < 1 or chunk < 1 or n_chunks != -(-n_walks // chunk):
            raise InputError(f"dataset: {mpath} is inconsistent (n_walks={n_walks}, chunk={chunk}, "
                             f"n_chunks={n_chunks}); {again}")
    if manifest is None or manifest.get("complete", True) is not True:     # (manifests before 'complete': finished)
        what = "has no manifest.json" if manifest is None else \
            f"holds an unfinished run (manifest.json: {n_walks} walks, complete=false)"
        return found, [None] * len(found), (f"dataset: {p} {what}: its generation was interrupted, {len(found)} "
                                            f"chunk file(s) there; {again}")
    # the chunks of the last run (a smaller re-run leaves larger ones behind)
    have = {_chunk_index(f): f for f in found}
    lost = [f"chunk_{i:05d}.npz" for i in range(n_chunks) if i not in have]
    why = None if not lost else (f"dataset: {p} lacks {', '.join(lost[:4])}{' ...' if len(lost) > 4 else ''} of "
                                 f"the {n_chunks} chunks ({n_walks} walks) its manifest.json lists; {again}")
    keep = [i for i in range(n_chunks) if i in have]
    return [have[i] for i in keep], [min(chunk, n_walks - i * chunk) for i in keep], why


def load_walk_dataset(folder: str | Path | Sequence[str | Path], *, max_walks: int | None = None,
                      partial: bool = False) -> dict[str, Tensor]:
    """Concatenate every chunk in ``folder`` (or a single ``.npz`` file; or several of either, in order).

    Every chunk is checked by ``load_walks`` (equal lengths, finite values). A folder is loaded only as its
    ``manifest.json`` describes it: every chunk it lists present with its walk count, else InputError naming the
    folder or file; a folder whose generation did not finish (no manifest, or one with ``complete: false``) is
    refused too. ``partial`` loads such folders as found (the chunks present, in order)."""
    parts = []
    for p in map(Path, [folder] if isinstance(folder, (str, Path)) else folder):
        if p.is_file():
            parts.append(load_walks(p))
            continue
        if not p.exists():
            raise InputError(f"dataset: no such file or folder: {p}")
        if not p.is_dir() or not any(p.glob("chunk_*.npz")):
            raise InputError(f"dataset: no chunk_*.npz files in {p}")
        found, sizes, why = _dataset_chunks(p, partial)
        for f, size in zip(found, sizes):          # a damaged chunk is named first, then what the folder lacks
            d = load_walks(f)
            got = int(d[_KEYS[0]].shape[0])
            if size is not None and got != size and not partial:
                raise InputError(f"dataset: {f} holds {got} walks, its folder's manifest.json expects {size} (a "
                                 f"changed file or an unfinished re-run); finish it with `sciflow scattering data "
                                 f"--out {p}` and the same settings")
            parts.append(d)
        if why is not None and not partial:
            raise InputError(why)
    if not parts:
        raise InputError("dataset: no folder given")
    data = {k: torch.cat([d[k] for d in parts]) for k in _KEYS}
    if max_walks is not None:
        data = {k: v[:int(max_walks)] for k, v in data.items()}
    return data
