"""The shared input checks name the field and the offending value."""
import math

import numpy as np
import pytest

from sciflow.core.errors import InputError, check_bool, check_in_range


def test_check_bool_accepts_python_and_numpy_booleans_only():
    assert check_bool("flag", True) is True and check_bool("flag", np.bool_(False)) is False
    for bad in (1, 0, "yes", None, 1.0):
        with pytest.raises(InputError, match=r"flag: expected True or False, got "):
            check_bool("flag", bad)


def test_check_in_range_bounds_and_messages():
    assert check_in_range("x", 2, 0, 2) == 2.0
    with pytest.raises(InputError, match=r"x: must be > 0, got 0.0"):
        check_in_range("x", 0, 0, low_open=True)
    with pytest.raises(InputError, match=r"x: is NaN"):
        check_in_range("x", math.nan)
    with pytest.raises(InputError, match="x: must be finite"):
        check_in_range("x", math.inf, 0.0, low_open=True)
    assert check_in_range("x", math.inf, 0.0, finite=False) == math.inf
    with pytest.raises(InputError, match=r"x: expected a number, got 'a'"):
        check_in_range("x", "a")
