"""``sciflow export IN OUT`` converts between formats end to end."""
import numpy as np
import pytest
import torch

from sciflow.cli import main
from sciflow.io import read_trajectory, write_trajectory


def test_export_chain_npz_xyz_pdb_dcd_npz(tmp_path, molecule, capsys):
    src = write_trajectory(tmp_path / "a.npz", molecule)
    assert main(["export", str(src), str(tmp_path / "b.xyz")]) == 0
    assert "5 frames, 6 rows" in capsys.readouterr().out
    assert main(["export", str(tmp_path / "b.xyz"), str(tmp_path / "c.pdb")]) == 0
    assert main(["export", str(tmp_path / "c.pdb"), str(tmp_path / "d.dcd"), "--top", str(tmp_path / "c.pdb")]) == 0
    assert main(["export", str(tmp_path / "d.dcd"), str(tmp_path / "e.npz"), "--top", str(tmp_path / "c.pdb")]) == 0
    assert main(["export", str(tmp_path / "e.npz"), str(tmp_path / "f.csv")]) == 0
    xyz, pdb, end = (read_trajectory(tmp_path / n) for n in ("b.xyz", "c.pdb", "e.npz"))
    torch.testing.assert_close(xyz.step_extras["energy"], molecule.step_extras["energy"], atol=1e-6, rtol=0)
    torch.testing.assert_close(pdb.times, molecule.times)               # times ride in the PDB remarks
    torch.testing.assert_close(end.states, molecule.states, atol=6e-4, rtol=0)
    assert torch.equal(end.extras["atomic_numbers"], molecule.extras["atomic_numbers"])
    assert read_trajectory(tmp_path / "f.csv").states.shape == (5, 6, 3)


def test_export_errors_exit_with_code_2_and_a_message(tmp_path, molecule, capsys):
    src = write_trajectory(tmp_path / "a.npz", molecule)
    assert main(["export", str(src), str(tmp_path / "b.mol2")]) == 2
    err = capsys.readouterr().err
    assert "suffix '.mol2'" in err and "a.npz:" not in err             # the output's fault, not the input's
    dcd = write_trajectory(tmp_path / "a.dcd", molecule)
    assert main(["export", str(dcd), str(tmp_path / "b.xyz")]) == 2
    assert "top: reading" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "absent.xyz"), str(tmp_path / "b.npz")]) == 2
    assert not (tmp_path / "b.npz").exists() and not (tmp_path / "b.xyz").exists()
    # a NaN the writer finds: the input file is named
    arrays = dict(np.load(src, allow_pickle=False))
    key = next(k for k in arrays if k.endswith("states"))
    arrays[key] = arrays[key].copy()
    arrays[key].reshape(-1)[0] = np.nan
    np.savez(tmp_path / "nan.npz", **arrays)
    assert main(["export", str(tmp_path / "nan.npz"), str(tmp_path / "c.xyz")]) == 2
    err = capsys.readouterr().err
    assert "nan.npz" in err and "non-finite" in err and not (tmp_path / "c.xyz").exists()


@pytest.mark.parametrize("comment, kept", [
    ("SCF Done:  E(RB3LYP) =  -76.4089 A.U.", {}),                       # Gaussian: not a key the writer can write
    ("forces=0.1 my-key=3 ok_key=4.5 free_energy=-1.5", {"ok_key": 4.5, "free_energy": -1.5}),   # reserved names
])
def test_export_writes_back_xyz_comments_its_reader_accepts(tmp_path, comment, kept, capsys):
    src = tmp_path / "in.xyz"
    src.write_text(f"3\n{comment}\nO 0 0 0\nH 0.96 0 0\nH -0.24 0.93 0\n")
    first = read_trajectory(src)
    assert {k: v.item() for k, v in first.step_extras.items()} == pytest.approx(kept)
    assert first.info["comments"] == [comment]
    assert main(["export", str(src), str(tmp_path / "out.xyz")]) == 0, capsys.readouterr().err
    back = read_trajectory(tmp_path / "out.xyz")
    assert back.info["comments"] == [comment]
    assert {k: v.item() for k, v in back.step_extras.items()} == pytest.approx(kept)
    torch.testing.assert_close(back.states, first.states)
