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
from ..domains.photons.conditions import G_MAX, SIGMA_MAX, sample_conditions
from ..domains.photons.fields import ALBEDO, CONDITION_KEYS, RECORD_KEYS, SIGMA_R, G
from ..domains.photons.walks import simulate_walks

__all__ = ["generate_walk_dataset", "load_walk_dataset", "load_walks", "save_walks"]

_KEYS = CONDITION_KEYS + RECORD_KEYS


def save_walks(path: str | Path, walks: dict[str, Tensor]) -> Path:
    """Write the condition and record fields of a walk batch to ``.npz`` atomically."""
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez_compressed(tmp, **{k: walks[k].detach().cpu().numpy() for k in _KEYS})
    return Path(path)


def _n_walks(path: Path) -> int:
    """Walks in a chunk file, or -1 when it cannot be read (a damaged chunk is then made again on resume; it
    gave a raw numpy or zipfile error)."""
    try:
        with open_npz(path, "walks", "a walk chunk") as f:
            return int(f[_KEYS[0]].shape[0])
    except (InputError, KeyError, ValueError, OSError):
        return -1


def load_walks(path: str | Path) -> dict[str, Tensor]:
    """Read one ``.npz`` written by ``save_walks``."""
    p = Path(path)
    with open_npz(p, "walks", "a walk .npz written by `sciflow scattering data`") as f:
        missing = [k for k in _KEYS if k not in f]
        if missing:
            raise InputError(f"walks: {p} lacks the field(s) {', '.join(missing)}")
        return {k: torch.from_numpy(f[k]) for k in _KEYS}


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
    manifest = {"format": "sciflow.walks/1", "n_walks": int(n_walks), "chunk": int(chunk), "n_chunks": n_chunks,
                "seed": int(seed), "sigma_max": float(sigma_max), "g_max": float(g_max),
                "condition_law": "sigma_r = sigma_max u^3, g ~ U[-g_max, g_max], albedo = 1 - u^6",
                "fields": list(_KEYS), "seconds_this_run": seconds, "events_this_run": events,
                "device": str(device), "torch": torch.__version__}
    atomic_write_json(out / "manifest.json", manifest)
    return manifest


def load_walk_dataset(folder: str | Path | Sequence[str | Path], *, max_walks: int | None = None
                      ) -> dict[str, Tensor]:
    """Concatenate every chunk in ``folder`` (or a single ``.npz`` file; or several of either, in order)."""
    files = []
    for p in map(Path, [folder] if isinstance(folder, (str, Path)) else folder):
        found = [p] if p.is_file() else sorted(p.glob("chunk_*.npz"))
        if p.is_dir() and (p / "manifest.json").is_file():    # the chunks of the last run (a smaller re-run
            n = int(json.loads((p / "manifest.json").read_text())["n_chunks"])   # leaves larger ones behind)
            found = [f for f in found if int(f.stem.split("_")[1]) < n]
        if not found:
            raise InputError(f"dataset: no chunk_*.npz files in {p}")
        files += found
    if not files:
        raise InputError("dataset: no folder given")
    parts = [load_walks(f) for f in files]
    data = {k: torch.cat([d[k] for d in parts]) for k in _KEYS}
    if max_walks is not None:
        data = {k: v[:int(max_walks)] for k, v in data.items()}
    return data
