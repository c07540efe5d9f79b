"""The example scripts' command lines: ``--help`` answers with a usage text, bad arguments are refused with a
one-line error naming the argument and exit status 2, quickly and before any real work (no model is run here)."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))


def _run(script: str | Path, *args: str, cwd: Path) -> tuple[subprocess.CompletedProcess, float]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / script), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    return proc, time.perf_counter() - t0


def test_there_are_examples():
    assert len(EXAMPLES) >= 9


@pytest.mark.parametrize("script", [p.name for p in EXAMPLES])
def test_every_example_answers_help(script, tmp_path):
    proc, seconds = _run(script, "--help", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: "), proc.stdout
    assert "Traceback" not in proc.stderr
    assert seconds < 10
    assert not any(tmp_path.iterdir())                             # --help is not a file name: nothing written


BAD = [
    ("scattering_render.py", ["--spp", "0"], "--spp", "must be an integer >= 1, got 0"),
    ("scattering_render.py", ["--res", "x"], "--res", "expected an integer"),
    ("unbinding_generate.py", ["--n", "0"], "--n", "must be an integer >= 1, got 0"),
    ("ditree_compare.py", ["datasets/ditree/scenarios/maze/maze-0003.yaml", "abc"], "budget",
     "expected a number, got 'abc'"),
    ("ditree_compare.py", ["datasets/ditree/scenarios/maze/maze-0003.yaml", "-1"], "budget", "> 0"),
    ("unbinding_md_vs_model.py", ["--replicas", "2"], "--replicas", "at least 4, got 2"),
    ("scattering_walks.py", ["--sigma-r", "1000"], "--sigma-r", "sigma_r <= 300"),
    ("scattering_walks.py", ["--walks", "0"], "--walks", "must be an integer >= 1"),
    ("mmsb_custom_reference.py", ["--sigma", "nan"], "--sigma", "must be a finite number"),
    ("mmsb_custom_reference.py", ["--sigma", "0"], "--sigma", "must be > 0"),
    ("tsgen_generate.py", ["--n", "0"], "--n", "must be an integer >= 1, got 0"),
    ("tsgen_xtb_neb.py", ["pairs.npz", "out", "--limit", "0"], "--limit", "must be an integer >= 1, got 0"),
    ("ditree_plan.py", ["a.yaml", "b.yaml"], "unrecognized arguments", "b.yaml"),
]


@pytest.mark.parametrize("script, args, name, text", BAD, ids=[f"{s}:{' '.join(a)}" for s, a, _, _ in BAD])
def test_bad_arguments_exit_2_with_one_line_naming_them(script, args, name, text, tmp_path):
    proc, seconds = _run(script, *args, cwd=tmp_path)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1, proc.stderr
    assert name in errors[0] and text in errors[0], proc.stderr
    assert seconds < 10, f"{script} took {seconds:.1f} s to refuse {args}"
    assert not any(tmp_path.iterdir())                             # refused before anything was written


def test_input_error_is_one_line_with_status_2(tmp_path):
    """An InputError sciflow raises (here: a scenario file that does not exist) is an `error:` line, not a
    traceback."""
    proc, _ = _run("ditree_plan.py", str(tmp_path / "missing.yaml"), cwd=tmp_path)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ditree_plan.py: error: "), proc.stderr
    assert "missing.yaml" in lines[0]


def test_run_script_turns_sciflow_errors_into_one_line_and_status_2(capsys):
    from sciflow.commands.script import run_script
    from sciflow.core.errors import InputError

    def bad_input(args):
        raise InputError(f"--n: must be >= 1, got {args}")

    with pytest.raises(SystemExit) as exit_:
        run_script(bad_input, 0, name="demo.py")
    assert exit_.value.code == 2
    assert capsys.readouterr().err.splitlines() == ["demo.py: error: --n: must be >= 1, got 0"]

    def missing(args):
        raise FileNotFoundError(args)

    with pytest.raises(SystemExit):                                # FileNotFoundError by default ...
        run_script(missing, "a.yaml", name="demo.py")
    assert capsys.readouterr().err == "demo.py: error: a.yaml\n"
    with pytest.raises(FileNotFoundError):                         # ... unless errors= leaves it out
        run_script(missing, "a.yaml", name="demo.py", errors=())

    def broken(args):
        raise RuntimeError("a bug, not bad input")

    with pytest.raises(RuntimeError, match="a bug"):              # anything else propagates (a traceback)
        run_script(broken, None)

    import signal
    before = signal.getsignal(signal.SIGTERM)

    def terminated(args):                                          # SIGTERM, as from a scheduler or `timeout`
        signal.raise_signal(signal.SIGTERM)

    with pytest.raises(SystemExit) as exit_:
        run_script(terminated, None, name="demo.py", resumes=True)
    assert exit_.value.code == 130
    assert capsys.readouterr().err.strip() == "demo.py: interrupted; run the same command again to resume"
    assert signal.getsignal(signal.SIGTERM) is before              # the caller's handlers are back

    import threading

    from sciflow.core import interrupts
    interrupts._flag.set()                                          # an interrupt the main thread has yet to act on
    try:
        worker = threading.Thread(target=run_script, args=(lambda a: None, None))
        worker.start()
        worker.join()
        assert interrupts.interrupted()                             # a script run in a thread does not forget it
    finally:
        interrupts.clear_interrupted()
    assert capsys.readouterr().err == ""


def _module(name: str):
    spec = importlib.util.spec_from_file_location(f"_example_{name}", ROOT / "examples" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_documented_defaults_parse():
    assert _module("ditree_compare").parse_args([]).budget == 5.0
    args = _module("ditree_compare").parse_args(["datasets/ditree/scenarios/maze/maze-0003.yaml", "5"])
    assert args.scenario.endswith("maze-0003.yaml") and args.budget == 5.0
    assert _module("ditree_plan").parse_args(["x.yaml"]).scenario == "x.yaml"
    assert _module("tsgen_generate").parse_args([]).n == 8
    gen = _module("unbinding_generate").parse_args(["c.pdb", "--n", "16"])
    assert (gen.complex, gen.n, gen.out) == ("c.pdb", 16, "outputs/unbinding_example")
    walks = _module("scattering_walks").parse_args(["--sigma-r", "16", "--g", "0.5", "--out", "w.png"])
    assert (walks.sigma_r, walks.g, walks.out) == (16.0, 0.5, "w.png")
    render = _module("scattering_render").parse_args(["--scene", "blob", "--sigma-r", "64", "--spp", "4",
                                                        "--res", "48"])
    assert (render.scene, render.sigma_r, render.spp, render.res) == ("blob", 64.0, 4, 48)
    md = _module("unbinding_md_vs_model").parse_args(["--complex", "benzene-toluene", "--replicas", "4"])
    assert md.replicas == 4
    mmsb = _module("mmsb_custom_reference").parse_args(["--sigma", "0.3", "--out", "o"])
    assert (mmsb.sigma, mmsb.out) == (0.3, "o")


def test_unbinding_generate_removes_only_the_old_runs_path_files(tmp_path):
    mod = _module("unbinding_generate")
    keep = ["topology.pdb", "paths.png", "notes.txt", "path_x.pdb", "path_000.xyz", "mypath_000.pdb"]
    old = ["path_000.pdb", "path_000.dcd", "path_015.pdb", "path_015.dcd", "path_1000.dcd"]
    for name in keep + old:
        (tmp_path / name).write_text("x")
    removed = mod.remove_old_paths(tmp_path)
    assert sorted(p.name for p in removed) == sorted(old)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(keep)
    assert mod.remove_old_paths(tmp_path / "absent") == []
