"""The batched medoid ranking (one kabsch_rmsd call over all sample pairs x reactions) and the split-by-counts
``decode`` give exactly what the per-pair / per-graph Python loops they replaced gave (kept here as references)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from sciflow.core.trajectory import Trajectory
from sciflow.data.reactions import ReactionSet
from sciflow.domains.molecules.adapter import MoleculesAdapter
from sciflow.domains.molecules.geometry import kabsch_rmsd
from sciflow.domains.molecules.io import to_atoms
from sciflow.methods.tsgen import evaluate as ev
from sciflow.methods.tsgen.refine import medoid_order


def _reactions(rng: np.random.Generator, r: int) -> ReactionSet:
    counts = rng.integers(3, 14, size=r)
    n = int(counts.sum())
    pos = rng.normal(size=(n, 3)) * 1.5
    return ReactionSet(np.array([f"r{i}" for i in range(r)]), np.concatenate([[0], np.cumsum(counts)]),
                       rng.integers(1, 9, size=n), pos, pos + 0.7, pos + 0.3)


def _samples(rng: np.random.Generator, data: ReactionSet, n: int, dtype: type) -> np.ndarray:
    x = data.pos_ts[None] + rng.normal(size=(n, *data.pos_ts.shape)) * rng.uniform(0.02, 0.6, size=(n, 1, 1))
    x = x.astype(dtype)
    for _ in range(max(1, n // 3)):                        # diverged samples: one NaN or inf coordinate
        k, i = rng.integers(n), rng.integers(len(data))
        x[k, data.rows(i).start + rng.integers(data.n_atoms[i]), rng.integers(3)] = rng.choice([np.nan, np.inf])
    return x


def _loop_dist(data: ReactionSet, samples: np.ndarray) -> np.ndarray:
    """The former medoid_index distance matrix: one _kabsch call per sample pair."""
    n = samples.shape[0]
    dist = np.zeros((len(data), n, n))
    for i in range(n):
        for j in range(i + 1, n):
            dist[:, i, j] = dist[:, j, i] = ev._kabsch(data, samples[i], samples[j])
    return dist


def _loop_medoid_index(data: ReactionSet, samples: np.ndarray) -> np.ndarray:
    n = samples.shape[0]
    if n == 1:
        return np.zeros(len(data), dtype=np.int64)
    ok = np.stack([~ev._diverged(data, samples[k]) for k in range(n)], axis=1)
    return ev.mean_to_finite_others(_loop_dist(data, samples), ok).argmin(-1)


def _loop_medoid_order(samples: np.ndarray) -> np.ndarray:
    """The former refine.medoid_order."""
    x = torch.as_tensor(np.asarray(samples), dtype=torch.float64)
    n = x.shape[0]
    ok = torch.isfinite(x.reshape(n, -1)).all(1)
    d = torch.zeros(n, n, dtype=torch.float64)
    for i in range(n):
        for j in range(i + 1, n):
            if ok[i] and ok[j]:
                d[i, j] = d[j, i] = kabsch_rmsd(x[i], x[j])[0]
    return np.argsort(ev.mean_to_finite_others(d.numpy(), ok.numpy()), kind="stable")


@pytest.mark.parametrize("seed, r, n, dtype", [(0, 5, 2, np.float64), (1, 4, 3, np.float32), (2, 6, 9, np.float32),
                                               (3, 3, 16, np.float64), (4, 1, 5, np.float64)])
def test_batched_medoid_index_equals_the_pairwise_loop(seed, r, n, dtype):
    rng = np.random.default_rng(seed)
    data = _reactions(rng, r)
    samples = _samples(rng, data, n, dtype)
    ok = np.stack([~ev._diverged(data, samples[k]) for k in range(n)], axis=1)
    assert not ok.all()                                                    # some samples diverged
    ref = _loop_dist(data, samples)
    got = ev.pairwise_kabsch(samples, data.batch_index(), ok)
    np.testing.assert_array_equal(got, ref)                                # bit for bit, NaN where diverged
    # chunked over pairs (a few atom rows per chunk): the same numbers
    np.testing.assert_array_equal(ev.pairwise_kabsch(samples, data.batch_index(), ok, max_rows=7), ref)
    assert ev.medoid_index(data, samples).tolist() == _loop_medoid_index(data, samples).tolist()


def test_batched_medoid_index_single_sample_and_all_finite():
    rng = np.random.default_rng(5)
    data = _reactions(rng, 4)
    assert ev.medoid_index(data, data.pos_ts[None]).tolist() == [0] * 4
    samples = data.pos_ts[None] + rng.normal(size=(6, *data.pos_ts.shape)) * 0.2
    assert ev.medoid_index(data, samples).tolist() == _loop_medoid_index(data, samples).tolist()


@pytest.mark.parametrize("seed, n", [(0, 2), (1, 4), (2, 8), (3, 13)])
def test_batched_medoid_order_equals_the_pairwise_loop(seed, n):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(int(rng.integers(3, 12)), 3))
    samples = x[None] + rng.normal(size=(n, *x.shape)) * rng.uniform(0.05, 0.5, size=(n, 1, 1))
    assert medoid_order(samples).tolist() == _loop_medoid_order(samples).tolist()
    samples[rng.integers(n), 0, 1] = np.nan                               # a diverged guess goes last
    assert medoid_order(samples).tolist() == _loop_medoid_order(samples).tolist()
    samples = samples.astype(np.float32)
    assert medoid_order(samples).tolist() == _loop_medoid_order(samples).tolist()


def test_pick_gathers_each_reactions_chosen_sample():
    rng = np.random.default_rng(6)
    data = _reactions(rng, 5)
    samples = rng.normal(size=(4, len(data.atomic_numbers), 3))
    which = rng.integers(4, size=5)
    ref = np.zeros_like(samples[0])
    for i in range(len(data)):
        ref[data.rows(i)] = samples[which[i], data.rows(i)]
    np.testing.assert_array_equal(ev._pick(data, samples, which), ref)


def _loop_decode(traj: Trajectory, frame: int = -1) -> list:
    """The former MoleculesAdapter.decode: a boolean mask per graph."""
    z = traj.extras["atomic_numbers"].cpu().numpy()
    b = traj.extras["batch"].cpu()
    x = traj.states[frame].detach().cpu().to(torch.float64).numpy()
    out = []
    for g in range(int(b.max()) + 1):
        m = (b == g).numpy()
        out.append(to_atoms(z[m], x[m], {"sample": g, "flow_time": float(traj.times[frame])}))
    return out


@pytest.mark.parametrize("shuffle", [False, True])
def test_decode_by_counts_gives_the_same_molecules(shuffle):
    rng = np.random.default_rng(7)
    counts = rng.integers(1, 9, size=40)
    counts[[3, 17]] = 0                                    # graphs without atoms (an empty Atoms each)
    b = torch.repeat_interleave(torch.arange(40), torch.as_tensor(counts))
    if shuffle:                                            # unsorted rows: each graph's atoms in row order
        b = b[torch.as_tensor(rng.permutation(b.shape[0]))]
    n = int(counts.sum())
    traj = Trajectory(times=torch.tensor([0.0, 0.25, 1.0]), states=torch.randn(3, n, 3),
                      extras={"atomic_numbers": torch.randint(1, 9, (n,)), "batch": b})
    for frame in (-1, 1):
        ref, got = _loop_decode(traj, frame), MoleculesAdapter().decode(traj, frame)
        assert len(got) == len(ref) == 40
        for a, c in zip(ref, got):
            assert np.array_equal(a.numbers, c.numbers) and np.array_equal(a.positions, c.positions)
            assert a.info == c.info
