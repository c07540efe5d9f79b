"""Inputs the scattering commands cannot use are refused before any work, naming the field and the file: evaluation
conditions beyond the trained range (they simulated MC walks first, or hung), walk chunks with conditions out of
range (the error named no file); and a render's noise estimate at 1 path per pixel is NaN, not 0."""
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from sciflow.cli import main
from sciflow.core.errors import InputError
from sciflow.core.random import make_generator
from sciflow.data.scattering import _KEYS, load_walk_dataset, save_walks
from sciflow.domains.photons.scene import make_scene
from sciflow.domains.photons.volpath import RenderResult, VolumePathTracer
from sciflow.methods.scattering import ScatteringCVAEs, metrics

VECTOR = ("exit_pos", "exit_dir", "scatter_pos", "scatter_dir")


# -- 3. evaluation beyond the trained range --------------------------------------------------------------------
@pytest.fixture
def no_walks(monkeypatch):
    def simulate_sets(*a, **k):
        raise AssertionError("MC walks simulated before the conditions were checked")
    monkeypatch.setattr(metrics, "simulate_sets", simulate_sets)


@pytest.mark.parametrize("sigma_r", [900.0, 1e6])
def test_evaluate_refuses_sigma_r_beyond_the_trained_range_before_simulating(no_walks, sigma_r):
    model = ScatteringCVAEs()
    with pytest.raises(InputError, match=r"sigma_r: the CVAEs were trained on sigma_r <= 300"):
        metrics.evaluate_grid(model, n_walks=10, sigma_r=[4.0, sigma_r], g=[0.5], progress=False)
    with pytest.raises(InputError, match=r"sigma_r: the CVAEs were trained on sigma_r <= 300"):
        metrics.evaluate_condition(model, sigma_r, 0.5, n_walks=10, seed=0)
    with pytest.raises(InputError, match=r"g: anisotropy must satisfy \|g\| < 1"):
        metrics.evaluate_grid(model, n_walks=10, sigma_r=[4.0], g=[1.5], progress=False)


def test_evaluate_command_refuses_sigma_r_beyond_the_trained_range(no_walks, tmp_path, capsys):
    model = tmp_path / "m"
    ScatteringCVAEs().save(model)
    out = tmp_path / "e.json"
    assert main(["scattering", "evaluate", "--model", str(model), "--walks", "10", "--sigma-r", "900", "--g", "0.5",
                 "--out", str(out)]) == 2
    assert "sigma_r: the CVAEs were trained on sigma_r <= 300" in capsys.readouterr().err and not out.exists()


# -- 8. the noise estimate at one path per pixel ------------------------------------------------------------------
def test_one_path_per_pixel_reports_an_unknown_standard_error():
    res = VolumePathTracer(make_scene("sphere", sigma_r=4.0, width=3, height=3)).render(
        1, generator=make_generator(0), progress=False)
    assert (res.samples_per_pixel == 1).all()
    assert np.isnan(res.path_variance).all() and np.isnan(res.std_error).all()
    assert math.isnan(res.summary()["relative_std_error"])
    # given a variance image, a pixel of one path has no standard error; pixels of two or more do
    r = RenderResult(np.ones((1, 2)), np.array([[1, 4]]), 0.0, 5, 0, path_variance=np.array([[0.0, 4.0]]))
    assert np.isnan(r.std_error[0, 0]) and r.std_error[0, 1] == 1.0
    assert math.isnan(r.summary()["relative_std_error"])
    r2 = RenderResult(np.ones((1, 2)), np.array([[2, 4]]), 0.0, 6, 0, path_variance=np.array([[2.0, 4.0]]))
    assert r2.summary()["relative_std_error"] == 1.0


# -- 9. a walk chunk with conditions out of range: name the file ----------------------------------------------------
def test_a_walk_chunk_with_g_out_of_range_is_refused_naming_the_file(tmp_path, capsys):
    rng = np.random.default_rng(0)
    w = {k: torch.from_numpy(rng.random((4, 3)) if k in VECTOR else rng.random(4)).float() for k in _KEYS}
    w["n_events"] = torch.ones(4, dtype=torch.long)
    w["scatter_index"] = torch.ones(4, dtype=torch.long)
    for k in ("exit_pos", "exit_dir", "scatter_dir"):                   # unit vectors, as a walk makes them
        w[k] = torch.nn.functional.normalize(w[k] - 0.5, dim=1)
    w["scatter_pos"] = 0.5 * w["scatter_pos"]
    w["g"][0] = 1.5
    bad = save_walks(tmp_path / "badg.npz", w)
    with pytest.raises(InputError, match=rf"walks: {re.escape(str(bad))} field 'g': .*\|g\| < 1, got 1.5"):
        load_walk_dataset(bad)
    assert main(["scattering", "train", "--data", str(bad), "--out", str(tmp_path / "m"), "--steps", "1"]) == 2
    assert str(bad) in capsys.readouterr().err and not (tmp_path / "m").exists()


@pytest.mark.parametrize("field, row, value, match", [
    ("n_events", 0, -3, r"'n_events' must be a whole number >= 1, got -3"),
    ("scatter_index", 3, 10**6, r"'scatter_index' must be a whole number in 1\.\.n_events, got 1000000"),
    ("exit_pos", 2, [5.0, 5.0, 5.0], r"'exit_pos' must be on the unit sphere"),
    ("scatter_pos", 1, [0.0, 0.0, 2.0], r"'scatter_pos' must be inside the unit sphere"),
])
def test_walk_records_that_no_walk_makes_are_refused_naming_file_and_field(tmp_path, field, row, value, match):
    src = Path(__file__).resolve().parents[2] / "datasets" / "scattering" / "walks_subset.npz"
    data = dict(np.load(src))
    data[field] = data[field].copy()
    data[field][row] = value
    np.savez(tmp_path / "bad.npz", **data)
    with pytest.raises(InputError, match=rf"bad\.npz field {match}"):
        load_walk_dataset(tmp_path / "bad.npz")


def test_a_missing_walk_path_is_named_and_partial_reads_past_a_damaged_manifest(tmp_path):
    import shutil

    with pytest.raises(InputError, match=r"no such file or folder: .*typo\.npz"):
        load_walk_dataset(tmp_path / "typo.npz")
    src = Path(__file__).resolve().parents[2] / "datasets" / "scattering" / "walks_subset.npz"
    (tmp_path / "w").mkdir()
    shutil.copy(src, tmp_path / "w" / "chunk_00000.npz")
    (tmp_path / "w" / "manifest.json").write_text("{bad")
    with pytest.raises(InputError, match=r"manifest\.json is damaged .*--partial"):
        load_walk_dataset(tmp_path / "w")
    assert load_walk_dataset(tmp_path / "w", partial=True)["g"].shape[0] == 2000
