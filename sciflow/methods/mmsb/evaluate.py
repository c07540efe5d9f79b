"""The held-out interpolation protocol of SBIRR / SnapMMD: train on the even-indexed snapshots, simulate from
the first observed snapshot, and measure the distance to every held-out odd-indexed snapshot.

The distance is the exact 2-Wasserstein distance between the empirical measures (POT's network simplex on
squared Euclidean costs, then the square root); the exact 1-Wasserstein distance (Euclidean costs) is
reported beside it.
"""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ...core.errors import InputError
from ...domains.cells.snapshots import Snapshots

__all__ = ["evaluate_heldout", "heldout_split", "mmsb_fit_predict", "w1_distance", "w2_distance"]

#: fit_predict(train snapshots, seed) -> (predict(times) -> {time: (n, d) array}, info dict)
FitPredict = Callable[[Snapshots, int], "tuple[Callable[[list[float]], dict[float, Tensor]], dict[str, Any]]"]


def _np(x: Tensor | np.ndarray) -> np.ndarray:
    return x.detach().cpu().numpy().astype(np.float64) if torch.is_tensor(x) else np.asarray(x, dtype=np.float64)


def w2_distance(a: Tensor | np.ndarray, b: Tensor | np.ndarray) -> float:
    """Exact W2 between two empirical measures with uniform weights (rows are points)."""
    import ot  # POT: imported where used, so importing sciflow needs no POT (a bare GPU machine)

    a, b = _np(a), _np(b)
    m = ot.dist(a, b, metric="sqeuclidean")
    return float(np.sqrt(max(ot.emd2(ot.unif(len(a)), ot.unif(len(b)), m, numItermax=1_000_000), 0.0)))


def w1_distance(a: Tensor | np.ndarray, b: Tensor | np.ndarray) -> float:
    """Exact W1 (earth mover's distance with Euclidean ground cost)."""
    import ot

    a, b = _np(a), _np(b)
    m = ot.dist(a, b, metric="euclidean")
    return float(ot.emd2(ot.unif(len(a)), ot.unif(len(b)), m, numItermax=1_000_000))


def heldout_split(snapshots: Snapshots) -> tuple[Snapshots, list[int]]:
    """(even-indexed snapshots for training, odd indices held out)."""
    if snapshots.n_snapshots < 3:
        raise InputError(f"data: the held-out protocol needs at least 3 snapshots, got {snapshots.n_snapshots}")
    even = list(range(0, snapshots.n_snapshots, 2))
    odd = list(range(1, snapshots.n_snapshots, 2))
    return snapshots.subset(even), odd


def _stats(values: Sequence[float]) -> tuple[float, float]:
    """(mean, sample standard deviation with ddof = 1; 0 for a single value)."""
    return float(statistics.fmean(values)), float(statistics.stdev(values)) if len(values) > 1 else 0.0


def evaluate_heldout(snapshots: Snapshots, fit_predict: FitPredict, *, seeds: int = 1,
                     seed_offset: int = 0) -> dict[str, Any]:
    """Run the protocol for ``seeds`` seeds. Returns ``emd_mean``/``emd_std`` (W2, mean over held-out
    times, then mean and sample sd (ddof = 1) over seeds), ``w1_mean``/``w1_std``, per-time and per-seed values,
    wall ``seconds`` in total and per fit, and each seed's info (e.g. fitted parameters)."""
    if int(seeds) < 1:
        raise InputError(f"seeds: must be >= 1, got {seeds}")
    train, odd = heldout_split(snapshots)
    held_times = [float(snapshots.times[k]) for k in odd]
    per_seed, per_seed_w1, per_time, infos, fit_seconds = [], [], [], [], []
    start = time.perf_counter()
    cpu0 = time.process_time()
    for s in range(int(seeds)):
        t0 = time.perf_counter()
        predict, info = fit_predict(train, seed_offset + s)
        fit_seconds.append(time.perf_counter() - t0)
        pred = predict(held_times)
        w2s = [w2_distance(pred[t], snapshots.samples[k]) for t, k in zip(held_times, odd)]
        w1s = [w1_distance(pred[t], snapshots.samples[k]) for t, k in zip(held_times, odd)]
        per_time.append(w2s)
        per_seed.append(float(np.mean(w2s)))
        per_seed_w1.append(float(np.mean(w1s)))
        infos.append(info)
    emd_mean, emd_std = _stats(per_seed)
    w1_mean, w1_std = _stats(per_seed_w1)
    return {
        "emd_mean": emd_mean, "emd_std": emd_std, "metric": "exact W2 (POT emd2, squared Euclidean, sqrt)",
        "w1_mean": w1_mean, "w1_std": w1_std, "std": "sample standard deviation over seeds (ddof = 1)",
        "emd_per_seed": per_seed, "w1_per_seed": per_seed_w1,
        "emd_per_time": {f"{t:g}": float(np.mean([row[i] for row in per_time])) for i, t in enumerate(held_times)},
        "heldout_times": held_times, "train_times": train.times.tolist(), "seeds": int(seeds),
        "seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - cpu0,
        "seconds_per_fit": float(np.mean(fit_seconds)), "seconds_per_fit_max": float(np.max(fit_seconds)),
        "runs": infos,
    }


def mmsb_fit_predict(n_particles: int = 1000, dynamics: str = "reference", **mmsb_kwargs: Any) -> FitPredict:
    """A ``fit_predict`` for ``MMSB(**mmsb_kwargs)`` simulating ``n_particles`` from the first snapshot."""
    from .model import MMSB

    def fit_predict(train: Snapshots, seed: int) -> tuple[Callable[[list[float]], dict[float, Tensor]], dict]:
        model = MMSB(**mmsb_kwargs)
        summary = model.fit(train, seed=seed, show_progress=False)
        gen = torch.Generator().manual_seed(10_000 + seed)
        if dynamics == "bridge":
            model.fit_bridge_drift(seed=seed, generator=gen)

        def predict(times: list[float]) -> dict[float, Tensor]:
            traj = model.predict(times, n_particles, dynamics=dynamics, generator=gen)
            return {float(t): traj.states[i] for i, t in enumerate(traj.times.tolist())}

        return predict, {"params": summary["params"], "fit_seconds": summary["seconds"],
                         "fit_cpu_seconds": summary["cpu_seconds"]}

    return fit_predict
