"""Does ranking TS-GEN samples by GFN2-xTB energy pick better TSs than the geometric medoid?

For every reaction of a triplets file: ``n`` samples from the model, one xTB single point per sample, and the
Kabsch RMSD to the reference TS of the first sample, the medoid, the lowest-energy sample and the best sample
(oracle), plus the per-reaction Spearman correlation between energy and RMSD. Needs the ``chem`` extra.

    OMP_NUM_THREADS=1 python benchmarks/tsgen_energy_rank.py --data runs/val.npz --n 8 --seed 0
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sciflow.core.files import atomic_write_json
from sciflow.data.reactions import load_triplets
from sciflow.domains.molecules.xtb import xtb_calculator, xtb_energy
from sciflow.methods.tsgen import TSGen
from sciflow.methods.tsgen.evaluate import medoid_index


def _ranks(x: np.ndarray) -> np.ndarray:
    return np.argsort(np.argsort(x, axis=0), axis=0).astype(float)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="runs/val.npz")
    ap.add_argument("--model", default="models/tsgen")
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "tsgen_energy_rank.json"))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    data, model = load_triplets(args.data), TSGen.load(args.model)
    samples, _ = model.predict(data, args.n, generator=torch.Generator().manual_seed(args.seed))
    rmsd = model.rmsd_to_reference(data, samples)                                  # (n, R)
    energy = np.zeros_like(rmsd)
    t0 = time.perf_counter()
    for r in range(len(data)):
        a, b = int(data.offsets[r]), int(data.offsets[r + 1])
        for k in range(args.n):        # a fresh calculator per geometry: no SCF restart from another sample
            energy[k, r] = xtb_energy(data.atomic_numbers[a:b], samples[k, a:b].astype(np.float64), xtb_calculator())
    xtb_s = time.perf_counter() - t0
    rows = np.arange(len(data))
    picks = {"first sample": rmsd[0], "medoid": rmsd[medoid_index(data, samples), rows],
             "lowest xTB energy": rmsd[np.where(np.isnan(energy), np.inf, energy).argmin(0), rows],
             "best (oracle)": np.fmin.reduce(rmsd, axis=0)}   # a diverged sample never wins
    re, rr = _ranks(energy), _ranks(rmsd)
    spearman = [float(np.corrcoef(re[:, i], rr[:, i])[0, 1]) for i in rows]
    out = {"data": args.data, "n_samples": args.n, "seed": args.seed, "n_reactions": len(data),
           "xtb_seconds": xtb_s, "xtb_failures": int(np.isnan(energy).sum()),
           "spearman_energy_rmsd_mean": float(np.nanmean(spearman)),
           "rmsd": {k: {"mean": float(v.mean()), "median": float(np.median(v))} for k, v in picks.items()}}
    atomic_write_json(args.out, out)
    for k, v in out["rmsd"].items():
        print(f"{k:>18}: {v['mean']:.3f} / {v['median']:.3f} Å (mean / median)")
    print(f"Spearman(energy, RMSD) per reaction, mean: {out['spearman_energy_rmsd_mean']:.2f}; xTB {xtb_s:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
