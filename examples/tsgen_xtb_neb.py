"""Make new reactions at GFN2-xTB (CI-NEB with ASE + tblite, optional Sella refinement) from atom-mapped
reactant/product pairs, in the triplets layout TS-GEN trains on. Resumable; run single-threaded.

    OMP_NUM_THREADS=1 python examples/tsgen_xtb_neb.py PAIRS.npz OUT_DIR [--sella] [--limit K] [--hdf5]
        [--keep-unconverged]
PAIRS.npz is any file in the triplets layout (pos_ts is ignored), e.g. the shared Grambow set. Reactions whose
CI-NEB did not converge are left out of OUT_DIR/triplets.npz unless --keep-unconverged (cost.json says which).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sciflow.commands.script import integer, run_script


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pairs", help="reactant/product pairs in the triplets layout (.npz)")
    ap.add_argument("out", help="output folder (resumable)")
    ap.add_argument("--sella", action="store_true")
    ap.add_argument("--limit", type=integer(1), default=None, help="only the first K reactions (K >= 1)")
    ap.add_argument("--hdf5", action="store_true", help="also write the Transition1x HDF5 layout")
    ap.add_argument("--keep-unconverged", action="store_true",
                    help="also write reactions whose CI-NEB did not converge (left out by default)")
    return ap.parse_args(argv)


def run(args: argparse.Namespace) -> None:
    import numpy as np

    from sciflow.core.errors import InputError
    from sciflow.data.reactions import load_triplets
    from sciflow.data.xtb_reactions import generate_xtb_reactions

    pairs = load_triplets(args.pairs, require_ts=False)
    if args.limit:
        pairs = pairs.subset(np.arange(min(args.limit, len(pairs))))
    try:
        data = generate_xtb_reactions(pairs, args.out, sella=args.sella, hdf5=args.hdf5,
                                      keep_unconverged=args.keep_unconverged)
    except InputError as e:
        if "keep_unconverged" not in str(e):
            raise
        raise InputError(f"{e} (keep_unconverged=True is --keep-unconverged here)") from None
    print(f"{len(data)} reactions -> {args.out}/triplets.npz")
    print(json.dumps(json.loads((Path(args.out) / "cost.json").read_text()), indent=2))


def main(argv: list[str] | None = None) -> None:
    run_script(run, parse_args(argv), errors=(), resumes=True)


if __name__ == "__main__":
    main()
