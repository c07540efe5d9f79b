"""A tiny real RAMD run (benzene-toluene host-guest in OBC2, a few ps) and the generator's input checks."""
from __future__ import annotations

import json

import numpy as np
import pytest

from sciflow.core.errors import InputError
from sciflow.data.dissociation import read_h5
from sciflow.data.ramd import ComplexSource, RAMDSettings, generate_replicas, host_guest_sources, load_events

pytest.importorskip("openmm")


def test_strong_ramd_dissociates_and_resumes(tmp_path):
    src = host_guest_sources()["benzene-toluene"]
    s = RAMDSettings(force=10.0, friction=25.0, timestep_fs=2.0, exit_distance=9.0, max_time_ps=15.0,
                     equilibration_ps=0.2, save_every_ps=0.1, check_every_ps=0.5, min_displacement=0.3)
    summary = generate_replicas(src, s, 2, tmp_path, show_progress=False)
    assert summary["replicas"] == 2 and summary["events"] == 2          # a 10 kcal/mol/Å push separates the dimer
    for p in sorted((tmp_path / "benzene-toluene").glob("r*.h5")):
        (t,) = read_h5(p)
        stats = json.loads(p.with_suffix(".json").read_text())
        lig = t.topology.is_ligand
        assert lig.sum() == 15 and (~lig).sum() == 12                  # toluene leaves benzene
        m = t.topology.masses[lig]
        com = (t.positions[:, lig] * m[:, None]).sum(1) / m.sum()
        d = np.linalg.norm(com - t.positions[:, ~lig].mean(1), axis=1)
        assert d[-1] >= 9.0 - 0.05 and d[0] < 7.0                        # ends out, started bound
        spacing = np.diff(t.times)[:-1]
        np.testing.assert_allclose(spacing, 0.1, atol=1e-9)             # every k-th step saved
        assert stats["exited"] and t.times[-1] == pytest.approx(stats["exit_time_ps"])
        assert np.isfinite(t.energy).all()
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "benzene-toluene").iterdir()}
    again = generate_replicas(src, s, 2, tmp_path, show_progress=False)          # resumes: nothing re-run
    assert again["events"] == 2
    assert before == {p.name: p.stat().st_mtime_ns for p in (tmp_path / "benzene-toluene").iterdir()}
    assert len(load_events(tmp_path)) == 2


def test_generator_rejects_bad_input(tmp_path):
    hg = host_guest_sources()
    with pytest.raises(InputError, match="force"):
        RAMDSettings(force=-1.0)
    with pytest.raises(InputError, match="implicit_solvent"):
        RAMDSettings(implicit_solvent="water")
    bad = ComplexSource("mix", hg["cb7-b2"].prmtop, hg["benzene-toluene"].coordinates, "B2")
    with pytest.raises(InputError, match="mismatched topology and coordinates"):
        generate_replicas(bad, RAMDSettings(), 1, tmp_path, show_progress=False)
    nolig = ComplexSource("nolig", hg["benzene-toluene"].prmtop, hg["benzene-toluene"].coordinates, "XYZ")
    with pytest.raises(InputError, match="ligand not found"):
        generate_replicas(nolig, RAMDSettings(), 1, tmp_path, show_progress=False)
    with pytest.raises(InputError, match="prmtop"):
        generate_replicas(ComplexSource("x", str(tmp_path / "no.prmtop"), "no.crd", "L"), RAMDSettings(), 1,
                          tmp_path, show_progress=False)
