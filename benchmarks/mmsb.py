"""MMSB against what a user would otherwise run, on the SBIRR / SnapMMD held-out interpolation protocol.

Data: ``LV_data.npz`` and ``Repressilatormrna_data.npz`` (``/work/shared/data/snapshots``, MIT, from
YunyiShen/mmTrajectory-inference-benchmarks): 11 snapshots of 200 unpaired particles at t = 0..10.
Protocol (the same for every method, ``sciflow.methods.mmsb.evaluate_heldout``): train on the even-indexed
snapshots (t = 0, 2, .., 10), predict the populations at the held-out odd times (t = 1, 3, .., 9) and score
them with the exact 2-Wasserstein distance (POT ``emd2`` on squared Euclidean costs, square root; "EMD" in
the tables) and the exact 1-Wasserstein distance, averaged over held-out times, then mean +- sample sd
(ddof = 1) over seeds.
Every simulating method starts from the 200 particles of the first observed snapshot (200 predicted
particles against the 200 held-out ones).

Methods:
  * ``mmsb``: sciflow MMSB with the named mechanistic reference (``lotka_volterra`` / ``repressilator``,
    multiplicative noise, sigma given), predictions by simulating the refined reference SDE. Its default
    ends with the calibration step (``calibrate="auto"``: an energy-distance fit of the rates against all
    training snapshots at once, ``sciflow/methods/mmsb/calibrate.py``).
  * ``mmsb_rounds_only``: the same without the calibration step (``calibrate="none"``): the paper's
    bridge/refinement rounds alone.
  * ``vanilla_sb``: sciflow MMSB with the zero (Brownian) reference and no refinement (rounds=0), i.e. a
    piecewise Schrödinger bridge; predictions by its learned bridge drift (64-64-64 SELU MLP).
  * ``ot_cfm`` / ``sb_cfm``: TorchCFM's ``ExactOptimalTransportConditionalFlowMatcher`` and
    ``SchrodingerBridgeConditionalFlowMatcher`` trained across all training intervals at once (time = interval
    index + fraction, as in TorchCFM's trajectory tutorials), with TorchCFM's MLP (w=64: the same 64-64-64 SELU
    size as the vanilla SB drift), Adam lr 1e-3, on standardised data; the ODE is integrated with RK4.
    Their noise levels are benchmark options: ``--ot-cfm-sigma`` (default 0.1, in standardised units: the
    ``sigma_min: 0.1`` of TorchCFM's own trajectory-experiment config ``runner/configs/model/otcfm.yaml``; the
    library's code default sigma = 0 diverges on the repressilator) and ``--sb-cfm-sigma`` (default 1.0 in data
    units per sqrt(time unit), converted to the standardised interval units: 0.86 on LV, 1.25 on the
    repressilator, around the ``sigma_min: 1.0`` of TorchCFM's ``runner/configs/model/sbcfm.yaml``; the 0.1 used
    before, the vanilla SB's level, diverges on some repressilator seeds). A method may also be named with its
    sigma, e.g. ``ot_cfm:0`` or ``sb_cfm:0.1`` (the settings of the runs before 2026-11-29 evening).
  * vanilla SB's Brownian level is ``--vanilla-sigma``: a number (data units per sqrt(time unit); 0.1 was the
    level of every run before 2026-11-29 20:00, and diverges on the repressilator) or ``auto`` / ``autoN``
    (default ``auto16``): for each seed, the six additive candidates of MMSB's own noise
    selection (``noise_select.candidate_noises``: 5 % of the pooled spread of the TRAINING snapshots times 0.125,
    0.25, .., 4) are each fitted, and the one whose learned bridge drift, simulated from the first training
    snapshot, best reproduces the later TRAINING snapshots (mean exact W2, the criterion of
    ``noise_select.score_noise``) makes the predictions. ``autoN`` widens the factors to 0.125, 0.25, .., N
    (``auto16``: eight candidates; ``auto`` is ``auto4``'s grid under the key ``sigma=auto``). The held-out
    snapshots are never seen by the choice;
    the held-out W2 of every candidate is stored apart (``diagnostic_heldout_w2``) as a diagnostic only. Named
    per method too: ``vanilla_sb:0.1``, ``vanilla_sb:auto``.
  * the MMSB rows' noise is ``--mmsb-noise``: ``oracle`` (default; the simulator's multiplicative noise at
    sigma = 0.02, from the data README) or ``auto`` (``sigma="auto", noise="auto"``: chosen from the training
    snapshots by ``noise_select``, no oracle information). Named per method too: ``mmsb:auto``,
    ``mmsb_rounds_only:auto``.
  * ``ot_midpoint``: McCann interpolation: exact OT between the two training snapshots around each held-out
    time, points moved to the time fraction (a static method: uses the neighbouring snapshots, not a
    simulation from t = 0).
  * ``replicate floor`` (repressilator only): W2 between the held-out snapshots and the same times of the
    independent replicate ``Repressilatormrnaprotein_data.npz`` (see its README): the noise floor of the metric.

The ``mmsb`` / ``mmsb_rounds_only`` rows without ``:auto`` are given the simulator's noise model and level
(multiplicative, sigma = 0.02: the values in the data README), which no baseline gets; the ``:auto`` rows
choose them from the training snapshots (``sciflow mmsb evaluate --sigma auto``).

Run: ``OMP_NUM_THREADS=1 python benchmarks/mmsb.py [--seeds 3] [--quick]``; results are cached per
(problem, method, seed) in ``benchmarks/results/mmsb_partial.json`` so a killed run resumes (the CFM and
vanilla SB rows per sigma too: ``ot_cfm:sigma=0.1``, ``vanilla_sb:sigma=auto``; MMSB without the oracle:
``mmsb:noise=auto``; cached ``vanilla_sb`` runs without a sigma are read as sigma 0.1). Writes
``benchmarks/results/mmsb.json`` and ``benchmarks/results/mmsb.md``
(``--out NAME`` writes ``NAME.json`` / ``NAME.md`` instead, for runs of a subset of the methods).
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("SCIFLOW_PROGRESS", "0")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import json

import numpy as np
import ot
import torch
from torch import Tensor

from sciflow.core.errors import InputError
from sciflow.core.files import atomic_write_json, atomic_write_text
from sciflow.core.solvers import RK4
from sciflow.data.snapshots import read_snapshots
from sciflow.domains.cells.snapshots import Snapshots
from sciflow.methods.mmsb.evaluate import evaluate_heldout, mmsb_fit_predict, w2_distance
from sciflow.methods.mmsb.model import MMSB
from sciflow.methods.mmsb.noise_select import candidate_noises

DATA = Path(os.environ.get("SCIFLOW_SNAPSHOTS", "/work/shared/data/snapshots"))
RESULTS = Path(__file__).resolve().parent / "results"
PROBLEMS = {"LV": ("LV_data.npz", "lotka_volterra"), "repressilator": ("Repressilatormrna_data.npz", "repressilator")}
TRUE_LV = {"alpha": 1.0, "beta": 0.4, "gamma": 0.4, "delta": 0.1}
#: the simulators' parameters, from ../shared/data/snapshots/README.md
TRUE_PARAMS = {"LV": TRUE_LV, "repressilator": {"beta": 10.0, "n": 3.0, "k": 1.0, "gamma": 1.0}}
PUBLISHED = {  # interpolation EMD as quoted in the issue (SnapMMD paper tables)
    "LV": {"SBIRR (paper)": 0.096, "OT-CFM (paper)": 0.300, "SnapMMD (paper)": 0.060, "OT midpoint (paper)": 0.131},
    "repressilator": {"SBIRR (paper)": 0.168, "OT-CFM (paper)": 0.781, "SnapMMD (paper)": 0.102,
                      "OT midpoint (paper)": 0.598},
}
N_PARTICLES = 200
SIGMA_SB = 0.1          # vanilla SB's Brownian reference level (data units per sqrt(time unit))
SIGMA_OT_CFM = 0.1      # OT-CFM path width in standardised units (TorchCFM runner/configs/model/otcfm.yaml)
SIGMA_SB_CFM = 1.0      # SB-CFM reference noise, data units per sqrt(time unit) (TorchCFM sbcfm.yaml: 1.0)
#: sigma of the cached CFM runs made before sigma became an option (their cache keys carry no sigma)
LEGACY_CFM_SIGMA = {"ot_cfm": 0.0, "sb_cfm": 0.1}
#: sigma of the cached vanilla SB runs made before its sigma became an option
LEGACY_VANILLA_SIGMA = 0.1
#: held-out W2 of every candidate sigma of ``vanilla_sb:sigma=auto`` fits (a diagnostic, never used to choose)
_CANDIDATE_PREDICTORS: list[tuple[float, Callable]] = []


def _train_score(predict: Callable, train: Snapshots) -> float:
    """Mean exact W2 of a prediction at the later TRAINING times against those training snapshots."""
    later = [float(t) for t in train.times[1:].tolist()]
    try:
        pred = predict(later)
    except InputError:               # the simulation diverged: the worst score (as noise_select.score_noise)
        return float("inf")
    if not all(bool(torch.isfinite(pred[t]).all()) for t in later):
        return float("inf")
    return float(np.mean([w2_distance(pred[t], train.samples[k + 1]) for k, t in enumerate(later)]))


def vanilla_sb_fit_predict(sigma: float | str, paths: int) -> Callable:
    """Vanilla SB (zero reference, rounds=0, learned bridge drift) at Brownian level ``sigma``, or with
    ``sigma="auto"``: the level chosen per seed on the TRAINING snapshots among MMSB's own additive candidates."""
    if not str(sigma).startswith("auto"):
        return mmsb_fit_predict(N_PARTICLES, dynamics="bridge", reference="zero", sigma=float(sigma),
                                noise="additive", rounds=0, n_paths=paths)

    def fit_predict(train: Snapshots, seed: int) -> tuple[Callable, dict[str, Any]]:
        t0 = time.perf_counter()
        cands, scores = [], []
        _CANDIDATE_PREDICTORS.clear()
        top = float(str(sigma).removeprefix("auto") or 4)     # "auto16": factors 0.125, .., 16 (a wider grid)
        factors = [f for f in (0.125 * 2 ** k for k in range(12)) if f <= top * (1 + 1e-9)]
        for c in candidate_noises(["additive"], train, factors):
            # exactly mmsb_fit_predict(dynamics="bridge") at this sigma (same seeds, same generator stream)
            model = MMSB(reference="zero", sigma=float(c.sigma), noise="additive", rounds=0, n_paths=paths)
            model.fit(train, seed=seed, show_progress=False)
            gen = torch.Generator().manual_seed(10_000 + seed)
            model.fit_bridge_drift(seed=seed, generator=gen)

            def predict(times: list[float], model: MMSB = model, gen: torch.Generator = gen) -> dict:
                traj = model.predict(times, N_PARTICLES, dynamics="bridge", generator=gen)
                return {float(t): traj.states[i] for i, t in enumerate(traj.times.tolist())}

            def score_predict(times: list[float], model: MMSB = model) -> dict:   # its own noise stream
                traj = model.predict(times, N_PARTICLES, dynamics="bridge",
                                     generator=torch.Generator().manual_seed(20_000 + seed))
                return {float(t): traj.states[i] for i, t in enumerate(traj.times.tolist())}

            state = gen.get_state()

            def diag_predict(times: list[float], model: MMSB = model, state: Tensor = state) -> dict:
                # the stream ``predict`` starts from, so the chosen candidate's diagnostic equals its row
                traj = model.predict(times, N_PARTICLES, dynamics="bridge", generator=torch.Generator().set_state(state))
                return {float(t): traj.states[i] for i, t in enumerate(traj.times.tolist())}

            cands.append((float(c.sigma), predict, diag_predict))
            scores.append({"sigma": float(c.sigma), "train_w2": _train_score(score_predict, train)})
        best = min(range(len(cands)), key=lambda i: scores[i]["train_w2"])
        _CANDIDATE_PREDICTORS.extend((sig, diag) for sig, _, diag in cands)
        return cands[best][1], {"params": {}, "sigma": cands[best][0], "selection": scores,
                                "fit_seconds": time.perf_counter() - t0}

    return fit_predict


def mmsb_auto_fit_predict(**kw: Any) -> Callable:
    """MMSB with ``sigma="auto", noise="auto"`` (mmsb_fit_predict's protocol), recording the chosen noise."""

    def fit_predict(train: Snapshots, seed: int) -> tuple[Callable, dict[str, Any]]:
        model = MMSB(sigma="auto", noise="auto", **kw)
        summary = model.fit(train, seed=seed, show_progress=False)
        gen = torch.Generator().manual_seed(10_000 + seed)

        def predict(times: list[float]) -> dict[float, Tensor]:
            traj = model.predict(times, N_PARTICLES, dynamics="reference", generator=gen)
            return {float(t): traj.states[i] for i, t in enumerate(traj.times.tolist())}

        sel = [h for h in summary["history"] if h.get("step") == "noise selection"]
        return predict, {"params": summary["params"], "fit_seconds": summary["seconds"],
                         "fit_cpu_seconds": summary["cpu_seconds"], "noise": summary["noise"],
                         "sigma": summary["sigma"], "selection": sel[0]["scores"] if sel else None}

    return fit_predict


# -- TorchCFM baselines --------------------------------------------------------------------------
def cfm_fit_predict(kind: str, steps: int, batch: int = 128, sigma: float | None = None) -> Callable:
    """TorchCFM baseline. ``sigma``: OT-CFM's path width in standardised units (default ``SIGMA_OT_CFM``), or
    SB-CFM's reference noise in data units per sqrt(time unit) (default ``SIGMA_SB_CFM``)."""
    if sigma is None:
        sigma = SIGMA_OT_CFM if kind == "ot_cfm" else SIGMA_SB_CFM
    from torchcfm.conditional_flow_matching import (
        ExactOptimalTransportConditionalFlowMatcher,
        SchrodingerBridgeConditionalFlowMatcher,
    )
    from torchcfm.models.models import MLP

    def fit_predict(train: Snapshots, seed: int) -> tuple[Callable, dict[str, Any]]:
        torch.manual_seed(seed)  # TorchCFM draws from the global RNG; seeded for reproducibility
        np.random.seed(seed)     # its exact-OT sampler uses numpy's global RNG
        t0 = time.perf_counter()
        times = train.times.tolist()
        x_all = torch.cat(list(train.samples)).float()
        mean, scale = x_all.mean(0), x_all.std(0)
        xs = [((s.float() - mean) / scale) for s in train.samples]
        dim = train.dim
        # interval time units: s = k + tau; the bridge noise per interval in standardised units
        if kind == "ot_cfm":
            fm_sigma = float(sigma)
            fm = ExactOptimalTransportConditionalFlowMatcher(sigma=fm_sigma)
        else:
            dts = np.diff(times)
            fm_sigma = float(sigma * np.sqrt(dts.mean()) / scale.mean())
            fm = SchrodingerBridgeConditionalFlowMatcher(sigma=fm_sigma, ot_method="exact")
        net = MLP(dim, w=64, time_varying=True)
        opt = torch.optim.Adam(net.parameters(), 1e-3)
        g = torch.Generator().manual_seed(seed)
        for _ in range(steps):
            opt.zero_grad()
            ts, xts, uts = [], [], []
            for k in range(len(xs) - 1):
                a = xs[k][torch.randint(len(xs[k]), (batch,), generator=g)]
                b = xs[k + 1][torch.randint(len(xs[k + 1]), (batch,), generator=g)]
                t, xt, ut = fm.sample_location_and_conditional_flow(a, b)
                ts.append(t + k)
                xts.append(xt)
                uts.append(ut)
            t, xt, ut = torch.cat(ts), torch.cat(xts), torch.cat(uts)
            loss = ((net(torch.cat([xt, t[:, None]], -1)) - ut) ** 2).mean()
            loss.backward()
            opt.step()
        fit_seconds = time.perf_counter() - t0
        net.eval()

        def field(x: Tensor, s: Tensor) -> Tensor:
            return net(torch.cat([x, s.reshape(-1, 1).expand(x.shape[0], 1).to(x)], -1))

        def predict(held: list[float]) -> dict[float, Tensor]:
            s_held = np.interp(held, times, np.arange(len(times)))  # time -> interval units
            grid = torch.tensor([0.0, *s_held], dtype=torch.float32)
            with torch.no_grad():
                x0 = xs[0].repeat(-(-N_PARTICLES // len(xs[0])), 1)[:N_PARTICLES]   # whole copies of t = 0
                traj = RK4(substeps=50).solve(field, x0, grid)
            return {float(t): (traj.states[i + 1].double() * scale.double() + mean.double())
                    for i, t in enumerate(held)}

        return predict, {"fit_seconds": fit_seconds, "steps": steps, "batch_per_interval": batch,
                         "sigma": float(sigma), "torchcfm_sigma": fm_sigma}

    return fit_predict


def ot_midpoint_fit_predict(train: Snapshots, seed: int) -> tuple[Callable, dict[str, Any]]:
    times = train.times.tolist()

    def predict(held: list[float]) -> dict[float, Tensor]:
        out = {}
        for t in held:
            k = int(np.searchsorted(times, t)) - 1
            a, b = train.samples[k].numpy(), train.samples[k + 1].numpy()
            plan = ot.emd(ot.unif(len(a)), ot.unif(len(b)), ot.dist(a, b), numItermax=1_000_000)
            i, j = np.nonzero(plan > 1e-12)
            lam = (t - times[k]) / (times[k + 1] - times[k])
            w = plan[i, j] * len(a)  # with equal sizes the plan is a permutation: weights 1
            pts = (1 - lam) * a[i] + lam * b[j]
            pick = np.repeat(np.arange(len(i)), np.maximum(1, np.round(w).astype(int)))
            out[float(t)] = torch.as_tensor(pts[pick])
        return out

    return predict, {}


def set_particles(n: int) -> None:
    """Simulate ``n`` particles from t = 0 (whole copies of the 200 observed cells where n is a multiple)."""
    global N_PARTICLES
    if n < 1:
        raise SystemExit(f"--particles: must be >= 1, got {n}")
    N_PARTICLES = int(n)


def method_key(m: str, cfm_sigma: dict[str, Any], mmsb_noise: str = "oracle") -> str:
    """Canonical method name: the CFM baselines and vanilla SB carry their sigma (``ot_cfm`` ->
    ``ot_cfm:sigma=0.1``, ``vanilla_sb:auto`` -> ``vanilla_sb:sigma=auto``); MMSB without the oracle noise
    carries ``:noise=auto`` (``mmsb:auto`` -> ``mmsb:noise=auto``; the oracle rows keep the bare name)."""
    base, _, s = m.partition(":")
    if base in ("mmsb", "mmsb_rounds_only"):
        s = s.removeprefix("noise=") or mmsb_noise
        if s not in ("oracle", "auto"):
            raise SystemExit(f"--methods / --mmsb-noise: expected oracle or auto, got {s!r}")
        return base if s == "oracle" else f"{base}:noise=auto"
    if base == "vanilla_sb":
        s = s.removeprefix("sigma=") or str(cfm_sigma[base])
        return f"{base}:sigma={s}" if s.startswith("auto") else f"{base}:sigma={float(s):g}"
    if base not in LEGACY_CFM_SIGMA:
        if s:
            raise SystemExit(f"--methods: only ot_cfm / sb_cfm / vanilla_sb / mmsb take a ':' suffix, got {m!r}")
        return base
    return f"{base}:sigma={float(s.removeprefix('sigma=')) if s else cfm_sigma[base]:g}"


def migrate_cache(partial: dict[str, Any]) -> dict[str, Any]:
    """Give the CFM runs cached before sigma became an option (keys ``prob/ot_cfm/seed``) their sigma."""
    out = {}
    for k, v in partial.items():
        prob, m, seed = k.split("/")
        if m in LEGACY_CFM_SIGMA:
            m = f"{m}:sigma={LEGACY_CFM_SIGMA[m]:g}"
        elif m == "vanilla_sb":
            m = f"{m}:sigma={LEGACY_VANILLA_SIGMA:g}"
        out[f"{prob}/{m}/{seed}"] = v
    return out


def method_table(name: str, ref: str, quick: bool) -> dict[str, Callable]:
    rounds, paths = (2, 200) if quick else (6, 500)
    cfm_steps = 300 if quick else 2500
    return {
        "mmsb": mmsb_fit_predict(N_PARTICLES, reference=ref, sigma=0.02, noise="multiplicative", rounds=rounds,
                                 n_paths=paths),
        "mmsb_rounds_only": mmsb_fit_predict(N_PARTICLES, reference=ref, sigma=0.02, noise="multiplicative",
                                             rounds=rounds, n_paths=paths, calibrate="none"),
        "mmsb:noise=auto": mmsb_auto_fit_predict(reference=ref, rounds=rounds, n_paths=paths),
        "mmsb_rounds_only:noise=auto": mmsb_auto_fit_predict(reference=ref, rounds=rounds, n_paths=paths,
                                                             calibrate="none"),
        "vanilla_sb": lambda s: vanilla_sb_fit_predict(s, paths),          # called with the sigma (method_fn)
        "ot_cfm": lambda s: cfm_fit_predict("ot_cfm", cfm_steps, sigma=s),   # called with the sigma (method_fn)
        "sb_cfm": lambda s: cfm_fit_predict("sb_cfm", cfm_steps, sigma=s),
        "ot_midpoint": ot_midpoint_fit_predict,
    }


def method_fn(table: dict[str, Callable], key: str) -> Callable:
    """The fit_predict of a canonical method name (``ot_cfm:sigma=0.1`` -> OT-CFM with sigma 0.1)."""
    if key in table:
        return table[key]
    base, _, s = key.partition(":sigma=")
    return table[base](s if s.startswith("auto") else float(s))


def replicate_floor() -> float:
    a = read_snapshots(DATA / "Repressilatormrna_data.npz")
    b = read_snapshots(DATA / "Repressilatormrnaprotein_data.npz")
    return float(np.mean([w2_distance(a.samples[k], b.samples[k]) for k in range(1, a.n_snapshots, 2)]))


def _command_args(argv: list[str]) -> list[str]:
    """The command-line arguments to record: without --report-only and --note (the note is written apart)."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--note":
            skip = True
        elif a != "--report-only" and not a.startswith("--note="):
            out.append(shlex.quote(a))
    return out


def _fmt(mean: float, sd: float) -> str:
    return f"{mean:.3f} ± {sd:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="tiny sizes to check the script runs")
    ap.add_argument("--problems", default="LV,repressilator")
    ap.add_argument("--methods", default="ot_midpoint,mmsb,mmsb_rounds_only,vanilla_sb,ot_cfm,sb_cfm")
    ap.add_argument("--report-only", action="store_true", help="only rebuild the tables from the cached runs")
    ap.add_argument("--ot-cfm-sigma", type=float, default=SIGMA_OT_CFM,
                    help="OT-CFM path width in standardised units (default 0.1, TorchCFM's otcfm.yaml sigma_min; "
                         "0 is the library's code default, which diverges on the repressilator)")
    ap.add_argument("--sb-cfm-sigma", type=float, default=SIGMA_SB_CFM,
                    help="SB-CFM reference noise in data units per sqrt(time unit) (default 1.0, near TorchCFM's "
                         "sbcfm.yaml sigma_min 1.0 in standardised units; 0.1 diverges on some repressilator seeds)")
    ap.add_argument("--vanilla-sigma", default="auto16",
                    help="vanilla SB's Brownian level in data units per sqrt(time unit) (0.1: the level of the runs "
                         "before 2026-11-29 20:00, which diverges on the repressilator), or 'auto' / 'autoN' "
                         "(default auto16): chosen per seed among MMSB's additive noise candidates by the W2 to the "
                         "TRAINING snapshots")
    ap.add_argument("--mmsb-noise", default="oracle", choices=("oracle", "auto"),
                    help="the MMSB rows' noise: 'oracle' (the simulator's multiplicative sigma 0.02) or 'auto' "
                         "(sigma='auto', noise='auto', chosen from the training snapshots)")
    ap.add_argument("--out", default=None, help="write NAME.json / NAME.md in benchmarks/results instead of mmsb*")
    ap.add_argument("--note", default="", help="a provenance note written under the command line of the .md/.json")
    ap.add_argument("--particles", type=int, default=N_PARTICLES,
                    help="particles simulated from t = 0 by the simulating methods (default 200, as observed: the "
                         "published protocol); other counts write mmsb_p<N>.* so the metric's finite-sample part "
                         "can be told from the model's error (compare benchmarks/mmsb_oracle.py --replicas)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    RESULTS.mkdir(parents=True, exist_ok=True)
    tag = "_quick" if args.quick else ""
    if args.particles != N_PARTICLES:
        set_particles(args.particles)
        tag += f"_p{args.particles}"
    partial_path = RESULTS / f"mmsb_partial{tag}.json"
    partial = migrate_cache(json.loads(partial_path.read_text())) if partial_path.exists() else {}
    problems = args.problems.split(",")
    cfm_sigma = {"ot_cfm": args.ot_cfm_sigma, "sb_cfm": args.sb_cfm_sigma, "vanilla_sb": args.vanilla_sigma}
    if cfm_sigma["sb_cfm"] <= 0:
        raise SystemExit("--sb-cfm-sigma: must be > 0 (TorchCFM's SB-CFM refuses 0)")
    methods = list(dict.fromkeys(method_key(m, cfm_sigma, args.mmsb_noise) for m in args.methods.split(",")))
    out_name = args.out or f"mmsb{tag}"
    for seed in range(0 if args.report_only else args.seeds):           # seeds outermost: a stopped run has every method on seed 0
        for prob in problems:
            fname, ref = PROBLEMS[prob]
            snaps = read_snapshots(DATA / fname)
            table = method_table(prob, ref, args.quick)
            for m in methods:
                key = f"{prob}/{m}/{seed}"
                if key in partial or (m == "ot_midpoint" and seed > 0):
                    continue
                _CANDIDATE_PREDICTORS.clear()
                r = evaluate_heldout(snaps, method_fn(table, m), seeds=1, seed_offset=seed)
                partial[key] = {k: r[k] for k in ("emd_mean", "w1_mean", "emd_per_time", "seconds",
                                                  "cpu_seconds", "seconds_per_fit")} | {"info": r["runs"][0]}
                if _CANDIDATE_PREDICTORS:      # vanilla_sb:sigma=auto: every candidate's held-out W2, after the choice
                    odd = list(range(1, snaps.n_snapshots, 2))
                    held = [float(snaps.times[k]) for k in odd]
                    diag = {}
                    for sig, pred_fn in _CANDIDATE_PREDICTORS:
                        try:
                            pr = pred_fn(held)
                            diag[f"{sig:.6g}"] = float(np.mean([w2_distance(pr[t], snaps.samples[k])
                                                                for t, k in zip(held, odd)]))
                        except InputError:
                            diag[f"{sig:.6g}"] = float("inf")
                    partial[key]["diagnostic_heldout_w2"] = diag
                    _CANDIDATE_PREDICTORS.clear()
                atomic_write_json(partial_path, partial)
                print(f"{key}: W2 {r['emd_mean']:.4f} W1 {r['w1_mean']:.4f} fit {r['seconds_per_fit']:.1f}s",
                      flush=True)
    summary: dict[str, Any] = {"protocol": __doc__.split("Methods:")[0].strip(), "n_particles": N_PARTICLES,
                               "seeds_requested": args.seeds, "cfm_steps": 300 if args.quick else 2500,
                               "cfm_batch_per_interval": 128, "ot_cfm_sigma_standardised": args.ot_cfm_sigma,
                               "sb_cfm_sigma_data_units": args.sb_cfm_sigma,
                               "mmsb_noise": ("bare mmsb / mmsb_rounds_only: multiplicative, sigma = 0.02 (the "
                                              "simulator's, given to MMSB); ':noise=auto' rows: sigma='auto', "
                                              "noise='auto'"),
                               "vanilla_sb_sigma": args.vanilla_sigma,
                               "std": "sample standard deviation over seeds (ddof = 1)",
                               "mmsb_rounds_paths": (2, 200) if args.quick else (6, 500), "quick": args.quick, "machine": "2 shared CPU cores, no GPU, "
                               "one torch thread", "python": platform.python_version(), "torch": torch.__version__,
                               "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                               "command": "OMP_NUM_THREADS=1 python benchmarks/mmsb.py "
                               + " ".join(_command_args(sys.argv[1:]))
                               + (" (tables rebuilt from the cached runs with --report-only)"
                                  if args.report_only else ""),
                               "note": args.note, "results": {}}
    for prob in problems:
        summary["results"][prob] = {}
        for m in methods:
            runs = [v for k, v in partial.items() if k.startswith(f"{prob}/{m}/")]
            if not runs:
                continue
            e = [r["emd_mean"] for r in runs]
            w = [r["w1_mean"] for r in runs]
            s = [r["seconds_per_fit"] for r in runs]
            cpu = [r["cpu_seconds"] for r in runs]
            entry = {"emd_mean": statistics.fmean(e), "emd_std": statistics.stdev(e) if len(e) > 1 else 0.0,
                     "w1_mean": statistics.fmean(w), "w1_std": statistics.stdev(w) if len(w) > 1 else 0.0,
                     "seconds_per_fit": statistics.fmean(s), "seconds_per_fit_max": max(s), "n_seeds": len(runs),
                     "cpu_seconds_per_run": statistics.fmean(cpu),
                     "emd_per_seed": e,
                     "emd_per_time": {t: statistics.fmean(r["emd_per_time"][t] for r in runs)
                                      for t in runs[0]["emd_per_time"]}}
            if m.partition(":")[2] == "noise=auto" or m.partition(":")[2].startswith("sigma=auto"):
                entry["chosen"] = [{k: r["info"].get(k) for k in ("noise", "sigma") if k in r["info"]} for r in runs]
                entry["selection"] = [r["info"].get("selection") for r in runs]
                if m.startswith("vanilla_sb"):
                    entry["diagnostic_heldout_w2"] = [r.get("diagnostic_heldout_w2") for r in runs]
            if m.partition(":")[0] in ("mmsb", "mmsb_rounds_only"):
                entry["params"] = [r["info"].get("params") for r in runs]
                truth = TRUE_PARAMS[prob]
                entry["param_max_rel_error"] = [max(abs(p[n] - v) / v for n, v in truth.items())
                                                for p in entry["params"]]
            summary["results"][prob][m] = entry
    if "repressilator" in problems:
        summary["replicate_floor_repressilator_w2"] = replicate_floor()
    atomic_write_json(RESULTS / f"{out_name}.json", summary)
    names = {"mmsb": "sciflow MMSB (mechanistic ref.) + calibration", "mmsb_rounds_only":
             "sciflow MMSB, rounds only (no calibration)", "vanilla_sb": "sciflow vanilla SB",
             "ot_midpoint": "OT midpoint (McCann)",
             "mmsb:noise=auto": "sciflow MMSB + calibration, noise auto (no oracle)",
             "mmsb_rounds_only:noise=auto": "sciflow MMSB, rounds only, noise auto (no oracle)"}
    for m in methods:
        base, _, s = m.partition(":sigma=")
        if base == "vanilla_sb":
            names[m] = (f"sciflow vanilla SB (σ chosen on training snapshots, factors 0.125–{s[4:] or 4})"
                        if s.startswith("auto") else f"sciflow vanilla SB (σ = {s})")
        elif s:
            names[m] = {"ot_cfm": f"TorchCFM OT-CFM (σ = {s}, standardised)",
                        "sb_cfm": f"TorchCFM SB-CFM (σ = {s} data units)"}[base]
    lines = ["# MMSB benchmark: held-out interpolation (train on even snapshots, predict odd ones)", "",
             f"Command: `{summary['command']}`  ", f"Machine: {summary['machine']}; date {summary['date']}; "
             f"seeds per row in the 'seeds' column{' (QUICK sizes)' if args.quick else ''}; {N_PARTICLES} particles from t=0.", "",
             *([f"Note: {args.note}", ""] if args.note else []),
             "EMD = exact W2 (POT emd2, squared Euclidean, sqrt), mean over held-out times t=1,3,5,7,9, "
             "mean ± sample sd (ddof = 1) over seeds; W1 = exact earth mover's distance (Euclidean).", "",
             ("The MMSB rows not marked 'noise auto' are given the simulator's noise model and level (multiplicative, "
              "σ = 0.02, from the data README); no baseline gets that information. The 'noise auto' rows choose noise "
              "model and level on the training snapshots (sigma='auto', noise='auto'), as does vanilla SB's 'σ chosen "
              "on training snapshots' row among MMSB's additive candidates. OT-CFM's σ is in standardised units (TorchCFM's code "
              "default is 0, its trajectory-experiment config uses 0.1); SB-CFM's is in data units per √time (TorchCFM's "
              "config: 1.0 in standardised units)."), "",
             "| problem | method | seeds | EMD (W2) | W1 | wall s per fit | CPU s per run |", "|---|---|---|---|---|---|---|"]
    for prob, rows in summary["results"].items():
        for m, e in rows.items():
            lines.append(f"| {prob} | {names[m]} | {e['n_seeds']} | {_fmt(e['emd_mean'], e['emd_std'])} | "
                         f"{_fmt(e['w1_mean'], e['w1_std'])} | {e['seconds_per_fit']:.1f} | {e['cpu_seconds_per_run']:.1f} |")
        for label, v in PUBLISHED[prob].items():
            lines.append(f"| {prob} | {label} | | {v:.3f} (published, their EMD) | | | |")
    lines += ["", "W2 per held-out time (mean over seeds):", "",
              "| problem | method | t=1 | t=3 | t=5 | t=7 | t=9 |", "|---|---|---|---|---|---|---|"]
    for prob, rows in summary["results"].items():
        for m, e in rows.items():
            lines.append(f"| {prob} | {names[m]} | " + " | ".join(f"{v:.3g}" for v in e["emd_per_time"].values()) + " |")
    if "replicate_floor_repressilator_w2" in summary:
        lines += ["", f"Repressilator noise floor (W2 between held-out snapshots and the independent replicate file): "
                      f"{summary['replicate_floor_repressilator_w2']:.3f}."]
    for prob, rows in summary["results"].items():
        for m, e in rows.items():
            if "chosen" in e:
                lines += ["", f"Noise chosen on the training snapshots, {prob}, {names[m]} (per seed): "
                          + "; ".join(", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                                for k, v in c.items()) for c in e["chosen"])]
            if e.get("diagnostic_heldout_w2"):
                lines += ["", (f"Diagnostic only (not used to choose), {prob}: held-out W2 of every vanilla SB "
                               "candidate σ, per seed, with the training-snapshot score that chose:"), ""]
                for sd, (d, sel) in enumerate(zip(e["diagnostic_heldout_w2"], e["selection"])):
                    parts = []
                    for c in sel:
                        held_w2 = d[f"{c['sigma']:.6g}"]
                        parts.append(f"σ={c['sigma']:.4g}: train {c['train_w2']:.3g} / held-out {held_w2:.3g}")
                    lines.append(f"- seed {sd}: " + ", ".join(parts))
    for prob, truth in TRUE_PARAMS.items():
        for m in [k for k in methods if k.partition(":")[0] in ("mmsb", "mmsb_rounds_only")]:
            fitted = summary["results"].get(prob, {}).get(m)
            if not fitted:
                continue
            lines += ["", f"Refined {prob} parameters, {names[m]} (truth "
                      + ", ".join(f"{k}={v:g}" for k, v in truth.items()) + "):", ""]
            for p, err in zip(fitted["params"], fitted["param_max_rel_error"]):
                lines.append("- " + ", ".join(f"{k}={p[k]:.4f}" for k in truth)
                             + f" (max rel. error {100 * err:.2f} %)")
    atomic_write_text(RESULTS / f"{out_name}.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
