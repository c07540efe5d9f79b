import io

import pytest
import torch

from sciflow.core.errors import InputError
from sciflow.core.fields import ATOMIC_NUMBERS, BATCH, ENERGY
from sciflow.core.trajectory import Trajectory


def graph_traj(sizes, t=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    n = sum(sizes)
    batch = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
    return Trajectory(torch.linspace(0, 1, t), torch.randn(t, n, 3, generator=g),
                      extras={BATCH: batch, ATOMIC_NUMBERS: torch.randint(1, 9, (n,), generator=g)},
                      step_extras={ENERGY: torch.randn(t, len(sizes), generator=g)})


def test_validation():
    with pytest.raises(InputError, match="times"):
        Trajectory(torch.zeros(2, 2), torch.zeros(2, 3, 1))
    with pytest.raises(InputError, match="first axis"):
        Trajectory(torch.zeros(3), torch.zeros(2, 3, 1))
    with pytest.raises(InputError, match="step_extras"):
        Trajectory(torch.zeros(2), torch.zeros(2, 3, 1), step_extras={"e": torch.zeros(3)})


def test_frames_rows_and_properties():
    tr = Trajectory(torch.arange(5.0), torch.arange(5 * 4 * 2.0).reshape(5, 4, 2), extras={"c": torch.arange(4)},
                    step_extras={"e": torch.arange(5.0)[:, None].expand(5, 4)})
    assert tr.n_frames == 5 and tr.n_rows == 4 and tr.n_samples == 4
    torch.testing.assert_close(tr.last, tr.states[-1])
    sub = tr.frames(slice(1, 3))
    assert sub.n_frames == 2 and sub.step_extras["e"].shape == (2, 4)
    assert tr.frames(-1).times.tolist() == [4.0]
    r = tr.rows([3, 0])
    assert r.extras["c"].tolist() == [3, 0]
    torch.testing.assert_close(r.states[:, 0], tr.states[:, 3])


def test_graph_samples_and_cat_round_trip():
    a, b = graph_traj([3, 5]), graph_traj([4], seed=1)
    c = Trajectory.cat([a, b])
    assert c.n_samples == 3 and c.n_rows == 12
    assert c.extras[BATCH].tolist() == [0] * 3 + [1] * 5 + [2] * 4
    assert c.step_extras[ENERGY].shape == (4, 3)
    back = c.samples([2])
    torch.testing.assert_close(back.states, b.states)
    assert back.extras[BATCH].tolist() == [0] * 4
    torch.testing.assert_close(back.step_extras[ENERGY], b.step_extras[ENERGY])
    swapped = c.samples([1, 0])
    torch.testing.assert_close(swapped.states[:, :5], a.states[:, 3:])
    assert swapped.extras[BATCH].tolist() == [0] * 5 + [1] * 3
    with pytest.raises(InputError, match="times"):
        Trajectory.cat([a, graph_traj([2], t=3)])


def test_cat_keeps_global_extras_once_and_stacks_single_sample_step_extras():
    box = torch.tensor([10.0, 11.0, 12.0])                       # global: first axis 3 != B = 2
    a = Trajectory(torch.zeros(1), torch.zeros(1, 2, 3), extras={"box": box, "c": torch.tensor([1, 2])})
    b = Trajectory(torch.zeros(1), torch.ones(1, 2, 3), extras={"box": box.clone(), "c": torch.tensor([3, 4])})
    c = Trajectory.cat([a, b])
    assert c.extras["box"].tolist() == [10.0, 11.0, 12.0] and c.extras["c"].tolist() == [1, 2, 3, 4]
    assert c.rows([3]).extras["box"].tolist() == [10.0, 11.0, 12.0]
    with pytest.raises(InputError, match="box"):
        Trajectory.cat([a, Trajectory(torch.zeros(1), torch.ones(1, 2, 3),
                                      extras={"box": box + 1, "c": torch.tensor([3, 4])})])
    # one molecule each, energy (T,): the result holds one column per molecule
    def one(e):
        return Trajectory(torch.tensor([0.0, 1.0]), torch.zeros(2, 3, 3),
                          extras={BATCH: torch.zeros(3, dtype=torch.long)}, step_extras={ENERGY: torch.tensor(e)})

    m = Trajectory.cat([one([1.0, 2.0]), one([3.0, 4.0])])
    assert m.n_samples == 2 and m.step_extras[ENERGY].tolist() == [[1.0, 3.0], [2.0, 4.0]]
    torch.testing.assert_close(m.samples([1]).step_extras[ENERGY], torch.tensor([[3.0], [4.0]]))


def test_to_and_weights_only_state_dict():
    tr = graph_traj([2, 3])
    tr = Trajectory(tr.times, tr.states, tr.extras, tr.step_extras, info={"solver": "rk4", "nfe": 8})
    d = tr.to(dtype=torch.float64)
    assert d.states.dtype == torch.float64 and d.extras[BATCH].dtype == torch.int64
    buf = io.BytesIO()
    torch.save(tr.state_dict(), buf)
    buf.seek(0)
    back = Trajectory.from_state_dict(torch.load(buf, weights_only=True))
    assert torch.equal(back.states, tr.states) and back.info == {"solver": "rk4", "nfe": 8}


def test_index_checks_and_cat_time_tolerance():
    a = graph_traj([3, 5])
    with pytest.raises(IndexError, match="frame 4"):          # was an empty trajectory
        a.frames(4)
    with pytest.raises(IndexError, match="frame -5"):
        a.frames(-5)
    torch.testing.assert_close(a.frames(-4).states, a.states[:1])
    with pytest.raises(InputError, match="repeated"):          # [1, 1] left sample 0 without rows
        a.samples([1, 1])
    with pytest.raises(IndexError, match="out of range"):
        a.samples([2])
    torch.testing.assert_close(a.samples([-1]).states, a.samples([1]).states)
    b = graph_traj([2], seed=1)
    shifted = Trajectory(b.times + 1e-3, b.states, extras=b.extras, step_extras=b.step_extras)
    with pytest.raises(InputError, match="times"):             # a shift of 1e-3 on a step of 1/3
        Trajectory.cat([a, shifted])
    big = Trajectory(a.times * 1000, a.states, extras=a.extras, step_extras=a.step_extras)
    big_b = Trajectory(b.times * 1000 + 0.009, b.states, extras=b.extras, step_extras=b.step_extras)
    with pytest.raises(InputError, match="times"):             # allclose's relative 1e-5 let 1000 vs 1000.009 pass
        Trajectory.cat([big, big_b])
    rounded = Trajectory(b.times.double().float(), b.states, extras=b.extras, step_extras=b.step_extras)
    assert Trajectory.cat([a, rounded]).n_samples == 3


def test_numpy_scalars_in_info_keep_their_values():
    import numpy as np
    tr = Trajectory(torch.arange(2.0), torch.zeros(2, 1, 3), info={"steps": np.int64(20), "loss": np.float32(0.5),
                                                                   "ok": np.bool_(True)})
    buf = io.BytesIO()
    torch.save(tr.state_dict(), buf)
    buf.seek(0)
    back = Trajectory.from_state_dict(torch.load(buf, weights_only=True))
    assert back.info == {"steps": 20, "loss": 0.5, "ok": True}


def test_rows_with_an_int_keeps_that_one_row():
    """rows(2) indexed the row axis away: (T, B, 3) states became (T, 3), read as 3 rows of one value."""
    import numpy as np
    states = torch.randn(4, 5, 3)
    tr = Trajectory(times=torch.linspace(0, 1, 4), states=states, extras={"atomic_numbers": torch.arange(1, 6)},
                    step_extras={"energy": torch.randn(4, 5)})
    for index in (2, np.int64(2), torch.tensor(2), -3):
        one = tr.rows(index)
        assert one.states.shape == (4, 1, 3) and one.n_rows == 1
        assert torch.equal(one.states[:, 0], states[:, 2])
        assert one.extras["atomic_numbers"].tolist() == [3]
        assert torch.equal(one.step_extras["energy"], tr.step_extras["energy"][:, 2:3])
    assert torch.equal(tr.rows(-1).states[:, 0], states[:, 4])
    for bad in (5, -6):
        with pytest.raises(IndexError, match=f"Trajectory.rows: row {bad} is out of range for 5 rows"):
            tr.rows(bad)
    assert tr.frames(torch.tensor(1)).times.tolist() == [tr.times[1].item()]
