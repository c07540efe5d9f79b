"""Real dissociation trajectories from OpenMM: random-acceleration MD (RAMD) in implicit solvent.

RAMD (Lüdemann, Lounnas & Wade, J. Mol. Biol. 2000; tauRAMD, Kokh et al., JCTC 2018): a force of constant
magnitude pushes the ligand's centre of mass along a random direction; every ``check_every_ps`` the ligand's
displacement is measured and, when it moved less than ``min_displacement`` Å, a new direction is drawn. Here the
push acts between the ligand COM and the receptor COM (equal and opposite forces), so the complex does not drift
and a small host is not simply dragged along; the displacement tested is therefore the change of the separation
COM_ligand - COM_receptor (``separation_change``), not the ligand's lab-frame move. (Data made before this rule,
including the shipped data set, tested the ligand's lab-frame COM move, which for a light receptor is only part
of the separation change.) A replica stops once the ligand COM is ``exit_distance`` Å from the
pocket centroid, or at ``max_time_ps`` (then it is recorded as not exited and not used for training).

Every replica writes its own HDF5 file atomically (``sciflow.data.dissociation`` layout), then its statistics
record ``r<index>.json`` (which marks it done); a finished replica is never run again, so an interrupted run
resumes. A record that cannot be read (damaged JSON, missing fields) or whose HDF5 file is gone marks no finished
replica: a resumed run warns and redoes it, replacing both files atomically, while ``summarize`` and
``load_events`` refuse it with an ``InputError`` naming the file. OpenMM is imported inside the functions.
"""
from __future__ import annotations

import importlib.util
import json
import math
import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..core.errors import InputError, check_in_range
from ..core.files import atomic_write_json, keep_settings
from ..core.random import make_generator, randn
from ..core.training import progress
from ..domains.molecules.complexes import ComplexTopology, pocket_indices
from .dissociation import DissociationTrajectory, read_h5, write_h5

__all__ = [
    "ComplexSource",
    "RAMDSettings",
    "RAMDSimulation",
    "generate_replicas",
    "host_guest_sources",
    "openmmtools_data_dir",
    "separation",
    "separation_change",
    "t4l_source",
]

KCAL_PER_A_TO_KJ_PER_NM = 4.184 * 10.0


@dataclass
class RAMDSettings:
    """Simulation settings (units in the names: Å, ps, fs, K, kcal/mol/Å, 1/ps)."""

    force: float = 4.0                     # kcal/mol/Å on the ligand COM (minus the same on the receptor COM)
    friction: float = 25.0                 # 1/ps, Langevin collision rate (about water's Stokes friction here)
    temperature: float = 300.0             # K
    timestep_fs: float = 4.0               # > 2.5 fs needs hydrogen_mass (hydrogen mass repartitioning)
    hydrogen_mass: float | None = 3.0      # amu; None keeps the force field's masses
    implicit_solvent: str = "OBC2"         # OBC1 | OBC2 | GBn | GBn2 | HCT | none
    check_every_ps: float = 1.0            # RAMD evaluation interval
    min_displacement: float = 0.4          # Å the ligand-receptor COM separation must change per interval
    exit_distance: float = 12.0            # Å, ligand COM to pocket centroid at which a replica stops
    save_every_ps: float = 0.2             # frame spacing of the saved trajectory
    max_time_ps: float = 200.0
    equilibration_ps: float = 2.0          # unbiased MD before the push (varies the bound pose)
    pocket_cutoff: float | None = None     # Å; None keeps every receptor atom (host-guest)
    platform: str = "CPU"                  # CPU | CUDA | OpenCL | Reference
    threads: int = 1                       # CPU platform threads

    def __post_init__(self) -> None:
        check_in_range("force", self.force, 0.0, low_open=True)
        check_in_range("friction", self.friction, 0.0)
        check_in_range("temperature", self.temperature, 0.0, low_open=True)
        check_in_range("timestep_fs", self.timestep_fs, 0.0, 5.0, low_open=True)
        check_in_range("check_every_ps", self.check_every_ps, 0.0, low_open=True)
        check_in_range("save_every_ps", self.save_every_ps, 0.0, low_open=True)
        check_in_range("exit_distance", self.exit_distance, 0.0, low_open=True)
        check_in_range("max_time_ps", self.max_time_ps, 0.0, low_open=True)
        check_in_range("equilibration_ps", self.equilibration_ps, 0.0)
        check_in_range("min_displacement", self.min_displacement, 0.0)
        if self.hydrogen_mass is not None:
            check_in_range("hydrogen_mass", self.hydrogen_mass, 0.0, low_open=True)
        elif self.timestep_fs > 2.5:
            raise InputError(f"timestep_fs: {self.timestep_fs} fs with constrained H bonds needs hydrogen_mass "
                             "(e.g. 3.0 amu, hydrogen mass repartitioning); use <= 2.5 fs without it")
        for name in ("check_every_ps", "save_every_ps"):
            k = getattr(self, name) * 1000.0 / self.timestep_fs
            if round(k) < 1 or abs(k - round(k)) > 1e-6 * max(1.0, k):
                raise InputError(f"{name}: {getattr(self, name)} ps is not a whole number of {self.timestep_fs} fs "
                                 "timesteps")
        if self.platform not in ("CPU", "CUDA", "OpenCL", "Reference"):
            raise InputError(f"platform: expected CPU, CUDA, OpenCL or Reference, got {self.platform!r}")
        if isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 1:
            raise InputError(f"threads: expected an integer >= 1, got {self.threads!r}")
        if self.implicit_solvent not in ("OBC1", "OBC2", "GBn", "GBn2", "HCT", "none"):
            raise InputError(f"implicit_solvent: expected OBC1, OBC2, GBn, GBn2, HCT or none, "
                             f"got {self.implicit_solvent!r}")
        if self.pocket_cutoff is not None:
            check_in_range("pocket_cutoff", self.pocket_cutoff, 0.0, low_open=True)

    def steps(self, ps: float) -> int:
        return max(1, round(ps * 1000.0 / self.timestep_fs))


def separation(pos: np.ndarray, is_ligand: np.ndarray, masses: np.ndarray) -> np.ndarray:
    """(3,) COM of the ligand minus COM of the receptor (every other atom, mass-weighted as the push's groups)."""
    lig = np.asarray(is_ligand, dtype=bool)
    m = np.asarray(masses, dtype=np.float64)
    p = np.asarray(pos, dtype=np.float64)
    return (p[lig] * m[lig, None]).sum(0) / m[lig].sum() - (p[~lig] * m[~lig, None]).sum(0) / m[~lig].sum()


def separation_change(before: np.ndarray, after: np.ndarray, is_ligand: np.ndarray, masses: np.ndarray) -> float:
    """Å the ligand-receptor separation vector moved between two frames (n, 3): what RAMD's redraw rule tests,
    since the random force pushes the ligand away from the receptor, not through the lab frame."""
    return float(np.linalg.norm(separation(after, is_ligand, masses) - separation(before, is_ligand, masses)))


@dataclass
class ComplexSource:
    """An AMBER complex: ``prmtop`` + coordinates (``inpcrd``/``crd``); ligand = atoms of residue ``ligand``."""

    name: str
    prmtop: str
    coordinates: str
    ligand: str
    info: dict[str, Any] = field(default_factory=dict)
    #: "as_is" keeps the coordinates; "host_axis" threads the ligand into a ring-shaped host first (its
    #: longest axis along the host's symmetry axis, its centre on the host centre), for inputs that ship the
    #: guest outside its host.
    placement: str = "as_is"


def thread_into_host(pos: np.ndarray, is_ligand: np.ndarray) -> np.ndarray:
    """Move the ligand rigidly so that its longest principal axis lies on the host's symmetry axis (the
    principal axis of least spread of a ring-shaped host) and its centroid on the host centroid."""
    lig, host = pos[is_ligand], pos[~is_ligand]
    lc, hc = lig.mean(0), host.mean(0)
    _, lv = np.linalg.eigh(np.cov((lig - lc).T))
    _, hv = np.linalg.eigh(np.cov((host - hc).T))
    a, b = lv[:, -1], hv[:, 0]                                   # ligand long axis, host symmetry axis
    if float(a @ b) < 0:                                         # an axis has no sign: turn by at most 90°
        a = -a
    v, c = np.cross(a, b), float(a @ b)
    vx = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    rot = np.eye(3) + vx + vx @ vx / (1 + c)                     # a proper rotation taking a onto b (c >= 0)
    out = pos.copy()
    out[is_ligand] = (lig - lc) @ rot.T + hc
    return out


def openmmtools_data_dir() -> Path:
    """The ``openmmtools/data`` folder of the installed package (found without importing openmmtools)."""
    spec = importlib.util.find_spec("openmmtools")
    if spec is None or not spec.submodule_search_locations:
        raise InputError("openmmtools: package not installed (pip install openmmtools) - it ships the inputs")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def host_guest_sources() -> dict[str, ComplexSource]:
    """The host-guest complexes shipped inside openmmtools (MIT): vacuum prmtops, run here in implicit solvent."""
    d = openmmtools_data_dir()
    lic = {"source": "openmmtools 0.27.0 (PyPI), MIT licence"}
    return {
        "cb7-b2": ComplexSource("cb7-b2", str(d / "cb7-b2/complex-vacuum.prmtop"),
                                str(d / "cb7-b2/complex-vacuum.inpcrd"), "B2", dict(lic, host="cucurbit[7]uril")),
        "cb7-viologen": ComplexSource("cb7-viologen", str(d / "cb7-viologen/leap/complex-vacuum.prmtop"),
                                      str(d / "cb7-viologen/leap/complex-vacuum.inpcrd"), "<0>",
                                      dict(lic, host="cucurbit[7]uril",
                                           note="guest shipped 18 A outside the host; threaded in here"),
                                      placement="host_axis"),
        "benzene-toluene": ComplexSource("benzene-toluene", str(d / "benzene-toluene-implicit/complex.prmtop"),
                                         str(d / "benzene-toluene-implicit/complex.inpcrd"), "TOL",
                                         dict(lic, host="benzene")),
    }


def t4l_source(folder: str | os.PathLike) -> ComplexSource:
    """T4 lysozyme L99A + p-xylene (resname TMP) from a folder holding complex.prmtop / complex.crd."""
    d = Path(folder)
    return ComplexSource("t4l-pxylene", str(d / "complex.prmtop"), str(d / "complex.crd"), "TMP",
                         {"source": "openmmtools 0.27.0 T4-lysozyme-L99A-implicit, MIT licence"})


class RAMDSimulation:
    """One complex prepared for RAMD replicas: the System is built once, each replica gets a fresh Context."""

    def __init__(self, source: ComplexSource, settings: RAMDSettings) -> None:
        import openmm as mm
        import openmm.unit as u
        from openmm import app

        for key in ("prmtop", "coordinates"):
            if not Path(getattr(source, key)).is_file():
                raise InputError(f"{key}: no file at {getattr(source, key)}")
        self.source, self.settings = source, settings
        prm = app.AmberPrmtopFile(source.prmtop)
        crd = app.AmberInpcrdFile(source.coordinates)
        atoms = list(prm.topology.atoms())
        pos = np.array(crd.getPositions(asNumpy=True).value_in_unit(u.angstrom))
        if pos.shape[0] != len(atoms):
            raise InputError(f"coordinates: {source.coordinates} has {pos.shape[0]} atoms, prmtop {len(atoms)} "
                             "(mismatched topology and coordinates)")
        is_lig = np.array([a.residue.name == source.ligand for a in atoms])
        if not is_lig.any():
            raise InputError(f"ligand: no residue named {source.ligand!r} in {source.prmtop} (ligand not found)")
        if source.placement == "host_axis":
            pos = thread_into_host(pos, is_lig)
        elif source.placement != "as_is":
            raise InputError(f"placement: expected 'as_is' or 'host_axis', got {source.placement!r}")
        elements = [a.element.symbol if a.element is not None else "X" for a in atoms]
        topo = ComplexTopology(elements, [a.name for a in atoms], [a.residue.name for a in atoms],
                               [a.residue.index + 1 for a in atoms], is_lig, source.name,
                               [str(a.residue.chain.index) for a in atoms])
        if settings.pocket_cutoff is None:
            keep = np.concatenate([topo.ligand_index, topo.pocket_index])
        else:
            keep = pocket_indices(topo, pos, settings.pocket_cutoff)
        self.topology_full, self.keep = topo, keep
        self.topology = topo.subset(keep)
        self.positions0 = pos
        solvent = {"OBC1": app.OBC1, "OBC2": app.OBC2, "GBn": app.GBn, "GBn2": app.GBn2, "HCT": app.HCT,
                   "none": None}[settings.implicit_solvent]
        kw: dict[str, Any] = {"nonbondedMethod": app.NoCutoff, "constraints": app.HBonds, "implicitSolvent": solvent}
        if settings.hydrogen_mass is not None:
            kw["hydrogenMass"] = settings.hydrogen_mass * u.amu
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")                       # "non-optimal GB parameters" for vacuum prmtops
            system = prm.createSystem(**kw)
        for f in system.getForces():
            f.setForceGroup(0)
        push = mm.CustomCentroidBondForce(2, "-F*(ex*(x1-x2)+ey*(y1-y2)+ez*(z1-z2))")
        for name in ("F", "ex", "ey", "ez"):
            push.addGlobalParameter(name, 0.0)
        push.addGroup([int(i) for i in topo.ligand_index])
        push.addGroup([int(i) for i in topo.pocket_index])
        push.addBond([0, 1], [])
        push.setForceGroup(1)
        system.addForce(push)
        self.system = system
        self.lig_idx = topo.ligand_index
        self.lig_mass = topo.masses[topo.is_ligand]
        # the push's groups are weighted by the System's masses (hydrogen mass repartitioning included)
        self.masses = np.array([system.getParticleMass(i).value_in_unit(u.dalton)
                                for i in range(system.getNumParticles())])
        self.pocket_heavy = np.intersect1d(keep[~topo.is_ligand[keep]], np.flatnonzero(topo.is_heavy))
        d0 = self.com_distance(pos)
        if d0 >= settings.exit_distance:
            raise InputError(f"exit_distance: the ligand of {source.name!r} starts {d0:.2f} Å from the pocket "
                             f"centroid, already at or beyond the exit distance {settings.exit_distance} Å")

    def _context(self, seed: int) -> tuple[Any, Any]:
        import openmm as mm
        import openmm.unit as u

        s = self.settings
        integ = mm.LangevinMiddleIntegrator(s.temperature * u.kelvin, s.friction / u.picosecond,
                                            s.timestep_fs * u.femtosecond)
        integ.setRandomNumberSeed(int(seed) % 2_000_000_000 + 1)
        plat = mm.Platform.getPlatformByName(s.platform)
        props = {"Threads": str(s.threads)} if s.platform == "CPU" else {}
        ctx = mm.Context(self.system, integ, plat, props)
        ctx.setPositions(self.positions0 / 10.0)
        return ctx, integ

    def com_distance(self, pos: np.ndarray) -> float:
        """Distance (Å) from the ligand COM to the pocket heavy-atom centroid of positions (n_all, 3) Å."""
        com = (pos[self.lig_idx] * self.lig_mass[:, None]).sum(0) / self.lig_mass.sum()
        return float(np.linalg.norm(com - pos[self.pocket_heavy].mean(0)))

    def run(self, seed: int) -> tuple[DissociationTrajectory, dict[str, Any]]:
        """One replica; returns the trajectory (ligand + pocket atoms) and its statistics."""
        import openmm as mm
        import openmm.unit as u

        s = self.settings
        start = time.perf_counter()
        g = make_generator(seed)
        ctx, integ = self._context(seed)
        mm.LocalEnergyMinimizer.minimize(ctx, 1.0, 1000)
        ctx.setVelocitiesToTemperature(s.temperature * u.kelvin, int(seed) % 2_000_000_000 + 1)
        if s.equilibration_ps > 0:
            integ.step(s.steps(s.equilibration_ps))

        def positions() -> np.ndarray:
            return ctx.getState(getPositions=True).getPositions(asNumpy=True).value_in_unit(u.angstrom)

        def energy() -> float:
            st = ctx.getState(getEnergy=True, groups={0})
            return st.getPotentialEnergy().value_in_unit(u.kilocalorie_per_mole)

        def new_direction() -> None:
            d = randn((3,), generator=g, dtype=torch.float64)
            d = (d / d.norm()).tolist()
            for name, v in zip(("ex", "ey", "ez"), d):
                ctx.setParameter(name, v)

        ctx.setParameter("F", s.force * KCAL_PER_A_TO_KJ_PER_NM)
        new_direction()
        n_check, n_save = s.steps(s.check_every_ps), s.steps(s.save_every_ps)
        max_steps = s.steps(s.max_time_ps)
        pos = positions()
        dist = self.com_distance(pos)
        lig = self.topology_full.is_ligand
        checked = separation(pos, lig, self.masses)     # the separation at the last redraw test
        frames, times, energies = [pos[self.keep]], [0.0], [energy()]
        rec = ~lig & self.topology_full.is_heavy      # every receptor heavy atom at the bound pose (clash tests)
        receptor = pos[rec].astype(np.float32)
        # a ligand that drifted out during the unbiased equilibration is no RAMD event (and a 1-frame path)
        start_distance, redraws, step, exited, left_early = dist, 0, 0, False, dist >= s.exit_distance
        next_save, next_check = n_save, n_check
        while not exited and not left_early and step < max_steps:
            target = min(next_save, next_check, max_steps)
            integ.step(target - step)
            step = target
            need_check, need_save = step >= next_check, step >= next_save
            if need_check:
                next_check += n_check
            pos = positions()
            dist = self.com_distance(pos)
            exited = dist >= s.exit_distance
            if need_save or exited:
                frames.append(pos[self.keep])
                times.append(step * s.timestep_fs / 1000.0)
                energies.append(energy())
                next_save = step + n_save
            if need_check:
                sep = separation(pos, lig, self.masses)   # separation_change(before, after), the previous one kept
                if float(np.linalg.norm(sep - checked)) < s.min_displacement:
                    new_direction()
                    redraws += 1
                checked = sep
        seconds = time.perf_counter() - start
        sim_ps = step * s.timestep_fs / 1000.0
        stats = {"seed": int(seed), "exited": bool(exited), "exit_time_ps": sim_ps if exited else None,
                 "simulated_ps": sim_ps + s.equilibration_ps, "wall_seconds": seconds,
                 "redraws": redraws, "start_distance_A": start_distance, "final_distance_A": dist,
                 "n_frames": len(frames), "platform": s.platform, "threads": s.threads,
                 "left_during_equilibration": bool(left_early)}
        info = {"generator": "sciflow.data.ramd", "settings": asdict(s), "stats": stats,
                "source": self.source.info}
        traj = DissociationTrajectory(f"{self.source.name}-r{int(seed):05d}", self.topology, np.stack(frames),
                                      np.array(times), np.array(energies), info, receptor,
                                      self.topology_full.elements[rec])
        return traj, stats


def generate_replicas(source: ComplexSource, settings: RAMDSettings, replicas: Sequence[int] | int,
                      out_dir: str | os.PathLike, *, seed: int = 0, resume: bool = True,
                      show_progress: bool = True) -> dict[str, Any]:
    """Run replicas (indices or a count) of one complex into ``out_dir/<complex>/r<index>.h5`` (+ ``.json`` stats);
    finished replicas are skipped. Returns totals (events, simulated ps, wall seconds, mean cost per event)."""
    idx = list(range(replicas)) if isinstance(replicas, int) else [int(i) for i in replicas]
    if not idx:
        raise InputError("replicas: need at least one replica")
    for key in ("prmtop", "coordinates"):         # before anything is written: see below
        if not Path(getattr(source, key)).is_file():
            raise InputError(f"{key}: no file at {getattr(source, key)}")
    folder = Path(out_dir) / source.name
    science = {k: v for k, v in asdict(settings).items() if k != "threads"}     # threads change no result
    recorded = {"settings": science, "seed": int(seed), "complex": source.name, "ligand": source.ligand,
                "prmtop": Path(source.prmtop).name, "coordinates": Path(source.coordinates).name,
                "placement": source.placement}
    record = folder / "settings.json"
    refusal = f"out_dir: {folder} holds replicas made with other settings ({{changed}}); use the same settings or " \
              "another folder"
    sim: RAMDSimulation | None = None
    if record.is_file():
        keep_settings(record, recorded, refusal, record=False)      # other settings: refused before any work
    else:
        # a new folder records its settings only once the complex is known to load (input files, ligand name,
        # start inside the exit distance): a refused run used to leave settings.json behind, and the folder
        # then refused the corrected command as made "with other settings"
        sim = RAMDSimulation(source, settings)
    folder.mkdir(parents=True, exist_ok=True)
    keep_settings(record, recorded, refusal)
    bar = progress(total=len(idx), desc=f"RAMD {source.name}", enabled=show_progress, unit="replica")
    for i in idx:
        stem = folder / f"r{i:05d}"
        if resume and _replica_done(stem):
            bar.update(1)
            continue
        if sim is None:
            sim = RAMDSimulation(source, settings)
        traj, stats = sim.run(seed * 100_003 + i)
        stats["replica"] = i
        write_h5(stem.with_suffix(".h5"), [traj])
        atomic_write_json(stem.with_suffix(".json"), stats)      # written last: marks the replica done
        bar.set_postfix(exit_ps=f"{stats['exit_time_ps'] or float('nan'):.1f}", refresh=False)
        bar.update(1)
    bar.close()
    return summarize(folder)


def summarize(folder: str | os.PathLike) -> dict[str, Any]:
    """Totals of the replicas in a folder: counts, simulated time, wall time and cost per dissociation event."""
    stats = [_read_record(p) for p in sorted(Path(folder).glob("r*.json"))]
    if not stats:
        return {"replicas": 0}
    ex = [s for s in stats if s["exited"]]
    wall = sum(s["wall_seconds"] for s in stats)
    times = [s["exit_time_ps"] for s in ex]
    return {"replicas": len(stats), "events": len(ex), "simulated_ps": sum(s["simulated_ps"] for s in stats),
            "wall_seconds": wall, "seconds_per_event": wall / max(1, len(ex)),
            "exit_time_ps_mean": float(np.mean(times)) if times else math.nan,
            "exit_time_ps_median": float(np.median(times)) if times else math.nan,
            "platform": stats[0].get("platform"), "threads": stats[0].get("threads")}


def load_events(folder: str | os.PathLike) -> list[DissociationTrajectory]:
    """Trajectories of the exited replicas under ``folder`` (recursively)."""
    out = []
    for p in sorted(Path(folder).rglob("r*.h5")):
        st = p.with_suffix(".json")
        if st.is_file() and _read_record(st)["exited"]:
            out.extend(read_h5(p))
    return out


def _load_record(path: Path) -> tuple[dict[str, Any] | None, str]:
    """A replica's statistics record (``r<index>.json``), or None and what is wrong with it."""
    try:
        rec = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        return None, f"is damaged (not JSON: {e})"
    if not isinstance(rec, dict):
        return None, f"holds a {type(rec).__name__}, not a JSON object"

    def number(v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    bad = [k for k, ok in (("exited", isinstance(rec.get("exited"), bool)),
                           ("simulated_ps", number(rec.get("simulated_ps"))),
                           ("wall_seconds", number(rec.get("wall_seconds"))),
                           ("exit_time_ps", not rec.get("exited") or number(rec.get("exit_time_ps")))) if not ok]
    if bad:
        return None, (f"is damaged: field {bad[0]} is missing or not "
                      f"{'true/false' if bad[0] == 'exited' else 'a number'} (got {rec.get(bad[0])!r})")
    return rec, ""


def _read_record(path: Path) -> dict[str, Any]:
    """A replica's statistics record; one that cannot be read is an ``InputError`` naming the file."""
    rec, why = _load_record(path)
    if rec is None:
        raise InputError(f"replica record: {path} {why}; run generate_replicas on its folder again to redo that "
                         "replica (a resumed run replaces it), or delete the file")
    return rec


def _replica_done(stem: Path) -> bool:
    """Whether replica ``stem`` (``.../r<index>``) finished: a readable record and its HDF5 file exist. A damaged
    record (a crash or full disk outside sciflow's atomic writes, an edit) or a lost HDF5 file is warned about and
    the replica redone."""
    record, h5 = stem.with_suffix(".json"), stem.with_suffix(".h5")
    if not record.is_file():
        return False
    rec, why = _load_record(record)
    if rec is None or not h5.is_file():
        why = why if rec is None else f"has no trajectory file {h5.name}"
        warnings.warn(f"replica record: {record} {why}; redoing the replica", UserWarning, stacklevel=3)
        return False
    return True
