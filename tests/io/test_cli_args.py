"""Numeric options of every verb are checked while the command line is parsed: a bad value is reported with
the option's name and nothing runs."""
import argparse

import pytest

from sciflow.cli import build_parser, main
from sciflow.commands._args import fraction, integer, number, positive


def test_value_types_accept_good_and_refuse_bad_values():
    assert integer()("3") == 3 and integer(0)("0") == 0 and positive()("1e-3") == 1e-3 and fraction()("1") == 1.0
    assert number(-1, 1, low_open=True, high_open=True)("-0.5") == -0.5
    for parse, text, msg in [(integer(), "0", ">= 1"), (integer(), "2.5", "integer"), (positive(), "0", "> 0"),
                             (positive(), "nan", "finite"), (positive(), "inf", "finite"), (fraction(), "1.5", "<= 1"),
                             (number(-1, 1, low_open=True, high_open=True), "1", "< 1"), (number(), "x", "number")]:
        with pytest.raises(argparse.ArgumentTypeError, match=msg):
            parse(text)


@pytest.mark.parametrize("argv, option", [
    (["ditree", "maps", "--family", "forest", "--out", "OUT", "--n", "-5"], "--n"),
    (["ditree", "evaluate", "--scenarios", "OUT", "--planner", "rrt", "--out", "OUT/m.json", "--budget", "nan"],
     "--budget"),
    (["scattering", "evaluate", "--out", "OUT/m.json", "--walks", "0"], "--walks"),
    (["scattering", "render", "--g", "1.0", "--out", "OUT"], "--g"),
    (["tsgen", "train", "--ema", "1", "--out", "OUT"], "--ema"),
    (["mmsb", "evaluate", "--data", "OUT/x.npz", "--out", "OUT/m.json", "--particles", "-1"], "--particles"),
    (["unbinding", "train", "--data", "OUT", "--n-frames", "1"], "--n-frames"),
    (["tsgen", "evaluate", "--data", "OUT/t.npz", "--out", "OUT/m.json", "--device", "tpu"], "--device"),
    (["unbinding", "evaluate", "--data", "OUT", "--out", "OUT/m.json", "--device", "cuda:x"], "--device"),
    (["scattering", "evaluate", "--out", "OUT/m.json", "--device", "gpu"], "--device"),
    # a seed torch.Generator cannot take was a raw OverflowError traceback in every verb with --seed
    (["mmsb", "simulate", "--reference", "linear", "--out", "OUT/s.npz", "--seed", "99999999999999999999"], "--seed"),
    (["tsgen", "evaluate", "--data", "OUT/t.npz", "--out", "OUT/m.json", "--seed", "-1"], "--seed"),
    (["scattering", "render", "--out", "OUT", "--seed", str(2**63)], "--seed"),
    (["ditree", "demos", "--parts", "OUT/p", "--out", "OUT/d.npz", "--seed", str(2**63 - 1)], "--seed"),
    (["scattering", "data", "--out", "OUT", "--walks", "10", "--seed", str(2**31)], "--seed"),
    (["unbinding", "train", "--data", "OUT", "--seed", str(2**63)], "--seed"),
])
def test_bad_numbers_stop_the_command_before_any_work(tmp_path, capsys, argv, option):
    argv = [a.replace("OUT", str(tmp_path / "out")) for a in argv]
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    assert f"argument {option}" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_device_option_needs_a_device_this_machine_has():
    import torch

    from sciflow.commands._args import device
    assert device("cpu") == "cpu" and device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(argparse.ArgumentTypeError, match="no CUDA device"):
            device("cuda:0")


def test_every_numeric_option_has_a_checked_type():
    """No verb takes a plain int or float except seeds (any integer)."""
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    plain = []
    for cmd, cp in sub.choices.items():
        verbs = [a for a in cp._actions if isinstance(a, argparse._SubParsersAction)]
        for verb, vp in (verbs[0].choices.items() if verbs else []):
            for a in vp._actions:
                if a.type in (int, float) and a.dest != "seed":
                    plain.append(f"{cmd} {verb} {a.option_strings[-1]}")
    assert plain == []
