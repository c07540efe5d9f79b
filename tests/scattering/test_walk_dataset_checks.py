"""A walk dataset is loaded only whole and consistent: a missing chunk, an interrupted run, a chunk whose fields
disagree in length and NaN values are refused naming the folder or file and the field (principle 11)."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from sciflow.core.errors import InputError
from sciflow.data import scattering
from sciflow.data.scattering import _KEYS, generate_walk_dataset, load_walk_dataset, load_walks, save_walks

ROOT = Path(__file__).resolve().parents[2]
VECTOR = ("exit_pos", "exit_dir", "scatter_pos", "scatter_dir")


def _walks(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    d = {k: rng.random((n, 3)).astype(np.float32) if k in VECTOR else rng.random(n).astype(np.float32)
         for k in _KEYS}
    for k in ("exit_pos", "exit_dir", "scatter_dir"):                       # unit vectors, as a walk makes them
        d[k] = (d[k] - 0.5) / np.linalg.norm(d[k] - 0.5, axis=1, keepdims=True)
    d["scatter_pos"] = 0.5 * d["scatter_pos"]                                # inside the unit sphere
    d["n_events"] = rng.integers(1, 5, n)
    d["scatter_index"] = np.ones(n, dtype=np.int64)
    return d


def _folder(path: Path, sizes=(10, 10, 10), **manifest) -> Path:
    path.mkdir()
    for i, n in enumerate(sizes):
        save_walks(path / f"chunk_{i:05d}.npz", {k: torch.from_numpy(v) for k, v in _walks(n, i).items()})
    m = {"n_walks": sum(sizes), "chunk": sizes[0], "n_chunks": len(sizes), "complete": True, **manifest}
    (path / "manifest.json").write_text(json.dumps({k: v for k, v in m.items() if v is not None}))
    return path


def test_a_chunk_missing_from_the_manifest_is_refused(tmp_path):
    """With chunk_00001 deleted the loader gave 20 walks of a 30-walk dataset without a word."""
    d = _folder(tmp_path / "w")
    assert load_walk_dataset(d)["g"].shape[0] == 30
    (d / "chunk_00001.npz").unlink()
    with pytest.raises(InputError, match=r"dataset: .*w lacks chunk_00001\.npz of the 3 chunks \(30 walks\)"):
        load_walk_dataset(d)


def test_a_chunk_with_another_walk_count_than_the_manifest_is_refused(tmp_path):
    d = _folder(tmp_path / "w", sizes=(10, 10, 5), n_walks=30, complete=None)     # an old manifest: no 'complete'
    with pytest.raises(InputError, match=r"chunk_00002\.npz holds 5 walks, .*manifest\.json expects 10"):
        load_walk_dataset(d)


def test_an_interrupted_run_is_refused_unless_partial_data_is_asked_for(tmp_path, monkeypatch):
    """An interrupted first run (no finished manifest) loaded whatever chunks it had left."""
    out = tmp_path / "w"
    real, calls = scattering.save_walks, []

    def save_then_stop(path, walks):
        if calls:
            raise KeyboardInterrupt
        calls.append(path)
        return real(path, walks)

    monkeypatch.setattr(scattering, "simulate_walks", lambda s, g, a, **kw: {
        **{k: torch.from_numpy(v) for k, v in _walks(s.shape[0]).items()}, "sigma_r": s, "g": g, "albedo": a})
    monkeypatch.setattr(scattering, "save_walks", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        generate_walk_dataset(out, 30, chunk=10, sigma_max=3.0, show_progress=False)
    assert json.loads((out / "manifest.json").read_text())["complete"] is False
    with pytest.raises(InputError, match=r"dataset: .*w holds an unfinished run \(manifest\.json: 30 walks, "
                                         r"complete=false\).*1 chunk file"):
        load_walk_dataset(out)
    assert load_walk_dataset(out, partial=True)["g"].shape[0] == 10
    assert load_walk_dataset(out / "chunk_00000.npz")["g"].shape[0] == 10      # chunk files given: loaded as given
    (out / "manifest.json").unlink()
    with pytest.raises(InputError, match=r"dataset: .*w has no manifest\.json: its generation was interrupted"):
        load_walk_dataset(out)
    monkeypatch.setattr(scattering, "save_walks", real)                       # resumed, it loads whole
    m = generate_walk_dataset(out, 30, chunk=10, sigma_max=3.0, show_progress=False)
    assert m["complete"] is True and load_walk_dataset(out)["g"].shape[0] == 30


def test_a_chunk_whose_fields_differ_in_length_is_refused_naming_the_field(tmp_path):
    """A chunk whose 'g' had 15 rows and every other field 20 loaded, then failed in PhotonAdapter.encode."""
    d = _folder(tmp_path / "w", sizes=(20,))
    z = dict(np.load(d / "chunk_00000.npz"))
    np.savez(d / "chunk_00000.npz", **{**z, "g": z["g"][:15]})
    for load in (load_walks, load_walk_dataset):
        with pytest.raises(InputError, match=r"walks: .*chunk_00000\.npz field 'g' has shape \(15,\), expected "
                                             r"\(20,\)"):
            load(d / "chunk_00000.npz" if load is load_walks else d)
    np.savez(d / "chunk_00000.npz", **{**z, "exit_pos": z["exit_pos"][:, :2]})
    with pytest.raises(InputError, match=r"field 'exit_pos' has shape \(20, 2\), expected \(20, 3\)"):
        load_walk_dataset(d)


@pytest.mark.parametrize("field", ["exit_pos", "sigma_r"])
def test_nan_or_inf_in_a_chunk_is_refused_naming_the_field_and_walk(tmp_path, field):
    d = _folder(tmp_path / "w", sizes=(20,))
    z = dict(np.load(d / "chunk_00000.npz"))
    z[field] = z[field].copy()
    z[field][7] = np.nan if field == "exit_pos" else np.inf
    np.savez(d / "chunk_00000.npz", **z)
    with pytest.raises(InputError, match=rf"chunk_00000\.npz field '{field}' holds a non-finite value .* walk 7"):
        load_walk_dataset(d)


def test_good_data_still_loads(tmp_path):
    walks = load_walks(ROOT / "datasets" / "scattering" / "walks_subset.npz")
    assert walks["exit_pos"].shape == (2000, 3)
    d = _folder(tmp_path / "w", sizes=(10, 10, 4), complete=None)       # a manifest written before 'complete'
    both = load_walk_dataset([d, ROOT / "datasets" / "scattering" / "walks_subset.npz"], max_walks=30)
    assert both["g"].shape[0] == 30 and both["scatter_dir"].shape == (30, 3)


def test_the_cli_trains_on_a_stopped_walk_folder_only_with_partial(tmp_path, capsys):
    """`sciflow scattering train` refuses a folder whose generation was stopped, naming it; `--partial` reads the
    chunks it holds (the only way from the command line besides listing the chunk files)."""
    from sciflow.cli import main
    walks = load_walks(ROOT / "datasets" / "scattering" / "walks_subset.npz")
    stopped = tmp_path / "stopped"
    stopped.mkdir()
    for i in range(2):                                    # chunks written, the run stopped before its manifest
        save_walks(stopped / f"chunk_{i:05d}.npz", {k: v[100 * i:100 * (i + 1)] for k, v in walks.items()})
    args = ["scattering", "train", "--data", str(stopped), "--out", str(tmp_path / "m"), "--steps", "1",
            "--batch-size", "16", "--threads", "1"]
    assert main(args) != 0
    assert "has no manifest.json" in capsys.readouterr().err
    assert main([*args, "--partial"]) == 0
    assert json.loads(capsys.readouterr().out)["n_walks"] == 200
