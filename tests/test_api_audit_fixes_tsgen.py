"""API audit fixes (TS-GEN, the method base, ConditionalFlow): bad input is refused by name before any work."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from sciflow.core.errors import InputError, SciflowError
from sciflow.core.random import make_generator
from sciflow.core.training import TrainConfig
from sciflow.methods.flow import ConditionalFlow
from sciflow.methods.tsgen import TSGen
from sciflow.methods.tsgen.refine import XTB_METHODS, refine, refine_guesses

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "datasets" / "reactions" / "examples" / "rxn002918.xyz"


@pytest.fixture(scope="module")
def model() -> TSGen:
    return TSGen.load(ROOT / "models" / "tsgen")


@pytest.fixture(scope="module")
def pair():
    from sciflow.domains.molecules import read_molecules

    frames = read_molecules(EXAMPLE)
    return frames[0], frames[-1]


def _rotation(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


# 1. the same geometry as reactant and product is no reaction ------------------------------------------
def test_generate_refuses_identical_reactant_and_product(model, pair):
    r, p = pair
    with pytest.raises(InputError, match=r"reaction: reactant and product are the same geometry"):
        model.generate(r, r, n=2)
    # a rotated and shifted copy is still the same geometry
    moved = r.positions @ _rotation(0.7).T + np.array([3.0, -1.0, 2.0])
    with pytest.raises(InputError, match="reactant and product are the same geometry"):
        model.generate((r.numbers, r.positions), (r.numbers, moved), n=1)
    assert model.generate(r, p, n=1, generator=make_generator(0)).states.isfinite().all()


def test_predict_refuses_a_reaction_whose_product_is_its_reactant(model, pair):
    from sciflow.data.reactions import ReactionSet

    r, p = pair
    n = len(r)
    data = ReactionSet(np.array(["ok", "same"]), np.array([0, n, 2 * n]), np.concatenate([r.numbers, r.numbers]),
                       np.concatenate([r.positions, r.positions]), np.concatenate([p.positions, r.positions + 1.0]))
    with pytest.raises(InputError, match="same: reactant and product are the same geometry"):
        model.predict(data, n=1)


# 2. an unknown xTB method is refused before any search ---------------------------------------------------
def test_refine_refuses_unknown_xtb_method(model, pair, monkeypatch):
    from sciflow.domains.molecules import xtb

    def no_search(*a, **k):
        raise AssertionError("a saddle search ran")

    monkeypatch.setattr(xtb, "saddle_search", no_search)
    r, p = pair
    with pytest.raises(InputError, match=r"method: expected one of GFN2-xTB, GFN1-xTB, IPEA1-xTB.*'GFN2-xtb-typo'"):
        refine(model, r, p, n=1, steps=2, method="GFN2-xtb-typo")
    with pytest.raises(InputError, match=r"method: .*did you mean 'GFN2-xTB'"):
        refine_guesses(r.numbers, r.positions[None], steps=1, method="gfn2-xtb")
    with pytest.raises(InputError, match="method: "):
        refine_guesses(r.numbers, r.positions[None], steps=1, method=None)
    assert set(XTB_METHODS) == {"GFN2-xTB", "GFN1-xTB", "IPEA1-xTB"}


def test_xtb_methods_are_the_ones_tblite_takes():
    interface = pytest.importorskip("tblite.interface")
    loader = getattr(interface.Calculator, "_loader", None)
    if not isinstance(loader, dict):
        pytest.skip("tblite does not expose its method table")
    assert set(XTB_METHODS) == set(loader)


# 3. devices: the standard check, before any work ---------------------------------------------------------
def test_tsgen_device_refused_by_name(model, pair, example_reactions_small):
    r, p = pair
    for call in (lambda d: model.generate(r, p, n=1, device=d),
                 lambda d: model.predict(example_reactions_small, n=1, device=d),
                 lambda d: refine(model, r, p, n=1, steps=1, device=d),
                 lambda d: model.sample(model.condition([(r, p)]), 1, device=d)):
        with pytest.raises(InputError, match=r"device: 'gpu' is not a device"):
            call("gpu")
        if not torch.cuda.is_available():
            with pytest.raises(InputError, match=r"device: 'cuda' asked for, but no CUDA device is available"):
                call("cuda")


@pytest.fixture(scope="module")
def example_reactions_small():
    from sciflow.data.reactions import ReactionSet
    from sciflow.domains.molecules import read_molecules

    mols = read_molecules(EXAMPLE)
    n = len(mols[0])
    return ReactionSet(np.array(["rxn002918"]), np.array([0, n]), mols[0].numbers, mols[0].positions,
                       mols[-1].positions, mols[1].positions)


# 4. a saved config with a key this version does not take ------------------------------------------------
def test_load_refuses_unknown_config_key(tmp_path):
    f = ConditionalFlow(2, hidden=(8,), steps=2)
    file = f.save(tmp_path / "flow")
    ck = torch.load(file, weights_only=True)
    ck["config"]["new_option"] = 1
    torch.save(ck, file)
    with pytest.raises(InputError, match=r"model: the config in .*model\.pt has unknown key\(s\) \['new_option'\]"
                                         r".*ConditionalFlow takes dim, cond_dim, hidden"):
        ConditionalFlow.load(file)
    del ck["config"]["new_option"], ck["config"]["dim"]
    torch.save(ck, file)
    with pytest.raises(InputError, match=r"lacks required key\(s\) \['dim'\]"):
        ConditionalFlow.load(file)


def test_tsgen_load_refuses_unknown_config_key(tmp_path):
    ck = torch.load(ROOT / "models" / "tsgen" / "model.pt", weights_only=True)
    ck["config"] = {**ck["config"], "new_option": 1}
    torch.save(ck, tmp_path / "newer.pt")
    with pytest.raises(InputError, match=r"newer\.pt has unknown key\(s\) \['new_option'\].*TSGen takes elements"):
        TSGen.load(tmp_path / "newer.pt")


# 5. fit's config: a TrainConfig, and zero steps train nothing --------------------------------------------
@pytest.mark.parametrize("config", [None, {"steps": 10}, 10])
def test_fit_refuses_a_config_that_is_not_a_trainconfig(config):
    f = ConditionalFlow(2, hidden=(8,), steps=2)
    with pytest.raises(InputError, match=r"config: expected a TrainConfig .*TrainConfig\("):
        f.fit({"x1": torch.randn(20, 2)}, config)
    assert not f.trained


def test_tsgen_fit_refuses_dict_config(example_reactions_small):
    m = TSGen(hidden=8, n_vectors=2, n_layers=1, element_dim=4, time_dim=4, n_rbf=4)
    with pytest.raises(InputError, match=r"config: expected a TrainConfig .*TrainConfig\(\*\*config\)"):
        m.fit(example_reactions_small, {"steps": 1})


def test_fit_of_zero_steps_does_not_mark_trained():
    f = ConditionalFlow(2, hidden=(8,), steps=2)
    f.fit({"x1": torch.randn(20, 2)}, TrainConfig(steps=0, progress=False))
    assert not f.trained
    with pytest.warns(Warning, match="untrained"):
        f.generate(None, 2)
    f.fit({"x1": torch.randn(20, 2)}, TrainConfig(steps=1, progress=False))
    assert f.trained and f.info["train"]["steps"] == 1


# 6. ConditionalFlow layer widths ----------------------------------------------------------------------------
@pytest.mark.parametrize("hidden", [(0,), (-4,), (8, 2.5), (True,), 64, "64"])
def test_flow_refuses_bad_hidden_widths(hidden):
    with pytest.raises(InputError, match="hidden: "):
        ConditionalFlow(2, hidden=hidden)


def test_flow_takes_good_hidden_widths():
    assert ConditionalFlow(2, hidden=[8, np.int64(4)]).config()["hidden"] == [8, 4]
    assert ConditionalFlow(2, hidden=()).config()["hidden"] == []


# 7. refine of a diverging geometry says the samples diverged --------------------------------------------
def test_refine_diverged_samples_error_as_generate(model, pair):
    r, p = pair
    far = ((r.numbers, r.positions * 100), (p.numbers, p.positions * 100))
    with pytest.raises(SciflowError, match="samples diverged") as generate_error:
        model.generate(*far, n=2, generator=make_generator(0))
    with pytest.raises(SciflowError, match="samples diverged") as refine_error:
        refine(model, *far, n=2, steps=1, generator=make_generator(0))
    assert "guesses" not in str(refine_error.value)
    assert str(refine_error.value) == str(generate_error.value)
