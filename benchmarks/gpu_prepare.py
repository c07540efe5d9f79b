"""Prepare, on this machine, what the lent GPU machine needs for the three GPU scripts, and print the call.

    python benchmarks/gpu_prepare.py [--no-openmm]

The device tool copies the working tree but not ../shared, ignored files only when named in ``carry`` (64 MiB in
all), and its Python 3.12 lacks POT and OpenMM. This writes, all in ignored paths:

- ``runs/test.npz``: the 70 test reactions of the fixed Grambow split (``datasets/reactions/CARD.md``), which
  ``gpu_check.py`` times TS-GEN on;
- ``.whl/``: the cp312 POT wheel (exact OT and W1/W2 metrics, the MMSB warm start; ~32 MiB);
- ``.gpu/whl/`` and ``.gpu/t4l/``: the cp312 OpenMM + CUDA plugin wheels (~17 MiB) and the T4L-p-xylene inputs
  (MIT, openmmtools) for ``unbinding_gpu.py``;

then checks the carried size and prints one device command that runs the three scripts in turn. Wheels come
from the package registry (``pip download``); nothing else is fetched.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

POT = "pot==0.9.7.post1"
OPENMM = ("openmm==8.6.1", "openmm-cuda-13==8.6.1")
PLATFORMS = ("manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux_2_28_x86_64", "manylinux_2_34_x86_64")
CARRY_LIMIT = 64 * 2 ** 20


def download(specs: tuple[str, ...], into: Path) -> None:
    into.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--python-version",
           "3.12", *[f"--platform={p}" for p in PLATFORMS], "-d", str(into), *specs]
    subprocess.run(cmd, check=True)


def size(path: Path) -> int:
    return path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-openmm", action="store_true", help="skip the unbinding part (OpenMM wheels, T4L inputs)")
    ap.add_argument("--t4l", default=str(ROOT.parent / "shared" / "data" / "t4l_l99a_pxylene"))
    args = ap.parse_args()

    from sciflow.data.reactions import find_grambow, grambow_split, load_triplets, save_triplets
    (ROOT / "runs").mkdir(exist_ok=True)
    save_triplets(ROOT / "runs" / "test.npz", grambow_split(load_triplets(find_grambow()))["test"])
    download((POT,), ROOT / ".whl")
    carry = ["runs/test.npz", ".whl"]
    if not args.no_openmm:
        download(OPENMM, ROOT / ".gpu" / "whl")
        t4l = ROOT / ".gpu" / "t4l"
        shutil.copytree(args.t4l, t4l, dirs_exist_ok=True)
        carry.append(".gpu")
    total = sum(size(ROOT / c) for c in carry)
    print(f"carry {carry}: {total / 2 ** 20:.1f} MiB (limit 64)")
    if total > CARRY_LIMIT:
        print("too much to carry: drop the OpenMM part (--no-openmm) or stale files in .whl/ and .gpu/whl/")
        return 1
    wheels = ".whl/*.whl" + ("" if args.no_openmm else " .gpu/whl/*.whl")
    # issue 7's data set first (it is what only a GPU can make), then DiTree (never run on a GPU), then the
    # throughput check (run on an H100 before); each bounded so that the call stays under the 600 s limit
    steps = ([] if args.no_openmm else
             ["timeout 250 python3 benchmarks/unbinding_gpu.py --out $OUT/unbinding --minutes 3 --procs 8"])
    steps += ["timeout 130 python3 benchmarks/ditree_gpu.py --out $OUT/ditree",
              "timeout 200 python3 benchmarks/gpu_check.py --out $OUT/check --ref-seconds 30 --render-seconds 10"]
    print("device command (one call, timeout_s 600; each step writes its results before the next starts):")
    print(f"python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "
          f"{wheels} && export PYTHONPATH=/tmp/site || exit; " + "; ".join(steps))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
