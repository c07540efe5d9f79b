"""End to end: the tsgen workflow on two reactions with the shipped model, the evaluate CLI, import hygiene."""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sciflow.core.errors import InputError

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "datasets" / "reactions" / "examples"

MODEL = ROOT / "models" / "tsgen"


def _check_samples_near_the_ts(samples, src, name: str) -> None:
    """Generated TSs against the reference TS (frame 1 of the example file: reactant, TS, product), Kabsch RMSD.

    Measured (seed 0, 8 samples): rxn002918 0.32 Å (midpoint 0.31, reactant 0.62), rxn008394 1.23 (midpoint 1.20,
    reactant 1.50), rxn009328 0.18 (midpoint 0.28, reactant 0.47). The shipped model beats the R/P midpoint (the
    prior's mean: reactant centred, product Kabsch-aligned onto it) clearly only on rxn009328 and matches it on
    the other two. So: on rxn009328 well below the midpoint (a zero field, which leaves the samples at the prior,
    scores about 0.3), and everywhere no worse than the midpoint by 10 % and well below the reactant (a field
    driving the samples to the reactant scores the reactant's)."""
    import torch

    from sciflow.domains.molecules import reaction_frame
    from sciflow.domains.molecules.geometry import kabsch_rmsd
    ts = torch.as_tensor(src[1].positions, dtype=torch.float64)
    _, _, mid = reaction_frame(torch.as_tensor(src[0].positions, dtype=torch.float64),
                               torch.as_tensor(src[-1].positions, dtype=torch.float64),
                               torch.zeros(len(ts), dtype=torch.long))
    got = np.array([float(kabsch_rmsd(torch.as_tensor(f.positions, dtype=torch.float64), ts)[0]) for f in samples])
    mid_rmsd = float(kabsch_rmsd(mid, ts)[0])
    r_rmsd = float(kabsch_rmsd(torch.as_tensor(src[0].positions, dtype=torch.float64), ts)[0])
    assert got.mean() < min(1.1 * mid_rmsd, 0.9 * r_rmsd), (name, got, mid_rmsd, r_rmsd)
    if name == "rxn009328":
        assert got.mean() < 0.8 * mid_rmsd, (name, got, mid_rmsd)


def test_workflow_two_reactions(tmp_path):
    from sciflow.domains.molecules.io import read_molecules
    from sciflow.workflows import run_workflow

    rx = tmp_path / "rx"             # limit 2 keeps rxn002918 and rxn009328 (the model beats the midpoint clearly
    rx.mkdir()                       # there) and leaves out the third file, which sorts last
    for name, dest in (("rxn002918", "rxn002918"), ("rxn009328", "rxn009328"), ("rxn008394", "zz_rxn008394")):
        (rx / f"{dest}.xyz").write_text((EXAMPLES / f"{name}.xyz").read_text())
    wf = {"version": 1, "task": "tsgen", "seed": 0, "device": "cpu", "output": str(tmp_path / "out"),
          "tsgen": {"model": str(MODEL), "reactions": str(rx), "n_samples": 3, "limit": 2}}
    summary = run_workflow(wf)
    assert summary["written"] == 2
    rows = list(csv.DictReader((tmp_path / "out" / "summary.csv").read_text().splitlines()))
    assert sorted(row["reaction"] for row in rows) == ["rxn002918", "rxn009328"]
    for row in rows:
        frames = read_molecules(tmp_path / "out" / row["xyz"])
        src = read_molecules(EXAMPLES / f"{row['reaction']}.xyz")
        assert len(frames) == 3 + 2                                 # reactant, 3 TS samples, product
        assert all(np.array_equal(f.numbers, src[0].numbers) for f in frames)
        # reactant and product frames are the inputs (moved into the common frame: distances unchanged)
        for out, ref in ((frames[0], src[0]), (frames[-1], src[-1])):
            d_out = np.linalg.norm(out.positions[:, None] - out.positions[None], axis=-1)
            d_ref = np.linalg.norm(ref.positions[:, None] - ref.positions[None], axis=-1)
            np.testing.assert_allclose(d_out, d_ref, atol=1e-4)
        # physical sanity: no two atoms of a generated TS closer than 0.6 Å
        for f in frames[1:-1]:
            d = np.linalg.norm(f.positions[:, None] - f.positions[None], axis=-1) + 10 * np.eye(len(f))
            assert d.min() > 0.6
        _check_samples_near_the_ts(frames[1:-1], src, row["reaction"])
    # a second run resumes: nothing is redone
    again = run_workflow(wf)
    assert again["written"] == 2


def test_shipped_workflow_yaml_runs_on_one_reaction(tmp_path):
    """workflows/tsgen.yaml as shipped (GFN2-xTB profile included), shrunk to one shipped reaction and two
    samples."""
    import yaml

    from sciflow.workflows import run_workflow

    wf = yaml.safe_load((ROOT / "workflows" / "tsgen.yaml").read_text())
    if wf["tsgen"].get("calculator") == "xtb":
        pytest.importorskip("tblite")
    wf["output"] = str(tmp_path / "out")
    shipped = ROOT / wf["tsgen"]["reactions"]
    rx = tmp_path / "rx"                                  # rxn009328: the model beats the midpoint clearly there
    rx.mkdir()
    (rx / "rxn009328.xyz").write_text((shipped / "rxn009328.xyz").read_text())
    wf["tsgen"].update(model=str(ROOT / wf["tsgen"]["model"]), reactions=str(rx), n_samples=2, limit=1)
    assert run_workflow(wf)["written"] == 1
    rows = list(csv.DictReader((tmp_path / "out" / "summary.csv").read_text().splitlines()))
    assert len(rows) == 1
    from sciflow.domains.molecules.io import read_molecules
    src = read_molecules(EXAMPLES / f"{rows[0]['reaction']}.xyz")
    samples = read_molecules(tmp_path / "out" / rows[0]["xyz"])[1:-1]
    assert len(samples) == 2
    _check_samples_near_the_ts(samples, src, rows[0]["reaction"])
    if wf["tsgen"].get("calculator") == "xtb":
        png = tmp_path / "out" / rows[0]["profile"]
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        # the TS estimate lies above both end points on the xTB surface
        e_r, e_ts, e_p = (float(rows[0][k]) for k in ("e_reactant_eV", "e_ts_eV", "e_product_eV"))
        assert e_ts > max(e_r, e_p)


def test_workflow_rejects_bad_reaction_files_before_work(tmp_path):
    from sciflow.domains.molecules.io import write_xyz_frames
    from sciflow.workflows import run_workflow

    folder = tmp_path / "rx"
    folder.mkdir()
    write_xyz_frames(folder / "a.xyz", [(np.array([6, 1]), np.zeros((2, 3)) + [[0, 0, 0], [1, 0, 0]], "r"),
                                        (np.array([1, 6]), np.array([[0, 0, 0], [1.1, 0, 0]]), "p")])
    wf = {"version": 1, "task": "tsgen", "output": str(tmp_path / "o"),
          "tsgen": {"model": str(MODEL), "reactions": str(folder)}}
    with pytest.raises(InputError, match="atom order differs"):
        run_workflow(wf)
    assert not (tmp_path / "o" / "xyz").exists()


def test_evaluate_cli_writes_the_metrics(tmp_path, example_reactions):
    from sciflow.cli import main
    from sciflow.data.reactions import save_triplets

    save_triplets(tmp_path / "t.npz", example_reactions)
    assert main(["tsgen", "evaluate", "--data", str(tmp_path / "t.npz"), "--out", str(tmp_path / "m.json"),
                 "--model", str(MODEL), "--n-samples", "2"]) == 0
    m = json.loads((tmp_path / "m.json").read_text())
    for key in ("rmsd_mean", "rmsd_median", "n_reactions", "seconds_per_reaction", "rmsd_best_mean"):
        assert key in m
    assert m["n_reactions"] == 3 and m["rmsd_best_mean"] <= m["rmsd_mean"] + 1e-12


def test_importing_the_method_loads_no_heavy_package():
    code = ("import sys, sciflow, sciflow.methods.tsgen, sciflow.methods.tsgen.refine, sciflow.domains.molecules;"
            "bad=[m for m in ('ase','rdkit','tblite','sella','mdtraj','openmm') if m in sys.modules];"
            "print(bad); sys.exit(1 if bad else 0)")
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stdout + res.stderr


def test_xtb_checks_from_every_sample_visit_each_sample_once_medoid_first(example_reactions, monkeypatch):
    """--xtb-all-samples: for every reaction the medoid is checked first and every other sample exactly once;
    the per-sample rate is the mean over all n x R searches (xTB replaced by a recorder here)."""
    import sciflow.methods.tsgen.evaluate as ev
    from sciflow.methods.tsgen import TSGen

    seen, hessian_flags = [], []

    def fake_checks(data, pred, *, sella_steps=50, desc="xtb", on_item=None, exact_hessian=None):
        seen.append(pred.copy())
        hessian_flags.append(exact_hessian)
        return [{"rxn_id": str(r), "barrier_error_kcal": float(i), "saddle": bool(len(seen) % 2)}
                for i, r in enumerate(data.rxn_id)]

    monkeypatch.setattr(ev, "xtb_checks", fake_checks)
    model = TSGen.load(MODEL)
    m = ev.evaluate(model, example_reactions, n_samples=3, xtb=True, xtb_all_samples=True)
    samples, _ = model.predict(example_reactions, 3, generator=ev.make_generator(0))
    ranked = ev.medoid_index(example_reactions, samples)
    assert len(seen) == 3 and len(m["xtb_all_samples"]) == 3
    for i in range(len(example_reactions)):
        s = example_reactions.rows(i)
        got = [int(np.argmin([np.abs(chk[s] - samples[j, s]).max() for j in range(3)])) for chk in seen]
        assert got[0] == ranked[i] and sorted(got) == [0, 1, 2]
    assert m["saddle_success"] == 1.0 and abs(m["saddle_success_all_samples"] - 2 / 3) < 1e-12
    # every search starts from the exact xTB Hessian by default, and the metrics say so
    assert hessian_flags == [True, True, True] and m["sella_exact_hessian"] is True


def _write_pair(folder, name, z, r, p):
    from sciflow.domains.molecules.io import write_xyz_frames
    write_xyz_frames(folder / f"{name}.xyz", [(np.asarray(z), np.asarray(r, float), "r"),
                                              (np.asarray(z), np.asarray(p, float), "p")])


def test_workflow_names_the_bad_reaction_and_refuses_clashing_or_orphan_files(tmp_path, example_reactions):
    from sciflow.workflows import run_workflow

    folder = tmp_path / "rx"
    folder.mkdir()
    ok = example_reactions.reaction(0)
    _write_pair(folder, "a_good", ok["atomic_numbers"], ok["pos_reactant"], ok["pos_product"])
    _write_pair(folder, "b_fluoro", [6, 9], [[0, 0, 0], [1.4, 0, 0]], [[0, 0, 0], [1.5, 0, 0]])
    wf = {"version": 1, "task": "tsgen", "output": str(tmp_path / "o"),
          "tsgen": {"model": str(MODEL), "reactions": str(folder)}}
    with pytest.raises(InputError, match=r"reaction b_fluoro \(b_fluoro.xyz\): atom 1 is F"):  # was reactions[0]
        run_workflow(wf)
    (folder / "b_fluoro.xyz").unlink()
    from sciflow.domains.molecules.io import write_xyz_frames
    write_xyz_frames(folder / "a_good_reactant.xyz", [(ok["atomic_numbers"], ok["pos_reactant"], "r")])
    write_xyz_frames(folder / "a_good_product.xyz", [(ok["atomic_numbers"], ok["pos_product"], "p")])
    with pytest.raises(InputError, match="a_good.xyz and a_good_reactant.xyz \\+ a_good_product.xyz are both"):
        run_workflow(wf)                                             # one would overwrite the other's xyz
    (folder / "a_good_reactant.xyz").unlink()
    with pytest.raises(InputError, match="a_good_product.xyz has no matching a_good_reactant"):
        run_workflow(wf)                                             # was skipped without a word
    assert not (tmp_path / "o" / "xyz").exists()


def test_a_diverging_reaction_is_recorded_not_written_and_the_rest_go_on(tmp_path, example_reactions):
    """A product with one H 20 Å away makes the network diverge: evaluate counts it as failed, generate names it,
    the workflow records it in the CSV and writes the other reactions (it crashed in the Kabsch SVD)."""
    from sciflow.core.errors import SciflowError
    from sciflow.data.reactions import ReactionSet, save_triplets
    from sciflow.methods.tsgen import TSGen
    from sciflow.methods.tsgen.evaluate import evaluate
    from sciflow.workflows import run_workflow

    far_p = example_reactions.pos_product.copy()
    s = example_reactions.rows(1)
    h = s.start + int(np.flatnonzero(example_reactions.atomic_numbers[s] == 1)[0])
    far_p[h] += [20.0, 0.0, 0.0]
    far = ReactionSet(example_reactions.rxn_id, example_reactions.offsets, example_reactions.atomic_numbers,
                      example_reactions.pos_reactant, far_p, example_reactions.pos_ts)
    model = TSGen.load(MODEL)
    bad = far.reaction(1)
    with pytest.raises(SciflowError, match="diverged"):
        model.generate((bad["atomic_numbers"], bad["pos_reactant"]), (bad["atomic_numbers"], bad["pos_product"]), 2)
    m = evaluate(model, far, n_samples=2)
    assert m["rmsd_failed"] == 1 and m["diverged_samples"] == 2 and np.isfinite(m["rmsd_mean"])
    save_triplets(tmp_path / "far.npz", far)
    wf = {"version": 1, "task": "tsgen", "output": str(tmp_path / "o"),
          "tsgen": {"model": str(MODEL), "reactions": str(tmp_path / "far.npz"), "n_samples": 2}}
    summary = run_workflow(wf)
    assert summary["diverged"] == [str(far.rxn_id[1])] and summary["written"] == 2
    rows = {r["reaction"]: r for r in csv.DictReader((tmp_path / "o" / "summary.csv").read_text().splitlines())}
    assert rows[str(far.rxn_id[1])]["diverged"] and not rows[str(far.rxn_id[0])]["diverged"]
    assert sorted(p.name for p in (tmp_path / "o" / "xyz").iterdir()) == sorted(
        f"{far.rxn_id[i]}.xyz" for i in (0, 2))


def test_generate_checks_counts_steps_solver_and_reaction_size(example_reactions):
    from sciflow.methods.tsgen import TSGen

    model = TSGen.load(MODEL)
    r = example_reactions.reaction(0)
    pair = ((r["atomic_numbers"], r["pos_reactant"]), (r["atomic_numbers"], r["pos_product"]))
    for kwargs, field in (({"n": 2.7}, "n: expected an integer"), ({"n": True}, "n: expected an integer"),
                          ({"n": 2, "steps": 0}, "steps: must be >= 1"),          # 0 fell back to the default
                          ({"n": 2, "solver": "euler_maruyama"}, "solver: euler_maruyama integrates an SDE")):
        with pytest.raises(InputError, match=field):
            model.generate(*pair, **kwargs)
    with pytest.raises(InputError, match="at least 2"):
        model.generate(([6], [[0.0, 0.0, 0.0]]), ([6], [[0.1, 0.0, 0.0]]), 1)


def test_unreadable_triplets_and_model_files_are_named(tmp_path):
    from sciflow.data.reactions import load_triplets
    from sciflow.methods.tsgen import TSGen

    (tmp_path / "empty.npz").write_bytes(b"")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object))
    (tmp_path / "obj.npy").rename(tmp_path / "obj.npz")
    for name in ("empty.npz", "obj.npz"):
        with pytest.raises(InputError, match=f"data: .*{name} is not a readable triplets"):
            load_triplets(tmp_path / name)
    (tmp_path / "model.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="not a readable sciflow checkpoint"):
        TSGen.load(tmp_path / "model.pt")


def test_train_cli_seed_fixes_the_initial_weights(tmp_path, example_reactions):
    """The network was built from torch's global stream, so `--seed 0` twice gave two different models."""
    import torch

    from sciflow.cli import main
    from sciflow.data.reactions import save_triplets
    from sciflow.methods.tsgen import TSGen

    save_triplets(tmp_path / "t.npz", example_reactions)
    for k in (1, 2):
        torch.manual_seed(k)                                # a different global stream before each run
        assert main(["tsgen", "train", "--data", str(tmp_path / "t.npz"), "--split", "all", "--steps", "2",
                     "--warmup", "0", "--hidden", "16", "--out", str(tmp_path / f"m{k}")]) == 0
    a, b = (TSGen.load(tmp_path / f"m{k}").model.state_dict() for k in (1, 2))
    assert all(torch.equal(a[key], b[key]) for key in a)


def test_medoid_index_skips_diverged_samples(example_reactions):
    """The medoid is taken among the finite samples: a diverged one is never chosen and does not count in the
    others' mean distances (it used to make every mean infinite, so sample 0 was returned, diverged or not)."""
    import sciflow.methods.tsgen.evaluate as ev
    ts = example_reactions.pos_ts.astype(np.float64)
    rng = np.random.default_rng(0)
    noise = rng.normal(size=(4, *ts.shape))
    samples = ts[None] + noise * np.array([0.3, 0.05, 0.2, 0.4])[:, None, None]   # sample 1 is central
    assert ev.medoid_index(example_reactions, samples).tolist() == [1] * len(example_reactions)
    samples[1, example_reactions.rows(0)] = np.nan                                 # reaction 0: sample 1 diverged
    samples[0, example_reactions.rows(1)] = np.nan                                 # reaction 1: sample 0 diverged
    got = ev.medoid_index(example_reactions, samples)
    assert got[0] in (0, 2, 3) and got[0] != 1 and got[1] == 1
    finite = [0, 2, 3]                  # reaction 0's medoid is the medoid of its finite samples alone
    assert got[0] == finite[ev.medoid_index(example_reactions, samples[finite])[0]]
