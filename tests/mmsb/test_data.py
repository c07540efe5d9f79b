"""Snapshot data: npz (dense and ragged), CSV and h5ad readers, standardisation, the simulator, and bad input
rejected before any work, with the field named."""
import math

import h5py
import numpy as np
import pytest
import torch

from sciflow.core.errors import InputError
from sciflow.data.snapshots import read_snapshots, write_snapshot_csv, write_snapshot_npz
from sciflow.domains.cells import (
    AdditiveNoise,
    LotkaVolterra,
    MultiplicativeNoise,
    Snapshots,
    Standardizer,
    simulate_snapshots,
)
from sciflow.methods.mmsb import MMSB


def _ragged() -> Snapshots:
    g = torch.Generator().manual_seed(0)
    return Snapshots.from_arrays([torch.randn(n, 3, generator=g, dtype=torch.float64) + k
                                  for k, n in enumerate((30, 45, 20, 37))], [0.0, 0.5, 1.5, 2.0])


def test_npz_and_csv_round_trips_dense_and_ragged(tmp_path):
    ragged = _ragged()
    dense = Snapshots.from_arrays(np.random.default_rng(0).normal(size=(3, 10, 2)), [0.0, 1.0, 2.0])
    for snaps, name in ((ragged, "ragged"), (dense, "dense")):
        for suffix, write in ((".npz", write_snapshot_npz), (".csv", write_snapshot_csv)):
            back = read_snapshots(write(tmp_path / f"{name}{suffix}", snaps))
            assert back.sizes == snaps.sizes
            torch.testing.assert_close(back.times, snaps.times)
            for a, b in zip(back.samples, snaps.samples):
                torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    z = np.load(tmp_path / "dense.npz")
    assert z["Xs"].shape == (3, 10, 2) and z["dts"].shape == (3,)   # the benchmark files' layout


def test_h5ad_reader_on_a_tiny_file(tmp_path):
    """anndata's on-disk layout written with h5py: X dense, obs/day categorical ("day 0", "day 2", ...),
    obs/t numeric, obsm/X_pca."""
    rng = np.random.default_rng(1)
    n, genes = 60, 6
    days = np.repeat([0, 1, 2], 20)
    x = rng.normal(size=(n, genes)) + days[:, None]
    path = tmp_path / "tiny.h5ad"
    with h5py.File(path, "w") as f:
        f.create_dataset("X", data=x)
        obs = f.create_group("obs")
        obs.attrs["encoding-type"] = "dataframe"
        obs.attrs["_index"] = "_index"
        obs.create_dataset("_index", data=np.array([f"c{i}" for i in range(n)], dtype="S"))
        day = obs.create_group("day")
        day.attrs["encoding-type"] = "categorical"
        day.create_dataset("codes", data=days.astype(np.int8))
        day.create_dataset("categories", data=np.array(["day 0", "day 2", "day 5"], dtype="S"))
        obs.create_dataset("t", data=days.astype(np.float64) * 0.5)
        f.create_group("obsm").create_dataset("X_pca", data=x[:, :4] * 2)
    s = read_snapshots(path, time_key="day")
    assert s.times.tolist() == [0.0, 2.0, 5.0] and s.sizes == [20, 20, 20] and s.dim == genes
    torch.testing.assert_close(s.samples[1], torch.as_tensor(x[20:40]))
    s2 = read_snapshots(path, time_key="t", use_rep="X_pca", n_components=2)
    assert s2.times.tolist() == [0.0, 0.5, 1.0] and s2.dim == 2
    torch.testing.assert_close(s2.samples[0], torch.as_tensor(x[:20, :2] * 2))
    s3 = read_snapshots(path, time_key="day", pca=2)
    assert s3.dim == 2
    with pytest.raises(InputError, match="time_key"):
        read_snapshots(path, time_key="age")
    # time_map applies to plain columns too; a hyphen inside a label is not a minus sign
    with h5py.File(path, "a") as f:
        f["obs"].create_dataset("batch", data=np.array([f"{d + 1}" for d in days], dtype="S"))
        f["obs"].create_dataset("sample", data=(days + 1).astype(np.int64))
        lab = f["obs"].create_group("stage")
        lab.attrs["encoding-type"] = "categorical"
        lab.create_dataset("codes", data=days.astype(np.int8))
        lab.create_dataset("categories", data=np.array(["t-0", "t-1", "t-2"], dtype="S"))
    for key in ("batch", "sample"):
        assert read_snapshots(path, time_key=key, time_map={"1": 0.0, "2": 7.0, "3": 9.0}).times.tolist() == \
            [0.0, 7.0, 9.0]
    staged = read_snapshots(path, time_key="stage")
    assert staged.times.tolist() == [0.0, 1.0, 2.0]
    torch.testing.assert_close(staged.samples[0], torch.as_tensor(x[:20]))
    # a label with two numbers is ambiguous ("batch2_day0" was read as time 2, reordering the snapshots)
    with h5py.File(path, "a") as f:
        lab = f["obs"].create_group("run")
        lab.attrs["encoding-type"] = "categorical"
        lab.create_dataset("codes", data=days.astype(np.int8))
        lab.create_dataset("categories", data=np.array(["b2_day0", "b1_day4", "b3_day9"], dtype="S"))
    with pytest.raises(InputError, match="'b2_day0' holds several numbers"):
        read_snapshots(path, time_key="run")
    assert read_snapshots(path, time_key="run", time_map={"b2_day0": 0, "b1_day4": 4, "b3_day9": 9}).times.tolist() \
        == [0.0, 4.0, 9.0]


def test_standardizer_round_trip_and_moments():
    snaps = _ragged()
    st = Standardizer.fit(snaps)
    z = st.transform_snapshots(snaps)
    allz, _ = z.stacked()
    torch.testing.assert_close(allz.mean(0), torch.zeros(3, dtype=torch.float64), atol=1e-12, rtol=0)
    torch.testing.assert_close(allz.std(0, unbiased=False), torch.ones(3, dtype=torch.float64))
    for a, b in zip(snaps.samples, z.samples):
        torch.testing.assert_close(st.inverse(b), a)


@pytest.mark.parametrize("fit_dim, data_dim", [(3, 1), (1, 3)])
def test_a_standardizer_of_another_dimension_is_refused_not_broadcast(fit_dim, data_dim):
    from sciflow.core.trajectory import Trajectory
    from sciflow.domains.cells import SnapshotAdapter
    g = torch.Generator().manual_seed(3)
    fit = Snapshots.from_arrays([torch.randn(10, fit_dim, generator=g), torch.randn(12, fit_dim, generator=g)], [0, 1])
    data = Snapshots.from_arrays([torch.randn(10, data_dim, generator=g), torch.randn(12, data_dim, generator=g)],
                                 [0, 1])
    st = Standardizer.fit(fit)
    msg = f"{data_dim} dimensions.*standardizer {fit_dim}"
    with pytest.raises(InputError, match=msg):
        SnapshotAdapter(st).encode(data)
    with pytest.raises(InputError, match=msg):
        st.transform(torch.zeros(4, data_dim))
    with pytest.raises(InputError, match=msg):
        st.inverse(torch.zeros(4, data_dim))
    with pytest.raises(InputError, match=f"traj.states: last axis has {data_dim} dimensions.*standardizer {fit_dim}"):
        SnapshotAdapter(st).decode(Trajectory(torch.linspace(0, 1, 2), torch.zeros(2, 4, data_dim)))
    assert SnapshotAdapter(st).encode(fit)["snapshot_points"].shape == (22, fit_dim)


def test_simulator_follows_the_ode_when_noise_is_small_and_draws_fresh_particles():
    lv = LotkaVolterra(1.0, 0.4, 0.4, 0.1).double()
    g = torch.Generator().manual_seed(2)
    snaps = simulate_snapshots(lv, MultiplicativeNoise(1e-4), times=[0.0, 1.0, 2.0], n=[5, 6, 7],
                               box=([5.0, 4.0], [5.0, 4.0]), dt=0.005, generator=g)
    assert snaps.sizes == [5, 6, 7]
    # the noise-free flow of the point (5, 4) by a fine RK4 integration
    x, h = torch.tensor([[5.0, 4.0]], dtype=torch.float64), 0.004
    for _ in range(500):
        k1 = lv(x); k2 = lv(x + h / 2 * k1); k3 = lv(x + h / 2 * k2); k4 = lv(x + h * k3)
        x = x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    torch.testing.assert_close(snaps.samples[2].mean(0), x[0], atol=5e-3, rtol=0)
    # additive Brownian motion: variance sigma^2 t
    bm = simulate_snapshots(lambda z: torch.zeros_like(z), AdditiveNoise(0.5), times=[0.0, 2.0], n=4000,
                            box=([0.0], [0.0]), generator=g)
    assert abs(float(bm.samples[1].var()) - 0.5) < 0.05


def test_fit_on_ragged_snapshots_paths_visit_every_snapshot():
    snaps = _ragged()
    model = MMSB(reference="linear", sigma=0.5, noise="additive", rounds=1, n_paths=60, h=0.1)
    model.fit(snaps, seed=0, show_progress=False)
    traj = model.trajectories(60, generator=torch.Generator().manual_seed(0))
    rows = traj.extras["snapshot_rows"]
    assert rows.shape == (60, 4) and all(int(rows[:, k].max()) < n for k, n in enumerate(snaps.sizes))
    for k, t in enumerate(snaps.times.tolist()):
        i = int(torch.argmin((traj.times - t).abs()))
        torch.testing.assert_close(traj.states[i], snaps.samples[k][rows[:, k]])


@pytest.mark.parametrize("samples, times, field", [
    ([np.zeros((5, 2))], [0.0], "snapshots"),                                   # one snapshot
    ([np.zeros((5, 2)), np.ones((5, 2))], [1.0, 1.0], "times"),                 # not increasing
    ([np.zeros((5, 2)), np.ones((5, 2)), np.ones((5, 2))], [0.0, 2.0, 1.0], "times"),
    ([np.zeros((5, 2)), np.full((5, 2), np.nan)], [0.0, 1.0], r"snapshot\[1\]"),  # NaN
    ([np.zeros((5, 2)), np.ones((5, 3))], [0.0, 1.0], r"snapshot\[1\]"),          # mismatched dims
    ([np.zeros((5, 2)), np.ones((5, 2))], [0.0, math.inf], "times"),
    ([np.zeros((5, 2)), np.ones((5, 2))], [0.0], "times"),                       # count mismatch
])
def test_bad_snapshots_are_rejected_naming_the_field(samples, times, field):
    with pytest.raises(InputError, match=field):
        Snapshots.from_arrays(samples, times)


def test_bad_model_settings_and_mismatched_data_fail_before_work(tmp_path):
    for kwargs, field in (({"reference": "spline"}, "reference"), ({"sigma": -1.0}, "sigma"),
                          ({"sigma": "big"}, "sigma"), ({"noise": "pink"}, "noise"), ({"rounds": -1}, "rounds"),
                          ({"n_paths": 0}, "n_paths"), ({"init": "magic"}, "init")):
        with pytest.raises(InputError, match=field):
            MMSB(**kwargs)
    with pytest.raises(InputError, match="lotka_volterra needs 2-D"):
        MMSB(reference="lotka_volterra", dim=3)
    with pytest.raises(InputError, match="dimension"):
        MMSB(reference="linear", dim=2).fit(_ragged())
    with pytest.raises(InputError, match="snapshots"):
        MMSB(reference="linear").fit(np.zeros((3, 10, 2)))
    # abundance models refuse negative values (standardised data) and 'auto' sigma needs some spread
    rng = np.random.default_rng(0)
    centred = Snapshots.from_arrays([rng.normal(size=(6, 2)) for _ in range(3)], [0.0, 1.0, 2.0])
    with pytest.raises(InputError, match="lotka_volterra models non-negative"):
        MMSB(reference="lotka_volterra", rounds=1).fit(centred, show_progress=False)
    same = Snapshots.from_arrays([np.ones((4, 2))] * 3, [0.0, 1.0, 2.0])
    with pytest.raises(InputError, match="sigma: 'auto'"):
        MMSB(reference="linear", sigma="auto", rounds=1).fit(same, show_progress=False)
    with pytest.raises(InputError, match="data"):
        read_snapshots(tmp_path / "missing.npz")
    np.savez(tmp_path / "bad.npz", Xs=np.zeros((3, 4)), dts=np.arange(3.0))
    with pytest.raises(InputError, match="Xs"):
        read_snapshots(tmp_path / "bad.npz")


def test_csv_with_a_byte_order_mark_reads(tmp_path):
    snaps = _ragged()
    path = write_snapshot_csv(tmp_path / "s.csv", snaps)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert read_snapshots(path).sizes == snaps.sizes


def test_start_population_is_not_the_first_rows_and_a_refit_drops_the_old_bridge():
    """predict(n < N0) draws its start from the whole first snapshot (files are often sorted), whole copies
    first; a second fit on other data forgets the bridge drift fitted to the first."""
    x0 = np.concatenate([np.zeros((50, 2)), np.full((50, 2), 10.0)])
    snaps = Snapshots.from_arrays([x0, x0 + 1.0], [0.0, 1.0])
    model = MMSB(reference="linear", sigma=0.5, noise="additive", rounds=1, n_paths=40, h=0.1)
    model.fit(snaps, seed=0, show_progress=False)
    part = model.start_population(40, torch.Generator().manual_seed(0))
    assert 2.0 < float(part.mean()) < 8.0 and len({tuple(r) for r in part.tolist()}) == 2
    assert torch.equal(model.start_population(100), torch.as_tensor(x0))         # whole copy, in order
    g = torch.Generator().manual_seed(5)
    state = g.get_state()
    model.start_population(200, g)                   # whole copies only: the stream is left to the dynamics
    assert torch.equal(g.get_state(), state)
    model._bridge_fitted = True
    model.fit(snaps, seed=0, show_progress=False)
    assert not model._bridge_fitted
    with pytest.raises(InputError, match="dt: must be > 0"):
        model.predict([0.5], 10, dt=-0.1)


def test_npz_errors_name_the_file_and_its_own_keys(tmp_path):
    """A bad time array is reported under the key the file uses ('dts'), with the file's path."""
    bad = tmp_path / "bad.npz"
    np.savez(bad, Xs=np.zeros((3, 4, 2)), dts=np.array([0.0, 2.0, 1.0]))
    with pytest.raises(InputError, match=r"bad\.npz: 'dts': must be strictly increasing"):
        read_snapshots(bad)
    np.savez(bad, Xs=np.full((3, 4, 2), np.nan), dts=np.array([0.0, 1.0, 2.0]))
    with pytest.raises(InputError, match=r"bad\.npz: snapshot\[0\]: holds 8 NaN"):
        read_snapshots(bad)


def test_bridge_predictions_check_their_times_before_training_the_bridge_drift():
    rng = np.random.default_rng(0)
    snaps = Snapshots.from_arrays([rng.normal(size=(20, 2)) + k for k in range(3)], [0.0, 1.0, 2.0])
    model = MMSB(reference="zero", sigma=0.1, noise="additive", rounds=0, n_paths=20)
    model.fit(snaps, show_progress=False)
    for times, msg in (([9.0], "only defined up to the last snapshot"), ([float("nan")], "finite"),
                       ([-1.0], "start from the first snapshot")):
        with pytest.raises(InputError, match=msg):
            model.predict(times, 10, dynamics="bridge")
        assert not model._bridge_fitted                      # no drift trained for a refused call


def test_h5ad_bad_values_are_named_with_the_file(tmp_path):
    """A NaN time marks a cell without a time (dropped); an infinite time and NaN features are errors that name
    the file (before, NaN features surfaced as 'snapshot[0]: ...' with no file, and +inf times were dropped)."""
    def write(name, x, t):
        path = tmp_path / name
        with h5py.File(path, "w") as f:
            f.create_dataset("X", data=np.asarray(x, dtype=np.float64))
            f.create_group("obs").create_dataset("time", data=np.asarray(t, dtype=np.float64))
        return path
    ok = read_snapshots(write("nan_time.h5ad", [[1, 1], [1, 2], [2, 3], [4, 5], [4, 6]], [0.0, 0.0, np.nan, 1.0, 1.0]))
    assert ok.sizes == [2, 2] and ok.times.tolist() == [0.0, 1.0]
    with pytest.raises(InputError, match=r"inf_time\.h5ad.*infinite time"):
        read_snapshots(write("inf_time.h5ad", [[1, 1], [2, 3], [4, 5]], [0.0, np.inf, 1.0]))
    with pytest.raises(InputError, match=r"nan_x\.h5ad.*NaN/inf features"):
        read_snapshots(write("nan_x.h5ad", [[1, np.nan], [2, 3], [4, 5]], [0.0, 0.0, 1.0]), pca=1)
