"""MMSB: multi-marginal Schrödinger bridges with iterative reference refinement (Shen, Berlinghieri &
Broderick, AISTATS 2025), on the core's couplings, multi-marginal chaining, SDE solvers and trainer.

    model = MMSB(reference="lotka_volterra", sigma=0.02, noise="multiplicative")
    summary = model.fit(snapshots)                # time and per-round history
    model.reference_params        # {"alpha": ..., "beta": ..., "gamma": ..., "delta": ...}
    paths = model.trajectories(500)               # individual trajectories through every snapshot
    pred = model.predict([1.0, 3.0, 5.0], n=1000) # populations at unobserved times
"""
from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ...core.errors import InputError, SciflowError, check_count, check_in_range
from ...core.random import make_generator, randperm, seeded
from ...core.training import progress
from ...core.training.device import check_device
from ...core.trajectory import Trajectory
from ...domains.cells.dynamics import NOISE_MODELS, NoiseModel, make_noise
from ...domains.cells.snapshots import Snapshots, Standardizer
from ..base import Method
from .bridge import BridgeSample, BridgeStep
from .calibrate import calibrate_reference, check_calibration
from .init import shooting_init
from .noise_select import candidate_noises, first_guess, select_noise
from .predict import BridgeDrift, SimulationDiverged, check_times, fit_bridge_drift, simulate
from .references import (
    MECHANISTIC,
    NETWORKS,
    build_reference,
    check_reference_kwargs,
    check_reference_module,
    is_parametric,
    reference_params,
)
from .refine import drift_nll, fit_drift, increments
from .resume import FitCheckpoint, StageLog, fit_fingerprint

__all__ = ["MMSB", "zero_reference_noise"]


def zero_reference_noise(noise: str, sigma: float | str) -> tuple[str, float | str]:
    """The zero reference is a vanilla Schrödinger bridge: a Brownian reference, g = sigma (``noise="auto"``
    means additive here). Its sigma must be given: noise selection scores each candidate by simulating the
    reference alone, and a zero drift reproduces no snapshot at any level, so the scores cannot tell the
    candidates apart."""
    if noise not in ("additive", "auto"):
        raise InputError(f"noise: the zero reference (vanilla Schrödinger bridge) is Brownian, g = sigma; use "
                         f"noise additive (or auto, which means additive here), got {noise!r}")
    if isinstance(sigma, str):
        raise InputError("sigma: the zero reference (vanilla Schrödinger bridge) needs a number (the Brownian "
                         "level in data units per sqrt(time unit), e.g. 0.1), not 'auto': a zero drift "
                         "reproduces no snapshot at any noise level, so the automatic choice cannot rank levels")
    return "additive", sigma


def _vector(drift: nn.Module) -> Tensor:
    return torch.cat([p.detach().reshape(-1) for p in drift.parameters()]) if list(drift.parameters()) \
        else torch.zeros(0, dtype=torch.float64)


def _set_vector(drift: nn.Module, v: Tensor) -> None:
    i = 0
    with torch.no_grad():
        for p in drift.parameters():
            p.copy_(v[i:i + p.numel()].reshape(p.shape))
            i += p.numel()


class MMSB(Method):
    """Trajectories through unpaired snapshots under a reference SDE dX = f_theta(X) dt + g(X) dW whose drift
    is refined from the data.

    Each round: (1) bridge step: a Schrödinger bridge w.r.t. the current reference between every pair of
    adjacent snapshots (entropic OT at temperature 1 under the cost -log p_ref(y | x) of the reference's
    Gaussian transition approximation, then reference bridges between the paired points), chained into
    whole paths; (2) refinement: theta by maximum likelihood (weighted least squares of finite differences)
    along those paths. ``rounds=0`` with ``reference="zero"`` is the vanilla Schrödinger bridge.

    Args:
        reference: ``lotka_volterra``, ``repressilator``, ``linear``, ``mlp_gradient``, ``mlp``, ``zero``, or
            any torch module f_theta mapping (B, d) -> (B, d) row by row (then ``load`` needs it again).
        sigma: noise level of the reference (data units; relative for ``multiplicative``), or ``auto``.
        noise: ``additive`` (g = sigma), ``multiplicative`` (g = sigma |x|, abundances) or ``auto``. With
            ``auto`` (either), the drift is fitted under a first guess, the diffusion is chosen by how well the
            reference SDE reproduces the training snapshots (``noise_select``), and the drift is refitted
            for ``refit_rounds`` more rounds (default max(3, rounds // 2)).
        dim: data dimension (known after ``fit`` otherwise).
        rounds: bridge/refinement rounds (evaluations of the fixed-point map).
        reference_kwargs: initial parameters (``{"alpha": 1.0}``) or network sizes (``{"hidden": [64, 64]}``).
        init: ``auto`` (``shooting`` for mechanistic references, else ``given``), ``shooting``, ``given``.
        accelerate: ``squarem`` (extrapolated fixed-point steps for parametric drifts), ``none``; ``auto``
            picks squarem for parametric references.
        n_paths: bridge paths per round. h: fine time step of bridges (data time units).
        eps: temperature of the static bridge (1: the Schrödinger bridge of the reference).
        max_rows: increments used per refinement (subsampled). sinkhorn_iter: cap on Sinkhorn sweeps.
        net_steps / net_lr / net_batch: AdamW steps, rate and batch of network references per round.
        predict_dt: step of forward simulations (default h / 5).
        calibrate: ``energy``: after the rounds, fit a parametric reference once more against all training
            snapshots at once (energy distance of paths pushed from the first snapshot, ``calibrate.py``);
            ``none``; ``auto`` (default): ``energy`` for mechanistic references. ``energy`` with a zero or
            network reference (or one of more than 64 parameters) is refused here, or when ``fit`` starts.
            calibrate_replicas: paths per starting cell in that fit.
    """

    name = "mmsb"

    def __init__(self, reference: str | nn.Module = "mlp", sigma: float | str = 0.1, *, noise: str = "additive",
                 dim: int | None = None, rounds: int = 8, reference_kwargs: dict[str, Any] | None = None,
                 init: str = "auto", accelerate: str = "auto", n_paths: int = 1000, h: float = 0.01,
                 eps: float = 1.0, max_rows: int = 200_000, sinkhorn_iter: int = 300, lbfgs_iter: int = 100,
                 net_steps: int = 400, net_lr: float = 2e-3, net_batch: int = 4096, predict_dt: float | None = None,
                 shooting_starts: int = 12, refit_rounds: int | None = None, h_lna: float = 0.05,
                 calibrate: str = "auto", calibrate_replicas: int = 4, device: str = "cpu") -> None:
        super().__init__()
        dev = check_device(device)         # a typo or a missing GPU fails here, not at the first tensor moved
        self.custom = isinstance(reference, nn.Module)
        ref_name = "custom" if self.custom else str(reference)
        if not self.custom:
            from .references import REFERENCES
            REFERENCES.get(ref_name)  # unknown names fail here, before any work
        if init not in ("auto", "shooting", "given"):
            raise InputError(f"init: expected auto, shooting or given, got {init!r}")
        if calibrate not in ("auto", "energy", "none"):
            raise InputError(f"calibrate: expected auto, energy or none, got {calibrate!r}")
        if calibrate == "energy":           # not after the rounds: a zero or network reference has nothing to fit
            check_calibration(reference if self.custom else ref_name)
        if int(calibrate_replicas) < 1:
            raise InputError(f"calibrate_replicas: must be >= 1, got {calibrate_replicas}")
        if accelerate not in ("auto", "squarem", "none"):
            raise InputError(f"accelerate: expected auto, squarem or none, got {accelerate!r}")
        if int(rounds) < 0:
            raise InputError(f"rounds: must be >= 0, got {rounds}")
        if int(n_paths) < 1:
            raise InputError(f"n_paths: must be >= 1, got {n_paths}")
        check_in_range("h", h, 0.0, low_open=True)
        check_in_range("eps", eps, 0.0, low_open=True)
        if isinstance(sigma, str) and sigma != "auto":
            raise InputError(f"sigma: expected a number > 0 or 'auto', got {sigma!r}")
        if ref_name == "zero":
            noise, sigma = zero_reference_noise(noise, sigma)
        self.auto_sigma = isinstance(sigma, str)
        self.auto_noise = noise == "auto"
        self.noise: NoiseModel = make_noise("additive" if self.auto_noise else noise,
                                            1.0 if self.auto_sigma else float(sigma))
        self._config = dict(reference=ref_name, sigma=sigma if self.auto_sigma else float(sigma), noise=noise,
                            dim=dim,
                            rounds=int(rounds), reference_kwargs=dict(reference_kwargs or {}), init=init,
                            accelerate=accelerate, n_paths=int(n_paths), h=float(h), eps=float(eps),
                            max_rows=int(max_rows), sinkhorn_iter=int(sinkhorn_iter), lbfgs_iter=int(lbfgs_iter),
                            net_steps=int(net_steps), net_lr=float(net_lr), net_batch=int(net_batch),
                            predict_dt=predict_dt, shooting_starts=int(shooting_starts), refit_rounds=refit_rounds,
                            h_lna=float(h_lna), calibrate=calibrate, calibrate_replicas=int(calibrate_replicas),
                            device=device)
        self.device = dev
        self._reference_module = reference if self.custom else None
        self.snapshots: Snapshots | None = None
        self.standardizer: Standardizer | None = None
        self.history: list[dict[str, Any]] = []
        self.model: nn.Module | None = None
        if dim is not None:
            self._check_reference(int(dim))
            self._build(int(dim))

    # -- construction ------------------------------------------------------------------------------
    def _check_reference(self, dim: int) -> None:
        """A named reference's ``reference_kwargs`` build it for ``dim``-D data, and ``calibrate='energy'`` has 1..64
        parameters to fit: ``InputError`` naming the field, before any work or state file."""
        c = self._config
        if not self.custom:
            check_reference_kwargs(c["reference"], dim, c["reference_kwargs"])
        if c["calibrate"] == "energy":
            check_calibration(self._reference_module if self.custom else c["reference"], dim, c["reference_kwargs"])

    def _build(self, dim: int, standardizer: Standardizer | None = None) -> None:
        if self.custom:
            drift = self._reference_module.to(torch.float64)
        else:
            drift = build_reference(self._config["reference"], dim, standardizer=standardizer,
                                    **dict(self._config["reference_kwargs"]))
        self._config["dim"] = dim
        self.model = nn.ModuleDict({"reference": drift, "bridge": BridgeDrift(max(dim, 1)).double()}).to(self.device)
        self._bridge_fitted = False

    @property
    def reference(self) -> nn.Module:
        """The reference drift module f_theta (data units, float64)."""
        if self.model is None:
            raise SciflowError("MMSB: not fitted yet; call fit(snapshots) first")
        return self.model["reference"]

    @property
    def reference_params(self) -> dict[str, Any]:
        """The fitted reference's parameters in natural units."""
        return reference_params(self.reference)

    @property
    def sigma(self) -> float:
        return self.noise.sigma

    def config(self) -> dict[str, Any]:
        return dict(self._config)

    def diffusion(self, x: Tensor, t: Tensor | None = None) -> Tensor:
        return self.noise(x)

    # -- fitting -----------------------------------------------------------------------------------
    def _check(self, snapshots: Snapshots) -> Snapshots:
        if not isinstance(snapshots, Snapshots):
            raise InputError(f"snapshots: expected a Snapshots object (see sciflow.data.snapshots), "
                             f"got {type(snapshots).__name__}")
        dim = self._config["dim"]
        if dim and snapshots.dim != dim:
            raise InputError(f"snapshots: have dimension {snapshots.dim}, the model {dim}")
        x, _ = snapshots.stacked()
        ref = self._config["reference"]
        if ref in MECHANISTIC and bool((x < 0).any()):
            raise InputError(f"snapshots: {ref} models non-negative abundances, but {int((x < 0).sum())} values "
                             f"are negative (min {float(x.min()):.4g}); pass raw counts or concentrations, or "
                             f"use a linear / mlp reference for centred or standardised data")
        if self.auto_sigma and not bool((x.std(0) > 0).any()):
            raise InputError("sigma: 'auto' sets the noise from the spread of the cells, but every snapshot "
                             "holds the same point; pass a number")
        return snapshots.to(self.device, torch.float64)

    def _bridge_step(self) -> BridgeStep:
        c = self._config
        return BridgeStep(self.reference, self.noise, eps=c["eps"], h=c["h"], h_lna=c["h_lna"],
                          max_iter=c["sinkhorn_iter"])

    def sample_bridges(self, n: int | None = None, *, generator: torch.Generator | None = None) -> BridgeSample:
        """``n`` chained bridge paths (an integer >= 1; None: the model's ``n_paths``) through the training
        snapshots under the current reference."""
        n = self._config["n_paths"] if n is None else check_count("n", n)
        if self.snapshots is None:
            raise SciflowError("MMSB: not fitted yet; call fit(snapshots) first")
        with torch.no_grad():
            return self._bridge_step().sample(self.snapshots, n, generator=generator)

    def _em_step(self, generator: torch.Generator, parametric: bool, seed: int) -> dict[str, Any]:
        c = self._config
        bs = self.sample_bridges(c["n_paths"], generator=generator)
        inc = increments(bs.pieces, bs.steps, self.noise, max_rows=c["max_rows"], generator=generator)
        nll = fit_drift(self.reference, inc, parametric=parametric, max_iter=c["lbfgs_iter"], steps=c["net_steps"],
                        batch_size=c["net_batch"], lr=c["net_lr"], seed=seed)
        return {"nll": nll}

    def fit(self, snapshots: Snapshots, config: Any = None, *, generator: torch.Generator | None = None,
            seed: int = 0, show_progress: bool = True,
            checkpoint: str | os.PathLike | None = None) -> dict[str, Any]:
        """Alternate bridge and refinement steps on ``snapshots`` for ``rounds`` rounds; returns a summary
        (time, history of parameters and NLL per round; ``resumed_from``: the round a resumed fit went on from).

        ``checkpoint``: a file where the state needed to go on is written atomically after each L-BFGS run of
        the shooting init, every round, the noise selection and each evaluation of the calibration. A fit given an
        existing checkpoint of the same fit (settings, snapshots, seed and generator) continues after its last
        saved round or step and ends with the same reference, noise and history, bit for bit, as an uninterrupted
        fit; a checkpoint of another fit, or an unreadable one, is refused with an ``InputError`` (``resume.py``)."""
        snaps = self._check(snapshots)
        self._check_reference(snaps.dim)
        if self.custom:                    # its shape, dtype and finiteness, before any state or work changes
            module = self._reference_module.to(self.device, torch.float64)   # where and how _build puts it
            check_reference_module(module, snaps.stacked()[0])
        c = self._config
        g = generator if generator is not None else make_generator(seed)
        start, cpu0 = time.perf_counter(), time.process_time()
        self.snapshots = snaps
        self._bridge_fitted = False                # a bridge drift fitted to earlier data no longer applies
        self.standardizer = Standardizer.fit(snaps)
        if self.model is None or self._config["dim"] != snaps.dim or not self.custom:
            # a named reference starts from weights drawn from ``seed`` (not torch's global state), so a fit is
            # repeatable; a module the user passed keeps its own weights
            with seeded(int(seed)):
                self._build(snaps.dim, self.standardizer)
        ref = self.reference
        if hasattr(ref, "set_standardizer") and c["reference"] in NETWORKS:
            ref.set_standardizer(self.standardizer)
        parametric = is_parametric(ref)
        init = c["init"]
        if init == "auto":
            init = "shooting" if c["reference"] in MECHANISTIC else "given"
        self.history = []
        auto = self.auto_sigma or self.auto_noise
        if auto:
            first = "multiplicative" if (self.auto_noise and c["reference"] in MECHANISTIC) else \
                ("additive" if self.auto_noise else self.noise.name)
            self.noise = make_noise(first, first_guess(first, snaps) if self.auto_sigma else self.noise.sigma)
        accel = c["accelerate"]
        if accel == "auto":
            accel = "squarem" if parametric and c["reference"] != "zero" else "none"
        calib = c["calibrate"]
        if calib == "auto":
            calib = "energy" if c["reference"] in MECHANISTIC else "none"
        extra = (c["refit_rounds"] if c["refit_rounds"] is not None else max(3, c["rounds"] // 2)) if auto else 0
        # what the fit has done (stage, rounds, an unfinished SQUAREM cycle's start points, time): from the
        # checkpoint when it resumes; "auto" settings count as what they resolve to
        resolved = {**c, "init": init, "accelerate": accel, "calibrate": calib}
        ck = FitCheckpoint(checkpoint, fit_fingerprint(resolved, snaps, seed, g, self.model)) \
            if checkpoint is not None else None
        state = ck.load() if ck is not None else None
        stage, done, cycle, seconds0, cpu_seconds0 = "rounds", 0, {}, 0.0, 0.0
        if state is not None:
            stage, done, cycle, seconds0, cpu_seconds0 = FitCheckpoint.restore(self, state, g)
        resumed = done if state is not None else None
        partial = list(state.get("partial") or []) if state is not None else []   # steps of a stage cut short

        def save(log: StageLog | None = None) -> None:
            if ck is not None:
                ck.save(self, stage=stage, done=done, generator=g, cycle=cycle, log=log,
                        seconds=seconds0 + time.perf_counter() - start,
                        cpu_seconds=cpu_seconds0 + time.process_time() - cpu0)

        def stage_log(name: str) -> StageLog | None:
            """The finished steps of stage ``name`` (from the checkpoint when the fit stopped inside it)."""
            nonlocal stage
            entries, stage = (partial if stage == name else []), name
            if ck is None:
                return None
            log = StageLog(self.model, g, entries)
            log.save = lambda: save(log)
            return log

        if (state is None or stage == "init") and init == "shooting" and c["rounds"] > 0:
            log = stage_log("init")
            info = shooting_init(ref, snaps, n_starts=c["shooting_starts"], generator=g, log=log)
            self.history.append({"round": 0, "step": "shooting init", "params": self.reference_params, **info})
            stage = "rounds"
            save()
        bar = progress(total=c["rounds"] + (extra if stage != "rounds" else 0), initial=done, desc="mmsb rounds",
                       enabled=show_progress, unit="round")

        def step() -> None:
            nonlocal done
            info = self._em_step(g, parametric, seed + done)
            done += 1
            self.history.append({"round": done, "params": self.reference_params, **info})
            bar.update(1)

        def run(total: int) -> None:
            while done < total:
                if cycle or (accel == "squarem" and total - done >= 3):
                    self._squarem_cycle(step, cycle, save)
                else:
                    step()
                    save()

        try:
            if stage == "rounds":
                run(c["rounds"])
                if auto:
                    names = list(NOISE_MODELS) if self.auto_noise else [self.noise.name]
                    cands = candidate_noises(names, snaps) if self.auto_sigma else \
                        [make_noise(n, self.noise.sigma) for n in names]
                    self.noise, scores = select_noise(self.reference, snaps, cands, seed=seed)
                    self.history.append({"round": done, "step": "noise selection", "noise": self.noise.name,
                                         "sigma": self.noise.sigma, "scores": scores})
                    stage = "refit"
                    save()
                    bar.total = c["rounds"] + extra
                    bar.refresh()
            if stage == "refit":
                run(c["rounds"] + extra)
        finally:
            bar.close()
        if calib == "energy" and stage != "done":
            log = stage_log("calibrate")
            info = calibrate_reference(ref, self.noise, snaps, scale=self.standardizer.scale,
                                       replicas=c["calibrate_replicas"], h=c["h"], seed=seed,
                                       show_progress=show_progress, log=log)
            self.history.append({"round": done, "step": "calibration", "params": self.reference_params, **info})
            stage = "done"
            save()
        self.model["reference"].eval()
        seconds = seconds0 + time.perf_counter() - start
        self.info["fit"] = {"seconds": seconds, "cpu_seconds": cpu_seconds0 + time.process_time() - cpu0,
                            "rounds": done, "init": init, "accelerate": accel, "params": self.reference_params,
                            "noise": self.noise.name, "sigma": self.noise.sigma}
        return {"seconds": seconds, "cpu_seconds": self.info["fit"]["cpu_seconds"], "params": self.reference_params,
                "noise": self.noise.name, "sigma": self.noise.sigma, "rounds": done, "history": self.history,
                "resumed_from": resumed}

    def _squarem_cycle(self, step: Any, cycle: dict[str, Tensor], save: Any) -> None:
        """One SQUAREM cycle (Varadhan & Roland 2008, scheme S3): two fixed-point steps, an extrapolation
        along their differences, and a stabilising step from the extrapolated point (falls back to the
        plain second step if the extrapolation fails). ``cycle`` holds the start points of the steps done so
        far (``t0``, ``t1``), saved with every checkpoint, so that a resumed fit finishes the cycle it was in."""
        ref = self.reference
        if "t0" not in cycle:
            cycle["t0"] = _vector(ref)
            step()
            save()
        if "t1" not in cycle:
            cycle["t1"] = _vector(ref)
            step()
            save()
        t0, t1, t2 = cycle["t0"], cycle["t1"], _vector(ref)
        r, v = t1 - t0, (t2 - t1) - (t1 - t0)
        alpha = -float(r.norm()) / max(float(v.norm()), 1e-300)
        alpha = min(-1.0, max(alpha, -8.0))
        _set_vector(ref, t0 - 2 * alpha * r + alpha * alpha * v)
        try:
            step()
            ok = bool(torch.isfinite(_vector(ref)).all())
        except (SciflowError, RuntimeError, ValueError, torch.linalg.LinAlgError):
            ok = False
        if not ok:
            _set_vector(ref, t2)
            self.history.append({"round": self.history[-1]["round"], "step": "squarem fallback",
                                 "params": self.reference_params})
        else:
            self.history[-1]["squarem_alpha"] = alpha
        cycle.clear()
        save()

    # -- outputs -----------------------------------------------------------------------------------
    def trajectories(self, n: int, *, generator: torch.Generator | None = None) -> Trajectory:
        """n individual trajectories through every training snapshot (bridges under the fitted reference,
        on the fine grid of step <= h, in data units); ``extras["snapshot_rows"]`` (n, K) gives the
        observed cell each path passes through."""
        return self.sample_bridges(check_count("n", n), generator=generator).trajectory()

    def generate(self, condition: Any, n: int, *, generator: torch.Generator | None = None) -> Trajectory:
        """The Generator protocol: ``condition`` None gives ``trajectories(n)``; a sequence of times gives
        ``predict(times, n)``."""
        if condition is None:
            return self.trajectories(n, generator=generator)
        return self.predict(condition, n, generator=generator)

    def start_population(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """(n, d) the first snapshot's rows: as many whole copies as fit, the rest drawn without replacement
        (files are often sorted by cluster or sample, so taking the first rows would bias the start)."""
        if self.snapshots is None:
            raise SciflowError("MMSB: not fitted yet; call fit(snapshots) first")
        first = self.snapshots.samples[0]
        whole, rest = divmod(int(n), first.shape[0])
        if rest == 0:                   # no draw: the generator's stream then goes to the dynamics alone
            return first.repeat(whole, 1)
        g = generator if generator is not None else make_generator(0)
        extra = first[randperm(first.shape[0], generator=g, device=first.device)[:rest]]
        return torch.cat([first.repeat(whole, 1), extra])

    def fit_bridge_drift(self, *, n_paths: int | None = None, steps: int = 2000, seed: int = 0,
                         generator: torch.Generator | None = None, show_progress: bool = False) -> float:
        """Learn the time-dependent drift of the bridge paths (needed for ``predict(dynamics="bridge")``)."""
        n_paths = self._config["n_paths"] if n_paths is None else check_count("n_paths", n_paths)
        g = generator if generator is not None else make_generator(seed)
        bs = self.sample_bridges(n_paths, generator=g)
        loss = fit_bridge_drift(self.model["bridge"], bs.pieces, bs.steps, bs.times, mean=self.standardizer.mean,
                                scale=self.standardizer.scale, train_steps=steps, seed=seed, progress=show_progress)
        self._bridge_fitted = True
        self.info["bridge_drift"] = {"steps": steps, "final_loss": loss}
        return loss

    def predict(self, times: Sequence[float] | Tensor, n: int | None = None, *, x0: Tensor | None = None,
                dynamics: str = "reference", dt: float | None = None,
                generator: torch.Generator | None = None) -> Trajectory:
        """Populations at ``times`` (a number or a 1-D sequence, none before the first snapshot) simulated forward
        from the first snapshot (or from ``x0`` (n, d) at the first snapshot's time). ``n``: the population size,
        an integer >= 1 (default 1000) drawn from the first snapshot; with ``x0`` the population is x0's rows, so
        leave ``n`` out (or pass x0's row count): any other ``n`` is refused, never ignored. ``dynamics``:
        ``reference`` (the refined reference SDE) or ``bridge`` (the learned bridge drift, see
        ``fit_bridge_drift``; inside the observed time range only). The frames come back at the requested times
        sorted and without repeats (``.times`` says which)."""
        if self.snapshots is None:
            raise SciflowError("MMSB: not fitted yet; call fit(snapshots) first")
        if dynamics not in ("reference", "bridge"):
            raise InputError(f"dynamics: expected 'reference' or 'bridge', got {dynamics!r}")
        if x0 is None:
            n = 1000 if n is None else check_count("n", n)
        else:
            x0 = self._check_x0(x0)
            if n is not None and check_count("n", n) != x0.shape[0]:
                raise InputError(f"n: the population starts from the {x0.shape[0]} rows of x0, but n={n!r} was also "
                                 f"given; pass one or the other (n draws from the first snapshot)")
        if dt is not None and not float(dt) > 0:
            raise InputError(f"dt: must be > 0, got {dt}")
        t0 = float(self.snapshots.times[0])
        t = check_times(times, t0)                        # before any work (the bridge drift takes minutes)
        if dynamics == "bridge" and float(t.max()) > float(self.snapshots.times[-1]) + 1e-9:
            raise InputError("times: the bridge drift is only defined up to the last snapshot at "
                             f"t={float(self.snapshots.times[-1]):g}; use dynamics='reference' to extrapolate")
        start = self.start_population(n, generator) if x0 is None else x0
        step = float(dt or self._config["predict_dt"] or self._config["h"] / 5)
        if dynamics == "reference":
            ref = self.reference
            field = lambda x, t: ref(x)
        else:
            if not self._bridge_fitted:
                self.fit_bridge_drift(generator=generator)
            field = self.model["bridge"]
        try:
            traj = simulate(field, self.noise, start.to(self.device), t0, times, dt=step, generator=generator)
            if not bool(torch.isfinite(traj.states).all()):
                bad = int((~torch.isfinite(traj.states)).sum())
                raise SimulationDiverged(f"the simulated SDE diverged: {bad} state value(s) non-finite by "
                                         f"t={float(traj.times[-1]):g}")
        except SimulationDiverged as e:
            what = "fitted reference" if dynamics == "reference" else "learned bridge drift"
            raise InputError(f"predict: the {what} diverged when simulated from the first snapshot ({e}); "
                             f"refit with another sigma or noise model, or with more rounds or paths "
                             f"(command line: --sigma, --noise, --rounds, --paths)") from None
        return Trajectory(traj.times, traj.states, info={**traj.info, "dynamics": dynamics, "method": self.name})

    def _check_x0(self, x0: Any) -> Tensor:
        """``x0`` as a float64 (n, d) tensor of finite values with n >= 1, else an ``InputError`` naming x0."""
        d = self.snapshots.dim
        try:
            start = torch.as_tensor(x0, dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError):
            raise InputError(f"x0: expected an (n, {d}) array of numbers, got {type(x0).__name__}") from None
        if start.dim() != 2 or start.shape[1] != d:
            raise InputError(f"x0: expected (n, {d}), got {tuple(start.shape)}")
        if start.shape[0] == 0:
            raise InputError(f"x0: holds no rows (shape {tuple(start.shape)}); give at least one starting state")
        if not bool(torch.isfinite(start).all()):
            raise InputError(f"x0: {int((~torch.isfinite(start)).sum())} value(s) are not finite")
        return start

    # -- persistence -------------------------------------------------------------------------------
    def extra_state(self) -> dict[str, Any]:
        out: dict[str, Any] = {"history": self.history, "bridge_fitted": bool(getattr(self, "_bridge_fitted", False)),
                               "noise": self.noise.name, "sigma": self.noise.sigma}
        if self.snapshots is not None:
            x, idx = self.snapshots.stacked()
            out.update(times=self.snapshots.times.cpu(), points=x.cpu(), index=idx.cpu())
        if self.standardizer is not None:
            out["standardizer"] = self.standardizer.state_dict()
        return out

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.history = list(state.get("history", []))
        self._bridge_fitted = bool(state.get("bridge_fitted", False))
        if "noise" in state:
            self.noise = make_noise(state["noise"], float(state["sigma"]))
        if "points" in state:
            pts, idx, times = (v.cpu() if torch.is_tensor(v) else v for v in (state["points"], state["index"],
                                                                               state["times"]))
            self.snapshots = Snapshots.from_arrays([pts[idx == k] for k in range(len(times))], times).to(
                self.device, torch.float64)                 # where fit() keeps them: on the model's device
        if "standardizer" in state:
            self.standardizer = Standardizer.from_state_dict(state["standardizer"])

    def save(self, path: str | os.PathLike) -> Any:
        if self.model is None:
            raise SciflowError("MMSB: nothing to save before fit")
        return super().save(path)

    @classmethod
    def load(cls, path: str | os.PathLike, map_location: str | torch.device = "cpu",
             reference: nn.Module | None = None) -> MMSB:
        """Rebuild a saved model; a custom reference module must be passed again as ``reference``."""
        file, ck = cls.read_saved(path, map_location)
        cfg = dict(ck["config"], device=str(map_location))      # the model is used where it was loaded to
        if cfg["reference"] == "custom":
            if reference is None:
                raise InputError("reference: this model was fitted with a custom module; pass it as reference=")
            cfg["reference"] = reference
        if cfg["reference"] == "zero" and (cfg.get("sigma") == "auto" or cfg.get("noise") not in ("additive", "auto")):
            # a vanilla SB saved before its noise had to be additive at a given level: build it with a placeholder
            # and keep the diffusion it was fitted with (restored from the file below)
            cfg.update(sigma=1.0, noise="additive")
        obj = cls(**cfg)
        if obj.model is None:
            obj._build(int(cfg["dim"]))
        obj.restore(file, ck)
        return obj

    def nll(self, n: int = 500, *, generator: torch.Generator | None = None) -> float:
        """Mean finite-difference NLL of the current reference along ``n`` (an integer >= 1) fresh bridges (a
        diagnostic)."""
        bs = self.sample_bridges(check_count("n", n), generator=generator)
        inc = increments(bs.pieces, bs.steps, self.noise)
        with torch.no_grad():
            return float(drift_nll(self.reference, inc))
