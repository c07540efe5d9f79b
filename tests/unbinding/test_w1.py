"""Exit-direction W1 at one sample size: a generator drawing from the MD distribution scores its floor, a tilted
one does not."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from sciflow.methods.unbinding.metrics import equal_size_w1, sphere_w1, split_half_w1


def von_mises_fisher(rng: np.random.Generator, n: int, kappa: float, tilt_deg: float = 0.0) -> np.ndarray:
    """n unit vectors about +z (Wood's sampler), then rotated by ``tilt_deg`` about x."""
    u = rng.random(n)
    w = 1 + np.log(u + (1 - u) * np.exp(-2 * kappa)) / kappa
    phi = rng.random(n) * 2 * np.pi
    s = np.sqrt(1 - w ** 2)
    v = np.stack([s * np.cos(phi), s * np.sin(phi), w], 1)
    a = np.deg2rad(tilt_deg)
    rot = np.array([[1.0, 0.0, 0.0], [0.0, np.cos(a), -np.sin(a)], [0.0, np.sin(a), np.cos(a)]])
    return v @ rot.T


def _mean_ratio(kappa: float, tilt: float, n_gen: int = 48, n_md: int = 30, sets: int = 8) -> float:
    """Mean score / mean floor over ``sets`` independent data sets (48 generated vs 30 MD, as in the benchmark)."""
    rng = np.random.default_rng(0)
    score, floor = [], []
    for k in range(sets):
        md, gen = von_mises_fisher(rng, n_md, kappa), von_mises_fisher(rng, n_gen, kappa, tilt)
        r = equal_size_w1(gen, md, repeats=10, generator=torch.Generator().manual_seed(k))
        score.append(r["score"])
        floor.append(r["floor"])
        assert r["size"] == n_md // 2 and r["ratio"] == pytest.approx(r["score"] / r["floor"])
    return float(np.mean(score) / np.mean(floor))


@pytest.mark.parametrize("kappa", [3.0, 8.0])
def test_a_generator_drawing_from_the_md_distribution_scores_its_floor(kappa):
    ratio = _mean_ratio(kappa, 0.0)
    assert 0.8 <= ratio <= 1.25


def test_the_old_floor_of_md_halves_against_all_directions_was_biased_low():
    # why the floor changed: 48 generated vs all 30 MD directions against 15 vs 15 MD halves gives a ratio of about
    # 0.7 for a generator drawing from the MD distribution itself (empirical W1 shrinks with the sample size)
    rng = np.random.default_rng(0)
    full, half = [], []
    for k in range(8):
        md, gen = von_mises_fisher(rng, 30, 3.0), von_mises_fisher(rng, 48, 3.0)
        full.append(sphere_w1(gen, md))
        half.append(split_half_w1(md, repeats=5, generator=torch.Generator().manual_seed(k)))
    assert np.mean(full) / np.mean(half) < 0.8


def test_a_tilted_generator_scores_above_its_floor():
    # exits concentrated like a pocket channel (kappa 8, about 27 degrees mean spread): a 60 degree tilt of every
    # exit scores far above twice the floor (about 3.4; the all-vs-all W1 over MD halves passed it under 2)
    ratio = _mean_ratio(8.0, 60.0)
    assert ratio > 2.5
    # a broad exit distribution (kappa 3, about 45 degrees spread) hides a tilt more: 60 degrees scores ~1.9,
    # still well above the ~1.0 of an unbiased generator
    ratio = _mean_ratio(3.0, 60.0)
    assert ratio > 1.5


def test_equal_size_w1_sizes_and_too_few_directions():
    rng = np.random.default_rng(1)
    md, gen = von_mises_fisher(rng, 7, 5.0), von_mises_fisher(rng, 2, 5.0)
    r = equal_size_w1(gen, md, repeats=3, generator=torch.Generator().manual_seed(0))
    assert r["size"] == 2 and np.isfinite(r["ratio"])                 # as many as there are generated
    r = equal_size_w1(gen, md[:3], repeats=3)
    assert r["size"] == 1 and np.isnan(r["score"]) and np.isnan(r["floor"])    # < 4 MD directions: no floor
    same = np.repeat([[0.0, 0.0, 1.0]], 6, 0)
    r = equal_size_w1(same, same, repeats=2)
    assert r["score"] == pytest.approx(0.0, abs=1e-9) and r["floor"] == pytest.approx(0.0, abs=1e-9)
    assert np.isnan(r["ratio"])
