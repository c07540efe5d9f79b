import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from sciflow.core.errors import InputError, SciflowError
from sciflow.core.random import randn
from sciflow.core.training import EMA, TrainConfig, Trainer, load_checkpoint

TRUE_W = torch.tensor([[2.0, -1.0, 0.5]])


def sample_batch(g):
    x = randn((32, 3), generator=g)
    return {"x": x, "y": x @ TRUE_W.T + 0.01 * randn((32, 1), generator=g)}


def loss_fn(model, batch, g):
    return ((model(batch["x"]) - batch["y"]) ** 2).mean()


def make(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 16), nn.Tanh(), nn.Linear(16, 1))


def cfg(**kw):
    base = dict(steps=40, lr=1e-2, seed=7, progress=False, ema_decay=0.9, lr_schedule="cosine", warmup_steps=5)
    base.update(kw)
    return TrainConfig(**base)


def _assert_same_weights_and_ema(a, b):
    for p, q in zip(a.model.parameters(), b.model.parameters()):
        assert torch.equal(p, q)
    for p, q in zip(a.ema.shadow, b.ema.shadow):
        assert torch.equal(p, q)


def test_loss_falls_and_history_is_kept():
    tr = Trainer(make(), loss_fn, cfg(steps=200), device="cpu")
    res = tr.fit(sample_batch, log_every=20)
    assert res.steps == 200 and len(res.history) == 10
    assert res.history[-1] < 0.1 * res.history[0]


def test_fused_optimizer_takes_the_same_steps_as_plain_adamw():
    # the trainer fuses AdamW where it can; its updates must equal torch's per-tensor AdamW loop
    tr = Trainer(make(), loss_fn, cfg(lr_schedule="constant", warmup_steps=0, ema_decay=None, weight_decay=0.01, grad_clip=None),
                 device="cpu")
    assert tr.optimizer.defaults.get("fused")
    ref = make()
    opt = torch.optim.AdamW(ref.parameters(), lr=1e-2, betas=tr.config.betas, weight_decay=0.01)
    tr.fit(sample_batch)
    g = torch.Generator().manual_seed(7)  # the trainer's generator: seed + 1_000_003 * rank
    for _ in range(tr.config.steps):
        opt.zero_grad()
        loss_fn(ref, sample_batch(g), g).backward()
        opt.step()
    for a, b in zip(tr.model.parameters(), ref.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tmp_path):
    full = Trainer(make(), loss_fn, cfg(), device="cpu")
    full.fit(sample_batch)
    ck = tmp_path / "ck.pt"
    part = Trainer(make(), loss_fn, cfg(), device="cpu", checkpoint_path=ck)
    part.fit(sample_batch, stop_at=17)
    assert part.step == 17 and ck.is_file()
    resumed = Trainer(make(seed=99), loss_fn, cfg(), device="cpu", checkpoint_path=ck)  # other init: overwritten
    assert resumed.step == 17
    resumed.fit(sample_batch)
    _assert_same_weights_and_ema(full, resumed)


def test_ctrl_c_mid_step_then_resume_gives_the_same_weights(tmp_path):
    """Ctrl-C inside a step (after its batch was drawn) saves a checkpoint that redoes that step on resume."""
    full = Trainer(make(), loss_fn, cfg(), device="cpu")
    full.fit(sample_batch)
    calls = {"n": 0}

    def interrupted_loss(model, batch, g):
        calls["n"] += 1
        if calls["n"] == 12:                    # the forward pass of step 12 (index 11)
            raise KeyboardInterrupt
        return loss_fn(model, batch, g)

    ck = tmp_path / "ck.pt"
    part = Trainer(make(), interrupted_loss, cfg(), device="cpu", checkpoint_path=ck)
    with pytest.raises(KeyboardInterrupt):
        part.fit(sample_batch)
    resumed = Trainer(make(seed=99), loss_fn, cfg(), device="cpu", checkpoint_path=ck)
    assert resumed.step == 11
    resumed.fit(sample_batch)
    _assert_same_weights_and_ema(full, resumed)


@pytest.mark.parametrize("how", ["sigint", "cli-sigint", "cli-sigterm"])
def test_a_signal_during_the_weight_update_resumes_to_the_same_weights(tmp_path, how):
    """A real SIGINT / SIGTERM arriving while the optimiser updates the weights (plain Python handler, or the
    command line's handlers) stops the run only once the step's update is complete, so the checkpoint never
    holds new weights with the old step count (which a resume would update twice)."""
    import signal

    from sciflow.core.interrupts import install_handlers
    full = Trainer(make(), loss_fn, cfg(), device="cpu")
    full.fit(sample_batch, log_every=5)
    ck = tmp_path / "ck.pt"
    part = Trainer(make(), loss_fn, cfg(), device="cpu", checkpoint_path=ck)
    step, calls = part.optimizer.step, {"n": 0}

    def step_then_signal(*a, **k):
        out = step(*a, **k)
        calls["n"] += 1
        if calls["n"] == 12:                     # the weights of step 12 are written; EMA and count are not
            signal.raise_signal(signal.SIGTERM if how == "cli-sigterm" else signal.SIGINT)
        return out

    part.optimizer.step = step_then_signal
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        if how.startswith("cli"):
            install_handlers()
        with pytest.raises(KeyboardInterrupt):
            part.fit(sample_batch, log_every=5)
    finally:
        for s, h in saved.items():
            signal.signal(s, h)
    assert part.step == 12 and signal.getsignal(signal.SIGINT) is saved[signal.SIGINT]
    resumed = Trainer(make(seed=99), loss_fn, cfg(), device="cpu", checkpoint_path=ck)
    assert resumed.step == 12
    res = resumed.fit(sample_batch, log_every=5)
    _assert_same_weights_and_ema(full, resumed)
    assert res.history == full.history                        # step 12's loss logged once, in its window


def test_resuming_a_stream_of_another_device_type_warns_and_goes_on(tmp_path):
    """A CUDA generator's state (16 bytes: seed and offset) cannot seed a CPU generator: a GPU checkpoint resumed on
    a CPU machine continues on a stream derived from seed and step, with a warning, instead of failing."""
    ck = tmp_path / "ck.pt"
    part = Trainer(make(), loss_fn, cfg(), device="cpu", checkpoint_path=ck)
    part.fit(sample_batch, stop_at=10)
    state = torch.load(ck, weights_only=True)
    state["generator"] = torch.zeros(16, dtype=torch.uint8)
    torch.save(state, ck)
    with pytest.warns(UserWarning, match="another device type"):
        resumed = Trainer(make(), loss_fn, cfg(), device="cpu", checkpoint_path=ck)
    assert resumed.step == 10
    res = resumed.fit(sample_batch)
    assert res.steps == 40 and torch.isfinite(torch.tensor(res.final_loss))


def test_checkpoint_holds_provenance_and_loads_weights_only(tmp_path):
    ck = tmp_path / "ck.pt"
    Trainer(make(), loss_fn, cfg(steps=3), device="cpu", checkpoint_path=ck,
            run_config={"dataset": "toy", "path": tmp_path}).fit(sample_batch)
    d = torch.load(ck, weights_only=True)
    assert d["step"] == 3 and d["seed"] == 7 and d["run_config"]["dataset"] == "toy"
    assert d["versions"]["torch"] == torch.__version__.split("+")[0] or d["versions"]["torch"].startswith("2.")
    assert d["train_config"]["lr_schedule"] == "cosine"
    assert not list(tmp_path.glob("*.tmp"))
    with pytest.raises(InputError, match="checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")


def test_same_seed_same_weights_and_other_seed_differs():
    a = Trainer(make(), loss_fn, cfg(steps=10), device="cpu")
    a.fit(sample_batch)
    b = Trainer(make(), loss_fn, cfg(steps=10), device="cpu")
    b.fit(sample_batch)
    c = Trainer(make(), loss_fn, cfg(steps=10, seed=8), device="cpu")
    c.fit(sample_batch)
    pa, pb, pc = (torch.cat([p.flatten() for p in t.model.parameters()]) for t in (a, b, c))
    assert torch.equal(pa, pb) and not torch.equal(pa, pc)


def test_lr_schedule_warmup_and_cosine():
    t = Trainer(make(), loss_fn, cfg(steps=105, warmup_steps=5, min_lr_ratio=0.1), device="cpu")
    assert t.lr_at(0) == pytest.approx(2e-3)
    assert t.lr_at(4) == pytest.approx(1e-2)
    assert t.lr_at(55) == pytest.approx(1e-2 * (0.1 + 0.9 * 0.5))
    assert t.lr_at(105) == pytest.approx(1e-3)


def test_ema_is_the_exponential_average():
    m = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        m.weight.fill_(0.0)
    ema = EMA(m, decay=0.5)
    values = [1.0, 2.0, 3.0]
    expected = 0.0
    for n, v in enumerate(values, 1):
        with torch.no_grad():
            m.weight.fill_(v)
        ema.update(m)
        d = min(0.5, (1 + n) / (10 + n))
        expected = d * expected + (1 - d) * v
    assert float(ema.shadow[0]) == pytest.approx(expected)
    with ema.applied(m):
        assert float(m.weight.detach()) == pytest.approx(expected)
    assert float(m.weight.detach()) == 3.0


def test_non_finite_loss_stops_with_a_checkpoint(tmp_path):
    bad = lambda model, batch, g: model(batch["x"]).sum() * float("nan")
    t = Trainer(make(), bad, cfg(steps=5), device="cpu", checkpoint_path=tmp_path / "c.pt")
    with pytest.raises(SciflowError, match="loss is nan at step 0"):
        t.fit(sample_batch)
    assert (tmp_path / "c.pt").is_file()


def test_bad_config_values():
    with pytest.raises(InputError, match="lr"):
        TrainConfig(lr=0.0)
    for kwargs, field in (({"min_lr_ratio": -1.0}, "min_lr_ratio"), ({"min_lr_ratio": 3.0}, "min_lr_ratio"),
                          ({"warmup_steps": -5}, "warmup_steps"), ({"steps": 2.5}, "steps"),
                          ({"betas": (1.5, 0.9)}, r"betas\[0\]"), ({"checkpoint_every": -1}, "checkpoint_every")):
        with pytest.raises(InputError, match=field):   # a negative min_lr_ratio was gradient ascent
            TrainConfig(**kwargs)
    with pytest.raises(InputError, match="amp"):
        TrainConfig(amp="fp8")
    with pytest.raises(InputError, match="lr_schedule"):
        TrainConfig(lr_schedule="step")


def test_resume_refuses_other_settings_and_files_that_are_not_checkpoints(tmp_path):
    ck = tmp_path / "c.pt"
    Trainer(make(), loss_fn, cfg(steps=10), device="cpu", checkpoint_path=ck, run_config={"hidden": 16}).fit(
        sample_batch, stop_at=5)
    for kwargs, run, field in (({"weight_decay": 0.05}, {"hidden": 16}, "train.weight_decay"),
                               ({"seed": 9}, {"hidden": 16}, "train.seed"), ({}, {"hidden": 32}, "run.hidden")):
        with pytest.raises(InputError, match=f"made with other settings \\({field}\\)"):
            Trainer(make(), loss_fn, cfg(steps=10, **kwargs), device="cpu", checkpoint_path=ck, run_config=run)
    # progress bars and checkpoint frequency may change between the halves of a run
    Trainer(make(), loss_fn, cfg(steps=10, checkpoint_every=2), device="cpu", checkpoint_path=ck,
            run_config={"hidden": 16})
    torch.save(make().state_dict(), tmp_path / "weights.pt")
    with pytest.raises(InputError, match="not a training checkpoint"):
        Trainer(make(), loss_fn, cfg(steps=10), device="cpu", checkpoint_path=tmp_path / "weights.pt")


def test_a_split_run_logs_the_same_history(tmp_path):
    whole = Trainer(make(), loss_fn, cfg(steps=40), device="cpu")
    a = whole.fit(sample_batch, log_every=10).history
    first = Trainer(make(), loss_fn, cfg(steps=40), device="cpu", checkpoint_path=tmp_path / "c.pt")
    first.fit(sample_batch, stop_at=17, log_every=10)              # the window of steps 10-17 is checkpointed
    b = Trainer(make(), loss_fn, cfg(steps=40), device="cpu", checkpoint_path=tmp_path / "c.pt").fit(
        sample_batch, log_every=10).history
    assert a == b and len(a) == 4


def _nan_gradient_loss(at_call):
    """A finite loss whose gradient is NaN at the ``at_call``-th call (sqrt at 0: coincident points)."""
    calls = {"n": 0}

    def loss(model, batch, g):
        calls["n"] += 1
        value = loss_fn(model, batch, g)
        if calls["n"] == at_call:
            w = model[0].weight
            value = value + torch.sqrt((w - w.detach()).pow(2).sum())
        return value
    return loss


@pytest.mark.parametrize("grad_clip", [1.0, None])
def test_a_non_finite_gradient_stops_before_the_step_and_keeps_finite_weights(tmp_path, grad_clip):
    """A finite loss with a NaN gradient made every weight NaN at the optimiser step; the next step's NaN loss
    then overwrote the last good checkpoint with them. Now the step is refused before any weight changes."""
    ck = tmp_path / "c.pt"
    t = Trainer(make(), _nan_gradient_loss(6), cfg(steps=20, checkpoint_every=2, grad_clip=grad_clip),
                device="cpu", checkpoint_path=ck)
    with pytest.raises(SciflowError, match="gradient norm is nan at step 5 .*step was not taken"):
        t.fit(sample_batch)
    assert t.step == 5 and all(bool(torch.isfinite(p).all()) for p in t.model.parameters())
    state = load_checkpoint(ck)
    assert state["step"] == 5
    assert all(bool(torch.isfinite(v).all()) for v in state["model"].values())
    assert all(bool(torch.isfinite(v).all()) for v in state["ema"]["shadow"])


def test_non_finite_weights_never_overwrite_the_last_checkpoint(tmp_path):
    ck = tmp_path / "c.pt"
    calls = {"n": 0}

    def corrupting_loss(model, batch, g):      # the weights themselves go NaN inside the 8th step (index 7)
        calls["n"] += 1
        if calls["n"] == 8:
            with torch.no_grad():
                model[0].weight.fill_(float("nan"))
        return loss_fn(model, batch, g)
    t = Trainer(make(), corrupting_loss, cfg(steps=20, checkpoint_every=3), device="cpu", checkpoint_path=ck)
    with pytest.raises(SciflowError, match=r"loss is nan at step 7; the weights are not finite, so the checkpoint "
                                           r"of step 6 at .* is kept"):
        t.fit(sample_batch)
    state = load_checkpoint(ck)
    assert state["step"] == 6 and all(bool(torch.isfinite(v).all()) for v in state["model"].values())


def test_a_run_stopped_on_a_non_finite_gradient_resumes_with_a_lower_lr(tmp_path):
    """The error advises a lower lr or grad_clip: resuming with either is accepted (with a warning)."""
    ck = tmp_path / "c.pt"
    with pytest.raises(SciflowError, match="gradient norm"):
        Trainer(make(), _nan_gradient_loss(4), cfg(steps=10), device="cpu", checkpoint_path=ck).fit(sample_batch)
    with pytest.warns(UserWarning, match=r"lr=0.001 \(was 0.01\), grad_clip=0.5 \(was 1.0\)"):
        t = Trainer(make(), loss_fn, cfg(steps=10, lr=1e-3, grad_clip=0.5), device="cpu", checkpoint_path=ck)
    assert t.step == 3
    assert t.fit(sample_batch).steps == 10
    assert load_checkpoint(ck)["train_config"]["lr"] == 1e-3


def test_averaged_model_then_fit_continues_from_the_training_weights(tmp_path):
    """averaged_model() copies the EMA weights in (what the methods save); a later fit() went on from them."""
    whole = Trainer(make(), loss_fn, cfg(steps=20), device="cpu")
    whole.fit(sample_batch)
    t = Trainer(make(), loss_fn, cfg(steps=20), device="cpu", checkpoint_path=tmp_path / "c.pt")
    t.fit(sample_batch, stop_at=8)
    averaged = t.averaged_model()
    for p, s in zip(averaged.parameters(), t.ema.shadow):
        assert torch.equal(p, s)
    t.averaged_model()                            # twice: still the training weights kept aside
    t.save()                                      # a checkpoint holds the training weights, not the average
    for p, s in zip(t.model.parameters(), t.ema.shadow):   # and save() leaves the average in the model
        assert torch.equal(p, s)
    resumed = Trainer(make(), loss_fn, cfg(steps=20), device="cpu", checkpoint_path=tmp_path / "c.pt")
    for p, s in zip(resumed.model.parameters(), t.ema.shadow):
        assert not torch.equal(p, s)
    t.fit(sample_batch)
    resumed.fit(sample_batch)
    _assert_same_weights_and_ema(whole, t)
    _assert_same_weights_and_ema(whole, resumed)


def test_logs_returned_beside_the_loss_are_averaged_per_window(tmp_path):
    def logged(model, batch, g):
        value = loss_fn(model, batch, g)
        return value, {"double": 2 * value.detach(), "one": 1, "text": "ignored"}
    res = Trainer(make(), logged, cfg(steps=20), device="cpu").fit(sample_batch, log_every=5)
    assert len(res.logs) == len(res.history) == 4
    for h, logs in zip(res.history, res.logs):
        assert logs["double"] == pytest.approx(2 * h) and logs["one"] == 1.0 and "text" not in logs
    Trainer(make(), logged, cfg(steps=20), device="cpu", checkpoint_path=tmp_path / "c.pt").fit(
        sample_batch, stop_at=7, log_every=5)
    split = Trainer(make(), logged, cfg(steps=20), device="cpu", checkpoint_path=tmp_path / "c.pt").fit(
        sample_batch, log_every=5)
    assert split.logs == res.logs and split.history == res.history


# -- DDP: two gloo ranks on halves of a batch give the single-process gradient on the whole batch ---------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world: int, port: int, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(rank),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(8, 3, generator=g)
    y = torch.randn(8, 1, generator=g)
    half = slice(rank * 4, rank * 4 + 4)
    batches = lambda gen: {"x": x[half], "y": y[half]}
    trainer = Trainer(make(), loss_fn, cfg(steps=1, grad_clip=None, ema_decay=None, lr=0.1, warmup_steps=0,
                                          lr_schedule="constant"), device="cpu")
    assert dist.is_initialized() and dist.get_world_size() == world
    trainer.fit(batches)
    if rank == 0:
        torch.save({k: v.detach() for k, v in trainer.model.state_dict().items()}, os.path.join(out_dir, "ddp.pt"))
    # both ranks reach this point before either tears the group down: a rank that destroys its gloo group while
    # the other still talks to it can abort the other ("terminate called without an active exception")
    dist.barrier()
    dist.destroy_process_group()


def test_ddp_two_gloo_ranks_match_single_process(tmp_path):
    mp.spawn(_ddp_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(8, 3, generator=g), torch.randn(8, 1, generator=g)
    single = Trainer(make(), loss_fn, cfg(steps=1, grad_clip=None, ema_decay=None, lr=0.1, warmup_steps=0,
                                          lr_schedule="constant"), device="cpu")
    single.fit(lambda gen: {"x": x, "y": y})
    ddp = torch.load(tmp_path / "ddp.pt", weights_only=True)
    for k, v in single.model.state_dict().items():
        torch.testing.assert_close(ddp[k], v, atol=1e-6, rtol=1e-5)


def _ddp_resume_worker(rank: int, world: int, port: int, out_dir: str, mode: str) -> None:
    """mode "whole": 8 steps; "split": 4 steps, then a new trainer resumes to 8; "nan": rank 1's loss is NaN at
    step 2 (both ranks must stop, not hang)."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(rank),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    c = cfg(steps=8, grad_clip=None, warmup_steps=0, lr_schedule="constant")
    ck = os.path.join(out_dir, f"{mode}.pt")
    try:
        if mode == "nan":
            count = [0]

            def loss(model, batch, g):
                count[0] += 1
                value = loss_fn(model, batch, g)
                return value * float("nan") if (rank == 1 and count[0] == 3) else value
            try:
                Trainer(make(), loss, c, device="cpu", checkpoint_path=ck).fit(sample_batch)
            except SciflowError as e:
                with open(os.path.join(out_dir, f"nan{rank}.txt"), "w") as f:
                    f.write(str(e))
        else:
            trainer = Trainer(make(), loss_fn, c, device="cpu", checkpoint_path=ck)
            trainer.fit(sample_batch, stop_at=4 if mode == "split" else None)
            if mode == "split":
                trainer = Trainer(make(), loss_fn, c, device="cpu", checkpoint_path=ck)
                trainer.fit(sample_batch)
            if rank == 0:
                torch.save(trainer.model.state_dict(), os.path.join(out_dir, f"{mode}_w.pt"))
    finally:
        dist.barrier()
        dist.destroy_process_group()


def test_ddp_resume_equals_an_uninterrupted_run_and_a_nan_on_one_rank_stops_both(tmp_path):
    """Each rank's random streams are gathered into the checkpoint (only rank 0's were, so a resumed 2-rank run
    drifted), and a non-finite loss on one rank stops every rank (the others waited in the all-reduce forever)."""
    for mode in ("whole", "split", "nan"):
        mp.spawn(_ddp_resume_worker, args=(2, _free_port(), str(tmp_path), mode), nprocs=2, join=True)
    whole = torch.load(tmp_path / "whole_w.pt", weights_only=True)
    split = torch.load(tmp_path / "split_w.pt", weights_only=True)
    for k in whole:
        assert torch.equal(whole[k], split[k]), k
    assert "loss is nan at step 2" in (tmp_path / "nan1.txt").read_text()
    assert "not finite on another rank" in (tmp_path / "nan0.txt").read_text()
