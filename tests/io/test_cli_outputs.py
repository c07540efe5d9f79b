"""Output paths of every verb are checked while the command line is parsed: an existing folder where a file
goes, an existing file where a folder goes, a file on the way to either, or a suffix that does not match the
format the option writes, is reported naming the option before any work (it used to surface after minutes of
work as a raw IsADirectoryError / FileExistsError). ``core.files.atomic_path`` refuses the same with an
``InputError`` naming the path, as a backstop for every other writer."""
import argparse

import pytest

from sciflow.cli import build_parser, main
from sciflow.commands._args import output_file, output_folder, output_model
from sciflow.core.errors import InputError
from sciflow.core.files import atomic_path, atomic_write_json, atomic_write_text


@pytest.fixture
def places(tmp_path, monkeypatch):
    """cwd = tmp_path holding folders ``dir`` and ``dir.json`` and a file ``file``."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir.json").mkdir()
    (tmp_path / "file").write_text("x")
    return tmp_path


def test_output_types_accept_good_paths_unchanged(places):
    assert output_file()("new/deeper/m.json") == "new/deeper/m.json"
    assert output_file()("file") == "file"                                # an existing file is overwritten
    assert output_file(".npz", ".csv")("dir/plan.CSV") == "dir/plan.CSV"
    assert output_folder()("dir") == "dir" and output_folder()("dir/new/deeper") == "dir/new/deeper"
    assert output_model()("dir") == "dir" and output_model()("new") == "new" and output_model()("dir/m.pt")


@pytest.mark.parametrize("parse, text, msg", [
    (output_file(), "dir", "is an existing folder"),
    (output_file(), "file/m.json", "is a file, not a folder"),
    (output_file(), "file/a/b/m.json", "is a file, not a folder"),
    (output_file(), "", "expected a file path"),
    (output_file(".png"), "dir/p.npz", r"ending in \.png, got suffix '\.npz'"),
    (output_file(".png"), "dir", r"ending in \.png, got no suffix"),
    (output_folder(), "file", "is an existing file"),
    (output_folder(), "file/sub", "is a file, not a folder"),
    (output_model(), "file", "existing file without a suffix"),
    (output_model(), "file/model.pt", "is a file, not a folder"),
])
def test_output_types_refuse_bad_paths_naming_them(places, parse, text, msg):
    with pytest.raises(argparse.ArgumentTypeError, match=msg):
        parse(text)


OUTPUT_OPTIONS = ("--out", "--output", "--png", "--checkpoint", "--checkpoints", "--parts")


def test_every_output_option_has_a_checked_output_type():
    """Each verb's --out / --output / --png / --checkpoint(s) / --parts and export's OUTPUT is checked."""
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    unchecked, seen = [], 0
    for cmd, cp in sub.choices.items():
        verbs = [a for a in cp._actions if isinstance(a, argparse._SubParsersAction)]
        for verb, vp in (verbs[0].choices.items() if verbs else [("", cp)]):
            for a in vp._actions:
                if (set(a.option_strings) & set(OUTPUT_OPTIONS)) or (not a.option_strings and a.dest == "output"):
                    seen += 1
                    if getattr(a.type, "__name__", "") not in ("output file", "output folder", "output model"):
                        unchecked.append(f"{cmd} {verb} {(a.option_strings or [a.dest])[-1]}")
    assert seen >= 20
    assert unchecked == []


SCEN = "SCEN"           # placeholders: nothing needs to exist, the command must stop while parsing
CASES = [
    (["ditree", "evaluate", "--scenarios", SCEN, "--planner", "rrt", "--out", "dir.json"], "--out", "existing folder"),
    (["ditree", "plan", "s.yaml", "--planner", "rrt", "--png", "dir"], "--png", r"\.png"),
    (["ditree", "plan", "s.yaml", "--planner", "rrt", "--png", "plan.npz"], "--png", r"\.png"),
    (["ditree", "plan", "s.yaml", "--planner", "rrt", "--out", "plan.png"], "--out", r"\.npz or \.csv"),
    (["ditree", "plan", "s.yaml", "--planner", "rrt", "--out", "file/p.npz"], "--out", "is a file"),
    (["ditree", "maps", "--family", "forest", "--out", "file"], "--out", "existing file"),
    (["ditree", "maps", "--family", "forest", "--out", "file/x.npz"], "--out", "is a file"),
    (["ditree", "demos", "--parts", "file", "--n", "1"], "--parts", "existing file"),
    (["ditree", "demos", "--parts", "parts", "--out", "dir"], "--out", "existing folder"),
    (["ditree", "train", "--demos", "d.npz", "--out", "file"], "--out", "without a suffix"),
    (["ditree", "train", "--demos", "d.npz", "--out", "m", "--checkpoint", "dir"], "--checkpoint", "existing folder"),
    (["ditree", "distill", "--out", "file/m"], "--out", "is a file"),
    (["tsgen", "evaluate", "--data", "t.npz", "--out", "dir.json"], "--out", "existing folder"),
    (["tsgen", "train", "--out", "file"], "--out", "without a suffix"),
    (["tsgen", "train", "--out", "m", "--checkpoint", "dir"], "--checkpoint", "existing folder"),
    (["unbinding", "evaluate", "--data", "h.h5", "--out", "dir.json"], "--out", "existing folder"),
    (["unbinding", "simulate", "--out", "file"], "--out", "existing file"),
    (["unbinding", "pack", "--complexes", "a", "--out", "x.npz"], "--out", r"\.h5 or \.hdf5"),
    (["unbinding", "train", "--data", "h.h5", "--checkpoint", "dir"], "--checkpoint", "existing folder"),
    (["scattering", "render", "--out", "file"], "--out", "existing file"),
    (["scattering", "render", "--width", "100000", "--height", "100000", "--out", "r"], "--width", "<= 4096"),
    (["scattering", "render", "--height", "4097", "--out", "r"], "--height", "<= 4096"),
    (["scattering", "evaluate", "--out", "dir.json"], "--out", "existing folder"),
    (["scattering", "data", "--out", "file"], "--out", "existing file"),
    (["scattering", "train", "--data", "w", "--out", "file/m"], "--out", "is a file"),
    (["scattering", "train", "--data", "w", "--out", "m", "--checkpoints", "file"], "--checkpoints", "existing file"),
    (["scattering", "fit-prior", "--data", "w", "--out", "file"], "--out", "without a suffix"),
    (["mmsb", "fit", "--data", "lv.npz", "--out", "file", "--n", "5"], "--out", "existing file"),
    (["mmsb", "evaluate", "--data", "lv.npz", "--out", "dir.json"], "--out", "existing folder"),
    (["unbinding", "evaluate", "--data", "h.h5", "--out", "m.txt"], "--out", r"ending in \.json"),   # metrics: JSON
    (["tsgen", "evaluate", "--data", "t.npz", "--out", "file"], "--out", r"ending in \.json"),
    (["mmsb", "simulate", "--reference", "linear", "--box", "1", "2", "--out", "lv.txt"], "--out", r"\.npz"),
    (["run", "w.yaml", "--output", "file"], "--output", "existing file"),
    (["export", "in.xyz", "file/out.xyz"], "output", "is a file"),
]


@pytest.mark.parametrize("argv, option, msg", CASES, ids=[" ".join(c[0][:2]) + " " + c[1] for c in CASES])
def test_bad_outputs_stop_every_verb_while_parsing(places, capsys, monkeypatch, argv, option, msg):
    """The refusal comes from inside parse_args: the command line never parses, so the verb never runs (no work
    before the error, whatever the machine's speed)."""
    before = sorted(p.name for p in places.iterdir())
    parsed = []
    parse_args = argparse.ArgumentParser.parse_args

    def recording_parse_args(self, *a, **k):
        ns = parse_args(self, *a, **k)
        parsed.append(ns)                          # reached only when the whole command line parsed
        return ns
    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", recording_parse_args)
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    assert parsed == [], f"the command line parsed and {parsed[0]} went on to run"
    err = capsys.readouterr().err
    assert f"argument {option}" in err and "Traceback" not in err
    assert __import__("re").search(msg, err), err
    assert sorted(p.name for p in places.iterdir()) == before              # nothing was made


def test_render_accepts_the_largest_allowed_image_side():
    args = build_parser().parse_args(["scattering", "render", "--width", "4096", "--height", "1"])
    assert (args.width, args.height) == (4096, 1)


def test_atomic_writes_refuse_a_folder_target_with_an_input_error(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(InputError, match=r"d: is an existing folder") as e:
        atomic_write_json(tmp_path / "d", {"a": 1})
    assert str(tmp_path / "d") in str(e.value)
    assert list((tmp_path / "d").iterdir()) == []                               # no temporary file left


def test_atomic_writes_refuse_a_file_on_the_way_with_an_input_error(tmp_path):
    (tmp_path / "f").write_text("keep")
    for target in (tmp_path / "f" / "x.json", tmp_path / "f" / "a" / "b" / "x.json"):
        with pytest.raises(InputError, match=r"f is a file, not a folder") as e:
            atomic_write_text(target, "x")
        assert str(target) in str(e.value)
        with pytest.raises(InputError), atomic_path(target):
            pass
    assert (tmp_path / "f").read_text() == "keep"


def test_tsgen_checkpoint_sits_beside_a_model_file_not_inside_it(tmp_path):
    from sciflow.commands._args import beside_model
    assert beside_model(tmp_path / "models", "train_checkpoint.pt") == tmp_path / "models" / "train_checkpoint.pt"
    assert beside_model(tmp_path / "m.pt", "train_checkpoint.pt") == tmp_path / "m.train_checkpoint.pt"
