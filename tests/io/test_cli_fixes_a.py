"""Command-line fixes of tsgen, scattering and unbinding: no default --out onto the shipped models, checkpoints
that follow --out, refusals that leave nothing behind and name the option at fault."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sciflow.cli import main

ROOT = Path(__file__).resolve().parents[2]
WALKS = ROOT / "datasets" / "scattering" / "walks_subset.npz"
TRAIN_H5 = ROOT / "datasets" / "unbinding" / "train_sample.h5"
HELDOUT_H5 = ROOT / "datasets" / "unbinding" / "heldout.h5"


def _fail(argv, capsys) -> str:
    """Run a command that must be refused by sciflow (exit 2, not a parse error); its stderr."""
    assert main([str(a) for a in argv]) == 2
    return capsys.readouterr().err


def _parse_error(argv, capsys) -> str:
    """Run a command that argparse must refuse; its stderr."""
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in argv])
    assert e.value.code == 2
    return capsys.readouterr().err


# -- 1. no default --out: training wrote over models/<method> (and left its checkpoint there) -------------------
@pytest.mark.parametrize("argv", [
    ["tsgen", "train", "--steps", "1"],
    ["scattering", "train", "--data", "WALKS", "--steps", "1"],
    ["unbinding", "train", "--data", "H5", "--steps", "1"],
])
def test_train_verbs_need_an_explicit_out(tmp_path, monkeypatch, capsys, argv):
    monkeypatch.chdir(tmp_path)                           # a default models/<method> would land here, not in ROOT
    monkeypatch.setenv("SCIFLOW_REACTIONS", str(tmp_path / "no_grambow"))
    argv = [a.replace("WALKS", str(tmp_path / "w.npz")).replace("H5", str(tmp_path / "d.h5")) for a in argv]
    err = _parse_error(argv, capsys)
    assert "required" in err and "--out" in err
    assert list(tmp_path.iterdir()) == []


# -- 2. the default checkpoint follows --out: a second model no longer needs an explicit --checkpoint ------------
def test_unbinding_train_default_checkpoint_follows_out(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    tiny = ["--steps", "2", "--hidden", "8", "--layers", "1", "--batch-size", "2", "--checkpoint-every", "1"]
    for data, out in ((TRAIN_H5, tmp_path / "uA"), (HELDOUT_H5, tmp_path / "uB")):
        assert main(["unbinding", "train", "--data", str(data), "--out", str(out), *tiny]) == 0, capsys.readouterr().err
        assert (out / "model.pt").is_file() and (out / "train_checkpoint.pt").is_file()
    assert not (tmp_path / "runs").exists()
    from sciflow.commands._args import beside_model
    assert beside_model(tmp_path / "m.pt", "train_checkpoint.pt") == tmp_path / "m.train_checkpoint.pt"


def test_scattering_train_default_checkpoints_follow_out(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    tiny = ["--steps", "2", "--batch-size", "8", "--threads", "1"]
    for out, n in ((tmp_path / "sA", "80"), (tmp_path / "sB", "40")):       # other data: other checkpoints
        assert main(["scattering", "train", "--data", str(WALKS), "--max-walks", n, "--out", str(out), *tiny]) == 0, \
            capsys.readouterr().err
        assert (out / "model.pt").is_file()
        assert sorted(p.name for p in (out / "train_checkpoints").iterdir()) == ["len.pt", "path.pt", "scat.pt"]
    assert not (tmp_path / "runs").exists()


# -- 3. a refused `unbinding simulate` leaves no folder behind -------------------------------------------------
def test_unbinding_simulate_missing_input_leaves_no_folder(tmp_path, capsys):
    out = tmp_path / "md"
    err = _fail(["unbinding", "simulate", "--prmtop", tmp_path / "none.prmtop", "--coordinates", tmp_path / "x",
                 "--ligand", "LIG", "--replicas", "1", "--out", out], capsys)
    assert "prmtop: no file" in err
    assert not out.exists()                  # settings.json used to be written first and poison the folder


def test_ramd_refused_complex_records_no_settings(tmp_path):
    """A source that does not load (here a ligand name the prmtop lacks) is refused before settings.json."""
    pytest.importorskip("openmm")
    from sciflow.core.errors import InputError
    from sciflow.data.ramd import ComplexSource, RAMDSettings, generate_replicas, host_guest_sources
    bt = host_guest_sources()["benzene-toluene"]
    with pytest.raises(InputError, match="ligand not found"):
        generate_replicas(ComplexSource("bt", bt.prmtop, bt.coordinates, "XYZ"), RAMDSettings(), 1, tmp_path,
                          show_progress=False)
    assert not (tmp_path / "bt").exists()


# -- 4. tsgen train on other data with the default --split grambow ---------------------------------------------
def test_tsgen_train_split_grambow_on_other_data_names_split(tmp_path, capsys):
    from sciflow.data.reactions import ReactionSet, save_triplets
    rng = np.random.default_rng(0)
    n, k = 3, 4                                                         # 3 reactions of 4 atoms
    pos = [rng.normal(size=(n * k, 3)) for _ in range(3)]
    save_triplets(tmp_path / "t.npz", ReactionSet(np.array(["a", "b", "c"]), np.arange(0, n * k + 1, k),
                                                  np.tile([6, 1, 1, 8], n), *pos))
    out = tmp_path / "m"
    err = _fail(["tsgen", "train", "--data", tmp_path / "t.npz", "--out", out, "--steps", "1"], capsys)
    assert "--split" in err and "--split all" in err and "sizes" not in err
    assert not out.exists()


# -- 5. tsgen evaluate: xTB options without --xtb -------------------------------------------------------------
@pytest.mark.parametrize("option", [["--xtb-all-samples"], ["--sella-steps", "3"], ["--no-sella-hessian"],
                                    ["--sella-hessian"]])
def test_tsgen_evaluate_refuses_xtb_options_without_xtb(tmp_path, monkeypatch, capsys, option):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "m.json"
    err = _fail(["tsgen", "evaluate", "--data", tmp_path / "t.npz", "--out", out, *option], capsys)
    assert option[0] in err and "--xtb" in err
    assert not out.exists()


# -- 6. scattering train --only: an unknown name is named first --------------------------------------------------
def test_scattering_only_unknown_name_is_named(tmp_path, capsys):
    err = _parse_error(["scattering", "train", "--data", WALKS, "--out", tmp_path / "new", "--only", "bogus"], capsys)
    assert "argument --only" in err and "bogus" in err
    assert not (tmp_path / "new").exists()
    from sciflow.core.errors import InputError
    from sciflow.methods.scattering.training import train_from_folder
    with pytest.raises(InputError, match="only: unknown model.*bogus"):   # before the data or out are looked at
        train_from_folder(tmp_path / "no_walks", tmp_path / "new", only=["bogus"])


# -- 7. smaller ones -----------------------------------------------------------------------------------------------
def test_unbinding_pack_refuses_an_empty_replica_range(tmp_path, capsys):
    (tmp_path / "runs" / "cb7-b2").mkdir(parents=True)
    out = tmp_path / "p.h5"
    err = _fail(["unbinding", "pack", "--runs", tmp_path / "runs", "--complexes", "cb7-b2", "--replicas", "5:2",
                 "--out", out], capsys)
    assert "--replicas" in err and "empty range" in err
    assert not out.exists()


@pytest.mark.parametrize("verb", ["evaluate", "train"])
def test_unbinding_unknown_complex_is_named(tmp_path, monkeypatch, capsys, verb):
    monkeypatch.chdir(tmp_path)
    extra = ["--out", tmp_path / "m.json"] if verb == "evaluate" else ["--out", tmp_path / "m", "--steps", "1"]
    err = _fail(["unbinding", verb, "--data", HELDOUT_H5, "--complexes", "cb7-b2", "bogus", *extra], capsys)
    assert "--complexes" in err and "'bogus'" in err and "cb7-b2" in err      # names the data's complexes too
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("option", ["--sigma-r", "--g"])
def test_scattering_evaluate_refuses_an_empty_grid(tmp_path, monkeypatch, capsys, option):
    monkeypatch.chdir(tmp_path)
    err = _parse_error(["scattering", "evaluate", "--out", tmp_path / "m.json", option], capsys)
    assert f"argument {option}" in err
    assert list(tmp_path.iterdir()) == []


def test_scattering_train_only_needs_a_name(tmp_path, capsys):
    """``--only`` with no name trained all three CVAEs without a word."""
    err = _parse_error(["scattering", "train", "--data", WALKS, "--out", tmp_path / "m", "--only"], capsys)
    assert "argument --only" in err
