"""Generate dissociation paths for a bound host-guest complex with the shipped UnbindingFlow weights.

    python examples/unbinding_generate.py [complex.pdb] [--n 16]

Writes outputs/unbinding_example/ (or --out): one multi-model PDB per path (path_000.pdb, ...), topology.pdb +
one DCD per path (path_000.dcd, ...), and a PNG of the exit channels and distance profiles (paths.png). Any PDB
works if its ligand residue is named LIG (else pass --ligand). Re-running into the same folder replaces the
earlier run: its path_NNN.pdb / path_NNN.dcd files are deleted before the new ones are written (no other file in
the folder is touched), so every path file there loads with the new topology.pdb.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sciflow.commands.script import integer, run_script

#: the per-path files this script writes (and deletes from an earlier run before writing)
PATH_FILE = re.compile(r"path_\d{3,}\.(pdb|dcd)")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("complex", nargs="?", default="datasets/unbinding/complexes/cb7-b2.pdb",
                    help="bound complex PDB (default: %(default)s)")
    ap.add_argument("--ligand", default="resname LIG", help="ligand selection (default: %(default)r)")
    ap.add_argument("--n", type=integer(1), default=16, help="paths to generate, >= 1 (default: %(default)s)")
    ap.add_argument("--out", default="outputs/unbinding_example", help="output folder (default: %(default)s)")
    return ap.parse_args(argv)


def remove_old_paths(out: Path) -> list[Path]:
    """Delete the path_NNN.pdb / path_NNN.dcd files an earlier run left in ``out``; returns what was deleted."""
    old = sorted(p for p in out.iterdir() if p.is_file() and PATH_FILE.fullmatch(p.name)) if out.is_dir() else []
    for p in old:
        p.unlink()
    return old


def run(args: argparse.Namespace) -> None:
    import numpy as np
    import torch

    from sciflow.core.fields import BATCH
    from sciflow.data.dissociation import load_complex, paths_to_trajectories, write_mdtraj
    from sciflow.methods.unbinding import PATH_TIME, UnbindingFlow
    from sciflow.methods.unbinding.plots import plot_paths

    cx = load_complex(args.complex, ligand=args.ligand)
    model = UnbindingFlow.load("models/unbinding")
    traj = model.generate(cx, args.n, generator=torch.Generator().manual_seed(0))
    print(f"{cx.name}: {args.n} paths in {traj.info['seconds']:.2f} s; raw clashing paths "
          f"{traj.info['raw_clashing_paths']}, returned clashing paths {traj.info['returned_clashing_paths']}")
    print("exit times (ps):", np.round(traj.extras[PATH_TIME].numpy(), 1))
    frames = np.stack([traj.states[:, traj.extras[BATCH] == k].numpy() for k in range(args.n)])  # (n, T, n_lig, 3)
    times = traj.times.numpy()[None] * traj.extras[PATH_TIME].numpy()[:, None]
    out = Path(args.out)
    old = remove_old_paths(out)
    if old:
        print(f"removed {len(old)} path files of an earlier run from {out}/")
    out.mkdir(parents=True, exist_ok=True)
    for k, p in enumerate(paths_to_trajectories(cx, frames, times)):
        write_mdtraj(p, out / f"path_{k:03d}.pdb")                               # multi-model PDB
        write_mdtraj(p, out / "topology.pdb", out / f"path_{k:03d}.dcd")         # PDB + DCD
    m = cx.topology.masses[cx.topology.is_ligand]
    tracks = [(f * m[:, None]).sum(1) / m.sum() for f in frames]
    plot_paths(cx.positions[~cx.topology.is_ligand & cx.topology.is_heavy], tracks, out / "paths.png",
               title=f"{cx.name}: generated dissociation paths", exit_distance=model.config()["exit_distance"])
    print(f"wrote {out}/")


def main(argv: list[str] | None = None) -> None:
    run_script(run, parse_args(argv))


if __name__ == "__main__":
    main()
