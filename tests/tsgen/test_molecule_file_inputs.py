"""A file of several structures passed as one molecule, and atomic numbers that are not whole numbers, are
refused (the first frame was taken silently, and 6.5 became carbon)."""
import numpy as np
import pytest

from sciflow.core.errors import InputError
from sciflow.domains.molecules.io import Molecule, as_molecule

XYZ = "2\n{c}\nO 0 0 0\nH 0 0 {z}\n"


def test_a_file_of_several_structures_is_refused_naming_the_field(tmp_path):
    one = tmp_path / "one.xyz"
    one.write_text(XYZ.format(c="a", z=0.96))
    assert len(as_molecule(one, field="reactant")) == 2
    three = tmp_path / "three.xyz"
    three.write_text(XYZ.format(c="R", z=0.96) + XYZ.format(c="TS", z=1.2) + XYZ.format(c="P", z=1.5))
    with pytest.raises(InputError, match=r"reactant: .*three\.xyz holds 3 structures; pass one"):
        as_molecule(three, field="reactant")


@pytest.mark.parametrize("numbers", [[6.5, 1.0], [np.nan, 1.0], ["C", "H"]])
def test_atomic_numbers_must_be_whole_numbers(numbers):
    with pytest.raises(InputError, match="m.numbers: "):
        Molecule(np.array(numbers), np.zeros((2, 3)), "m")
    assert Molecule(np.array([6.0, 1.0]), np.array([[0, 0, 0], [0, 0, 1.1]]), "m").numbers.tolist() == [6, 1]


def test_the_tsgen_workflow_refuses_a_reactant_file_of_several_frames(tmp_path):
    from sciflow.workflows.tasks.tsgen import _read_reactions
    (tmp_path / "a_reactant.xyz").write_text(XYZ.format(c="R", z=0.96) + XYZ.format(c="P", z=1.5))
    (tmp_path / "a_product.xyz").write_text(XYZ.format(c="P", z=1.5))
    with pytest.raises(InputError, match=r"reactions: .*a_reactant\.xyz holds 2 structures"):
        _read_reactions(tmp_path, None)
