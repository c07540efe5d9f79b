"""Input audit of the unbinding workflow: a bound pose that generation refuses (coincident ligand atoms) and an
empty ``formats`` list are refused by ``sciflow validate``, before the output folder is claimed."""
from __future__ import annotations

from pathlib import Path

import pytest

from sciflow.core.errors import InputError
from sciflow.workflows import validate_workflow

ROOT = Path(__file__).resolve().parents[2]
COMPLEX = ROOT / "datasets/unbinding/complexes/cb7-b2.pdb"
MODEL = ROOT / "models/unbinding"


def _workflow(tmp_path: Path, complexes: Path, **extra) -> dict:
    return {"version": 1, "task": "unbinding", "output": str(tmp_path / "out"),
            "unbinding": {"model": str(MODEL), "complexes": str(complexes), "n_paths": 1, **extra}}


def test_coincident_ligand_atoms_are_refused_at_validation_naming_the_file(tmp_path):
    folder = tmp_path / "cx"
    folder.mkdir()
    lines = []
    for line in COMPLEX.read_text().splitlines():
        if line.startswith(("ATOM", "HETATM")) and line[17:20] == "LIG":    # every ligand atom at one point
            line = f"{line[:30]}{5.0:8.3f}{6.0:8.3f}{19.0:8.3f}{line[54:]}"
        lines.append(line)
    (folder / "stacked.pdb").write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=r"unbinding\.complexes: .*stacked\.pdb: .*ligand atoms 0 and 1 are 0 Å apart"):
        validate_workflow(_workflow(tmp_path, folder))
    assert not (tmp_path / "out").exists()


def test_an_empty_formats_list_is_refused(tmp_path):
    with pytest.raises(InputError, match=r"formats: name at least one output format"):
        validate_workflow(_workflow(tmp_path, COMPLEX, formats=[]))
    validate_workflow(_workflow(tmp_path, COMPLEX, formats=["pdb"]))
