import importlib
import subprocess
import sys

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
