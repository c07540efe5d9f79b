"""Workflow task ``tsgen``: TS samples for a folder or file of reactions, in batches.

Inputs (``reactions``): a ``triplets.npz`` file (``pos_ts`` optional; when present the RMSD to it is reported),
one XYZ/SDF file holding a reaction (first frame reactant, last frame product), or a folder of such files
(or of ``NAME_reactant.*`` / ``NAME_product.*`` pairs). Outputs: ``xyz/<reaction>.xyz`` (frames: reactant, the n
TS samples with the ranked one first, product), ``summary.csv``, and with ``calculator: xtb`` the GFN2-xTB
energies in the CSV and ``profiles/<reaction>.png`` energy profiles.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field, PrivateAttr, model_validator

from ...core.errors import InputError, SciflowError
from ...core.files import listed_files
from ...core.registry import ODE_SOLVERS
from ..context import RunContext
from ..registry import register_task
from ..schema import ExistingPath, ModelPath, StrictModel

_SUFFIXES = (".xyz", ".extxyz", ".sdf", ".mol")
_CSV_FIRST = ("reaction", "n_atoms", "n_samples", "ranked_sample", "sample_spread_A", "rmsd_ranked_A", "rmsd_best_A",
              "e_reactant_eV", "e_ts_eV", "e_product_eV", "barrier_fwd_kcal", "barrier_rev_kcal",
              "barrier_error_kcal", "xyz", "profile")


class RefineBlock(StrictModel):
    """Sella order-1 saddle search (GFN2-xTB) from every sample; keeps the chosen saddle (needs tblite, sella)."""

    rule: Literal["lowest", "first"] = Field("lowest", description="lowest: the lowest-energy order-1 saddle of "
                                             "all searches; first: stop at the first one (ranked sample first)")
    steps: int = Field(50, ge=1, le=10000, description="Sella steps per search")
    fmax: float = Field(0.05, gt=0, description="force convergence, eV/Å")
    internal: bool = Field(True, description="Sella in internal coordinates (false: Cartesian)")
    exact_hessian: bool = Field(True, description="start Sella from the finite-difference xTB Hessian "
                                "(false: Sella's own iterative estimate)")


class TSGenTask(StrictModel):
    model: ModelPath = Field("models/tsgen", description="model folder or file")
    reactions: ExistingPath = Field(description="triplets.npz, one XYZ/SDF reaction file, or a folder of them")
    n_samples: int = Field(4, ge=1, le=256, description="TS samples per reaction")
    batch_reactions: int = Field(64, ge=1, description="reactions per generation batch")
    steps: int | None = Field(None, ge=1, description="solver steps (default: the model's)")
    solver: Literal[ODE_SOLVERS] | None = Field(None, description="euler, midpoint, heun, rk4, dopri5 "
                                                "(default: the model's)")
    calculator: Literal["none", "xtb"] = Field("none", description="xtb: GFN2-xTB energies and a PNG profile")
    limit: int | None = Field(None, ge=1, description="only the first LIMIT reactions")
    refine: RefineBlock | None = Field(None, description="refine the samples into an order-1 saddle (Sella, xTB)")
    #: the reactions read and checked at validation, with what they were read for, for ``run`` to reuse
    _read: tuple[tuple[str, int | None, str], tuple[Any, ...]] | None = PrivateAttr(None)

    def _key(self) -> tuple[str, int | None, str]:
        return (str(self.reactions), self.limit, str(self.model))

    def checked_reactions(self, model: Any) -> tuple[Any, ...]:
        """(ids, pairs, refs, sources, conditions) of every reaction, read and checked at validation (errors name
        the reaction and its file) before the output folder was claimed, as the DataSettings of the mmsb task
        keep their snapshots; read again only for a configuration built another way."""
        if self._read is not None and self._read[0] == self._key():
            return self._read[1]
        read = _read_reactions(Path(self.reactions), self.limit)
        return (*read, _conditions(model, read))

    @model_validator(mode="after")
    def _inputs_and_packages(self) -> TSGenTask:
        # checked before the output folder is claimed: the model is a TS-GEN model, every reaction file reads
        # (finite coordinates, atoms that match) into a reaction of elements the model knows, and the packages
        # that the xTB energies and the Sella refinement need are installed (the chem extra)
        import importlib.util
        try:
            if Path(self.reactions).is_dir():
                _reaction_files(Path(self.reactions))
        except InputError as e:
            raise ValueError(str(e)) from None
        from ...methods.tsgen import TSGen
        try:
            model = TSGen.load(self.model)
        except InputError as e:
            msg = str(e)
            raise ValueError(msg if msg.startswith("model:") else f"model: {msg}") from None
        try:
            read = _read_reactions(Path(self.reactions), self.limit)
            conds = _conditions(model, read)
        except InputError as e:
            msg = str(e)
            raise ValueError(msg if msg.startswith("reactions:") else f"reactions: {msg}") from None
        self._read = (self._key(), (*read, conds))
        needs = (["tblite"] if self.calculator == "xtb" or self.refine is not None else []) + \
            (["sella"] if self.refine is not None else [])
        missing = [m for m in needs if importlib.util.find_spec(m) is None]
        if missing:
            raise ValueError(f"{'refine' if 'sella' in missing else 'calculator'}: needs {', '.join(missing)} "
                             f"(pip install 'sciflow[chem]')")
        return self


def _reaction_files(folder: Path) -> tuple[list[Path], dict[str, Path]]:
    """The reaction files of a folder and their stems; refuses an empty folder, two files with one stem and a
    reactant or product file without its partner (nothing is read)."""
    files = listed_files(folder, _SUFFIXES)
    if not files:
        raise InputError(f"reactions: {folder} holds no {', '.join(_SUFFIXES)} files")
    by_name: dict[str, Path] = {}
    for p in files:
        if p.stem in by_name:
            raise InputError(f"reactions: {by_name[p.stem].name} and {p.name} share the name {p.stem!r}; keep one")
        by_name[p.stem] = p
    for p in files:
        for mine, other in (("_product", "_reactant"), ("_reactant", "_product")):
            if p.stem.endswith(mine) and f"{p.stem[: -len(mine)]}{other}" not in by_name:
                raise InputError(f"reactions: {p} has no matching {p.stem[: -len(mine)]}{other} file")
    return files, by_name


def _one_structure(path: Path) -> Any:
    """The one structure of a ``NAME_reactant`` / ``NAME_product`` file (a file of several is refused: taking
    its first frame silently would pair the wrong geometries)."""
    from ...domains.molecules.io import read_molecules
    mols = read_molecules(path)
    if len(mols) != 1:
        raise InputError(f"reactions: {path} holds {len(mols)} structures; a _reactant / _product file holds "
                         f"one (a file of several frames, reactant first and product last, is named without "
                         f"the suffix)")
    return mols[0]


def _read_reactions(path: Path, limit: int | None) -> tuple[list[str], list[tuple[Any, Any]], list[Any], list[str]]:
    """(ids, (reactant, product) pairs, reference TS positions or None, source of each) from a file or folder.
    Two inputs that would write the same ``xyz/<id>.xyz`` and a product file without its reactant are refused."""
    from ...domains.molecules.io import Molecule, read_molecules

    path = Path(path)
    if not path.exists():
        raise InputError(f"reactions: no file or folder at {path}")
    ids: list[str] = []
    pairs: list[tuple[Any, Any]] = []
    refs: list[Any] = []
    sources: list[str] = []
    if path.is_file() and path.suffix.lower() == ".npz":
        from ...data.reactions import load_triplets
        data = load_triplets(path, require_ts=False)
        for i in range(len(data)):
            r = data.reaction(i)
            ids.append(r["rxn_id"])
            pairs.append((Molecule(r["atomic_numbers"], r["pos_reactant"], f"{r['rxn_id']}.reactant"),
                          Molecule(r["atomic_numbers"], r["pos_product"], f"{r['rxn_id']}.product")))
            refs.append(r.get("pos_ts"))
            sources.append(f"{path.name} #{i}")
    else:
        files, by_name = ([path], {path.stem: path}) if path.is_file() else _reaction_files(path)
        for p in files:
            stem = p.stem
            if stem.endswith("_product"):
                continue
            if stem.endswith("_reactant"):
                name = stem[: -len("_reactant")]
                r, q = (_one_structure(f) for f in (p, by_name[f"{name}_product"]))
                source = f"{p.name} + {by_name[f'{name}_product'].name}"
            else:
                name = stem
                mols = read_molecules(p)
                if len(mols) < 2:
                    raise InputError(f"reactions: {p} holds {len(mols)} structure(s); a reaction file needs the "
                                     f"reactant first and the product last")
                r, q = mols[0], mols[-1]
                source = p.name
            if name in ids:
                raise InputError(f"reactions: {sources[ids.index(name)]} and {source} are both reaction {name!r} "
                                 f"(both would write xyz/{name}.xyz); rename one")
            ids.append(name)
            pairs.append((r, q))
            refs.append(None)
            sources.append(source)
    if limit is not None:
        ids, pairs, refs, sources = ids[:limit], pairs[:limit], refs[:limit], sources[:limit]
    return ids, pairs, refs, sources


def _conditions(model: Any, read: tuple[list[str], list[tuple[Any, Any]], list[Any], list[str]]) -> list[Any]:
    """The checked condition of every reaction; errors name the reaction and its file."""
    ids, pairs, _, sources = read
    return [model.condition([p], names=[f"reaction {i} ({src})"]) for p, i, src in zip(pairs, ids, sources)]


def _profile_png(path: Path, name: str, e_r: float, e_ts: list[float], e_p: float, e_ref: float | None) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ...core.files import atomic_path
    from ...domains.molecules.xtb import EV_TO_KCAL

    rel = lambda e: (e - e_r) * EV_TO_KCAL
    fig, ax = plt.subplots(figsize=(4.5, 3.2), dpi=120)
    ax.plot([0, 1, 2], [0.0, rel(e_ts[0]), rel(e_p)], "-o", color="C0", label="R - TS (ranked) - P")
    if len(e_ts) > 1:
        ax.scatter(np.ones(len(e_ts) - 1), [rel(e) for e in e_ts[1:]], color="C1", s=14, label="other samples",
                   zorder=3)
    if e_ref is not None and np.isfinite(e_ref):
        ax.scatter([1], [rel(e_ref)], marker="*", s=90, color="C3", label="reference TS", zorder=4)
    ax.set_xticks([0, 1, 2], ["reactant", "TS", "product"])
    ax.set_ylabel("GFN2-xTB energy (kcal/mol)")
    ax.set_title(name, fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def _refine(block: RefineBlock, ctx: RunContext, name: str, z: np.ndarray, samples: np.ndarray, order: list[int],
            ref: Any, energies: dict[str, Any]) -> dict[str, Any]:
    """Refine one reaction's samples; writes ``refined/<reaction>.xyz`` and returns the CSV columns."""
    from ...domains.molecules.geometry import kabsch_rmsd
    from ...domains.molecules.io import write_xyz_frames
    from ...domains.molecules.xtb import EV_TO_KCAL
    from ...methods.tsgen.refine import refine_guesses

    out = refine_guesses(z, samples, rule=block.rule, steps=block.steps, fmax=block.fmax, order=np.array(order),
                         internal=block.internal, exact_hessian=block.exact_hessian)
    row: dict[str, Any] = {"refined_saddle": out.converged, "refined_from_sample": out.chosen,
                           "refined_energy_eV": out.energy, "refined_saddles_found": out.n_saddles,
                           "refined_searches": len(out.guesses), "refined_seconds": out.seconds_search,
                           "refined_xyz": f"refined/{name}.xyz"}
    if ref is not None:
        row["rmsd_refined_A"] = float(kabsch_rmsd(torch.as_tensor(out.positions),
                                                  torch.as_tensor(np.asarray(ref, dtype=np.float64)))[0])
    if energies:
        row["barrier_fwd_refined_kcal"] = (out.energy - energies["r"]) * EV_TO_KCAL
    comment = (f"refined_ts {name} from_sample {out.chosen} order1_saddle {out.converged} "
               f"energy_eV={out.energy:.6f} rule {block.rule}")
    write_xyz_frames(ctx.path(f"refined/{name}.xyz"), [(z, out.positions, comment)])
    return row


@register_task("tsgen", TSGenTask, resume_free=("limit", "batch_reactions"))
def run(cfg: TSGenTask, ctx: RunContext) -> dict[str, Any]:
    from ...domains.molecules.adapter import replicate_graphs
    from ...domains.molecules.geometry import kabsch_rmsd
    from ...domains.molecules.io import write_xyz_frames
    from ...methods.tsgen import TSGen

    model = TSGen.load(cfg.model, map_location=ctx.device)
    ids, _, refs, _, conds = cfg.checked_reactions(model)
    mine = [i for i in ctx.shard(list(range(len(ids)))) if not ctx.is_done(ids[i])]
    calc = None
    if cfg.calculator == "xtb":
        from ...domains.molecules.xtb import xtb_calculator
        calc = xtb_calculator()
    n = cfg.n_samples
    bar = ctx.progress(total=len(mine), desc="tsgen", unit="rxn")
    for start in range(0, len(mine), cfg.batch_reactions):
        chunk = mine[start:start + cfg.batch_reactions]
        parts = [conds[i] for i in chunk]
        offset, cond = 0, {}
        for k in parts[0]:
            vals = []
            for j, c in enumerate(parts):
                v = c[k]
                vals.append(v + j if k == "batch" else v)
            cond[k] = torch.cat(vals)
        x0 = torch.cat([model.adapter.prior(replicate_graphs(c, n), generator=ctx.item_generator(ids[i]))
                        for i, c in zip(chunk, parts)])
        traj = model.sample(cond, n, steps=cfg.steps, solver=cfg.solver, device=ctx.device, x0=x0)
        x = traj.last.detach().cpu().to(torch.float64)
        for j, i in enumerate(chunk):
            c = parts[j]
            na = int(c["batch"].numel())
            samples = x[offset:offset + n * na].reshape(n, na, 3)
            offset += n * na
            z = c["atomic_numbers"].numpy()
            if not bool(torch.isfinite(samples).all()):
                # the network diverged on a geometry unlike its training data; recorded, nothing written
                ctx.mark_done(ids[i], {"reaction": ids[i], "n_atoms": na, "n_samples": n,
                                       "diverged": "non-finite samples: the reactant/product geometry is outside "
                                                   "what the model was trained on"})
                bar.update(1)
                continue
            b = torch.arange(n).repeat_interleave(na)
            pair_d = torch.zeros(n, n, dtype=torch.float64)
            for a in range(n):
                for q in range(a + 1, n):
                    pair_d[a, q] = pair_d[q, a] = float(kabsch_rmsd(samples[a], samples[q])[0])
            ranked = int(pair_d.mean(1).argmin()) if n > 1 else 0
            order = [ranked] + [k for k in range(n) if k != ranked]
            r_pos, p_pos = c["pos_reactant"].double().numpy(), c["pos_product"].double().numpy()
            row: dict[str, Any] = {"reaction": ids[i], "n_atoms": na, "n_samples": n, "ranked_sample": ranked,
                                   "sample_spread_A": float(pair_d.sum() / max(1, n * (n - 1))),
                                   "xyz": f"xyz/{ids[i]}.xyz"}
            if refs[i] is not None:
                ref = torch.as_tensor(refs[i], dtype=torch.float64)
                rr = kabsch_rmsd(samples.reshape(-1, 3), ref.repeat(n, 1), b).numpy()
                row.update(rmsd_ranked_A=float(rr[ranked]), rmsd_best_A=float(rr.min()))
            energies: dict[str, Any] = {}
            if calc is not None:
                from ...domains.molecules.xtb import EV_TO_KCAL, xtb_energy
                e_r, e_p = xtb_energy(z, r_pos, calc), xtb_energy(z, p_pos, calc)
                e_ts = [xtb_energy(z, samples[k].numpy(), calc) for k in order]
                e_ref = xtb_energy(z, np.asarray(refs[i]), calc) if refs[i] is not None else None
                row.update(e_reactant_eV=e_r, e_ts_eV=e_ts[0], e_product_eV=e_p,
                           barrier_fwd_kcal=(e_ts[0] - e_r) * EV_TO_KCAL, barrier_rev_kcal=(e_ts[0] - e_p) * EV_TO_KCAL)
                if e_ref is not None:
                    row["barrier_error_kcal"] = abs(e_ts[0] - e_ref) * EV_TO_KCAL
                energies = {"r": e_r, "p": e_p, "ts": e_ts}
                _profile_png(ctx.path(f"profiles/{ids[i]}.png"), ids[i], e_r, e_ts, e_p, e_ref)
                row["profile"] = f"profiles/{ids[i]}.png"
            if cfg.refine is not None:
                row.update(_refine(cfg.refine, ctx, ids[i], z, samples.numpy(), order, refs[i], energies))
            frames = [(z, r_pos, f"reactant {ids[i]}" + (f" energy_eV={energies['r']:.6f}" if energies else ""))]
            for rank, k in enumerate(order):
                e = f" energy_eV={energies['ts'][rank]:.6f}" if energies else ""
                frames.append((z, samples[k].numpy(), f"ts_sample {k} rank {rank} {ids[i]}{e}"))
            frames.append((z, p_pos, f"product {ids[i]}" + (f" energy_eV={energies['p']:.6f}" if energies else "")))
            write_xyz_frames(ctx.path(f"xyz/{ids[i]}.xyz"), frames)
            ctx.mark_done(ids[i], row)
            bar.update(1)
    bar.close()
    rows = [{a: v for a, v in info.items() if a != "key"} for info in ctx.gather(ids).values()]   # every rank's
    if ctx.is_main and rows:
        seen = set().union(*rows)          # markers store keys sorted: put the columns back in a reading order
        cols = [k for k in _CSV_FIRST if k in seen] + sorted(seen - set(_CSV_FIRST))
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=cols)
        w.writeheader()
        w.writerows(rows)
        ctx.write_text("summary.csv", buf.getvalue())
    diverged = [r["reaction"] for r in rows if "diverged" in r]
    summary: dict[str, Any] = {"reactions": len(ids), "written": len(rows) - len(diverged), "n_samples": n,
                               "diverged": diverged,
                               "outputs": {"xyz": "xyz/", "csv": "summary.csv",
                                           "refined": "refined/" if cfg.refine is not None else None,
                                           "profiles": "profiles/" if calc is not None else None}}
    if any("rmsd_ranked_A" in r for r in rows):
        summary["rmsd_ranked_mean_A"] = float(np.mean([r["rmsd_ranked_A"] for r in rows if "rmsd_ranked_A" in r]))
    if rows and len(diverged) == len(rows):     # no result at all is a failed run, not an empty success
        raise SciflowError(f"tsgen: the model diverged on every reaction ({len(diverged)}: "
                           f"{', '.join(diverged[:8])}{', ...' if len(diverged) > 8 else ''}); nothing was written "
                           f"(summary.csv records why): their geometries are outside what the model was trained on")
    return summary
