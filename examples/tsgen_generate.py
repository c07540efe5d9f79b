"""Generate transition states for one reaction with the shipped TS-GEN model and write them as XYZ.

    python examples/tsgen_generate.py datasets/reactions/examples/rxn002918.xyz [--n 8]
The file's first frame is the reactant, its last frame the product (same atoms in the same order).
Writes outputs/<name>.tsgen.xyz: reactant, the n TS samples, product.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sciflow.commands.script import integer, run_script


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("reaction", nargs="?", default="datasets/reactions/examples/rxn002918.xyz",
                    help="XYZ/SDF file: reactant first, product last (default: %(default)s)")
    ap.add_argument("--n", type=integer(1), default=8, help="TS samples to draw (default: %(default)s)")
    return ap.parse_args(argv)


def generate(path: str, n: int = 8) -> None:
    import numpy as np

    from sciflow.core.random import make_generator
    from sciflow.domains.molecules import kabsch_rmsd, read_molecules, write_xyz_frames
    from sciflow.methods.tsgen import TSGen

    mols = read_molecules(path)
    reactant, product = mols[0], mols[-1]
    model = TSGen.load(Path(__file__).resolve().parents[1] / "models" / "tsgen")
    atoms = model.generate(reactant, product, n=n, return_atoms=True, generator=make_generator(0))
    # the samples come back centred on the reactant's centroid, in the reactant's orientation: shift them back
    centroid = reactant.positions.mean(0)
    frames = [(reactant.numbers, reactant.positions, "reactant")]
    frames += [(a.numbers, a.positions + centroid, f"TS sample {k}") for k, a in enumerate(atoms)]
    frames.append((product.numbers, product.positions, "product"))
    out = Path("outputs") / Path(path).with_suffix(".tsgen.xyz").name
    out.parent.mkdir(parents=True, exist_ok=True)
    write_xyz_frames(out, frames)
    print(f"wrote {out}: reactant, {n} TS samples, product")
    if len(mols) == 3:   # the shipped examples hold the DFT TS as the middle frame
        import torch
        ref = torch.as_tensor(mols[1].positions)
        r = [float(kabsch_rmsd(torch.as_tensor(a.positions), ref)[0]) for a in atoms]
        print(f"Kabsch RMSD to the DFT TS: first {r[0]:.3f} Å, best of {n} {min(r):.3f} Å, mean {np.mean(r):.3f} Å")


def main(argv: list[str] | None = None) -> None:
    run_script(lambda args: generate(args.reaction, args.n), parse_args(argv))


if __name__ == "__main__":
    main()
