"""T4L-p-xylene RAMD dissociation events on a GPU in one short call: the protein data set of UnbindingFlow.

Runs ``--procs`` concurrent ``sciflow unbinding simulate`` processes (OpenMM, OBC2 implicit solvent, 4 fs with
hydrogen mass repartitioning) for ``--minutes`` of wall time. Each process runs its own replica indices, so the
seeds differ and a re-run resumes; the replica still running at the deadline is dropped. Then it measures the
cost per dissociation event on this device (wall time of the whole call over the events, and the per-replica
process time) and packs the events, thinned to fit the device tool's file limits, into at most four HDF5 files
in the reader's layout.

    python benchmarks/unbinding_gpu.py --out DIR [--minutes 7] [--procs 8] [--platform CUDA]

OpenMM and its CUDA plugin are not on the lent GPU machine: install the cp312 wheels first (``pip install
--no-deps --target``); the T4L input files travel in an ignored folder (``--t4l-folder``). Dry run on a CPU:
``--platform CPU --complex benzene-toluene --minutes 1 --procs 2``.

Writes DIR/unbinding_gpu.json, DIR/unbinding_gpu.md and DIR/<complex>_md_<k>.h5.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sciflow.data.dissociation import write_h5
from sciflow.data.ramd import load_events, summarize

FILE_LIMIT = 15 * 2 ** 20           # bytes per packed file (the device tool returns files of at most 16 MiB)
MAX_FILES = 4


def launch(args: argparse.Namespace, md: Path) -> list[subprocess.Popen]:
    """Start the simulate processes, each on its own replica range."""
    procs = []
    for i in range(args.procs):
        cmd = [sys.executable, "-m", "sciflow", "unbinding", "simulate", "--complex", args.complex,
               "--t4l-folder", args.t4l_folder, "--replicas", str(args.replicas_per_proc),
               "--first", str(i * args.replicas_per_proc), "--out", str(md), "--seed", str(args.seed),
               "--force", str(args.force), "--timestep-fs", str(args.timestep_fs),
               "--hydrogen-mass", str(args.hydrogen_mass), "--exit-distance", str(args.exit_distance),
               "--save-every-ps", str(args.save_every_ps), "--max-time-ps", str(args.max_time_ps),
               "--pocket-cutoff", str(args.pocket_cutoff), "--platform", args.platform]
        log = open(md / f"proc{i}.log", "w")                      # noqa: SIM115 (closed with the process)
        procs.append(subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
    return procs


def stop_at(procs: list[subprocess.Popen], deadline: float) -> None:
    """Wait until every process ends or the deadline passes; then end the rest (their running replica is lost)."""
    while time.monotonic() < deadline and any(p.poll() is None for p in procs):
        time.sleep(2.0)
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)


def pack(folder: Path, out: Path, prefix: str) -> dict:
    """Write the exited replicas to at most MAX_FILES files below FILE_LIMIT, thinning frames as needed."""
    events = load_events(folder)
    if not events:
        return {"files": [], "events": 0, "every": None}
    every = 1
    while True:
        chunks = [events[k::MAX_FILES] for k in range(min(MAX_FILES, len(events)))]
        paths = [out / f"{prefix}_md_{k}.h5" for k in range(len(chunks))]
        for path, chunk in zip(paths, chunks):
            write_h5(path, [t.thin(every) for t in chunk], creator="benchmarks/unbinding_gpu.py")
        if max(p.stat().st_size for p in paths) <= FILE_LIMIT or every >= 64:
            break
        every *= 2
    return {"files": [p.name for p in paths], "events": len(events), "every": every,
            "bytes": [p.stat().st_size for p in paths]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--minutes", type=float, default=7.0, help="wall time of the MD part")
    ap.add_argument("--procs", type=int, default=8, help="concurrent simulate processes")
    ap.add_argument("--replicas-per-proc", type=int, default=200)
    ap.add_argument("--complex", default="t4l-pxylene")
    ap.add_argument("--t4l-folder", default=".gpu/t4l" if (ROOT / ".gpu/t4l").is_dir()
                    else "../shared/data/t4l_l99a_pxylene")
    ap.add_argument("--platform", default="CUDA")
    ap.add_argument("--force", type=float, default=14.0, help="RAMD force, kcal/mol/Å")
    ap.add_argument("--timestep-fs", type=float, default=4.0)
    ap.add_argument("--hydrogen-mass", type=float, default=3.0)
    ap.add_argument("--exit-distance", type=float, default=15.0, help="Å from the pocket centroid")
    ap.add_argument("--save-every-ps", type=float, default=1.0)
    ap.add_argument("--max-time-ps", type=float, default=1000.0)
    ap.add_argument("--pocket-cutoff", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--md-dir", default=None, help="raw replica folder (default: a folder beside --out)")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    md = Path(args.md_dir or f"{out.resolve()}_md")
    md.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    procs = launch(args, md)
    stop_at(procs, t0 + 60.0 * args.minutes)
    elapsed = time.monotonic() - t0
    folder = md / args.complex
    totals = summarize(folder) if folder.is_dir() else {"replicas": 0}
    events = int(totals.get("events", 0))
    res = {"command": " ".join(sys.argv), "complex": args.complex, "platform": args.platform, "procs": args.procs,
           "settings": {k: getattr(args, k) for k in ("force", "timestep_fs", "hydrogen_mass", "exit_distance",
                                                      "save_every_ps", "max_time_ps", "pocket_cutoff", "seed")},
           "elapsed_seconds": elapsed, "totals": totals,
           "device_seconds_per_event": elapsed / events if events else None,
           "ns_per_day_all_processes": totals.get("simulated_ps", 0.0) / 1000.0 / elapsed * 86400.0,
           "exit_codes": [p.returncode for p in procs]}
    res["packed"] = pack(folder, out, args.complex) if folder.is_dir() else {"files": [], "events": 0}
    (out / "unbinding_gpu.json").write_text(json.dumps(res, indent=2, default=str))
    rows = [("complex / platform", f"{args.complex} / {args.platform}, {args.procs} processes"),
            ("wall time of the MD part (s)", f"{elapsed:.0f}"),
            ("replicas finished / exited", f"{totals.get('replicas', 0)} / {events}"),
            ("simulated time, all processes (ns)", f"{totals.get('simulated_ps', 0.0) / 1000:.2f}"),
            ("throughput, all processes (ns/day)", f"{res['ns_per_day_all_processes']:.0f}"),
            ("device seconds per event (wall / events)",
             f"{res['device_seconds_per_event']:.1f}" if events else "no event"),
            ("process seconds per event (per-replica wall summed)",
             f"{totals['seconds_per_event']:.1f}" if events else "no event"),
            ("median exit time (ps)", f"{totals.get('exit_time_ps_median', float('nan')):.0f}"),
            ("packed", (f"{res['packed']['events']} events in {len(res['packed']['files'])} files, "
                        f"every {res['packed'].get('every')} saved frame(s)"))]
    md_text = ["# UnbindingFlow: RAMD events on the device", "", f"Command: `{res['command']}`", "",
               "| what | value |", "|---|---|", *[f"| {a} | {b} |" for a, b in rows], ""]
    (out / "unbinding_gpu.md").write_text("\n".join(md_text))
    print("\n".join(md_text))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
