"""Task ``mmsb``: fit (or load) a multi-marginal Schrödinger bridge with reference refinement on snapshot data,
then write trajectories through every snapshot, predictions at unobserved times, the fitted reference's
parameters, held-out metrics and a PNG.

With ``heldout: true`` the model is trained on the even-indexed snapshots and the W2 distance of its
predictions to each held-out odd-indexed snapshot is reported (the SBIRR / SnapMMD protocol).
"""
from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Annotated, Any, Literal

import torch
from pydantic import Field, PrivateAttr, field_validator, model_validator

from ...core.errors import InputError
from ...methods.mmsb.predict import MAX_STEPS
from ..context import RunContext
from ..registry import register_task
from ..schema import ModelPath, StrictModel

__all__ = ["MMSBTask", "run"]


class DataSettings(StrictModel):
    path: Path = Field(description="snapshots: .npz (Xs, dts) or ragged npz, .csv, .h5ad")
    time_key: str = Field("time", description="the time column of a .csv, the obs column of a .h5ad (an .npz "
                                              "holds its times in dts: refused there)")
    use_rep: str | None = Field(None, description="a .h5ad obsm key such as X_pca instead of X (refused for "
                                                  ".npz and .csv)")
    pca: int | None = Field(None, ge=1, description="project the features on this many principal components "
                                                    "(every format)")
    heldout: bool = Field(True, description="train on even-indexed snapshots, score the odd ones")

    #: the snapshots read at validation, with the settings they were read with, for ``run`` to reuse
    _read: tuple[tuple[Any, ...], Any] | None = PrivateAttr(None)

    @field_validator("path")
    @classmethod
    def _exists(cls, v: Path) -> Path:
        if not Path(v).is_file():
            raise ValueError(f"no snapshot file at {v}")
        return v

    @model_validator(mode="after")
    def _readable(self) -> DataSettings:
        # the snapshot file is read here (it is small), so a malformed one stops `validate` and `run` before
        # the output folder is claimed; a setting the file's format does not use is refused, not ignored
        from ...data.snapshots import formats_using, unused_options
        unused = unused_options(self.path, time_key=None if self.time_key == "time" else self.time_key,
                                use_rep=self.use_rep, pca=self.pca)
        if unused:
            k = unused[0]
            raise ValueError(f"{k}: {getattr(self, k)!r} does not apply to {self.path} ({self.path.suffix} file); "
                             f"{k} is used by {formats_using(k)} files only: remove it")
        try:
            snaps = _read_snapshots(self)
        except InputError as e:
            msg = str(e)
            raise ValueError(msg if msg.startswith(("path:", "data:")) else f"path: {msg}") from None
        except (OSError, KeyError, ValueError) as e:
            raise ValueError(f"path: cannot read snapshots from {self.path}: {e}") from None
        if self.heldout and snaps.n_snapshots < 3:
            raise ValueError(f"heldout: the held-out protocol needs at least 3 snapshots, {self.path} holds "
                             f"{snaps.n_snapshots}; set heldout: false")
        self._read = (self._key(), snaps)
        return self

    def _key(self) -> tuple[Any, ...]:
        return (str(self.path), self.time_key, self.use_rep, self.pca)

    def snapshots(self) -> Any:
        """The snapshots (read at validation; read again if the settings were built another way)."""
        if self._read is not None and self._read[0] == self._key():
            return self._read[1]
        return _read_snapshots(self)


def _read_snapshots(d: DataSettings) -> Any:
    from ...data.snapshots import read_snapshots
    kw: dict[str, Any] = {"pca": d.pca}                 # pca: every format; the others are refused where unused
    if d.path.suffix.lower() == ".h5ad":
        kw.update(time_key=d.time_key, use_rep=d.use_rep)
    elif d.path.suffix.lower() == ".csv":
        kw.update(time_column=d.time_key)
    return read_snapshots(d.path, **kw)


class ModelSettings(StrictModel):
    reference: str = "mlp"
    sigma: Annotated[float, Field(gt=0)] | Literal["auto"] = Field("auto", description="noise level, or auto")
    noise: Literal["additive", "multiplicative", "auto"] = "auto"
    rounds: int | None = Field(None, ge=0, description="bridge/refinement rounds (default: MMSB's, 8; 0 for zero)")
    n_paths: int = Field(1000, ge=1)
    calibrate: Literal["auto", "energy", "none"] = Field(
        "auto", description="last fit of a parametric reference against all training snapshots at once")
    reference_kwargs: dict[str, Any] = {}

    @field_validator("reference")
    @classmethod
    def _reference(cls, v: str) -> str:
        from ...methods.mmsb.references import REFERENCES
        REFERENCES.get(v)
        return v

    @model_validator(mode="after")
    def _zero_is_brownian(self) -> ModelSettings:
        # vanilla SB: additive noise at a given level, refused at validation rather than after the folder is made
        if self.reference == "zero":
            from ...methods.mmsb.model import zero_reference_noise
            try:
                zero_reference_noise(self.noise, self.sigma)
            except InputError as e:
                raise ValueError(str(e)) from None
        return self


class OutputSettings(StrictModel):
    n_trajectories: int = Field(500, ge=1)
    predict_times: list[float] = []
    n_predict: int = Field(1000, ge=1)
    predict_dt: float | None = Field(None, gt=0, description="simulation step (default: the model's h / 5)")
    formats: list[Literal["npz", "csv"]] = ["npz", "csv"]


class MMSBTask(StrictModel):
    data: DataSettings
    model: ModelSettings = ModelSettings()
    output: OutputSettings = OutputSettings()
    weights: ModelPath | None = Field(None, description="a saved MMSB model to use instead of fitting")

    @model_validator(mode="after")
    def _fits_data(self) -> MMSBTask:
        # before the output folder is claimed: a saved model is an MMSB model of the data's dimension whose
        # snapshots start no later than the times it is asked to predict (the held-out ones, predict_times);
        # the zero reference predicts only up to its last snapshot
        from ...methods.mmsb.evaluate import heldout_split
        snaps = self.data.snapshots()
        train, odd = heldout_split(snaps) if self.data.heldout else (snaps, [])
        held = [float(snaps.times[k]) for k in odd]
        predict = list(self.output.predict_times)
        if self.weights is None:
            try:
                _dynamics(self.model.reference, predict, train)
            except InputError as e:
                raise ValueError(str(e)) from None
            _check_reference_kwargs(self.model, snaps.dim)
            _check_simulation(self.output, float(train.times[0]), held, train.times, _default_step())
            return self
        from ...methods.mmsb import MMSB
        try:
            model = MMSB.load(self.weights)
        except InputError as e:
            raise ValueError(f"weights: {str(e).removeprefix('model: ')}") from None
        c = model.config()
        _check_simulation(self.output, float(model.snapshots.times[0]) if model.snapshots is not None else
                          float(train.times[0]), held, train.times, float(c["predict_dt"] or c["h"] / 5))
        dim = model.config().get("dim") or (model.snapshots.dim if model.snapshots is not None else None)
        if dim and int(dim) != snaps.dim:
            raise ValueError(f"weights: model is {int(dim)}-D, data is {snaps.dim}-D ({self.data.path})")
        if model.snapshots is None:
            raise ValueError(f"weights: {self.weights} holds an MMSB model that was never fitted")
        if self.data.heldout:
            _check_trained_on(model.snapshots, train, self.weights, self.data.path)
        t0, t1 = float(model.snapshots.times[0]), float(model.snapshots.times[-1])
        early = [t for t in held if t < t0 - 1e-12]
        if early:
            raise ValueError(f"weights: the model predicts from its first snapshot at t={t0:g}, but the held-out "
                             f"snapshot times of data.path include {', '.join(f'{t:g}' for t in early[:5])}")
        if model.config()["reference"] == "zero":
            late = [t for t in held + predict if t > t1 + 1e-9]
            if late:
                raise ValueError(f"weights: the zero reference predicts with its bridge drift, defined up to the "
                                 f"model's last snapshot at t={t1:g}; asked for t={', '.join(f'{t:g}' for t in late[:5])}")
        return self


#: most solver steps a prediction may take (the simulator's own limit, checked here before the fit)
MAX_PREDICT_STEPS = MAX_STEPS


def _default_step() -> float:
    """The simulation step of a model fitted with the workflow's settings (``h / 5`` of MMSB's defaults)."""
    import inspect

    from ...methods.mmsb import MMSB
    params = inspect.signature(MMSB.__init__).parameters
    return float(params["predict_dt"].default or params["h"].default / 5)


def _check_simulation(out: OutputSettings, t0: float, held: list[float], snapshot_times: Any, step: float) -> None:
    """Predictions start at the first (training) snapshot ``t0``, with a step no longer than the snapshots'
    spacing, and end within ``MAX_PREDICT_STEPS`` steps: refused at validation, naming the field."""
    early = [t for t in out.predict_times if t < t0 - 1e-12]
    if early:
        raise ValueError(f"output.predict_times: predictions start from the first snapshot at t={t0:g}; got "
                         f"{', '.join(f'{t:g}' for t in early[:5])}")
    times = [float(t) for t in snapshot_times]
    gap = min((b - a for a, b in itertools.pairwise(times)), default=None)
    if out.predict_dt is not None and gap is not None and out.predict_dt > gap + 1e-12:
        raise ValueError(f"output.predict_dt: {out.predict_dt:g} is longer than the smallest spacing of the "
                         f"training snapshots ({gap:g}); the simulation would step over the dynamics it fitted")
    step = float(out.predict_dt or step)
    end = max([*out.predict_times, *held], default=t0)
    steps = (end - t0) / step
    if steps > MAX_PREDICT_STEPS:
        raise ValueError(f"output.predict_times: reaching t={end:g} from t={t0:g} takes {steps:.3g} steps of "
                         f"{step:g} (more than {MAX_PREDICT_STEPS:,}); check the times' unit, or set a longer "
                         f"output.predict_dt")


def _check_reference_kwargs(m: ModelSettings, dim: int) -> None:
    """``model.reference_kwargs`` build the named reference for data of dimension ``dim``, with finite numbers, and
    ``model.calibrate: energy`` has parameters to fit (refused at validation, not after the output folder is made
    or, for the calibration, after the fit's rounds)."""
    from ...methods.mmsb.calibrate import check_calibration
    from ...methods.mmsb.references import check_reference_kwargs
    try:
        check_reference_kwargs(m.reference, dim, m.reference_kwargs)
    except InputError as e:
        msg = str(e)
        raise ValueError(f"model.{msg}" if msg.startswith("reference_kwargs") else
                         f"model.reference_kwargs: {msg.removeprefix('reference: ')}") from None
    if m.calibrate == "energy":
        try:
            check_calibration(m.reference, dim, m.reference_kwargs)
        except InputError as e:
            raise ValueError(f"model.{e}") from None


def _check_trained_on(fitted: Any, train: Any, weights: Path, path: Path) -> None:
    """A held-out W2 is only held out if the saved model was trained on exactly the even-indexed snapshots of
    ``data.path``: a model trained on every snapshot (or on another file of the same dimension) would be scored
    on data it has seen, and it would predict from its own first snapshot rather than the data's."""
    same = (fitted.n_snapshots == train.n_snapshots
            and torch.allclose(fitted.times.double().cpu(), train.times.double().cpu(), rtol=0.0, atol=1e-9)
            and all(a.shape == b.shape and torch.allclose(a.double().cpu(), b.double().cpu(), rtol=1e-9, atol=1e-12)
                    for a, b in zip(fitted.samples, train.samples)))
    if not same:
        times = ", ".join(f"{float(t):g}" for t in fitted.times[:12])
        want = ", ".join(f"{float(t):g}" for t in train.times[:12])
        raise ValueError(f"weights: with heldout: true the saved model must have been trained on the even-indexed "
                         f"snapshots of data.path ({path}; t = {want}), but {weights} was trained on other "
                         f"snapshots (t = {times}); its held-out W2 would score data it was fitted to. Fit "
                         f"it on this split (delete `weights:`) or set heldout: false")


def _model(cfg: MMSBTask, train: Any, ctx: RunContext) -> Any:
    from ...methods.mmsb import MMSB
    saved = ctx.output / "model.pt"
    if cfg.weights is not None:
        ctx.log(f"loading the fitted model {cfg.weights}")
        return MMSB.load(cfg.weights, map_location=ctx.device)
    if ctx.is_done("model"):      # this run's model, not an earlier one's
        ctx.log(f"resuming: using the fitted model at {saved}")
        return MMSB.load(saved, map_location=ctx.device)
    m = cfg.model
    rounds = m.rounds if m.rounds is not None else (0 if m.reference == "zero" else None)   # None: MMSB's default
    model = MMSB(reference=m.reference, sigma=m.sigma, noise=m.noise, n_paths=m.n_paths, calibrate=m.calibrate,
                 reference_kwargs=m.reference_kwargs, device=str(ctx.device),
                 **({} if rounds is None else {"rounds": rounds}))
    # round-level resume: the fit checkpoints after every round and stage (in OUTPUT/.done, which --fresh removes;
    # the runner has already refused other settings or snapshots), so an interrupted run goes on from its last
    # round and ends with the model an uninterrupted one makes. Every rank fits; the main one keeps the checkpoint
    checkpoint = ctx.state_path("fit.pt") if ctx.is_main else None
    if checkpoint is not None and checkpoint.is_file():
        ctx.log(f"resuming: the fit goes on from its checkpoint {checkpoint}")
    summary = model.fit(train, generator=ctx.generator("fit"), seed=ctx.seed, checkpoint=checkpoint)
    resumed = f" (resumed after round {summary['resumed_from']})" if summary.get("resumed_from") is not None else ""
    ctx.log(f"fitted in {summary['seconds']:.1f} s{resumed}: {summary['params']}")
    if ctx.is_main:
        model.save(saved)
        ctx.mark_done("model", files=[saved])
    return model


def _dynamics(reference: str, predict_times: list[float], train: Any) -> str:
    """``bridge`` for the zero reference (its learned bridge drift, defined up to the last training snapshot),
    else ``reference``."""
    if reference != "zero":
        return "reference"
    last = float(train.times[-1])
    if any(t > last + 1e-9 for t in predict_times):
        raise InputError(f"output.predict_times: the zero reference predicts with its bridge drift, defined up to "
                         f"the last training snapshot at t={last:g}; got {predict_times}")
    return "bridge"


@register_task("mmsb", MMSBTask)
def run(cfg: MMSBTask, ctx: RunContext) -> dict[str, Any]:
    from ...methods.mmsb.evaluate import heldout_split, w2_distance
    from ...methods.mmsb.export import write_trajectories
    from ...methods.mmsb.plot import plot_mmsb
    d = cfg.data
    snaps = d.snapshots()           # read (and checked against the saved model) at validation
    train, odd = heldout_split(snaps) if d.heldout else (snaps, [])
    # vanilla SB (zero reference) predicts with its learned bridge drift, like `sciflow mmsb evaluate`: a zero
    # drift alone would only spread the first snapshot; that drift exists between the observed times only
    if cfg.weights is None:
        _dynamics(cfg.model.reference, cfg.output.predict_times, train)       # refused before the fit
    model = _model(cfg, train, ctx)
    dynamics = _dynamics(model.config()["reference"], cfg.output.predict_times, train)
    out: dict[str, Any] = {"model": str(cfg.weights or ctx.output / "model.pt"), "reference": model.config()["reference"],
                           "params": model.reference_params, "noise": model.noise.name, "sigma": model.sigma,
                           "fit": model.info.get("fit", {})}
    if not ctx.is_main:
        return out
    if ctx.is_done("outputs"):        # a finished run's outputs (all still there): not made again
        ctx.log("resuming: the outputs are already written")
        return json.loads((ctx.output / "metrics.json").read_text())
    g = ctx.generator("outputs")
    traj = model.trajectories(cfg.output.n_trajectories, generator=g).cpu()
    out["trajectories"] = [str(write_trajectories(ctx.path(f"trajectories.{fmt}"), traj,
                                                  **({"snapshot_times": train.times} if fmt == "npz" else {})))
                           for fmt in cfg.output.formats]
    if odd:
        held = [float(snaps.times[k]) for k in odd]
        pred = model.predict(held, cfg.output.n_predict, dt=cfg.output.predict_dt, dynamics=dynamics, generator=g)
        out["heldout_w2"] = {f"{t:g}": w2_distance(pred.states[i], snaps.samples[k])
                             for i, (t, k) in enumerate(zip(held, odd))}
        out["heldout_w2_mean"] = sum(out["heldout_w2"].values()) / len(odd)
        ctx.log(f"held-out W2 (mean over t={held}): {out['heldout_w2_mean']:.4f}")
    if cfg.output.predict_times:
        pred = model.predict(cfg.output.predict_times, cfg.output.n_predict, dt=cfg.output.predict_dt,
                             dynamics=dynamics, generator=g).cpu()
        out["predictions"] = [str(write_trajectories(ctx.path(f"predictions.{fmt}"), pred))
                              for fmt in cfg.output.formats]
    out["plot"] = str(plot_mmsb(model, ctx.path("mmsb.png"), trajectories=traj,
                                generator=torch.Generator().manual_seed(ctx.seed)))
    ctx.write_json("metrics.json", out)
    ctx.mark_done("outputs")
    return out
