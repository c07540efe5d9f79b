"""Generate dissociation paths for a bound host-guest complex with the shipped UnbindingFlow weights.

    python examples/unbinding_generate.py [complex.pdb] [--n 16]

Writes outputs/unbinding_example/: one multi-model PDB per path, topology.pdb + DCD, and a PNG of the exit
channels and distance profiles. Any PDB works if its ligand residue is named LIG (else pass --ligand).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sciflow.core.fields import BATCH
from sciflow.data.dissociation import load_complex, paths_to_trajectories, write_mdtraj
from sciflow.methods.unbinding import PATH_TIME, UnbindingFlow
from sciflow.methods.unbinding.plots import plot_paths

ap = argparse.ArgumentParser()
ap.add_argument("complex", nargs="?", default="datasets/unbinding/complexes/cb7-b2.pdb")
ap.add_argument("--ligand", default="resname LIG")
ap.add_argument("--n", type=int, default=16)
ap.add_argument("--out", default="outputs/unbinding_example")
args = ap.parse_args()

cx = load_complex(args.complex, ligand=args.ligand)
model = UnbindingFlow.load("models/unbinding")
traj = model.generate(cx, args.n, generator=torch.Generator().manual_seed(0))
print(f"{cx.name}: {args.n} paths in {traj.info['seconds']:.2f} s; raw clashing paths "
      f"{traj.info['raw_clashing_paths']}, returned clashing paths {traj.info['returned_clashing_paths']}")
print("exit times (ps):", np.round(traj.extras[PATH_TIME].numpy(), 1))
frames = np.stack([traj.states[:, traj.extras[BATCH] == k].numpy() for k in range(args.n)])   # (n, T, n_lig, 3)
times = traj.times.numpy()[None] * traj.extras[PATH_TIME].numpy()[:, None]
out = Path(args.out)
for k, p in enumerate(paths_to_trajectories(cx, frames, times)):
    write_mdtraj(p, out / f"path_{k:03d}.pdb")                               # multi-model PDB
    write_mdtraj(p, out / "topology.pdb", out / f"path_{k:03d}.dcd")         # PDB + DCD
m = cx.topology.masses[cx.topology.is_ligand]
tracks = [(f * m[:, None]).sum(1) / m.sum() for f in frames]
plot_paths(cx.positions[~cx.topology.is_ligand & cx.topology.is_heavy], tracks, out / "paths.png",
           title=f"{cx.name}: generated dissociation paths", exit_distance=model.config()["exit_distance"])
print(f"wrote {out}/")
