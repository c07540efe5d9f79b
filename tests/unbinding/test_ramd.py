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
        # every receptor heavy atom at the bound pose is stored for clash tests (here benzene's six carbons)
        heavy = t.topology.elements[~lig] != "H"
        np.testing.assert_allclose(np.sort(t.receptor_heavy, axis=0), np.sort(t.positions[0, ~lig][heavy], axis=0),
                                   atol=1e-4)
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "benzene-toluene").iterdir()}
    again = generate_replicas(src, s, 2, tmp_path, show_progress=False)          # resumes: nothing re-run
    assert again["events"] == 2
    assert before == {p.name: p.stat().st_mtime_ns for p in (tmp_path / "benzene-toluene").iterdir()}
    assert len(load_events(tmp_path)) == 2
    # the folder records what made it: other settings or another seed are refused before any work
    from dataclasses import replace
    for kw, name in (({"settings": replace(s, force=11.0)}, "force"), ({"seed": 5}, "seed")):
        with pytest.raises(InputError, match=f"other settings.*{name}"):
            generate_replicas(src, kw.get("settings", s), 3, tmp_path, seed=kw.get("seed", 0), show_progress=False)
    assert sorted(p.name for p in (tmp_path / "benzene-toluene").glob("r*.h5")) == ["r00000.h5", "r00001.h5"]
    generate_replicas(src, replace(s, threads=2), 2, tmp_path, show_progress=False)    # threads change no result


def test_generator_rejects_bad_input(tmp_path):
    hg = host_guest_sources()
    with pytest.raises(InputError, match="force"):
        RAMDSettings(force=-1.0)
    with pytest.raises(InputError, match="implicit_solvent"):
        RAMDSettings(implicit_solvent="water")
    for kw, name in (({"min_displacement": -1.0}, "min_displacement"), ({"min_displacement": float("nan")},
                     "min_displacement"), ({"hydrogen_mass": -1.0}, "hydrogen_mass"), ({"threads": 0}, "threads"),
                     ({"platform": "cuda"}, "platform"), ({"hydrogen_mass": None}, "timestep_fs"),
                     ({"check_every_ps": 0.003}, "check_every_ps"), ({"save_every_ps": 0.001}, "save_every_ps")):
        with pytest.raises(InputError, match=name):
            RAMDSettings(**kw)
    RAMDSettings(hydrogen_mass=None, timestep_fs=2.0)                 # no repartitioning at 2 fs is fine
    from sciflow.data.ramd import RAMDSimulation
    with pytest.raises(InputError, match="exit_distance.*already at or beyond"):
        RAMDSimulation(hg["benzene-toluene"], RAMDSettings(exit_distance=0.5))
    bad = ComplexSource("mix", hg["cb7-b2"].prmtop, hg["benzene-toluene"].coordinates, "B2")
    with pytest.raises(InputError, match="mismatched topology and coordinates"):
        generate_replicas(bad, RAMDSettings(), 1, tmp_path, show_progress=False)
    nolig = ComplexSource("nolig", hg["benzene-toluene"].prmtop, hg["benzene-toluene"].coordinates, "XYZ")
    with pytest.raises(InputError, match="ligand not found"):
        generate_replicas(nolig, RAMDSettings(), 1, tmp_path, show_progress=False)
    with pytest.raises(InputError, match="prmtop"):
        generate_replicas(ComplexSource("x", str(tmp_path / "no.prmtop"), "no.crd", "L"), RAMDSettings(), 1,
                          tmp_path, show_progress=False)


def test_threading_into_a_host_is_a_proper_rotation():
    """The ligand's long axis goes onto the host's symmetry axis and its centroid onto the host's, by a rotation:
    distances and handedness are kept also when the two axes (as eigenvectors) come out antiparallel, where a
    reflection would mirror a chiral ligand."""
    from sciflow.data.ramd import thread_into_host
    ang = np.linspace(0, 2 * np.pi, 12, endpoint=False)
    chiral = np.array([[0.0, 0.0, -3.0], [0.0, 0.0, 3.0], [0.5, 0.0, 0.0], [0.0, 0.3, 0.0]])
    vol = lambda x: np.linalg.det(x[1:4] - x[0])
    cosines = []
    for tilt in (1e-6, -1e-6):
        host = np.stack([4 * np.cos(ang), 4 * np.sin(ang), tilt * np.cos(ang)], 1)
        for turn in ([1, 1, 1], [-1, 1, -1], [1, -1, -1], [-1, -1, 1]):            # 180° turns keep handedness
            lig = chiral * turn + [20.0, 0.0, 0.0]
            lv = np.linalg.eigh(np.cov((lig - lig.mean(0)).T))[1][:, -1]
            cosines.append(float(lv @ np.linalg.eigh(np.cov(host.T))[1][:, 0]))
            is_lig = np.r_[np.ones(4, bool), np.zeros(12, bool)]
            out = thread_into_host(np.concatenate([lig, host]), is_lig)[is_lig]
            np.testing.assert_allclose(out.mean(0), host.mean(0), atol=1e-9)
            np.testing.assert_allclose(np.linalg.norm(out[:, None] - out[None], axis=-1),
                                       np.linalg.norm(lig[:, None] - lig[None], axis=-1), atol=1e-9)
            assert np.sign(vol(out)) == np.sign(vol(lig))
            axis = np.linalg.eigh(np.cov((out - out.mean(0)).T))[1][:, -1]          # its longest principal axis
            assert abs(abs(axis[2]) - 1.0) < 1e-9                                   # on the host axis (z)
    assert min(cosines) < -0.999                           # the antiparallel case (c = -1) was met


def test_redraw_rule_measures_the_ligand_receptor_separation_not_the_lab_frame():
    from sciflow.data.ramd import separation, separation_change
    is_lig = np.array([True, True, False, False, False])
    masses = np.array([12.0, 16.0, 12.0, 12.0, 14.0])
    before = np.array([[0.0, 0.0, 0.0], [1.2, 0.0, 0.0], [5.0, 0.0, 0.0], [5.0, 1.0, 0.0], [5.0, 0.0, 1.0]])
    after = before.copy()
    after[~is_lig] += [0.0, 0.0, 0.8]           # the receptor moves 0.8 Å, the ligand stays put in the lab
    assert separation_change(before, after, is_lig, masses) == pytest.approx(0.8)   # lab-frame COM move: 0
    both = before + [0.3, -2.0, 1.0]            # the whole complex drifts: the separation does not change
    assert separation_change(before, both, is_lig, masses) == pytest.approx(0.0, abs=1e-12)
    com_l = (before[:2] * masses[:2, None]).sum(0) / 28.0
    com_r = (before[2:] * masses[2:, None]).sum(0) / 38.0
    np.testing.assert_allclose(separation(before, is_lig, masses), com_l - com_r)
