"""UnbindingFlow end to end on a hand-made ring complex: fit, generate, save/load, evaluate, workflow, CLI."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from sciflow.core.errors import InputError
from sciflow.core.fields import BATCH
from sciflow.core.training import TrainConfig
from sciflow.data.dissociation import write_h5, write_mdtraj
from sciflow.methods.unbinding import PATH_TIME, UnbindingFlow
from sciflow.methods.unbinding.evaluate import evaluate_paths


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, make_ring, make_exit):
    cx = make_ring()
    trajs = [make_exit(cx, (0, 0, s), name=f"t{i}", dt=0.5 + 0.1 * i) for i, s in enumerate([1, -1] * 4)]
    model = UnbindingFlow(n_frames=4, hidden=16, n_vectors=4, n_layers=2, n_rbf=6, steps=4, batch_size=4,
                          exit_distance=11.0)
    model.fit(trajs, TrainConfig(steps=30, lr=3e-3, progress=False, ema_decay=None))
    folder = tmp_path_factory.mktemp("model")
    model.save(folder)
    return model, trajs, folder


def test_generate_layout_and_bound_frame(tiny):
    model, trajs, _ = tiny
    cx = trajs[0].bound
    out = model.generate(cx, 5, generator=torch.Generator().manual_seed(0))
    n_lig = int(cx.topology.is_ligand.sum())
    assert out.states.shape == (5, 5 * n_lig, 3) and out.n_samples == 5
    for k in range(5):                                                  # frame 0 is the input bound pose
        np.testing.assert_allclose(out.states[0, out.extras[BATCH] == k].numpy(), cx.ligand_positions, atol=1e-5)
    assert out.extras[PATH_TIME].shape == (5,) and bool((out.extras[PATH_TIME] > 0).all())
    assert out.info["returned_clashing_paths"] == 0 and out.info["returned_short_paths"] == 0
    assert out.step_extras["com_distance"].shape == (5, 5)
    assert float(out.step_extras["com_distance"][-1].min()) >= out.info["exit_distance"]


def _com_shift(cx, out) -> np.ndarray:
    """(n, 3) shift of each path's ligand centre of mass from the bound pose to its last frame."""
    m = torch.as_tensor(cx.topology.masses[cx.topology.is_ligand])
    ends = out.states[-1].double().reshape(out.n_samples, -1, 3)
    return ((ends * m[:, None]).sum(1) / m.sum() - torch.as_tensor(cx.ligand_com())).numpy()


@pytest.fixture(scope="module")
def trained(make_ring, make_exit):
    """The tiny ring model trained long enough (300 steps, 2 s) to learn its two exit channels."""
    cx = make_ring()
    trajs = [make_exit(cx, (0, 0, s), name=f"t{i}", dt=0.5 + 0.1 * i) for i, s in enumerate([1, -1] * 4)]
    torch.manual_seed(0)
    model = UnbindingFlow(n_frames=4, hidden=16, n_vectors=4, n_layers=2, n_rbf=6, steps=4, batch_size=4,
                          exit_distance=11.0)
    model.fit(trajs, TrainConfig(steps=300, lr=1e-2, progress=False, ema_decay=None, seed=0))
    return model, cx


def test_raw_network_paths_leave_along_the_trained_channel(trained):
    """The checks above hold whatever the network says (projection and enforce_exit guarantee them). Without
    guidance and projection the paths are the network's own: trained on exits along +z and -z to 12 Å, they leave
    the ring (median centre-of-mass shift 10.6 Å, seeds 0-2: 8.8-11.4) along the z axis (8 of 8 within 37 degrees
    of it); a zero displacement field leaves the ligand a few Å from the bound pose in random directions."""
    model, cx = trained
    out = model.generate(cx, 8, generator=torch.Generator().manual_seed(0), project=False, guidance=0.0)
    shift = _com_shift(cx, out)
    dist = np.linalg.norm(shift, axis=1)
    assert np.median(dist) > 0.6 * out.info["exit_distance"], dist
    assert np.mean(np.abs(shift[:, 2]) / dist > 0.8) >= 0.75, shift / dist[:, None]


@pytest.mark.parametrize("reflect", [False, True])
def test_generate_is_equivariant_under_rigid_motions(trained, monkeypatch, reflect):
    """generate(Q x + t) = Q generate(x) + t path by path, guidance, projection, enforce_exit and hydrogen placement
    included, when the prior draw of the moved complex is Q eps (the network is E(3): reflections too). The exit
    times and centre-of-mass distances are invariant."""
    import sciflow.methods.unbinding.method as um
    from sciflow.nn.symmetry import random_rotation
    model, cx = trained
    q = random_rotation(torch.Generator().manual_seed(4), reflect=reflect)
    shift = np.array([3.0, -7.5, 12.0])
    base = model.generate(cx, 6, generator=torch.Generator().manual_seed(1))
    draw = um.randn
    f = model.n_frames

    def rotated_draw(shape, **kw):
        x = draw(shape, **kw)
        disp = x[:, : 3 * f].reshape(-1, f, 3) @ q.to(x.dtype).T
        return torch.cat([disp.reshape(-1, 3 * f), x[:, 3 * f:]], dim=1)

    monkeypatch.setattr(um, "randn", rotated_draw)
    moved = model.generate(cx.transformed(q.numpy(), shift), 6, generator=torch.Generator().manual_seed(1))
    assert abs(float(torch.det(q))) == pytest.approx(1.0) and (float(torch.det(q)) < 0) == reflect
    want = base.states.double() @ q.T + torch.as_tensor(shift)
    torch.testing.assert_close(moved.states.double(), want, atol=1e-3, rtol=0)   # float32, 4 steps
    torch.testing.assert_close(moved.extras[PATH_TIME], base.extras[PATH_TIME], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(moved.step_extras["com_distance"], base.step_extras["com_distance"], atol=1e-3, rtol=0)
    assert float((base.states[-1] - base.states[0]).norm(dim=-1).max()) > 5.0            # the paths do move


def test_save_load_reproduces_samples(tiny):
    model, trajs, folder = tiny
    again = UnbindingFlow.load(folder)
    a = model.generate(trajs[0].bound, 3, generator=torch.Generator().manual_seed(7))
    b = again.generate(trajs[0].bound, 3, generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(a.states, b.states)
    assert again.tau_mean == pytest.approx(model.tau_mean)


def test_generate_rejects_bad_input(tiny):
    model, trajs, _ = tiny
    with pytest.raises(InputError, match="condition"):
        model.generate(np.zeros((3, 3)), 2)
    with pytest.raises(InputError, match="n: must be"):
        model.generate(trajs[0].bound, 0)
    with pytest.raises(InputError, match="steps: must be"):
        model.generate(trajs[0].bound, 2, steps=0)
    with pytest.raises(InputError, match="n_frames"):
        UnbindingFlow(n_frames=1)
    for kw, field in [({"exit_distance": -1.0}, "exit_distance"), ({"exit_distance": float("nan")}, "exit_distance"),
                      ({"guidance": -0.5}, "guidance")]:
        with pytest.raises(InputError, match=field):
            model.generate(trajs[0].bound, 2, **kw)
    with pytest.raises(InputError, match="exit_distance"):
        UnbindingFlow(exit_distance=0.0)


def test_a_diverging_sampler_is_reported_naming_steps(tiny, monkeypatch):
    """A velocity that overflows (the shipped model with clash guidance at 3 Euler steps) ends in a clear error,
    not in NaN coordinates or a linear-algebra failure further on."""
    from sciflow.core.errors import SciflowError
    model, trajs, _ = tiny
    forward = type(model.model).forward
    monkeypatch.setattr(type(model.model), "forward", lambda self, y, t, **c: forward(self, y, t, **c) * float("inf"))
    with pytest.raises(SciflowError, match="steps: the guided sampler diverged with 2 steps"):
        model.generate(trajs[0].bound, 2, steps=2, generator=torch.Generator().manual_seed(0))


def test_evaluate_keys(tiny):
    model, trajs, _ = tiny
    m = evaluate_paths(model, trajs, n_per_condition=2, max_conditions=2, seed=0)
    for kw in ({"max_conditions": 0}, {"n_per_condition": 0}):
        with pytest.raises(InputError, match=next(iter(kw))):
            evaluate_paths(model, trajs, **kw)
    for key in ("clash_rate", "success_rate", "exit_direction_w1", "seconds_per_path", "raw_clash_rate",
                "exit_direction_w1_md_floor", "exit_direction_w1_ratio", "exit_direction_w1_all_vs_all_md"):
        assert key in m and np.isfinite(m[key])
    pc = m["per_complex"]["ring"]
    assert pc["exit_direction_w1_sample_size"] == 4 and "exit_direction_w1_md_halves" not in pc   # 4 generated
    assert pc["exit_direction_w1_ratio"] == pytest.approx(pc["exit_direction_w1"] / pc["exit_direction_w1_md_floor"])
    assert m["per_complex"]["ring"]["md_success_rate"] == 1.0
    assert m["n_generated"] == 4


class _ReplayMD:
    """A 'generator' that returns, for a bound complex, the MD paths that start from it (all frames, all ligand
    atoms, in the complex's frame), with honest clash and exit counts against the complex's receptor."""

    def __init__(self, trajs, n_frames: int = 4) -> None:
        self.trajs, self.n_frames = trajs, n_frames

    def generate(self, cx, n, *, exit_distance, **_):
        from sciflow.core.trajectory import Trajectory
        from sciflow.domains.molecules.complexes import CLASH_DISTANCE, min_pair_distance
        (t,) = [t for t in self.trajs if np.allclose(t.positions[0], cx.positions)]
        topo = t.topology
        lig = torch.as_tensor(t.positions[:, topo.is_ligand])                        # (T, N_lig, 3)
        clash = bool((min_pair_distance(lig[:, topo.is_heavy[topo.is_ligand]],
                                        torch.as_tensor(cx.clash_atoms())) < CLASH_DISTANCE).any())
        m = torch.as_tensor(topo.masses[topo.is_ligand])
        short = float(((lig[-1] * m[:, None]).sum(0) / m.sum() - torch.as_tensor(cx.pocket_centroid())).norm()) \
            < exit_distance
        info = {"raw_clashing_paths": n * clash, "returned_clashing_paths": n * clash, "raw_short_paths": n * short}
        return Trajectory(torch.as_tensor(t.times), lig.repeat(1, n, 1),
                          extras={BATCH: torch.arange(n).repeat_interleave(lig.shape[1]),
                                  PATH_TIME: torch.full((n,), float(t.times[-1]))}, info=info)


def test_evaluate_scores_the_md_paths_themselves_as_perfect(make_ring, make_exit):
    """MD paths fed back as the generated ones: every one exits, none clashes, and the exit-direction W1 sits at
    the MD halves' own floor (G is then a half of the MD set itself, so the expected ratio is below 1; 1.25 leaves
    room for the noise of 20 random splits of 12 directions). The 12 complexes are posed differently (random
    rigid motions), so the directions count only once aligned on the reference pocket; the exits fill a cone
    about a tilted axis (no symmetry that a flipped or unaligned direction would keep)."""
    from sciflow.nn.symmetry import random_rotation
    g = torch.Generator().manual_seed(0)
    base = make_ring()
    trajs, dirs = [], []
    for i in range(12):
        th, ph = np.deg2rad(10 + 2 * i), np.pi * i / 11
        d = np.array([np.sin(th) * np.cos(ph) + 0.3, np.sin(th) * np.sin(ph), np.cos(th)])
        q = random_rotation(g).numpy() if i else np.eye(3)                       # trajectory 0: the reference
        cx = base.transformed(q, q @ [1.0, 2.0, 3.0] * i)
        trajs.append(make_exit(cx, q @ d, name=f"t{i}", dt=0.5 + 0.05 * i))
        dirs.append(d / np.linalg.norm(d))
    m = evaluate_paths(_ReplayMD(trajs), trajs, n_per_condition=1, seed=0)
    pc = m["per_complex"]["ring"]
    assert m["success_rate"] == 1.0 and m["raw_success_rate"] == 1.0 and pc["md_success_rate"] == 1.0
    assert m["clash_rate"] == 0.0 and pc["md_clash_rate_fixed_pocket"] == 0.0
    assert pc["n_generated"] == pc["n_md"] == 12 and pc["exit_direction_w1_sample_size"] == 6
    assert 0 < pc["exit_direction_w1_md_floor"] and pc["exit_direction_w1_ratio"] < 1.25, pc
    assert pc["exit_direction_w1_all_vs_all_md"] < 1e-6                      # the same directions, aligned
    assert pc["path_time_ps"]["generated_mean"] == pytest.approx(pc["path_time_ps"]["md_mean"])
    assert pc["path_length_A"]["generated_mean"] == pytest.approx(pc["path_length_A"]["md_mean"], rel=1e-6)
    flipped = [make_exit(t.bound, -(t.positions[-1, -1] - t.positions[0, -1]), name=t.name) for t in trajs]
    w = evaluate_paths(_ReplayMD(flipped), trajs, n_per_condition=1, seed=0)["per_complex"]["ring"]
    assert w["exit_direction_w1_ratio"] > 3.0 and w["success_rate"] == 1.0        # the wrong way out: far off


def test_evaluate_per_complex_metrics_do_not_depend_on_the_other_complexes(tiny, make_ring, make_exit):
    from dataclasses import replace

    from sciflow.domains.molecules.complexes import Complex
    model, trajs, _ = tiny
    big = make_ring(n_ring=10)
    other = Complex(replace(big.topology, name="aaa"), big.positions)      # sorts before "ring": evaluated first
    extra = [make_exit(other, (1, 0, 0), name=f"o{i}") for i in range(2)]
    alone = evaluate_paths(model, trajs, n_per_condition=2, max_conditions=2, seed=3)["per_complex"]["ring"]
    mixed = evaluate_paths(model, extra + trajs, n_per_condition=2, max_conditions=2, seed=3)["per_complex"]
    assert set(mixed) == {"aaa", "ring"}
    for key in ("exit_direction_w1", "success_rate", "raw_success_rate", "path_time_ps", "path_length_A"):
        assert mixed["ring"][key] == alone[key]


def test_workflow_and_cli(tiny, tmp_path):
    import mdtraj as md

    from sciflow.cli import main
    from sciflow.workflows import run_workflow
    _, trajs, folder = tiny
    cdir = tmp_path / "complexes"
    write_mdtraj(trajs[0], cdir / "ringA.pdb")
    write_h5(cdir / "ringB.h5", [trajs[1]])
    wf = {"version": 1, "task": "unbinding", "output": str(tmp_path / "out"), "device": "cpu",
          "unbinding": {"model": str(folder), "complexes": str(cdir), "n_paths": 2}}
    summary = run_workflow(wf)
    assert summary["complexes"] == 2 and summary["paths"] == 4 and summary["returned_clashing_paths"] == 0
    m = md.load(str(tmp_path / "out/ringA/path_001.dcd"), top=str(tmp_path / "out/ringA/topology.pdb"))
    assert m.n_frames == 5 and m.n_atoms == trajs[0].topology.n_atoms
    assert md.load(str(tmp_path / "out/ringB/path_000.pdb")).n_frames == 5
    assert (tmp_path / "out/ringA/paths.png").stat().st_size > 1000
    write_h5(tmp_path / "held.h5", trajs[:2])
    rc = main(["unbinding", "evaluate", "--data", str(tmp_path / "held.h5"), "--model", str(folder), "--out",
               str(tmp_path / "metrics.json"), "--n", "2", "--steps", "3"])
    assert rc == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert {"clash_rate", "success_rate", "exit_direction_w1", "seconds_per_path"} <= set(metrics)
    assert metrics["steps"] == 3
    with pytest.raises(InputError, match="unbinding.complexes"):
        run_workflow(dict(wf, unbinding={"model": str(folder), "complexes": str(tmp_path / "none")}))


def test_enforce_exit_ends_every_path_outside_and_clash_free(make_ring):
    """Paths that stop short (one of them heading into a plate of receptor atoms) end at least the exit distance
    from the centre with no clash in any frame; the bound frame and paths already outside are left alone."""
    from sciflow.domains.molecules.complexes import CLASH_DISTANCE
    from sciflow.methods.unbinding.guidance import enforce_exit, frame_min_distance, pair_index
    cx = make_ring()
    ring = torch.as_tensor(cx.positions[~cx.topology.is_ligand])
    gx, gy = torch.meshgrid(torch.arange(-4.0, 4.5), torch.arange(-4.0, 4.5), indexing="ij")
    plate = torch.stack([gx.flatten(), gy.flatten() + 8.0, torch.full_like(gx.flatten(), 6.0)], 1)
    pocket = torch.cat([ring, plate]).to(torch.float64)
    lig0 = torch.as_tensor(cx.ligand_positions)                          # (3, 3) at the ring centre
    heads = torch.tensor([[0.0, 0.0, 4.0], [0.0, 8.0, 4.6], [0.0, 0.0, -20.0]], dtype=torch.float64)
    f = 6
    ramp = torch.linspace(0, 1, f, dtype=torch.float64).reshape(1, f, 1)
    frames = torch.cat([lig0.unsqueeze(1) + ramp * h for h in heads])     # (3 paths * 3 atoms, F, 3)
    lb = torch.arange(3).repeat_interleave(3)
    pb = torch.arange(3).repeat_interleave(pocket.shape[0])
    w = torch.as_tensor(cx.topology.masses[cx.topology.is_ligand]).repeat(3)
    out, dist = enforce_exit(frames, pocket.repeat(3, 1), lb, pb, w, torch.zeros(3, dtype=torch.float64), 10.0)
    assert bool((dist >= 10.0).all())
    m = frame_min_distance(out, pocket.repeat(3, 1), pair_index(lb, pb), lb, 3)
    assert float(m[:, 1:].min()) >= CLASH_DISTANCE
    torch.testing.assert_close(out[:, 0], frames[:, 0])                  # the bound pose is never moved
    torch.testing.assert_close(out[lb == 2], frames[lb == 2])            # already 20 Å out, no clash: unchanged
    com = (out[:, -1] * w.unsqueeze(-1)).reshape(3, 3, 3).sum(1) / w[:3].sum()
    torch.testing.assert_close(com.norm(dim=-1), dist)


def test_raw_and_returned_exit_counts_use_one_measure(tiny):
    """Without projection nothing moves, so a path is 'raw short' exactly when its returned ligand centre of mass
    (mass-weighted, hydrogens included: the success measure) ends short of the exit distance, for any distance."""
    model, trajs, _ = tiny
    cx = trajs[0].bound

    def draw(exit_distance=None):
        return model.generate(cx, 8, generator=torch.Generator().manual_seed(3), project=False,
                              exit_distance=exit_distance)

    d = np.sort(draw().step_extras["com_distance"][-1].numpy())
    for cut in (d[:-1] + d[1:]) / 2:
        out = draw(float(cut))
        assert out.info["raw_short_paths"] == out.info["returned_short_paths"] == int((d < cut).sum())


def test_each_complex_is_generated_to_the_exit_distance_its_training_paths_used(tiny):
    """The shipped model learned benzene-toluene paths to 10 A but generated to 12 A by default, so 15 of 16
    paths were stretched by enforce_exit; fit records each complex's exit distance and generate defaults to it."""
    from pathlib import Path

    from sciflow.data.dissociation import load_complex
    model = tiny[0]
    assert model.config()["exit_distances"] == {"ring": 11.0}         # the fixture's paths record 11 A
    root = Path(__file__).resolve().parents[2]
    shipped = UnbindingFlow.load(root / "models" / "unbinding")
    assert shipped.exit_distance_for("benzene-toluene") == 10.0 and shipped.exit_distance_for("cb7-b2") == 12.0
    assert shipped.exit_distance_for("cb7-viologen") == 12.0                     # unseen: the model's default
    cx = load_complex(root / "datasets" / "unbinding" / "complexes" / "benzene-toluene.pdb")
    g = torch.Generator().manual_seed(0)
    assert shipped.generate(cx, 2, generator=g).info["exit_distance"] == 10.0
    assert shipped.generate(cx, 2, generator=g, exit_distance=12.0).info["exit_distance"] == 12.0
