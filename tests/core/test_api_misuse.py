"""Misuse of the core Python API: each case gets an InputError (or, for a field, a SciflowError) naming the
argument, before any expensive work; never a raw internal error and never silently wrong output."""
import numpy as np
import pytest
import torch
from torch import nn

from sciflow.core import FlowMatcher, Trajectory
from sciflow.core.couplings import ExactOT
from sciflow.core.errors import InputError, SciflowError
from sciflow.core.paths import LinearPath
from sciflow.core.random import randn, randperm
from sciflow.core.solvers import RK4, Euler, Heun, Midpoint
from sciflow.core.training import TrainConfig, Trainer, load_checkpoint
from sciflow.io import read_trajectory, write_trajectory
from sciflow.methods.base import Method

# -- Trajectory ------------------------------------------------------------------------------------------------


def test_trajectory_refuses_non_monotone_and_non_finite_times():
    with pytest.raises(InputError, match=r"Trajectory\.times: must be strictly"):
        Trajectory(torch.tensor([0.0, 2.0, 1.0]), torch.zeros(3, 2, 3))
    with pytest.raises(InputError, match=r"Trajectory\.times: holds non-finite"):
        Trajectory(torch.tensor([0.0, float("nan")]), torch.zeros(2, 1, 3))
    with pytest.raises(InputError, match=r"Trajectory\.times"):
        Trajectory(torch.tensor([0.0, float("inf")]), torch.zeros(2, 1, 3))
    with pytest.raises(InputError, match=r"Trajectory\.times"):
        Trajectory(torch.tensor([0.0, 0.0, 1.0]), torch.zeros(3, 1, 3))
    # a backward grid (docs/core.md), a single frame, integer frame numbers and untimed frames are fine
    assert Trajectory(torch.tensor([1.0, 0.5, 0.0]), torch.zeros(3, 1, 3)).n_frames == 3
    assert Trajectory(torch.tensor([0.3]), torch.zeros(1, 1, 3)).n_frames == 1
    assert Trajectory(torch.arange(4), torch.zeros(4, 1, 3)).n_frames == 4
    assert Trajectory(torch.zeros(2), torch.zeros(2, 1, 3)).n_frames == 2


def test_trajectory_refuses_per_row_extras_of_another_length():
    with pytest.raises(InputError, match=r"extras\['atomic_numbers'\]: one value per row, expected shape \(2,\)"):
        Trajectory(torch.tensor([0.0, 1.0]), torch.zeros(2, 2, 3), extras={"atomic_numbers": torch.tensor([6, 1, 1])})
    with pytest.raises(InputError, match=r"extras\['batch'\]"):
        Trajectory(torch.tensor([0.0, 1.0]), torch.zeros(2, 3, 3), extras={"batch": torch.tensor([0, 1])})
    with pytest.raises(InputError, match=r"extras\['box'\]: expected a tensor"):
        Trajectory(torch.tensor([0.0, 1.0]), torch.zeros(2, 3, 3), extras={"box": [1, 2, 3]})
    # global (not per-row) extras keep any shape: a cell, per-sample values of a graph batch
    t = Trajectory(torch.tensor([0.0, 1.0]), torch.zeros(2, 3, 3),
                   extras={"box": torch.eye(3), "batch": torch.tensor([0, 0, 1]), "path_time_ps": torch.ones(2)})
    assert t.n_samples == 2


def test_trajectory_to_refuses_a_non_floating_dtype():
    t = Trajectory(torch.tensor([0.0, 1.0]), torch.full((2, 1, 3), 0.7))
    with pytest.raises(InputError, match="dtype: expected a floating torch dtype"):
        t.to(dtype=torch.long)
    with pytest.raises(InputError, match="dtype"):
        t.to(dtype=torch.bool)
    assert t.to(dtype=torch.float64).states.dtype == torch.float64


# -- fixed-step solvers ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("solver", [Euler(), Midpoint(), Heun(), RK4()])
def test_fixed_step_solver_names_a_field_returning_nan(solver):
    with pytest.raises(SciflowError, match=r"field: returned non-finite values.*first at t=0\.5"):
        solver.solve(lambda x, t: x * float("nan"), torch.randn(4, 2), torch.linspace(0, 1, 3))
    with pytest.raises(SciflowError, match="field: returned non-finite values"):
        solver.solve(lambda x, t: x * float("nan"), torch.randn(4, 2), torch.linspace(0, 1, 3), keep="last")

    def late(x, t):             # finite until t = 0.5, then NaN
        return torch.where(t[:, None] >= 0.5, torch.full_like(x, float("nan")), -x)
    # Euler and midpoint meet the NaN in the step from 0.5, Heun and RK4 in their last stage of the step to 0.5
    with pytest.raises(SciflowError, match=r"first at t=(0\.75 \(after t=0\.5\)|0\.5 \(after t=0\.25\))"):
        solver.solve(late, torch.randn(4, 2), torch.linspace(0, 1, 5))
    assert bool(torch.isfinite(solver.solve(lambda x, t: -x, torch.randn(4, 2), [0.0, 1.0]).states).all())
    # callers that find and report diverging rows themselves ask to keep them (FlowMatcher.sample does so)
    kept = solver.solve(lambda x, t: x * float("nan"), torch.randn(4, 2), [0.0, 1.0], non_finite="keep")
    assert not bool(torch.isfinite(kept.last).all())
    assert not bool(torch.isfinite(FlowMatcher.sample(lambda x, t: x * float("nan"), torch.ones(4, 2), solver,
                                                      steps=2).last).all())
    with pytest.raises(SciflowError, match="field: returned non-finite values"):
        FlowMatcher.sample(lambda x, t: x * float("nan"), torch.ones(4, 2), solver, steps=2, non_finite="raise")
    with pytest.raises(InputError, match="non_finite: expected 'raise', 'keep'"):
        solver.solve(lambda x, t: -x, torch.randn(4, 2), [0.0, 1.0], non_finite="ignore")


# -- generators ------------------------------------------------------------------------------------------------


def test_an_int_seed_is_refused_where_a_generator_is_expected():
    msg = r"generator: expected a torch\.Generator or None, got int; use sciflow\.core\.random\.make_generator"
    with pytest.raises(InputError, match=msg):
        randn((2, 3), generator=0)
    with pytest.raises(InputError, match=msg):
        randperm(4, generator=3)
    with pytest.raises(InputError, match=msg):
        ExactOT()(torch.randn(5, 2), torch.randn(8, 2), generator=0)


# -- trainer and checkpoints -----------------------------------------------------------------------------------


def _never_called(g):
    raise AssertionError("training started")


def test_trainer_checks_the_checkpoint_folder_before_step_0(tmp_path):
    from sciflow.core.files import check_writable
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(InputError, match=r"checkpoint_path: .*afile is a file, not a folder"):
        Trainer(nn.Linear(2, 2), lambda m, b, g: m(b).sum(), TrainConfig(steps=5, progress=False),
                device="cpu", checkpoint_path=afile / "sub" / "ck.pt").fit(_never_called)
    with pytest.raises(InputError, match="checkpoint_path: .*existing folder"):
        Trainer(nn.Linear(2, 2), lambda m, b, g: m(b).sum(), TrainConfig(steps=5, progress=False),
                device="cpu", checkpoint_path=tmp_path)
    assert check_writable(tmp_path / "new" / "deeper" / "ck.pt", "out") == tmp_path / "new" / "deeper" / "ck.pt"
    assert not (tmp_path / "new").exists()            # the check creates nothing


def test_trainer_refuses_a_device_that_does_not_exist_before_moving_the_model():
    from sciflow.core.training import check_device
    model = nn.Linear(2, 2)
    bad = ["meta", "cpuu"] + ([] if torch.cuda.is_available() else ["cuda"])
    for dev in bad:
        with pytest.raises(InputError, match="device: "):
            Trainer(model, lambda m, b, g: m(b).sum(), TrainConfig(steps=5, progress=False), device=dev)
        assert model.weight.device.type == "cpu"          # not left on meta
    with pytest.raises(InputError, match="device"):
        check_device(0)


def test_load_checkpoint_blames_map_location_not_the_file(tmp_path):
    path = tmp_path / "ck.pt"
    torch.save({"format": "x", "w": torch.zeros(2)}, path)
    bad = ["meta", "gpu"] + ([] if torch.cuda.is_available() else ["cuda", "cuda:0"])
    for dev in bad:
        with pytest.raises(InputError, match=r"^map_location: "):
            load_checkpoint(path, map_location=dev)
    assert load_checkpoint(path, map_location="cpu")["w"].shape == (2,)
    assert load_checkpoint(path, map_location=None)["w"].shape == (2,)


# -- Method.load / train_model ---------------------------------------------------------------------------------


class Tiny(Method):
    name = "tiny"

    def __init__(self, dim: int = 2) -> None:
        super().__init__()
        self.dim = dim
        self.model = nn.Linear(dim, dim)

    def config(self):
        return {"dim": self.dim}

    def fit(self, dataset, config, *, device="cpu", checkpoint_path=None):
        return self.train_model(lambda m, b, g: (m(b) ** 2).mean(), lambda g: randn((4, self.dim), generator=g),
                                config, device=device, checkpoint_path=checkpoint_path)

    def generate(self, condition, n, *, generator=None):
        return Trajectory(torch.zeros(1), self.model(randn((n, self.dim), generator=generator))[None].detach())


def _tampered(tmp_path, **change):
    ck = torch.load(Tiny().save(tmp_path / "ok"), weights_only=True)
    ck.update(change)
    for k, v in change.items():
        if v is None:
            del ck[k]
    path = tmp_path / "bad.pt"
    torch.save(ck, path)
    return path


def test_method_load_checks_format_keys_and_shapes(tmp_path):
    Tiny().save(tmp_path / "ok")
    assert isinstance(Tiny.load(tmp_path / "ok"), Tiny)
    for fmt in ("sciflow.method/2", "sciflow.method/99", None):
        with pytest.raises(InputError, match=r"model: .*bad\.pt has format .*reads 'sciflow\.method/1'"):
            Tiny.load(_tampered(tmp_path, format=fmt))
    with pytest.raises(InputError, match=r"model: .*bad\.pt lacks state_dict"):
        Tiny.load(_tampered(tmp_path, state_dict=None))
    with pytest.raises(InputError, match=r"model: .*bad\.pt lacks config"):
        Tiny.load(_tampered(tmp_path, config=None))
    with pytest.raises(InputError, match=r"model: .*bad\.pt does not fit the 'tiny' model"):
        Tiny.load(_tampered(tmp_path, config={"dim": 3}))
    with pytest.raises(InputError, match="map_location"):
        Tiny.load(tmp_path / "ok", map_location="meta")


def test_method_train_model_refuses_a_bad_device_and_keeps_the_model_usable():
    m = Tiny()
    bad = ["meta"] + ([] if torch.cuda.is_available() else ["cuda"])
    for dev in bad:
        with pytest.raises(InputError, match="device: "):
            m.fit(None, TrainConfig(steps=2, progress=False), device=dev)
        assert m.model.weight.device.type == "cpu"
    assert m.generate(None, 3).states.shape == (1, 3, 2)


# -- .npz trajectories -----------------------------------------------------------------------------------------


def test_read_npz_refuses_an_unknown_format_version(tmp_path):
    path = tmp_path / "future.npz"
    np.savez(path, times=np.zeros(2), states=np.zeros((2, 1, 3)), info="{}", format="sciflow.trajectory/9")
    with pytest.raises(InputError, match=r"path: .*future\.npz.* has format 'sciflow\.trajectory/9'"):
        read_trajectory(path)
    plain = tmp_path / "plain.npz"                   # no format entry: still read
    np.savez(plain, times=np.arange(2.0), states=np.zeros((2, 1, 3)))
    assert read_trajectory(plain).states.shape == (2, 1, 3)
    ok = write_trajectory(tmp_path / "ok.npz", Trajectory(torch.arange(2.0), torch.zeros(2, 1, 3)))
    assert read_trajectory(ok).n_frames == 2


# -- FlowMatcher -----------------------------------------------------------------------------------------------


def _velocity(x, t):
    return -x * t[:, None]


def test_flow_matcher_loss_refuses_numpy_mixed_dtypes_and_empty_batches():
    fm = FlowMatcher(LinearPath(), ExactOT())
    with pytest.raises(InputError, match=r"x0: expected a torch tensor .*got ndarray"):
        fm.loss(_velocity, np.zeros((4, 2), np.float32), torch.zeros(4, 2))
    with pytest.raises(InputError, match=r"x1: expected a torch tensor"):
        fm.loss(_velocity, torch.zeros(4, 2), np.zeros((4, 2), np.float32))
    with pytest.raises(InputError, match=r"x0: torch\.float64 on cpu, but x1 is torch\.float32"):
        fm.loss(_velocity, torch.zeros(4, 2, dtype=torch.float64), torch.zeros(4, 2))
    with pytest.raises(InputError, match=r"x0: expected at least one row"):
        fm.loss(_velocity, torch.zeros(0, 2), torch.zeros(0, 2))
    with pytest.raises(InputError, match=r"x1: expected at least one row"):
        FlowMatcher(LinearPath()).loss(_velocity, torch.zeros(3, 2), torch.zeros(0, 2),
                                       batch=torch.zeros(0, dtype=torch.long))
    with pytest.raises(InputError, match=r"x0: expected a floating tensor"):
        fm.loss(_velocity, torch.zeros(4, 2, dtype=torch.long), torch.zeros(4, 2))
    with pytest.raises(InputError, match=r"x0: rows of shape \(3,\), but x1 rows are \(2,\)"):
        fm.loss(_velocity, torch.zeros(4, 3), torch.zeros(4, 2))
    assert torch.isfinite(fm.loss(_velocity, torch.randn(4, 2), torch.randn(6, 2)))


def test_flow_matcher_sample_refuses_a_solver_name_and_bad_x0():
    with pytest.raises(InputError, match=r"solver: expected a Solver object .*got str; .*SOLVERS\.build\('rk4'\)"):
        FlowMatcher.sample(_velocity, torch.zeros(4, 2), "rk4")
    with pytest.raises(InputError, match=r"x0: expected a torch tensor"):
        FlowMatcher.sample(_velocity, np.zeros((4, 2), np.float32), RK4())
    with pytest.raises(InputError, match=r"x0: expected at least one row"):
        FlowMatcher.sample(_velocity, torch.zeros(0, 2), RK4())
    assert FlowMatcher.sample(_velocity, torch.ones(4, 2), RK4(), steps=2).states.shape == (3, 4, 2)


def test_mmsb_load_checks_the_format_like_every_method(tmp_path):
    """MMSB.load had its own copy of the loader without the format and key checks."""
    from pathlib import Path

    from sciflow.methods.base import METHOD_FORMAT
    from sciflow.methods.mmsb import MMSB
    src = Path(__file__).resolve().parents[2] / "models" / "mmsb" / "lv.pt"
    ck = torch.load(src, weights_only=True)
    assert ck["format"] == METHOD_FORMAT
    torch.save({**ck, "format": "sciflow.method/99"}, tmp_path / "future.pt")
    with pytest.raises(InputError, match=r"has format 'sciflow.method/99'"):
        MMSB.load(tmp_path / "future.pt")
    torch.save({k: v for k, v in ck.items() if k != "state_dict"}, tmp_path / "partial.pt")
    with pytest.raises(InputError, match=r"lacks state_dict"):
        MMSB.load(tmp_path / "partial.pt")
    assert MMSB.load(src).reference_params == MMSB.load(src).reference_params


def test_conditional_flow_names_a_field_that_turns_non_finite():
    from sciflow.core.errors import SciflowError
    from sciflow.methods.flow import ConditionalFlow
    flow = ConditionalFlow(2, steps=3)
    with torch.no_grad():
        for prm in flow.model.parameters():
            prm.fill_(float("nan"))
    with pytest.raises(SciflowError, match=r"non-finite"):
        flow.generate(None, 4)


@pytest.mark.parametrize("bad", [1.5, 0, True])
def test_solver_substeps_are_whole_numbers(bad):
    from sciflow.core.solvers import EulerMaruyama
    with pytest.raises(InputError, match="substeps"):
        Euler(substeps=bad)
    with pytest.raises(InputError, match="substeps"):
        EulerMaruyama(0.1, substeps=bad)


def test_atomic_writes_into_a_place_that_takes_no_files_name_it():
    """/proc takes no new files: the temporary file's creation gave a raw FileNotFoundError from tempfile."""
    from sciflow.core.files import atomic_write_text
    with pytest.raises(InputError, match=r"/proc/sciflow_test\.txt: cannot write there"):
        atomic_write_text("/proc/sciflow_test.txt", "x")
