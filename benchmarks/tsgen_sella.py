"""Sella coordinate setting of the TS-GEN benchmark's saddle check: the same guesses, Sella rerun for every row.

Used by ``benchmarks/tsgen.py --part sella-rerun [--sella-internal]``. The guess geometries come from the main
script (its cache for CI-NEB, the shipped G2C predictions, the shipped model's samples with seed 0); only the Sella
searches run again, each with a fresh GFN2-xTB calculator, <= 50 steps, fmax 0.05, with Sella's internal
coordinates (``--sella-internal``) or Cartesian ones, and optionally started from the exact (finite-difference)
xTB Hessian (``--sella-hessian``). Results are cached per (row, reaction) under keys that name the setting, so
the Cartesian rows of ``benchmarks/results/tsgen.md`` are never touched.
"""
from __future__ import annotations

import platform
import time
from pathlib import Path

import numpy as np

from sciflow.core.files import atomic_write_json, atomic_write_text
from sciflow.core.training import progress
from sciflow.methods.tsgen.evaluate import rmsd_per_reaction, summarize

SINGLE = {"reactant": "reactant as TS", "midpoint": "R/P midpoint (Kabsch-aligned)",
          "g2c": "G2C model (shipped predictions)", "xtb_cineb": "xTB CI-NEB TS (highest image)",
          "tsgen": "sciflow TS-GEN medoid of 4"}


#: cache tag -> (internal coordinates, exact initial Hessian, label)
SETTINGS = {"int": (True, False, "internal"), "cart": (False, False, "Cartesian"),
            "inthess": (True, True, "internal, exact Hessian")}


def tag(internal: bool, exact_hessian: bool = False) -> str:
    return next(t for t, (i, h, _) in SETTINGS.items() if (i, h) == (bool(internal), bool(exact_hessian)))


def rerun(sub, guesses: dict, samples: np.ndarray, internal: bool, cache: dict, cache_path: Path,
          append_cache, steps: int = 50, exact_hessian: bool = False) -> None:
    """Reaction by reaction: one search from each single guess, and from each of the n TS-GEN samples."""
    from sciflow.domains.molecules.xtb import saddle_search, xtb_calculator, xtb_energy
    from sciflow.methods.tsgen.refine import refine_guesses

    t = tag(internal, exact_hessian)
    z0 = sub.atomic_numbers[sub.rows(0)]
    saddle_search(z0, sub.pos_ts[sub.rows(0)], steps=3, internal=internal, exact_hessian=exact_hessian)  # warm-up (Sella's JIT), untimed
    for i in progress(range(len(sub)), desc=f"sella rerun ({t})", unit="rxn"):
        rid = str(sub.rxn_id[i])
        s = sub.rows(i)
        z = sub.atomic_numbers[s]
        for row in SINGLE:
            key = (f"sella_{t}_{row}", rid)
            if key in cache:
                continue
            sad = saddle_search(z, guesses[row][s], steps=steps, calc=xtb_calculator(), internal=internal,
                                exact_hessian=exact_hessian)
            item = {"row": key[0], "rxn_id": rid, "saddle": sad.is_saddle, "converged": sad.converged,
                    "n_imaginary": sad.n_imaginary, "steps": sad.steps, "energy_ev": sad.energy,
                    "sella_seconds": sad.seconds, "positions": np.asarray(sad.positions, float).tolist()}
            cache[key] = item
            append_cache(cache_path, item)
        key = (f"sella_{t}_refine{samples.shape[0]}", rid)
        if key not in cache:
            res = refine_guesses(z, samples[:, s], rule="lowest", steps=steps, internal=internal,
                                 exact_hessian=exact_hessian)
            item = {"row": key[0], "rxn_id": rid, "e_ref_ev": xtb_energy(z, sub.pos_ts[s]),
                    "searches": [{**g.info(), "positions": g.positions.tolist()} for g in res.guesses]}
            cache[key] = item
            append_cache(cache_path, item)


def rows_for(sub, t: str, cache: dict, guess_seconds: dict, n: int) -> list[dict]:
    """Table rows of one setting (a ``SETTINGS`` tag) from the cache (only reactions whose every row is done)."""
    from sciflow.domains.molecules.xtb import EV_TO_KCAL
    from sciflow.methods.tsgen.refine import GuessRefinement, select

    rids = [str(r) for r in sub.rxn_id]
    keys = [f"sella_{t}_{row}" for row in SINGLE] + [f"sella_{t}_refine{n}"]
    done = [i for i, r in enumerate(rids) if all((k, r) in cache for k in keys)]
    if not done:
        return []
    part = sub.subset(done)
    e_ref = np.array([cache[(f"sella_{t}_refine{n}", rids[i])]["e_ref_ev"] for i in done])
    setting = SETTINGS[t][2]
    out = []

    def row(name, label, pos, energy, saddle, seconds, searches, steps):
        per = rmsd_per_reaction(part, np.concatenate(pos))
        ok = np.array(saddle) & (per < 0.5)
        out.append({"row": f"{name}_{t}", "label": label, "sella": setting, **summarize(per, "rmsd"),
                    "saddle_count": int(np.sum(saddle)), "saddle_within_0.5A": int(ok.sum()), "n": len(done),
                    "saddle_success": float(np.mean(saddle)),
                    **summarize(np.abs(np.array(energy) - e_ref) * EV_TO_KCAL, "barrier_error_kcal"),
                    "seconds_per_reaction": float(np.mean(seconds)),
                    "searches_per_reaction": float(np.mean(searches)),
                    "sella_steps_mean": float(np.mean(steps)),
                    "per_reaction_saddle": [bool(v) for v in saddle], "per_reaction_rmsd": per.tolist()})
    for name, label in SINGLE.items():
        its = [cache[(f"sella_{t}_{name}", rids[i])] for i in done]
        base = guess_seconds.get(name)
        secs = [(base(i) if callable(base) else (base or 0.0)) + it["sella_seconds"] for i, it in zip(done, its)]
        row(name, f"{label} + Sella", [np.asarray(it["positions"]) for it in its], [it["energy_ev"] for it in its],
            [it["saddle"] for it in its], secs, [1] * len(its), [it["steps"] for it in its])
    for rule, what in (("lowest", "lowest-energy saddle"), ("first", "first saddle, medoid first")):
        picks = []
        for j, i in enumerate(done):
            searches = [GuessRefinement(d["index"], d["saddle"], d["converged"], d["n_imaginary"],
                                        float(d["energy_ev"]), d["steps"], d["seconds"], np.asarray(d["positions"]))
                        for d in cache[(f"sella_{t}_refine{n}", rids[i])]["searches"]]
            picks.append(select(part.atomic_numbers[part.rows(j)], searches, rule))
        row(f"refine{n}_{rule}", f"sciflow TS-GEN n={n} + Sella on each, {what}", [p.positions for p in picks],
            [p.energy for p in picks], [p.converged for p in picks],
            [guess_seconds["tsgen"] + p.seconds_search for p in picks], [len(p.guesses) for p in picks],
            [np.mean([g.steps for g in p.guesses]) for p in picks])
    return out


def report(sub, cache: dict, guess_seconds: dict, n: int, out: str, command: str) -> None:
    """The settings side by side (a setting whose searches have not run is left out)."""
    rows = [r for t in SETTINGS for r in rows_for(sub, t, cache, guess_seconds, n)]
    results = {"measured": time.strftime("%Y-%m-%d %H:%M", time.gmtime()), "command": command,
               "machine": f"{platform.machine()} CPU, 1 thread, shared with other jobs",
               "xtb_subset": {"n_reactions": len(sub), "rxn_ids": [str(r) for r in sub.rxn_id]}, "rows": rows}

    def f(v, d=3):
        return "n/a" if v is None or not np.isfinite(v) else f"{v:.{d}f}"
    lines = [f"# TS-GEN benchmark: Sella settings of the saddle check (measured {results['measured']} UTC)", "",
             (f"The first {len(sub)} test reactions (the xTB subset of benchmarks/results/tsgen.md), the same guess "
              "geometries as there; only the Sella saddle check is rerun: order 1, <= 50 steps, fmax 0.05 eV/Å, a "
              "fresh GFN2-xTB calculator per search, success = converged within the budget with exactly one "
              "imaginary mode (finite-difference Hessian, |ν| > 50 cm^-1). RMSD and barrier error are those of the "
              "Sella end point (Kabsch RMSD to the DFT TS in Å; |E_xTB - E_xTB(DFT TS)| in kcal/mol). Time per "
              f"reaction = the guess's time + every Sella search run (with its Hessian), on {results['machine']}."),
             "", ("| pipeline | Sella coordinates | order-1 saddle | saddle within 0.5 Å of DFT TS | RMSD median | "
                  "barrier err. median | mean Sella steps | searches / rxn | s / reaction |"),
             "|---|---|---|---|---|---|---|---|---|"]
    names = list(SINGLE) + [f"refine{n}_lowest", f"refine{n}_first"]
    order = sorted(rows, key=lambda r: names.index(r["row"].rsplit("_", 1)[0]))
    for r in order:
        lines.append(f"| {r['label']} | {r['sella']} | {r['saddle_count']} / {r['n']} | "
                     f"{r['saddle_within_0.5A']} / {r['n']} | {f(r['rmsd_median'])} | "
                     f"{f(r['barrier_error_kcal_median'], 2)} | {f(r['sella_steps_mean'], 1)} | "
                     f"{f(r['searches_per_reaction'], 2)} | {f(r['seconds_per_reaction'], 2)} |")
    secs = {}
    for t in SETTINGS:
        v = [d["sella_seconds"] for (k, _), d in cache.items() if k.startswith(f"sella_{t}_") and "sella_seconds" in d]
        v += [g["seconds"] for (k, _), d in cache.items() if k.startswith(f"sella_{t}_refine") for g in d["searches"]]
        if v:
            secs[t] = (len(v), float(np.median(v)), float(np.mean(v)))
    results["seconds_per_search"] = {t: {"n": a, "median": b, "mean": c} for t, (a, b, c) in secs.items()}
    atomic_write_json(Path(out + ".json"), results)
    lines += ["", "Commands (one per setting; the report shows every setting found in the cache):", "",
              "- `OMP_NUM_THREADS=1 python benchmarks/tsgen.py --xtb-subset 20 --n-samples 4 --part sella-rerun "
              "--sella-internal`",
              "- `OMP_NUM_THREADS=1 python benchmarks/tsgen.py --xtb-subset 20 --n-samples 4 --part sella-rerun`",
              "- `OMP_NUM_THREADS=1 python benchmarks/tsgen.py --xtb-subset 20 --n-samples 4 --part sella-rerun "
              "--sella-internal --sella-hessian`",
              f"- this report: `{command}`", "",
              "Notes:", "",
              *(f"- Sella wall time per search ({SETTINGS[t][2]}): median {b:.2f} s, "
                f"mean {c:.2f} s over {a} searches (Hessian included)." for t, (a, b, c) in secs.items()),
              ("- Internal coordinates take fewer steps but each costs more (coordinate bookkeeping, and Sella's "
               "JIT compilation the first time a molecule size is seen: one untimed warm-up search runs before the "
               "loop, further sizes pay it inside the timing)."),
              "- Guess seconds: 0 for reactant, midpoint and G2C (shipped predictions, no timing), the CI-NEB run's "
              "seconds (from the cache of benchmarks/results/tsgen.md, measured under load 6-10), TS-GEN sampling "
              "(one batched call, this run).",
              "- The Cartesian rows here use a fresh calculator per search; the Cartesian single-guess rows of "
              "benchmarks/results/tsgen.md shared one calculator per reaction, hence 18 vs 17 (CI-NEB) and 12 vs "
              "11 (TS-GEN medoid). The Cartesian refine rows reproduce tsgen.md exactly (17 / 20, 14 / 20).",
              "- 20 reactions: one reaction is 5 points.", ""]
    atomic_write_text(Path(out + ".md"), "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    raise SystemExit("benchmarks/tsgen_sella.py is a part of benchmarks/tsgen.py: run "
                     "`python benchmarks/tsgen.py --part sella-rerun [--sella-internal] [--sella-hessian]`")
