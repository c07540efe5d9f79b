"""Input audit of TS-GEN: reaction XYZ files with blank lines, radicals, absurd coordinates, runs where every
reaction diverged, upper-case suffixes, empty frame lists, a bad Transition1x ``limit`` and training resumed on
other data; each refused with an ``InputError`` (or ``SciflowError``) naming the file and field."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from sciflow.core.errors import InputError, SciflowError
from sciflow.data.reactions import ReactionSet, save_triplets
from sciflow.domains.molecules.io import read_molecules, write_xyz_frames

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "datasets" / "reactions" / "examples"
MODEL = ROOT / "models" / "tsgen"


def _with_blank_line(src: Path, dest: Path, before_line: int) -> Path:
    lines = src.read_text().splitlines(keepends=True)
    dest.write_text("".join(lines[:before_line - 1] + ["\n"] + lines[before_line - 1:]))
    return dest


def test_a_blank_line_before_or_between_frames_is_refused_naming_file_and_line(tmp_path):
    src = EXAMPLES / "rxn008394.xyz"                       # 14 atoms: frames start on lines 1, 17, 33
    assert len(read_molecules(src)) == 3
    mid = _with_blank_line(src, tmp_path / "mid.xyz", 33)  # the TS frame became the product (2 frames read)
    with pytest.raises(InputError, match=r"mid\.xyz has 3 frames.*stops after 2.*line 34.*blank line"):
        read_molecules(mid)
    lead = _with_blank_line(src, tmp_path / "lead.xyz", 1)  # was "holds no structure (the file is empty)"
    with pytest.raises(InputError, match=r"lead\.xyz has 3 frames.*stops after 0.*line 2"):
        read_molecules(lead)
    (tmp_path / "trail.xyz").write_text(src.read_text() + "\n\n")   # blank lines after the last frame are fine
    assert len(read_molecules(tmp_path / "trail.xyz")) == 3


def test_a_neutral_molecule_with_an_odd_electron_count_is_refused_as_a_radical(tmp_path):
    """A plain XYZ states no charge or spin: one that lost a hydrogen was taken as closed-shell (xTB nonsense)."""
    from sciflow.methods.tsgen import TSGen
    from sciflow.workflows import validate_workflow

    rx = tmp_path / "rx"
    rx.mkdir()
    frames = [(m.numbers[:-1], m.positions[:-1], f"frame {k}")      # the last H of every frame dropped
              for k, m in enumerate(read_molecules(EXAMPLES / "rxn002918.xyz"))]
    write_xyz_frames(rx / "odd.xyz", frames)
    wf = {"version": 1, "task": "tsgen", "output": str(tmp_path / "o"),
          "tsgen": {"model": str(MODEL), "reactions": str(rx)}}
    with pytest.raises(InputError, match=r"reaction odd \(odd\.xyz\): has an odd number of electrons \(45\)"):
        validate_workflow(wf)
    mols = read_molecules(rx / "odd.xyz")
    with pytest.raises(InputError, match="odd number of electrons"):
        TSGen.load(MODEL).generate(mols[0], mols[-1], 1)


def test_absurd_coordinates_are_refused_at_validation_naming_file_and_frame(tmp_path):
    from sciflow.workflows import validate_workflow

    mols = read_molecules(EXAMPLES / "rxn002918.xyz")
    text = (EXAMPLES / "rxn002918.xyz").read_text().splitlines()
    n = len(mols[0])
    row = text[n + 2 + 2].split()                          # frame 1, atom 0
    text[n + 2 + 2] = f"{row[0]} 1e30 {row[2]} {row[3]}"
    rx = tmp_path / "rx"
    rx.mkdir()
    (rx / "far.xyz").write_text("\n".join(text) + "\n")
    with pytest.raises(InputError, match=r"far\.xyz\[1\]\.positions: atom 0 .*beyond 10000 Å"):
        read_molecules(rx / "far.xyz")
    wf = {"version": 1, "task": "tsgen", "output": str(tmp_path / "o"),
          "tsgen": {"model": str(MODEL), "reactions": str(rx)}}
    with pytest.raises(InputError, match=r"reactions: .*far\.xyz\[1\]"):
        validate_workflow(wf)


def test_a_run_where_every_reaction_diverged_fails_naming_them(tmp_path, example_reactions):
    """A product with one H 20 Å away makes the network diverge (see test_workflow); with only such a reaction the
    run wrote nothing and still reported success."""
    from sciflow.workflows import run_workflow

    one = example_reactions.subset([1])
    far_p = one.pos_product.copy()
    far_p[int(np.flatnonzero(one.atomic_numbers == 1)[0])] += [20.0, 0.0, 0.0]
    far = ReactionSet(one.rxn_id, one.offsets, one.atomic_numbers, one.pos_reactant, far_p, one.pos_ts)
    save_triplets(tmp_path / "far.npz", far)
    wf = {"version": 1, "task": "tsgen", "output": str(tmp_path / "o"),
          "tsgen": {"model": str(MODEL), "reactions": str(tmp_path / "far.npz"), "n_samples": 2}}
    with pytest.raises(SciflowError, match=rf"diverged on every reaction \(1: {one.rxn_id[0]}\)"):
        run_workflow(wf)
    rows = list(csv.DictReader((tmp_path / "o" / "summary.csv").read_text().splitlines()))
    assert [r["reaction"] for r in rows] == [str(one.rxn_id[0])] and rows[0]["diverged"]


def test_an_upper_case_npz_suffix_is_read_as_triplets(tmp_path, example_reactions):
    from sciflow.workflows import validate_workflow

    save_triplets(tmp_path / "t.npz", example_reactions)
    (tmp_path / "t.npz").rename(tmp_path / "T3.NPZ")      # was "unsupported suffix '.npz'"
    wf = {"version": 1, "task": "tsgen", "output": str(tmp_path / "o"),
          "tsgen": {"model": str(MODEL), "reactions": str(tmp_path / "T3.NPZ")}}
    validate_workflow(wf)


def test_an_empty_frame_list_is_not_written(tmp_path):
    with pytest.raises(InputError, match="frames: no frame to write"):
        write_xyz_frames(tmp_path / "e.xyz", [])
    assert not (tmp_path / "e.xyz").exists()


@pytest.mark.parametrize("limit", [float("nan"), float("inf"), 2.5, "2"])
def test_transition1x_limit_must_be_a_positive_integer(tmp_path, example_reactions, limit):
    from sciflow.data.transition1x import read_transition1x, write_transition1x

    write_transition1x(tmp_path / "t.h5", example_reactions)
    with pytest.raises(InputError, match="limit"):
        read_transition1x(tmp_path / "t.h5", limit=limit)
    assert len(read_transition1x(tmp_path / "t.h5", limit=np.int64(2))) == 2


def test_training_resumed_with_other_data_is_refused_naming_data_and_split(tmp_path, example_reactions, capsys):
    """A checkpoint of one training set resumed with another (--data, --split) mixed them silently: e.g. a grambow
    run resumed with --split all trained on the test split."""
    import torch

    from sciflow.cli import main
    from sciflow.core.training import TrainConfig
    from sciflow.methods.tsgen import TSGen
    from sciflow.methods.tsgen.data import training_digest

    save_triplets(tmp_path / "a.npz", example_reactions)
    save_triplets(tmp_path / "b.npz", example_reactions.subset([0, 1]))
    args = ["tsgen", "train", "--split", "all", "--steps", "3", "--warmup", "0", "--hidden", "8", "--layers", "1",
            "--vectors", "2", "--batch-size", "2", "--out", str(tmp_path / "m")]
    assert main([*args, "--data", str(tmp_path / "a.npz"), "--stop-at", "1"]) == 0
    ckpt = tmp_path / "m" / "train_checkpoint.pt"
    before = ckpt.read_bytes()
    capsys.readouterr()
    assert main([*args, "--data", str(tmp_path / "b.npz")]) == 2
    err = capsys.readouterr().err
    assert "--data / --split" in err and "b.npz" in err and "other reactions" in err
    assert ckpt.read_bytes() == before                      # nothing was trained on b
    ck = torch.load(ckpt, weights_only=True)                 # a checkpoint from before the digest was kept
    del ck["run_config"]["training_data"]
    torch.save(ck, ckpt)
    capsys.readouterr()
    assert main([*args, "--data", str(tmp_path / "a.npz")]) == 2
    assert "predates the record of its training reactions" in capsys.readouterr().err
    torch.save({**ck, "run_config": {**ck["run_config"], "training_data": training_digest(example_reactions)}}, ckpt)
    assert main([*args, "--data", str(tmp_path / "a.npz")]) == 0         # the same data resumes
    assert "training_data" not in torch.load(tmp_path / "m" / "model.pt", weights_only=True)["config"]
    # the API (TSGen.fit) refuses the same, naming what differs
    cfg = TrainConfig(steps=3, warmup_steps=0, progress=False)
    api = str(tmp_path / "api.pt")
    TSGen(hidden=8, n_layers=1, n_vectors=2, batch_size=2).fit(example_reactions, cfg, device="cpu",
                                                                checkpoint_path=api, stop_at=1)
    model = TSGen(hidden=8, n_layers=1, n_vectors=2, batch_size=2)
    with pytest.raises(InputError, match=r"other settings \(run\.training_data\)"):
        model.fit(example_reactions.subset([0, 1]), cfg, device="cpu", checkpoint_path=api)
    assert "training_data" not in model.config()            # only while fitting: the saved config is the model's
