"""TS-GEN benchmark on the test split of the 700 Grambow reactions, side by side with what a chemist would use.

Rows: reactant-as-TS, R/P midpoint, the G2C model predictions shipped with the data (Pattanaik et al. 2020),
xTB CI-NEB (ASE + tblite, the same settings for every reaction), sciflow TS-GEN (Euler few-step and Dopri5).
Columns: Kabsch RMSD to the DFT TS (mean / median, all 70 test reactions), and on an xTB subset (the first K
reactions of the test split): |E_xTB(TS guess) - E_xTB(DFT TS)| (kcal/mol), Sella saddle success (<= 50 steps,
one imaginary mode) and wall time per reaction.

Every xTB result is cached per (row, reaction) in ``--cache`` (JSON lines), so the script resumes and can be
run in parts (``--part rmsd|xtb-baselines|xtb-model|report``). The cache records the model (its files' digest),
seed and sample count its TS-GEN rows were made with, and a run with others is refused. Run with OMP_NUM_THREADS=1.

    OMP_NUM_THREADS=1 python benchmarks/tsgen.py --xtb-subset 20 --n-samples 4
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sciflow.core.files import atomic_write_json, atomic_write_text, read_json_lines
from sciflow.core.random import make_generator
from sciflow.core.training import progress
from sciflow.data.reactions import find_grambow, grambow_split, load_triplets
from sciflow.domains.molecules import reaction_frame
from sciflow.methods.tsgen.evaluate import medoid_index, rmsd_per_reaction, summarize

ROWS = ["reactant", "midpoint", "g2c", "xtb_cineb", "tsgen"]
NEB = {"n_images": 8, "fmax": 0.05, "steps": 500}


def load_cache(path: Path) -> dict[tuple[str, str], dict]:
    """The cached items by (row, reaction); the stamp of the model that made the TS-GEN rows under ("meta",
    "model"). A last line cut short (a full disk, a power loss) is dropped with a warning, so the run resumes."""
    out = {}
    for d in read_json_lines(path, "--cache"):
        if "meta" in d:
            out[("meta", "model")] = d["meta"]
        else:
            out[(d["row"], d["rxn_id"])] = d
    return out


def model_stamp(model: str, seed: int, n_samples: int) -> dict:
    """What the TS-GEN rows of the cache depend on: the model's files (SHA-256), the seed and the sample count."""
    h = hashlib.sha256()
    root = Path(model)
    for f in sorted(root.rglob("*") if root.is_dir() else [root]):
        if f.is_file() and f.suffix != ".md":          # the weights and config, not the model card
            h.update(f.relative_to(root if root.is_dir() else root.parent).as_posix().encode())
            h.update(f.read_bytes())
    return {"model": h.hexdigest()[:16], "seed": int(seed), "n_samples": int(n_samples)}


def check_model_stamp(cache: dict, cache_path: Path, stamp: dict) -> None:
    """Refuse a cache whose TS-GEN rows another model, seed or sample count made (they would be reported under
    this run's settings); a cache from before the stamp was kept is taken as this run's, and stamped now."""
    have = cache.get(("meta", "model"))
    if have is None:
        cache[("meta", "model")] = stamp
        append_cache(cache_path, {"meta": stamp})
    elif have != stamp:
        changed = ", ".join(f"{k} {have.get(k)} -> {v}" for k, v in stamp.items() if have.get(k) != v)
        raise SystemExit(f"--cache {cache_path} holds TS-GEN results of another model or settings ({changed}); use "
                         f"another --cache (its baseline rows can be kept: copy the lines whose row contains "
                         f"neither 'tsgen' nor 'refine', and not the 'meta' line)")


def append_cache(path: Path, item: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps(item, default=float) + "\n")
        f.flush()
        os.fsync(f.fileno())


def midpoint(data) -> np.ndarray:
    b = data.batch_index()
    _, _, mid = reaction_frame(torch.as_tensor(data.pos_reactant, dtype=torch.float64),
                               torch.as_tensor(data.pos_product, dtype=torch.float64), b)
    return mid.numpy()


def tsgen_predictions(model_dir: str, test, n_samples: int, seed: int, solver: str | None, steps: int | None,
                      device: str = "cpu") -> tuple[np.ndarray, np.ndarray, float]:
    """(samples (n, N, 3), ranked pick (N, 3), seconds per reaction)."""
    from sciflow.methods.tsgen import TSGen

    model = TSGen.load(model_dir)
    model.predict(test.subset([0]), 1, generator=make_generator(0), device=device)          # warm-up
    samples, seconds = model.predict(test, n_samples, generator=make_generator(seed), solver=solver, steps=steps,
                                     device=device)
    ranked = medoid_index(test, samples)
    pick = np.zeros_like(samples[0])
    for i in range(len(test)):
        s = test.rows(i)
        pick[s] = samples[ranked[i], s]
    return samples, pick, seconds / len(test)


def xtb_item(row: str, guess: np.ndarray, sub, i: int, cache: dict, cache_path: Path, calc,
             seconds: float | None = None, keep_end_point: bool = False) -> None:
    """Barrier error and Sella saddle check of one guess (cached). With ``keep_end_point`` the Sella end point
    (positions, barrier error there) is kept too, for the "guess + Sella" rows; an older cache line without it
    is recomputed (the Sella search is reproducible for the same calculator history, so the saddle columns do not change)."""
    from sciflow.domains.molecules.xtb import EV_TO_KCAL, saddle_search, xtb_energy

    rid = str(sub.rxn_id[i])
    if (row, rid) in cache and (not keep_end_point or "sella_positions" in cache[(row, rid)]):
        return
    s = sub.rows(i)
    z = sub.atomic_numbers[s]
    e_g, e_ref = xtb_energy(z, guess, calc), xtb_energy(z, sub.pos_ts[s], calc)
    sad = saddle_search(z, guess, steps=50, calc=calc, internal=False, exact_hessian=False)
    item = {"row": row, "rxn_id": rid, "barrier_error_kcal": abs(e_g - e_ref) * EV_TO_KCAL,
            "saddle": sad.is_saddle, "saddle_converged": sad.converged, "n_imaginary": sad.n_imaginary,
            "sella_seconds": sad.seconds}
    if keep_end_point:
        item["sella_positions"] = np.asarray(sad.positions, float).tolist()
        item["sella_barrier_error_kcal"] = abs(sad.energy - e_ref) * EV_TO_KCAL
    if seconds is not None:
        item["seconds"] = float(seconds)
    cache[(row, rid)] = item
    append_cache(cache_path, item)


def neb_item(sub, i: int, cache: dict, cache_path: Path) -> dict:
    """CI-NEB of reaction i of ``sub`` (cached, TS positions included)."""
    from sciflow.domains.molecules.xtb import ci_neb

    rid = str(sub.rxn_id[i])
    key = ("xtb_cineb_path", rid)
    if key not in cache:
        s = sub.rows(i)
        res = ci_neb(sub.atomic_numbers[s], sub.pos_reactant[s], sub.pos_product[s], **NEB)
        item = {"row": "xtb_cineb_path", "rxn_id": rid, "ts": res.ts_positions.tolist(),
                "converged": res.converged, "steps": res.steps, "force_calls": res.force_calls,
                "seconds": res.seconds, "error": res.error}
        cache[key] = item
        append_cache(cache_path, item)
    return cache[key]


def xtb_baselines(sub, guesses: dict, cache: dict, cache_path: Path) -> None:
    """Reaction by reaction (so that every row covers the same reactions when a run is cut short)."""
    from sciflow.domains.molecules.xtb import xtb_calculator

    calc = xtb_calculator()
    for i in progress(range(len(sub)), desc="xtb baselines", unit="rxn"):
        s = sub.rows(i)
        for row in ("reactant", "midpoint", "g2c"):
            xtb_item(row, guesses[row][s], sub, i, cache, cache_path, calc)
        neb = neb_item(sub, i, cache, cache_path)
        xtb_item("xtb_cineb", np.asarray(neb["ts"]), sub, i, cache, cache_path, calc, seconds=neb["seconds"],
                 keep_end_point=True)


def refine_key(n: int, steps: int) -> str:
    return f"tsgen_refine{n}" + ("" if steps == 50 else f"_s{steps}")


def refine_items(sub, samples: np.ndarray, n: int, cache: dict, cache_path: Path, calc, steps: int = 50) -> None:
    """The refine pipeline's searches on every reaction of ``sub`` (cached): a Sella search from each of the n
    guesses, medoid first (all n are run and kept; the "first saddle" rule is the prefix up to the first saddle)."""
    from sciflow.domains.molecules.xtb import xtb_energy
    from sciflow.methods.tsgen.refine import refine_guesses

    row = refine_key(n, steps)
    for i in progress(range(len(sub)), desc=f"xtb refine n={n}", unit="rxn"):
        rid = str(sub.rxn_id[i])
        if (row, rid) in cache:
            continue
        s = sub.rows(i)
        z = sub.atomic_numbers[s]
        res = refine_guesses(z, samples[:, s], rule="lowest", steps=steps, internal=False,
                             exact_hessian=False)   # fresh calculators
        item = {"row": row, "rxn_id": rid, "e_ref_ev": xtb_energy(z, sub.pos_ts[s], calc),
                "searches": [{**g.info(), "positions": g.positions.tolist()} for g in res.guesses]}
        cache[(row, rid)] = item
        append_cache(cache_path, item)


def extra_budget(sub, samples: np.ndarray, n: int, steps: int, cache: dict, cache_path: Path, calc) -> None:
    """The larger Sella budget for both pipelines: CI-NEB's TS + one Sella search, and the refine searches."""
    from sciflow.domains.molecules.xtb import saddle_search

    row = f"xtb_cineb_sella_s{steps}"
    for i in progress(range(len(sub)), desc=f"xtb cineb+sella {steps}", unit="rxn"):
        rid = str(sub.rxn_id[i])
        if (row, rid) in cache:
            continue
        s = sub.rows(i)
        neb = cache[("xtb_cineb_path", rid)]
        sad = saddle_search(sub.atomic_numbers[s], np.asarray(neb["ts"]), steps=steps, internal=False,
                            exact_hessian=False)
        item = {"row": row, "rxn_id": rid, "saddle": sad.is_saddle, "energy_ev": sad.energy,
                "sella_seconds": sad.seconds, "seconds": neb["seconds"], "positions": sad.positions.tolist()}
        cache[(row, rid)] = item
        append_cache(cache_path, item)
    refine_items(sub, samples, n, cache, cache_path, calc, steps=steps)


def extra_rows(sub, n: int, steps: int, seconds_sampling: float, cache: dict) -> list[dict]:
    from sciflow.domains.molecules.xtb import EV_TO_KCAL

    rows = []
    items = [cache.get((f"xtb_cineb_sella_s{steps}", str(rid))) for rid in sub.rxn_id]
    refs = [cache.get((refine_key(n, 50), str(rid))) for rid in sub.rxn_id]      # holds E_xTB(DFT TS)
    done_idx = [i for i, it in enumerate(items) if it is not None and refs[i] is not None]
    if done_idx:
        part = sub.subset(done_idx)
        its = [items[i] for i in done_idx]
        pos = np.concatenate([np.asarray(it["positions"]) for it in its])
        per = rmsd_per_reaction(part, pos)
        err = np.array([abs(items[i]["energy_ev"] - refs[i]["e_ref_ev"]) * EV_TO_KCAL for i in done_idx])
        rows.append({"row": f"xtb_cineb_sella_s{steps}", "label": f"xTB CI-NEB + Sella (<= {steps} steps, xTB)",
                     **summarize(per, "rmsd"), "rmsd_over": f"{len(done_idx)} xTB-subset reactions",
                     "seconds_per_reaction": float(np.mean([it["seconds"] + it["sella_seconds"] for it in its])),
                     "per_reaction_saddle": [bool(it["saddle"]) for it in its], "per_reaction_rmsd": per.tolist(),
                     "xtb": {**summarize(err, "barrier_error_kcal"),
                             "saddle_success": float(np.mean([it["saddle"] for it in its])), "n_done": len(its)}})
    return rows + refine_rows(sub, n, seconds_sampling, cache, steps=steps)


def refine_rows(sub, n: int, seconds_sampling: float, cache: dict, steps: int = 50) -> list[dict]:
    """Rows of the refine pipeline (both rules) from the cached searches."""
    from sciflow.domains.molecules.xtb import EV_TO_KCAL
    from sciflow.methods.tsgen.refine import GuessRefinement, select

    items = [cache.get((refine_key(n, steps), str(rid))) for rid in sub.rxn_id]
    done_idx = [i for i, it in enumerate(items) if it is not None]
    if not done_idx:
        return []
    part = sub.subset(done_idx)
    rows = []
    for rule, what in (("lowest", "lowest-energy saddle"), ("first", "first saddle, medoid first")):
        picks = []
        for j, i in enumerate(done_idx):
            searches = [GuessRefinement(d["index"], d["saddle"], d["converged"], d["n_imaginary"],
                                        float(d["energy_ev"]), d["steps"], d["seconds"], np.asarray(d["positions"]))
                        for d in items[i]["searches"]]
            picks.append(select(part.atomic_numbers[part.rows(j)], searches, rule))
        pos = np.concatenate([p.positions for p in picks])
        err = np.array([abs(p.energy - items[i]["e_ref_ev"]) * EV_TO_KCAL for p, i in zip(picks, done_idx)])
        budget = "" if steps == 50 else f" (<= {steps} Sella steps)"
        rows.append({"row": f"{refine_key(n, steps)}_{rule}",
                     "label": f"sciflow TS-GEN n={n} + Sella on each, {what}{budget}",
                     **summarize(rmsd_per_reaction(part, pos), "rmsd"),
                     "rmsd_over": f"{len(done_idx)} xTB-subset reactions",
                     "seconds_per_reaction": float(np.mean([seconds_sampling + p.seconds_search for p in picks])),
                     "searches_per_reaction": float(np.mean([len(p.guesses) for p in picks])),
                     "saddles_found_per_reaction": float(np.mean([p.n_saddles for p in picks])),
                     "per_reaction_saddle": [bool(p.converged) for p in picks],
                     "per_reaction_rmsd": rmsd_per_reaction(part, pos).tolist(),
                     "xtb": {**summarize(err, "barrier_error_kcal"),
                             "saddle_success": float(np.mean([p.converged for p in picks])),
                             "n_done": len(picks)}})
    return rows


def report(results: dict, path_json: Path, path_md: Path) -> None:
    atomic_write_json(path_json, results)
    k = results["xtb_subset"]["n_reactions"]
    n = results["n_test"]
    lines = [
        f"# TS-GEN benchmark (test split of the 700 Grambow reactions, measured {results['measured']} UTC)", "",
        (f"RMSD: Kabsch RMSD to the DFT TS (Å), over all {n} test reactions and over the xTB subset (the first {k} "
        "test reactions; the xTB CI-NEB rows exist only there). xTB columns (same subset): barrier error "
        "|E_xTB(geometry) - E_xTB(DFT TS)| in kcal/mol; Sella saddle success = a Sella order-1 search from the "
        "geometry converges (fmax 0.05 eV/Å) within 50 steps to a point with exactly one imaginary mode. "
        f"Wall time per reaction on {results['machine']}."), "",
        (f"| method | RMSD mean ({n}) | RMSD median ({n}) | RMSD mean ({k}) | RMSD median ({k}) | "
        "xTB barrier err. mean | median | Sella saddle | s / reaction |"),
        "|---|---|---|---|---|---|---|---|---|",
    ]

    def f(v, d=3):
        return "n/a" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{v:.{d}f}"
    for row in results["rows"]:
        x = row.get("xtb", {})
        sad = x.get("saddle_success")
        sad_txt = "n/a" if sad is None else f"{100 * sad:.0f} % (n={x.get('n_done', 0)})"
        if "rmsd_over" in row:      # computed on the subset only
            full, part = {}, row
        else:
            full, part = row, row.get("rmsd_subset", {})
        lines.append(f"| {row['label']} | {f(full.get('rmsd_mean'))} | {f(full.get('rmsd_median'))} | "
                     f"{f(part.get('rmsd_mean'))} | {f(part.get('rmsd_median'))} | "
                     f"{f(x.get('barrier_error_kcal_mean'), 2)} | {f(x.get('barrier_error_kcal_median'), 2)} | "
                     f"{sad_txt} | {f(row.get('seconds_per_reaction'), 4)} |")
    refined = [r for r in results["rows"] if "saddle_within_0.5A" in r]
    if refined:
        lines += ["", ("Is the saddle this reaction's? Refined pipelines on the xTB subset: an order-1 saddle found, "
                       "and one found within 0.5 Å Kabsch RMSD of the DFT (ωB97X-D3) TS; GFN2-xTB saddles can "
                       "legitimately differ from the DFT ones, so the second count is a lower bound."), "",
                  ("| pipeline | order-1 saddle | order-1 saddle within 0.5 Å of the DFT TS | RMSD median | "
                  "Sella searches / reaction | s / reaction |"), "|---|---|---|---|---|---|"]
        for r in refined:
            c = r["saddle_within_0.5A"]
            n_sad = int(sum(r["per_reaction_saddle"]))
            lines.append(f"| {r['label']} | {n_sad} / {c['n']} | {c['count']} / {c['n']} | "
                         f"{f(r.get('rmsd_median'))} | {f(r.get('searches_per_reaction', 1.0), 2)} | "
                         f"{f(r.get('seconds_per_reaction'), 2)} |")
    lines += ["", "Command: `" + results["command"] + "`", ""]
    for note in results.get("notes", []):
        lines.append(f"- {note}")
    atomic_write_text(path_md, "\n".join(lines) + "\n")


def sella_part(args, test, sub, sub_rows, guesses, cache, cache_path) -> int:
    """Rerun the Sella check of every xTB row with the chosen coordinates; report both settings side by side."""
    from benchmarks.tsgen_sella import report as sella_report
    from benchmarks.tsgen_sella import rerun

    samples, pick, spr = tsgen_predictions(args.model, test, args.n_samples, args.seed, None, None, args.device)
    rids = [str(r) for r in sub.rxn_id]
    g = {k: v[sub_rows] for k, v in guesses.items()}
    g["tsgen"] = pick[sub_rows]
    g["xtb_cineb"] = np.concatenate([np.asarray(cache[("xtb_cineb_path", r)]["ts"]) for r in rids])
    assert len(g["xtb_cineb"]) == len(sub_rows)
    if args.part == "sella-rerun":
        rerun(sub, g, samples[:, sub_rows], bool(args.sella_internal), cache, cache_path, append_cache,
              exact_hessian=bool(args.sella_hessian))
    seconds = {"tsgen": spr, "xtb_cineb": lambda i: cache[("xtb_cineb_path", rids[i])]["seconds"]}
    sella_report(sub, cache, seconds, args.n_samples, args.out + "_sella_internal",
                 "OMP_NUM_THREADS=1 python benchmarks/tsgen.py " + " ".join(sys.argv[1:]))
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=None)
    ap.add_argument("--model", default=str(ROOT / "models" / "tsgen"))
    ap.add_argument("--n-samples", type=int, default=4)
    ap.add_argument("--xtb-subset", type=int, default=20)
    ap.add_argument("--part", choices=["all", "rmsd", "xtb-baselines", "xtb-model", "xtb-refine", "report",
                                       "sella-rerun", "sella-report"], default="all",
                    help="sella-rerun: rerun only the Sella checks of every xTB row (benchmarks/tsgen_sella.py) "
                         "with the coordinates of --sella-internal, write --out + '_sella_internal'.md/.json")
    ap.add_argument("--sella-internal", action="store_true",
                    help="with --part sella-rerun: Sella in internal coordinates (default: Cartesian)")
    ap.add_argument("--sella-hessian", action="store_true",
                    help="with --part sella-rerun: Sella starts from the exact (finite-difference) xTB Hessian")
    ap.add_argument("--refine-n", default="4", help="comma-separated guesses per reaction for the refine rows")
    ap.add_argument("--extra-sella-steps", type=int, default=None,
                    help="also a larger Sella budget: CI-NEB + Sella and TS-GEN n=--n-samples refine rows with it")
    ap.add_argument("--cache", default=str(ROOT / "runs" / "tsgen_bench_cache.jsonl"))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "tsgen"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(1)
    test = grambow_split(load_triplets(args.data or find_grambow()))["test"]
    sub = test.subset(np.arange(min(args.xtb_subset, len(test))))
    cache_path = Path(args.cache)
    cache = load_cache(cache_path)
    guesses = {"reactant": test.pos_reactant, "midpoint": midpoint(test), "g2c": test.extra["pos_ts_g2c_model"]}
    sub_rows = np.concatenate([np.arange(test.offsets[i], test.offsets[i + 1]) for i in range(len(sub))])

    # the TS-GEN rows (and the Sella reruns of them) come from this model, seed and sample count: checked before
    # any work, so that a refused run spends no xTB time (the rmsd part uses no cache, xtb-baselines no model)
    if args.part not in ("rmsd", "xtb-baselines") and Path(args.model).exists():
        check_model_stamp(cache, cache_path, model_stamp(args.model, args.seed, args.n_samples))
    if args.part in ("all", "xtb-baselines"):
        xtb_baselines(sub, {k: v[sub_rows] for k, v in guesses.items()}, cache, cache_path)

    model_rows = {}
    refine_ns = [int(v) for v in args.refine_n.split(",") if v.strip()]
    refine_samples: dict[int, tuple[np.ndarray, float]] = {}
    if args.part in ("sella-rerun", "sella-report"):
        return sella_part(args, test, sub, sub_rows, guesses, cache, cache_path)
    if args.part in ("all", "rmsd", "xtb-model", "xtb-refine", "report") and Path(args.model).exists():
        for label, solver, steps in (("tsgen", None, None), ("tsgen_dopri5", "dopri5", None)):
            samples, pick, spr = tsgen_predictions(args.model, test, args.n_samples, args.seed, solver, steps,
                                                   args.device)
            model_rows[label] = (samples, pick, spr)
        for n in refine_ns:   # n = --n-samples reuses the medoid row's samples: the medoid is the same guess
            smp, _, spr = (model_rows["tsgen"] if n == args.n_samples else
                           tsgen_predictions(args.model, test, n, args.seed, None, None, args.device))
            refine_samples[n] = (smp[:, sub_rows], spr)
        if args.part in ("all", "xtb-refine"):
            from sciflow.domains.molecules.xtb import xtb_calculator
            calc = xtb_calculator()
            for n in refine_ns:
                refine_items(sub, refine_samples[n][0], n, cache, cache_path, calc)
            if args.extra_sella_steps and args.n_samples in refine_samples:
                extra_budget(sub, refine_samples[args.n_samples][0], args.n_samples, args.extra_sella_steps, cache,
                             cache_path, calc)
        if args.part in ("all", "xtb-model"):
            from sciflow.domains.molecules.xtb import xtb_calculator
            calc, pick = xtb_calculator(), model_rows["tsgen"][1][sub_rows]
            for i in progress(range(len(sub)), desc="xtb tsgen", unit="rxn"):
                xtb_item("tsgen", pick[sub.rows(i)], sub, i, cache, cache_path, calc,
                         seconds=model_rows["tsgen"][2], keep_end_point=True)

    # ---- assemble -------------------------------------------------------------------------------
    rows = []
    labels = {"reactant": "reactant as TS", "midpoint": "R/P midpoint (Kabsch-aligned)",
              "g2c": "G2C model (ts_gen, PCCP 2020; shipped predictions)",
              "xtb_cineb": f"xTB CI-NEB (ASE+tblite, {NEB['n_images']} images, fmax {NEB['fmax']}, <= {NEB['steps']} "
                           "steps; endpoints relaxed at xTB)"}
    for row in ("reactant", "midpoint", "g2c"):
        r = {"row": row, "label": labels[row], **summarize(rmsd_per_reaction(test, guesses[row]), "rmsd"),
             "seconds_per_reaction": 0.0 if row != "g2c" else None}
        rows.append(r)
    neb_items = [cache.get(("xtb_cineb_path", str(r))) for r in sub.rxn_id]
    neb_done = [it for it in neb_items if it is not None]
    if neb_done:
        done_idx = [i for i, it in enumerate(neb_items) if it is not None]
        part = sub.subset(done_idx)
        ts = np.concatenate([np.asarray(it["ts"]) for it in neb_done])
        rows.append({"row": "xtb_cineb", "label": labels["xtb_cineb"],
                     **summarize(rmsd_per_reaction(part, ts), "rmsd"), "rmsd_over": f"{len(done_idx)} xTB-subset "
                     "reactions", "seconds_per_reaction": float(np.mean([it["seconds"] for it in neb_done])),
                     "neb_converged_fraction": float(np.mean([it["converged"] for it in neb_done])),
                     "force_calls_mean": float(np.mean([it["force_calls"] for it in neb_done]))})
    for label, (samples, pick, spr) in model_rows.items():
        per = np.stack([rmsd_per_reaction(test, s) for s in samples])
        ranked = medoid_index(test, samples)
        name = "sciflow TS-GEN" + (" (Dopri5)" if "dopri5" in label else " (Euler, model steps)")
        rows.append({"row": label, "label": f"{name}, first sample, CPU 1 thread", **summarize(per[0], "rmsd"),
                     "seconds_per_reaction": spr / args.n_samples})
        rows.append({"row": label + "_ranked", "label": f"{name}, medoid of {args.n_samples}",
                     **summarize(per[ranked, np.arange(len(test))], "rmsd"), "seconds_per_reaction": spr})
        rows.append({"row": label + "_best", "label": f"{name}, best of {args.n_samples} (oracle)",
                     **summarize(np.fmin.reduce(per, axis=0), "rmsd"), "seconds_per_reaction": spr})
    xtb_map = {"reactant": "reactant", "midpoint": "midpoint", "g2c": "g2c", "xtb_cineb": "xtb_cineb",
               "tsgen_ranked": "tsgen"}
    for r in rows:
        key = xtb_map.get(r["row"])
        if key is None:
            continue
        items = [cache[(key, str(rid))] for rid in sub.rxn_id if (key, str(rid)) in cache]
        if items:
            r["xtb"] = {**summarize(np.array([it["barrier_error_kcal"] for it in items]), "barrier_error_kcal"),
                        "saddle_success": float(np.mean([it["saddle"] for it in items])), "n_done": len(items)}
    # guess + Sella (<= 50 steps): the refined geometry is what a user would keep; RMSD and barrier error there
    for key, label in (("xtb_cineb", labels["xtb_cineb"].split(" (")[0]), ("tsgen", "sciflow TS-GEN medoid")):
        items = [cache.get((key, str(rid))) for rid in sub.rxn_id]
        done_idx = [i for i, it in enumerate(items) if it is not None and "sella_positions" in it]
        if not done_idx:
            continue
        part = sub.subset(done_idx)
        pos = np.concatenate([np.asarray(items[i]["sella_positions"]) for i in done_idx])
        its = [items[i] for i in done_idx]
        base = [it.get("seconds", 0.0) for it in its]
        rows.append({"row": key + "_sella", "label": f"{label} + Sella (<= 50 steps, xTB)",
                     **summarize(rmsd_per_reaction(part, pos), "rmsd"), "rmsd_over": f"{len(done_idx)} xTB-subset "
                     "reactions", "seconds_per_reaction": float(np.mean([b + it["sella_seconds"]
                                                                          for b, it in zip(base, its)])),
                     "per_reaction_saddle": [bool(it["saddle"]) for it in its],
                     "per_reaction_rmsd": rmsd_per_reaction(part, pos).tolist(),
                     "xtb": {**summarize(np.array([it["sella_barrier_error_kcal"] for it in its]),
                                         "barrier_error_kcal"),
                             "saddle_success": float(np.mean([it["saddle"] for it in its])),
                             "n_done": len(its)}})
    for n, (_, spr) in refine_samples.items():
        rows += refine_rows(sub, n, spr, cache)
    if args.extra_sella_steps and args.n_samples in refine_samples:
        rows += extra_rows(sub, args.n_samples, args.extra_sella_steps, refine_samples[args.n_samples][1], cache)
    for r in rows:   # is the order-1 saddle this reaction's? (within 0.5 Å Kabsch RMSD of the DFT TS)
        if "per_reaction_saddle" in r:
            ok = np.array(r["per_reaction_saddle"]) & (np.array(r["per_reaction_rmsd"]) < 0.5)
            r["saddle_within_0.5A"] = {"count": int(ok.sum()), "n": len(ok)}
    # the same subset for every row: RMSD of each row restricted to the xTB subset, for a like-for-like view
    for r in rows:
        if r["row"] in ("reactant", "midpoint", "g2c", "tsgen_ranked"):
            src = guesses.get(r["row"]) if r["row"] != "tsgen_ranked" else model_rows["tsgen"][1]
            r["rmsd_subset"] = summarize(rmsd_per_reaction(sub, src[sub_rows]), "rmsd")
    results = {"n_test": len(test), "xtb_subset": {"n_reactions": len(sub), "rxn_ids": sub.rxn_id.tolist()},
               "rows": rows, "n_samples": args.n_samples, "neb_settings": NEB,
               "machine": f"{platform.machine()} CPU, 1 thread, shared with other jobs",
               "command": "OMP_NUM_THREADS=1 python benchmarks/tsgen.py " + " ".join(sys.argv[1:]),
               "measured": time.strftime("%Y-%m-%d %H:%M", time.gmtime()), "notes": []}
    results["notes"] += [
        (f"xTB CI-NEB: ASE NEB (improved tangent, spring 0.1 eV/Å^2) with {NEB['n_images']} moving images and one "
        "tblite GFN2-xTB calculator per image; endpoints BFGS-relaxed at xTB (<= 200 steps), IDPP interpolation, "
        f"FIRE to fmax 0.5 then climbing image to fmax {NEB['fmax']} eV/Å, <= {NEB['steps']} steps in all; "
        "the same settings for every reaction. Its TS is the highest image. A band stopped by an SCF failure "
        "counts as a failed NEB (kept in the table)."),
        ("'+ Sella' rows: the geometry after the Sella search of the saddle check (the refined TS a user would "
        "keep); their time adds the Sella search and its finite-difference Hessian to the guess's time."),
        (f"TS-GEN: shipped model {os.path.relpath(args.model, ROOT)}, {args.n_samples} samples per reaction (seed {args.seed}); the medoid "
        "(smallest mean RMSD to the other samples, no reference used) is the pick that gets the xTB checks. "
        "Seconds per reaction for TS-GEN cover sampling only (one batched call for the whole test split, "
        "1 CPU thread, after a warm-up), not model loading."),
        ("'TS-GEN n=K + Sella on each' rows (sciflow.methods.tsgen.refine): K guesses per reaction (seed "
        f"{args.seed}; K = {args.n_samples} reuses the medoid row's guesses), one Sella search (<= 50 steps, fmax 0.05, "
        "a fresh GFN2-xTB calculator each) from every guess, medoid first; 'lowest-energy saddle' returns the "
        "lowest-energy order-1 saddle found, 'first saddle' stops at the first one; with none, the medoid's "
        "Sella end point (counted as a failure). Time: sampling + every search run. The 'first saddle' row is "
        "the prefix of the same searches (each search is independent of the others)."),
        "No GPU was lent to this session: no H100 figures.",
    ]
    done = min((r.get("xtb", {}).get("n_done", 0) for r in rows if r["row"] in xtb_map), default=0)
    if done < len(sub):
        results["xtb_subset"]["note"] = "xTB columns cover the reactions finished in time: n per row in the Sella column"
    report(results, Path(args.out + ".json"), Path(args.out + ".md"))
    print(Path(args.out + ".md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
