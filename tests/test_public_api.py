import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import sciflow

PACKAGES = ["sciflow", "sciflow.core", "sciflow.core.paths", "sciflow.core.couplings", "sciflow.core.solvers",
            "sciflow.core.training", "sciflow.nn", "sciflow.domains", "sciflow.data", "sciflow.methods",
            "sciflow.workflows"]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_names_import(name):
    mod = importlib.import_module(name)
    assert mod.__all__, f"{name} has no __all__"
    assert len(set(mod.__all__)) == len(mod.__all__), f"{name}.__all__ lists a name twice"
    for attr in mod.__all__:
        assert getattr(mod, attr) is not None, f"{name}.{attr}"


def test_import_sciflow_needs_no_heavy_packages():
    code = ("import sys, sciflow, sciflow.core, sciflow.nn, sciflow.domains, sciflow.data, sciflow.workflows, "
            "sciflow.cli; heavy = [m for m in ('ase','rdkit','mdtraj','tblite','openmm','ompl','mitsuba') "
            "if m in sys.modules]; print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_version():
    assert sciflow.__version__.count(".") == 2


_BLOCK = ("import importlib.abc, sys\n"
          "class Block(importlib.abc.MetaPathFinder):\n"
          "    def find_spec(self, name, path, target=None):\n"
          "        if name.split('.')[0] in ('ot', 'ase', 'rdkit', 'mdtraj', 'pydantic'):\n"
          "            raise ImportError('not on the GPU machine: ' + name)\n"
          "sys.meta_path.insert(0, Block())\n")


@pytest.mark.parametrize("script", ["gpu_check", "ditree_gpu", "unbinding_gpu"])
def test_gpu_scripts_and_methods_import_without_pot_ase_rdkit_mdtraj_pydantic(script):
    # the lent GPU machine has torch, torch-geometric, e3nn and h5py but none of these five
    root = Path(__file__).resolve().parents[1]
    code = _BLOCK + ("import runpy\n"
                     "import pkgutil, sciflow.methods\n"
                     "for m in ('core', 'nn', 'domains.photons', 'domains.robots', 'data.reactions'):\n"
                     "    __import__('sciflow.' + m)\n"
                     "for info in pkgutil.walk_packages(sciflow.methods.__path__, 'sciflow.methods.'):\n"
                     "    __import__(info.name)\n"
                     f"sys.argv = ['{script}.py', '--help']\n"
                     f"runpy.run_path('benchmarks/{script}.py', run_name='__main__')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root)
    assert out.returncode == 0 and "usage" in out.stdout, out.stderr[-2000:]


def _top_level_runs(tree: ast.Module) -> bool:
    """Whether a module does work when run: a __main__ block or a top-level call outside definitions."""
    for node in tree.body:
        if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test):
            return True
        quiet = isinstance(node, ast.Expr) and (isinstance(node.value, ast.Constant)
                                                 or ast.unparse(node).startswith("sys.path.insert"))
        if isinstance(node, (ast.Expr, ast.For, ast.While, ast.With)) and not quiet:
            return True
    return False


def test_every_benchmark_script_answers_help_before_running():
    # `python benchmarks/X.py --help` must print usage, not start a run of minutes (four scripts once did)
    root = Path(__file__).resolve().parents[1]
    bad = []
    for path in sorted((root / "benchmarks").glob("*.py")):
        text = path.read_text()
        tree = ast.parse(text)
        if _top_level_runs(tree) and "ArgumentParser" not in text and "SystemExit(" not in text:
            bad.append(path.name)
    assert not bad, f"scripts that run without parsing arguments: {bad}"
