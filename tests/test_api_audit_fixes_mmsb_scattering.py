"""Audit fixes in the MMSB and scattering Python APIs: bad input is an InputError naming the argument, before
any work (DESIGN principle 11)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from sciflow.core.errors import InputError
from sciflow.domains.cells.snapshots import Snapshots
from sciflow.methods.mmsb import MMSB

ROOT = Path(__file__).resolve().parents[1]
NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal of CUDA on a CPU-only machine")


@pytest.fixture(scope="module")
def snaps() -> Snapshots:
    g = torch.Generator().manual_seed(0)
    return Snapshots.from_arrays([torch.randn(30, 2, generator=g, dtype=torch.float64) + k for k in range(3)],
                                 [0.0, 1.0, 2.0])


@pytest.fixture(scope="module")
def lv() -> MMSB:
    return MMSB.load(ROOT / "models" / "mmsb" / "lv.pt")


@pytest.fixture(scope="module")
def scattering():
    from sciflow.methods.scattering import ScatteringCVAEs
    return ScatteringCVAEs.load(ROOT / "models" / "scattering")


class _Linear(nn.Module):
    """f(x) = x W, then ``post`` applied to the output."""

    def __init__(self, out: int = 2, post=None) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(2, out, dtype=torch.float64))
        self.post = post or (lambda y: y)

    def forward(self, x):
        return self.post(x @ self.w)


# -- 1. a custom reference of the wrong shape, dtype or values is refused before the fit ---------------
@pytest.mark.parametrize("module, match", [
    (_Linear(3), r"reference: .*\(B, d\) -> \(B, d\).*shape \(3, 3\), expected \(3, 2\)"),
    (_Linear(2, lambda y: y.sum(-1)), r"reference: .*\(B, d\) -> \(B, d\).*shape \(3,\)"),
    (_Linear(2, lambda y: y.T), r"reference: .*\(B, d\) -> \(B, d\)"),
    (_Linear(2, lambda y: y.long()), r"reference: .*floating-point.*torch.int64"),
    (_Linear(2, lambda y: y.detach().numpy()), r"reference: .*must return a tensor.*ndarray"),
    (_Linear(2, lambda y: y * float("nan")), r"reference: .*6 non-finite value"),
    (_Linear(2, lambda y: y[:, 5]), r"reference: the custom module failed .*IndexError"),
])
def test_mmsb_custom_reference_checked_before_fit(snaps, module, match):
    model = MMSB(module, sigma=0.1, rounds=1, n_paths=20)
    with pytest.raises(InputError, match=match):
        model.fit(snaps, show_progress=False)
    assert model.snapshots is None and model.history == []           # refused before any state changed


def test_mmsb_custom_reference_probe_keeps_training_mode(snaps):
    module = _Linear(3)
    module.train()
    with pytest.raises(InputError, match="reference"):
        MMSB(module, sigma=0.1, rounds=1, n_paths=20).fit(snaps, show_progress=False)
    assert module.training


# -- 2. devices this machine lacks are refused with the standard message -------------------------------
@NO_CUDA
def test_mmsb_cuda_without_cuda_refused_at_construction():
    with pytest.raises(InputError, match="device: 'cuda' asked for, but no CUDA device is available"):
        MMSB("linear", sigma=0.1, device="cuda")


def test_mmsb_device_typo_refused_at_construction():
    with pytest.raises(InputError, match="device: 'gpu' is not a device"):
        MMSB("linear", sigma=0.1, device="gpu")


@NO_CUDA
@pytest.mark.parametrize("device, match", [("cuda", "device: 'cuda' asked for, but no CUDA device"),
                                           ("gpu", "device: 'gpu' is not a device")])
def test_scattering_render_device_checked_first(scattering, device, match):
    from sciflow.domains.photons.scene import make_scene
    from sciflow.methods.scattering.api import render, render_scene
    with pytest.raises(InputError, match=match):
        render(make_scene("sphere", width=4, height=4), "cvae", spp=1, model=scattering, device=device,
               progress=False)
    with pytest.raises(InputError, match=match):
        render_scene("sphere", spp=1, width=4, height=4, model=scattering, device=device)


# -- 3. counts and shapes ---------------------------------------------------------------------------
@pytest.mark.parametrize("n, match", [(0, "n: must be >= 1, got 0"), (-3, "n: must be >= 1, got -3"),
                                      (2.5, "n: expected an integer")])
def test_mmsb_nll_and_sample_bridges_check_n(lv, n, match):
    with pytest.raises(InputError, match=match):
        lv.nll(n)
    with pytest.raises(InputError, match=match):
        lv.sample_bridges(n)
    with pytest.raises(InputError, match=match.replace("n:", "n_paths:")):
        lv.fit_bridge_drift(n_paths=n)


def test_mmsb_sample_bridges_none_is_the_default(lv, monkeypatch):
    asked = []

    class Step:
        def sample(self, snapshots, n, generator=None):
            asked.append(n)

    monkeypatch.setattr(lv, "_bridge_step", lambda: Step())
    lv.sample_bridges(None)
    lv.sample_bridges(7)
    assert asked == [lv.config()["n_paths"], 7]


@pytest.mark.parametrize("times", [[[1.0, 2.0], [3.0, 4.0]], torch.ones(2, 1)])
def test_mmsb_predict_refuses_nested_times(lv, times):
    with pytest.raises(InputError, match=r"times: expected a number or a 1-D sequence of times, got shape"):
        lv.predict(times, n=5)


def test_mmsb_predict_scalar_and_1d_times_still_work(lv):
    g = torch.Generator().manual_seed(0)
    assert lv.predict(1.0, n=3, generator=g).states.shape == (1, 3, 2)
    assert lv.predict([1.0, 0.5], n=3, generator=g).states.shape == (2, 3, 2)


@pytest.mark.parametrize("x0, match", [(torch.ones(0, 2), r"x0: holds no rows"),
                                       (torch.ones(3, 3), r"x0: expected \(n, 2\)"),
                                       (torch.full((2, 2), float("nan")), r"x0: 4 value\(s\) are not finite"),
                                       ("abc", r"x0: expected an \(n, 2\) array")])
def test_mmsb_predict_checks_x0(lv, x0, match):
    with pytest.raises(InputError, match=match):
        lv.predict([1.0], x0=x0)


def test_mmsb_predict_refuses_n_with_x0(lv):
    with pytest.raises(InputError, match=r"n: the population starts from the 5 rows of x0, but n=100"):
        lv.predict([1.0], n=100, x0=torch.ones(5, 2))
    g = torch.Generator().manual_seed(0)
    assert lv.predict([1.0], x0=torch.ones(5, 2), generator=g).states.shape == (1, 5, 2)
    assert lv.predict([1.0], n=5, x0=torch.ones(5, 2), generator=g).states.shape == (1, 5, 2)


# -- 4. scattering conditions must be real numbers ---------------------------------------------------
@pytest.mark.parametrize("condition, match", [
    (None, r"condition: expected \{sigma_r, g, albedo\}.*got None"),
    ({"sigma_r": "64", "g": 0.5, "albedo": 0.9}, r"condition\.sigma_r: expected real numbers, got str '64'"),
    ({"sigma_r": 4.0, "g": None, "albedo": 0.9}, r"condition\.g: expected real numbers, got NoneType"),
    ({"sigma_r": 4.0, "g": 0.5, "albedo": [0.9, "x"]}, r"condition\.albedo: expected real numbers"),
    ({"sigma_r": 4.0, "g": True, "albedo": 0.9}, r"condition\.g: expected real numbers, got bool"),
    ("4, 0.5, 0.9", r"condition: expected real numbers, got str"),
    ([4.0, "0.5", 0.9], r"condition: expected real numbers, got list"),
])
def test_scattering_generate_non_numeric_condition(scattering, condition, match):
    with pytest.raises(InputError, match=match):
        scattering.generate(condition, 4)


def test_scattering_generate_numeric_condition_still_works(scattering):
    g = torch.Generator().manual_seed(0)
    tr = scattering.generate({"sigma_r": 4.0, "g": 0.5, "albedo": 0.9}, 4, generator=g)
    assert tr.states.shape == (2, 4, 6)
    assert scattering.generate(torch.tensor([4.0, 0.5, 0.9]), 3, generator=g).states.shape == (2, 3, 6)


def test_mmsb_custom_reference_returning_float32_fits_and_predicts(snaps):
    """A float32 drift on float64 snapshots is accepted by the probe, so the fit and the prediction must take it
    (the solvers refuse a field of another dtype; MMSB casts its drifts to the states' dtype)."""
    model = MMSB(_Linear(2, lambda y: y.float()), sigma=0.1, rounds=2, n_paths=20)
    model.fit(snaps, show_progress=False)
    pred = model.predict([1.0, 2.0], n=10, generator=torch.Generator().manual_seed(0))
    assert pred.states.dtype == torch.float64 and bool(torch.isfinite(pred.states).all())


def test_scattering_fit_needs_a_train_config(scattering):
    with pytest.raises(InputError, match="config: "):
        scattering.fit({}, {"steps": 10})
