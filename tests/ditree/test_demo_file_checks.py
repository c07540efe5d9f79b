"""A demos file is checked against its layout when it is read: offsets, per-state arrays, per-demonstration
arrays, crop widths, required arrays and finite values, each refused naming the file and the array (principle 11)
instead of a raw error in merge_parts or an index error mid-training."""
import json
from pathlib import Path

import numpy as np
import pytest

from sciflow.core.errors import InputError
from sciflow.data.robot_demos import _save_part, demos_header, load_demos, merge_parts
from sciflow.domains.robots import LocalObservation

ROOT = Path(__file__).resolve().parents[2]
OBS = LocalObservation()
SIZE = int(OBS.config()["size"])


def _item(n: int, seed: int, rng) -> dict[str, np.ndarray]:
    return {"states": rng.random((n, 5)).astype(np.float32), "controls": rng.random((n, 2)).astype(np.float32),
            "crops": np.packbits(rng.integers(0, 2, (n, SIZE * SIZE)).astype(np.uint8), axis=1),
            "goal": np.zeros(3, np.float32), "seed": np.array(seed), "duration": np.array(1.0),
            "recovery": np.array(0)}


def _good(path: Path, lengths=(4, 3)) -> Path:
    rng = np.random.default_rng(0)
    seeds = list(range(1, len(lengths) + 1))
    _save_part(path, [_item(n, s, rng) for n, s in zip(lengths, seeds)],
               {"observation": OBS.config(), "options": {}, "seeds": seeds})
    return path


def _variant(tmp_path: Path, name: str, **changes) -> Path:
    z = dict(np.load(_good(tmp_path / "good.npz")))
    for k, v in changes.items():
        if v is None:
            z.pop(k)
        else:
            z[k] = v
    target = tmp_path / name
    target.parent.mkdir(parents=True, exist_ok=True)
    np.savez(target, **z)
    return target


CASES = {
    "offsets_beyond_states": ({"offsets": np.array([0, 4, 9])},
                              r"'offsets' runs from 0 to 9, expected 0 to the 7 rows of 'states'"),
    "offsets_not_from_0": ({"offsets": np.array([1, 4, 7])}, r"'offsets' runs from 1 to 7"),
    "offsets_decreasing": ({"offsets": np.array([0, 5, 3, 7])}, r"'offsets' decreases at index 2 \(5 then 3\)"),
    "controls_short": ({"controls": np.zeros((2, 2), np.float32)},
                       r"'controls' has shape \(2, 2\), expected \(7, 2\) \(one per state"),
    "states_nan": ({"states": np.full((7, 5), np.nan, np.float32)}, r"'states' holds a non-finite value at row 0"),
    "controls_inf": ({"controls": np.where(np.arange(14).reshape(7, 2) == 9, np.inf, 0).astype(np.float32)},
                     r"'controls' holds a non-finite value at row 4"),
    "states_transposed": ({"states": np.zeros((5, 7), np.float32)}, r"'states' has shape \(5, 7\).*expected \(N, 5\)"),
    "crops_wrong_width": ({"crops": np.zeros((7, 3), np.uint8)},
                          rf"'crops' has shape \(7, 3\), expected \(7, {-(-SIZE * SIZE // 8)}\)"),
    "goals_short": ({"goals": np.zeros((1, 3), np.float32)}, r"'goals' has shape \(1, 3\), expected \(2, 3\)"),
    "durations_nan": ({"durations": np.array([1.0, np.nan])}, r"'durations' holds a non-finite value at row 1"),
    "recovery_flag": ({"recovery": np.array([0, 2], np.int8)}, r"'recovery' holds values other than 0 and 1"),
    "no_seeds": ({"seeds": None}, r"lacks seeds"),
    "no_durations": ({"durations": None}, r"lacks durations"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_an_inconsistent_demos_file_is_refused_naming_the_file_and_array(tmp_path, case):
    changes, message = CASES[case]
    f = _variant(tmp_path, f"{case}.npz", **changes)
    with pytest.raises(InputError, match=rf"demos: .*{case}\.npz .*{message}"):
        load_demos(f)


@pytest.mark.parametrize("case", ["offsets_beyond_states", "no_seeds", "crops_wrong_width"])
def test_merging_a_bad_part_is_refused_naming_the_part(tmp_path, case):
    """merge_parts gave numpy's raw concatenate ValueError or KeyError 'seeds'."""
    changes, message = CASES[case]
    _variant(tmp_path, "parts/part-0000.npz", **changes)
    with pytest.raises(InputError, match=rf"demos: .*part-0000\.npz .*{message}"):
        merge_parts(tmp_path / "parts", tmp_path / "merged.npz")
    assert not (tmp_path / "merged.npz").exists()


def test_the_header_check_refuses_bad_offsets_without_reading_crops(tmp_path):
    f = _variant(tmp_path, "o.npz", offsets=np.array([0, 4, 9]))
    with pytest.raises(InputError, match=r"o\.npz array 'offsets' runs from 0 to 9"):
        demos_header(f)


def test_good_demos_files_still_load_and_merge(tmp_path):
    d = load_demos(_good(tmp_path / "parts" / "part-0000.npz"))
    assert d["crops"].shape == (7, SIZE, SIZE) and d["offsets"].tolist() == [0, 4, 7]
    _save_part(tmp_path / "parts" / "part-0001.npz", [], {"observation": OBS.config(), "options": {}, "seeds": [9]})
    assert load_demos(tmp_path / "parts" / "part-0001.npz")["crops"].shape == (0, SIZE, SIZE)   # a part planning none
    m = load_demos(merge_parts(tmp_path / "parts", tmp_path / "merged.npz"))
    assert m["offsets"].tolist() == [0, 4, 7] and np.array_equal(m["crops"], d["crops"])
    old = _variant(tmp_path, "old.npz", recovery=None)       # made before recovery demonstrations
    assert load_demos(old)["recovery"].tolist() == [0, 0]
    assert json.loads(str(np.load(old)["meta"]))["observation"] == OBS.config()
    for shipped in sorted((ROOT / "datasets" / "ditree").rglob("*.npz")):     # demos files the project ships
        assert load_demos(shipped)["states"].shape[1] == 5
