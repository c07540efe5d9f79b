"""TS-GEN vs xTB CI-NEB at equal load: every method timed interleaved, reaction by reaction, in one process.

The older speed figures (benchmarks/results/tsgen.md) timed CI-NEB under load 6-10 and TS-GEN under load 2-3,
and their CI-NEB + Sella baseline first converged the band tightly (fmax 0.05, <= 500 steps) before Sella.
Here, for each of the first K reactions of the TS-GEN test split (the benchmark's xTB subset), in one process
(the same machine load for all; os.getloadavg() is recorded before and after every method), in an order that
rotates from reaction to reaction:

- ``cineb_tight``: the benchmark's CI-NEB as configured there (benchmarks/tsgen.py NEB: 8 images, fmax 0.05,
  <= 500 steps), and ``cineb_tight_sella``: its highest image + one Sella search (time = NEB + Sella);
- ``neb_loose_sella``: the same NEB (images, IDPP, calculator, end-point relaxation), plain phase to fmax 0.5
  (<= 150 steps, the ci_neb default), climbing image only to fmax 0.1, <= 200 steps in all, then the highest
  image to one Sella search: what a user who refines with Sella anyway would run;
- ``tsgen_refine``: ``refine`` with its defaults (n=4, rule "lowest", Sella <= 50 steps, internal coordinates,
  exact xTB Hessian), seed 0;
- ``tsgen_raw``: the raw TS-GEN guess (``TSGen.generate`` n=4 with the same seed, medoid pick), no search.

Every Sella search is ``saddle_search`` with the refine defaults (<= 50 steps, fmax 0.05, internal coordinates,
exact Hessian, a fresh calculator) and ends with its finite-difference Hessian; an order-1 saddle is its
``is_saddle`` (converged, exactly one imaginary mode below -50 cm^-1). Geometries not ending in a search (the
CI-NEB image, the raw guess) get the same test without moving: max atomic force <= 0.05 eV/Å and exactly one
imaginary mode (untimed). xTB single points are counted by wrapping tblite's ASE calculator (every SCF: band,
end-point relaxations, Sella steps, Hessians, the final frequency check; not the untimed checks).
Results are written after every reaction (JSON + markdown), so a run cut short leaves a usable partial table.

    OMP_NUM_THREADS=1 python benchmarks/tsgen_equal_load.py --k 10
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.tsgen import NEB
from sciflow.core.files import atomic_write_json, atomic_write_text
from sciflow.core.random import make_generator
from sciflow.data.reactions import find_grambow, grambow_split, load_triplets
from sciflow.methods.tsgen.evaluate import rmsd_per_reaction

LOOSE = {"n_images": NEB["n_images"], "fmax": 0.1, "steps": 200}
SELLA = {"steps": 50, "fmax": 0.05, "internal": True, "exact_hessian": True}     # refine's defaults
METHODS = ["cineb_tight", "neb_loose_sella", "tsgen_refine", "tsgen_raw"]
LABELS = {
    "cineb_tight": f"xTB CI-NEB, benchmark setting (fmax {NEB['fmax']}, <= {NEB['steps']} steps)",
    "cineb_tight_sella": "xTB CI-NEB (benchmark setting) + Sella",
    "neb_loose_sella": f"xTB NEB loose (0.5, then CI to {LOOSE['fmax']}, <= {LOOSE['steps']} steps) + Sella",
    "tsgen_refine": "TS-GEN n=4 + Sella on each (refine defaults)",
    "tsgen_raw": "TS-GEN raw guess (medoid of 4)",
}
ROWS = ["cineb_tight", "cineb_tight_sella", "neb_loose_sella", "tsgen_refine", "tsgen_raw"]
CALLS = [0]


def count_xtb_calls() -> None:
    """Count every tblite single point in this process (a wrapper around TBLite.calculate)."""
    from tblite.ase import TBLite

    orig = TBLite.calculate

    def calculate(self, *a, **k):
        CALLS[0] += 1
        return orig(self, *a, **k)
    TBLite.calculate = calculate


def order1_at(z: np.ndarray, x: np.ndarray) -> dict:
    """The saddle test without moving: max atomic force <= 0.05 eV/Å and one imaginary mode (saddle_search's)."""
    from sciflow.domains.molecules.io import to_atoms
    from sciflow.domains.molecules.xtb import IMAG_THRESHOLD, frequencies, hessian, xtb_calculator

    try:
        a = to_atoms(z, x)
        a.calc = xtb_calculator()
        fmax = float(np.linalg.norm(a.get_forces(), axis=1).max())
        n_imag = int((frequencies(z, x, hessian(z, x, calc=xtb_calculator())) < -IMAG_THRESHOLD).sum())
    except Exception:  # noqa: BLE001 - SCF failure: not a saddle
        return {"saddle": False, "fmax": float("nan"), "n_imaginary": -1}
    return {"saddle": bool(fmax <= SELLA["fmax"] and n_imag == 1), "fmax": fmax, "n_imaginary": n_imag}


def timed(fn):
    load0, c0, t0 = os.getloadavg()[0], CALLS[0], time.perf_counter()
    out = fn()
    return out, {"seconds": time.perf_counter() - t0, "xtb_calls": CALLS[0] - c0, "load_before": load0,
                 "load_after": os.getloadavg()[0]}


def run_reaction(model, sub, i: int, seed: int) -> dict:
    from sciflow.domains.molecules.io import to_atoms
    from sciflow.domains.molecules.xtb import EV_TO_KCAL, ci_neb, saddle_search, xtb_calculator, xtb_energy
    from sciflow.methods.tsgen.refine import medoid_order, refine

    s = sub.rows(i)
    z, r, p = sub.atomic_numbers[s], sub.pos_reactant[s], sub.pos_product[s]
    one = sub.subset([i])
    e_ref = xtb_energy(z, sub.pos_ts[s], xtb_calculator())
    rec = {"rxn_id": str(sub.rxn_id[i]), "n_atoms": len(z), "e_ref_ev": e_ref}

    def result(pos, energy, saddle, **extra) -> dict:
        return {"rmsd": float(rmsd_per_reaction(one, np.asarray(pos, float))[0]),
                "barrier_error_kcal": abs(float(energy) - e_ref) * EV_TO_KCAL, "saddle": bool(saddle), **extra}

    def sella(x):
        return saddle_search(z, x, calc=xtb_calculator(), **SELLA)

    order = METHODS[i % len(METHODS):] + METHODS[:i % len(METHODS)]
    rec["order"] = order
    for m in order:
        if m == "cineb_tight":
            neb, t = timed(lambda: ci_neb(z, r, p, **NEB))
            rec[m] = {**t, **result(neb.ts_positions, neb.ts_energy, False), "neb_converged": neb.converged,
                      "neb_steps": neb.steps, "neb_force_calls": neb.force_calls, "neb_error": neb.error}
            rec[m].update({k: v for k, v in order1_at(z, neb.ts_positions).items()})
            sad, t2 = timed(lambda x=neb.ts_positions: sella(x))
            rec["cineb_tight_sella"] = {
                "seconds": rec[m]["seconds"] + t2["seconds"], "xtb_calls": rec[m]["xtb_calls"] + t2["xtb_calls"],
                "load_before": t2["load_before"], "load_after": t2["load_after"], "sella_seconds": t2["seconds"],
                "sella_steps": sad.steps, "n_imaginary": sad.n_imaginary,
                **result(sad.positions, sad.energy, sad.is_saddle)}
        elif m == "neb_loose_sella":
            def loose():
                neb = ci_neb(z, r, p, **LOOSE)
                return neb, sella(neb.ts_positions)
            (neb, sad), t = timed(loose)
            rec[m] = {**t, **result(sad.positions, sad.energy, sad.is_saddle), "neb_converged": neb.converged,
                      "neb_steps": neb.steps, "neb_force_calls": neb.force_calls, "sella_steps": sad.steps,
                      "sella_seconds": sad.seconds, "n_imaginary": sad.n_imaginary,
                      "neb_ts_rmsd": float(rmsd_per_reaction(one, neb.ts_positions)[0])}
        elif m == "tsgen_refine":
            res, t = timed(lambda: refine(model, to_atoms(z, r), to_atoms(z, p), n=4,
                                          generator=make_generator(seed)))
            rec[m] = {**t, **result(res.positions, res.energy, res.converged), "searches": len(res.guesses),
                      "n_saddles": res.n_saddles, "seconds_generate": res.seconds_generate}
        elif m == "tsgen_raw":
            def raw():
                tr = model.generate(to_atoms(z, r), to_atoms(z, p), n=4, generator=make_generator(seed))
                x = tr.last.detach().cpu().to(torch.float64).numpy().reshape(4, -1, 3)
                return x[medoid_order(x)[0]]
            x, t = timed(raw)
            rec[m] = {**t, **result(x, xtb_energy(z, x, xtb_calculator()), False)}
            rec[m].update(order1_at(z, x))
    return rec


def _f(v) -> float:
    return float("nan") if v is None else float(v)      # NaN is written as null in the JSON


def summarize(recs: list[dict]) -> dict:
    out = {}
    for row in ROWS:
        its = [r[row] for r in recs if row in r]
        if not its:
            continue
        sec = np.array([it["seconds"] for it in its])
        out[row] = {"label": LABELS[row], "n": len(its), "seconds_median": float(np.median(sec)),
                    "seconds_mean": float(sec.mean()),
                    "xtb_calls_mean": float(np.mean([it["xtb_calls"] for it in its])),
                    "saddle_fraction": float(np.mean([it["saddle"] for it in its])),
                    "rmsd_median": float(np.nanmedian([_f(it["rmsd"]) for it in its])),
                    "rmsd_mean": float(np.nanmean([_f(it["rmsd"]) for it in its])),
                    "barrier_error_kcal_median": float(np.nanmedian([_f(it["barrier_error_kcal"]) for it in its]))}
        if "neb_converged" in its[0]:
            out[row]["neb_converged_fraction"] = float(np.mean([it["neb_converged"] for it in its]))
    for row, x in out.items():   # ratios over the same reactions
        both = [r for r in recs if row in r and "tsgen_refine" in r]
        if both:
            x["time_vs_tsgen_refine_mean"] = float(np.mean([r[row]["seconds"] for r in both]) /
                                                          np.mean([r["tsgen_refine"]["seconds"] for r in both]))
            x["time_vs_tsgen_refine_median_of_ratios"] = float(np.median(
                [r[row]["seconds"] / r["tsgen_refine"]["seconds"] for r in both]))
    return out


def write(results: dict, out: Path) -> None:
    atomic_write_json(out.with_suffix(".json"), results)
    s = results["summary"]
    loads = [v for r in results["reactions"] for m in ROWS if m in r for v in (r[m]["load_before"],
                                                                                 r[m]["load_after"])]
    lines = [f"# TS-GEN vs xTB CI-NEB at equal load ({results['n_done']} of {results['k']} reactions)", "",
             (f"Started {results['started']} UTC, last update {results['updated']} UTC; {results['machine']}. "
             f"1-min load average over the run (before/after every method): min {min(loads, default=float('nan')):.2f}, "
             f"median {float(np.median(loads)) if loads else float('nan'):.2f}, max {max(loads, default=float('nan')):.2f}. "
             "All methods ran interleaved per reaction in one process (order rotating per reaction), so they saw "
             "the same load."), "",
             "Command: `" + results["command"] + "`", "",
             ("| method | n | s / rxn median | s / rxn mean | time / TS-GEN refine (ratio of means; median of per-rxn ratios) "
             "| xTB single points / rxn | order-1 saddle | RMSD to DFT TS median / mean (Å) | barrier err. median (kcal/mol) |"),
             "|---|---|---|---|---|---|---|---|---|"]
    for row in ROWS:
        if row not in s:
            continue
        x = s[row]
        ratio = (f"{x['time_vs_tsgen_refine_mean']:.3g}; {x['time_vs_tsgen_refine_median_of_ratios']:.3g}"
                 if "time_vs_tsgen_refine_mean" in x else "n/a")
        lines.append(f"| {x['label']} | {x['n']} | {x['seconds_median']:.2f} | {x['seconds_mean']:.2f} | {ratio} | "
                     f"{x['xtb_calls_mean']:.0f} | {round(x['saddle_fraction'] * x['n'])} / {x['n']} | "
                     f"{x['rmsd_median']:.3f} / {x['rmsd_mean']:.3f} | {x['barrier_error_kcal_median']:.2f} |")
    for row in ("cineb_tight", "neb_loose_sella"):
        if row in s and "neb_converged_fraction" in s[row]:
            lines.append(f"\nBand reached its fmax ({row}): {round(s[row]['neb_converged_fraction'] * s[row]['n'])} / "
                         f"{s[row]['n']}.")
    lines += ["", "Per reaction (seconds; order-1 saddle y/n):", "",
              "| rxn | atoms | " + " | ".join(ROWS) + " | load range |", "|---|---|" + "---|" * (len(ROWS) + 1)]
    for r in results["reactions"]:
        cells = [f"{r[m]['seconds']:.2f} {'y' if r[m]['saddle'] else 'n'}" if m in r else "n/a" for m in ROWS]
        lo = [r[m][k] for m in ROWS if m in r for k in ("load_before", "load_after")]
        lines.append(f"| {r['rxn_id']} | {r['n_atoms']} | " + " | ".join(cells) + f" | {min(lo):.1f}-{max(lo):.1f} |")
    lines += [""] + [f"- {n}" for n in results["notes"]]
    atomic_write_text(out.with_suffix(".md"), "\n".join(lines) + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=None)
    ap.add_argument("--model", default=str(ROOT / "models" / "tsgen"))
    ap.add_argument("--k", type=int, default=10, help="the first K reactions of the test split")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "tsgen_equal_load"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    from sciflow.methods.tsgen import TSGen

    test = grambow_split(load_triplets(args.data or find_grambow()))["test"]
    sub = test.subset(np.arange(min(args.k, len(test))))
    model = TSGen.load(args.model)
    count_xtb_calls()
    results = {"k": len(sub), "n_done": 0, "reactions": [], "neb_tight": NEB, "neb_loose": LOOSE, "sella": SELLA,
               "seed": args.seed, "machine": f"{platform.machine()} CPU ({os.cpu_count()} cores, shared), 1 thread, "
               f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}",
               "command": "OMP_NUM_THREADS=1 python benchmarks/tsgen_equal_load.py " + " ".join(sys.argv[1:]),
               "started": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
               "notes": [
                   ("Warm-up (untimed): one refine call on the first reaction before the loop (torch, tblite, Sella "
                   "imports and first use)."),
                   ("Sella (every '+ Sella' row): saddle_search, <= 50 steps, fmax 0.05, internal coordinates, "
                   "exact xTB Hessian, fresh calculator: the refine defaults; its time includes the final "
                   "finite-difference Hessian of the saddle check."),
                   ("CI-NEB (benchmark setting) + Sella: time = that NEB + one Sella search from its highest image. "
                   "The raw rows (CI-NEB image, TS-GEN guess) count as order-1 saddles only if max force <= 0.05 "
                   "eV/Å and exactly one imaginary mode there (untimed check)."),
                   ("Loose NEB: plain NEB to fmax 0.5 (<= 150 steps), climbing image to fmax 0.1, <= 200 steps in "
                   "all; the highest image goes to Sella whether or not the band reached 0.1. Why: Sella only needs a "
                   "start inside the saddle's basin (it follows the lowest Hessian mode itself), so converging the "
                   "band to 0.05 first buys little; 0.1 eV/Å with a step cap bounds the cost of bands that stall, "
                   "which the tight setting lets run to 500 steps."),
                   "Barrier error: |E_xTB(end geometry) - E_xTB(DFT TS)|; RMSD: Kabsch RMSD to the DFT TS.",
                   "TS-GEN seconds include sampling and (refine) every Sella search; not model loading."]}
    from sciflow.domains.molecules.io import to_atoms
    from sciflow.methods.tsgen.refine import refine
    s0 = sub.rows(0)
    refine(model, to_atoms(sub.atomic_numbers[s0], sub.pos_reactant[s0]),
           to_atoms(sub.atomic_numbers[s0], sub.pos_product[s0]), n=1, generator=make_generator(args.seed))
    out = Path(args.out)
    for i in range(len(sub)):
        rec = run_reaction(model, sub, i, args.seed)
        results["reactions"].append(rec)
        results["n_done"] = i + 1
        results["updated"] = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
        results["summary"] = summarize(results["reactions"])
        write(results, out)
        print(f"[{i + 1}/{len(sub)}] {rec['rxn_id']}: " + ", ".join(
            f"{m} {rec[m]['seconds']:.1f}s {'S' if rec[m]['saddle'] else '-'}" for m in ROWS if m in rec), flush=True)
    print(out.with_suffix(".md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
