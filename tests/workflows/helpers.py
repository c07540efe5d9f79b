"""What the workflow tests share (not a test module: pytest collects only test_*.py)."""
from __future__ import annotations

from pathlib import Path

import pytest

from sciflow.core.errors import InputError
from sciflow.workflows.runner import run_workflow, validate_workflow


def refused_before_work(wf: dict, match: str) -> None:
    """``validate`` and ``run`` both refuse ``wf`` with an error matching ``match``, and the output folder is
    never made."""
    with pytest.raises(InputError, match=match):
        validate_workflow(wf)
    with pytest.raises(InputError, match=match):
        run_workflow(wf)
    assert not Path(wf["output"]).exists()
