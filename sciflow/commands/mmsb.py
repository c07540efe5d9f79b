"""``sciflow mmsb``: evaluate on the held-out snapshot protocol, fit and export, simulate snapshot data.

    sciflow mmsb evaluate --data LV_data.npz --reference lotka_volterra --out metrics.json --seeds 3
    sciflow mmsb fit --data cells.h5ad --time-key day --pca 5 --reference mlp --out runs/cells   (resumes if interrupted)
    sciflow mmsb simulate --reference lotka_volterra --params '{"alpha": 1, "beta": 0.4, "gamma": 0.4, "delta": 0.1}' \
        --box 5,4 5.1,4.1 --sigma 0.02 --noise multiplicative --out lv.npz
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..core.errors import InputError
from ._args import integer, number, output_file, output_folder, positive, seed

#: the references `mmsb simulate` draws data from: mechanistic drifts with named parameters (an MLP drift would
#: be a randomly initialised network, zero no dynamics at all)
SIMULATE_REFERENCES = ("lotka_volterra", "repressilator", "linear")


def _float_or_auto(v: str) -> float | str:
    return v if v == "auto" else float(v)


def _json_object(option: str, text: str | None) -> dict[str, Any]:
    """A JSON object given on the command line ({} when not given)."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"{option}: not JSON ({e}): {text!r}") from None
    if not isinstance(value, dict):
        raise InputError(f"{option}: expected a JSON object {{name: value}}, got {type(value).__name__} {text!r}")
    return value


def _numbers(option: str, text: str) -> list[float]:
    """Comma-separated numbers given on the command line."""
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise InputError(f"{option}: expected comma-separated numbers, got {text!r}") from None


def _model_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    kw: dict[str, Any] = dict(reference=args.reference, sigma=args.sigma, noise=args.noise, rounds=args.rounds,
                              n_paths=args.paths, calibrate=args.calibrate)
    if args.reference_kwargs:
        kw["reference_kwargs"] = _json_object("--reference-kwargs", args.reference_kwargs)
    if kw["reference"] == "zero" and args.rounds is None:
        kw["rounds"] = 0
    if kw["rounds"] is None:
        kw.pop("rounds")
    return kw


def _read(args: argparse.Namespace) -> Any:
    """The snapshots of --data; an option its format does not use (--use-rep for a .csv) is refused."""
    from ..data.snapshots import formats_using, read_snapshots, unused_options
    given = {"time_key": args.time_key if args.time_key != "time" else None, "use_rep": args.use_rep,
             "pca": args.pca}
    unused = unused_options(args.data, **given)
    if unused:
        k = unused[0]
        flag = "--" + k.replace("_", "-")
        raise InputError(f"{flag}: {given[k]!r} does not apply to --data {args.data} ({Path(args.data).suffix} "
                         f"file); {flag} is used by {formats_using(k)} files only: remove it")
    kw: dict[str, Any] = {"pca": args.pca}               # every format
    if Path(args.data).suffix.lower() == ".h5ad":
        kw.update(time_key=args.time_key, use_rep=args.use_rep)
    elif Path(args.data).suffix.lower() == ".csv":
        kw.update(time_column=args.time_key)
    return read_snapshots(args.data, **kw)


def _check_kwargs(option: str, reference: str, dim: int, kwargs: dict[str, Any]) -> None:
    """Build the reference once, so that bad keywords (``option``) are refused before any work or folder."""
    from ..methods.mmsb.references import check_reference_kwargs
    try:
        check_reference_kwargs(reference, dim, kwargs)
    except InputError as e:             # "reference_kwargs.hidden: ..." -> "--reference-kwargs: hidden: ..."
        msg = str(e).removeprefix("reference_kwargs").removeprefix(".").removeprefix(": ")
        raise InputError(f"{option}: {msg}") from None


def _check_reference(kw: dict[str, Any], dim: int) -> None:
    _check_kwargs("--reference-kwargs", kw["reference"], dim, dict(kw.get("reference_kwargs") or {}))


def _evaluate(args: argparse.Namespace) -> int:
    import torch

    from ..core.files import atomic_write_json
    from ..methods.mmsb.evaluate import evaluate_heldout, mmsb_fit_predict
    torch.set_num_threads(max(1, args.threads))
    snaps = _read(args)
    kw = _model_kwargs(args)
    _check_reference(kw, snaps.dim)
    dynamics = "bridge" if kw["reference"] == "zero" else "reference"
    res = evaluate_heldout(snaps, mmsb_fit_predict(args.particles, dynamics=dynamics, **kw), seeds=args.seeds)
    res.update(data=str(args.data), reference=kw["reference"], config={k: v for k, v in kw.items()})
    atomic_write_json(args.out, res)
    print(f"{args.data}: EMD (W2) {res['emd_mean']:.4f} ± {res['emd_std']:.4f} over {args.seeds} seed(s), "
          f"{res['seconds']:.1f} s -> {args.out}")
    return 0


def _fit(args: argparse.Namespace) -> int:
    import torch

    from ..core.files import atomic_write_json
    from ..methods.mmsb import MMSB
    from ..methods.mmsb.export import write_trajectories
    from ..methods.mmsb.plot import plot_mmsb
    torch.set_num_threads(max(1, args.threads))
    kw = _model_kwargs(args)
    model = MMSB(**kw)                           # settings and data are checked before the folder is made
    snaps = _read(args)
    _check_reference(kw, snaps.dim)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    # the fit's state after every round: an interrupted fit goes on from it when the command is run again
    state = out / "fit_state.pt"
    if args.fresh:
        state.unlink(missing_ok=True)
    elif state.is_file():
        print(f"resuming the fit from {state}, if it holds this fit's state (--fresh starts over)")
    summary = model.fit(snaps, seed=args.seed, checkpoint=state)
    model.save(out / "model.pt")
    state.unlink(missing_ok=True)                 # the model file now holds the finished fit
    g = torch.Generator().manual_seed(args.seed)
    traj = model.trajectories(args.n, generator=g)
    write_trajectories(out / "trajectories.npz", traj, snapshot_times=snaps.times)
    write_trajectories(out / "trajectories.csv", traj)
    plot_mmsb(model, out / "mmsb.png", trajectories=traj, generator=g)
    atomic_write_json(out / "fit.json", {k: v for k, v in summary.items() if k != "history"} |
                      {"history": summary["history"]})
    print(f"fitted in {summary['seconds']:.1f} s; parameters {summary['params']}; outputs in {out}")
    return 0


def _simulate(args: argparse.Namespace) -> int:
    import torch

    from ..data.snapshots import write_snapshot_npz
    from ..domains.cells import make_noise, simulate_snapshots
    from ..methods.mmsb.references import build_reference
    params = _json_object("--params", args.params)
    low, high = _numbers("--box", args.box[0]), _numbers("--box", args.box[1])
    if len(low) != len(high):
        raise InputError(f"--box: the two corners have {len(low)} and {len(high)} coordinates")
    times = _numbers("--times", args.times) if args.times else list(range(11))
    _check_kwargs("--params", args.reference, len(low), params)
    drift = build_reference(args.reference, len(low), **params)
    # the data's truth is what --params says, every parameter of it: a default filled in silently is not known
    missing = [k for k in drift.params() if k not in params]
    if missing:
        raise InputError(f"--params: the {args.reference} drift the data are simulated from needs every parameter; "
                         f"missing {', '.join(missing)} (it has {', '.join(drift.params())})")
    snaps = simulate_snapshots(drift, make_noise(args.noise, args.sigma), times=times, n=args.n, box=(low, high),
                               dt=args.dt, generator=torch.Generator().manual_seed(args.seed))
    # the truth travels with the data: reference, its parameters (JSON) and the noise, as extra npz keys
    write_snapshot_npz(args.out, snaps, reference=args.reference, params=json.dumps(params, sort_keys=True),
                       noise=args.noise, sigma=args.sigma)
    print(f"{snaps} -> {args.out}")
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="snapshots: .npz (Xs, dts), ragged npz, .csv or .h5ad")
    p.add_argument("--reference", default="mlp",
                   help="lotka_volterra, repressilator, linear, mlp_gradient, mlp, or zero (vanilla SB)")
    p.add_argument("--sigma", type=_float_or_auto, default="auto",
                   help="noise level, or auto (not for --reference zero: give its Brownian level)")
    p.add_argument("--noise", default="auto", help="additive, multiplicative or auto (additive for zero)")
    p.add_argument("--rounds", type=integer(0), default=None, help="bridge/refinement rounds (default 8; 0 for zero)")
    p.add_argument("--paths", type=integer(), default=1000, help="bridge paths per round")
    p.add_argument("--calibrate", choices=("auto", "energy", "none"), default="auto",
                   help="last fit of the rates against all training snapshots at once (auto: mechanistic refs)")
    p.add_argument("--reference-kwargs", default=None, help='JSON, e.g. \'{"hidden": [64, 64]}\'')
    p.add_argument("--time-key", default="time", help="obs column (h5ad) or column (csv) holding the time "
                   "(not for npz, whose times are its dts)")
    p.add_argument("--use-rep", default=None, help="h5ad obsm key, e.g. X_pca (h5ad only)")
    p.add_argument("--pca", type=integer(), default=None, help="project the features on this many PCs (any format)")
    p.add_argument("--threads", type=integer(), default=1)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("mmsb", help="multi-marginal Schrödinger bridges with reference refinement")
    verbs = p.add_subparsers(dest="mmsb_command", metavar="VERB")
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])
    e = verbs.add_parser("evaluate", help="train on even-indexed snapshots, W2 to the held-out odd ones")
    _common(e)
    e.add_argument("--out", required=True, type=output_file(".json"), help="metrics JSON (.json)")
    e.add_argument("--seeds", type=integer(), default=1)
    e.add_argument("--particles", type=integer(), default=1000, help="simulated particles from the first snapshot")
    e.set_defaults(func=_evaluate)
    f = verbs.add_parser("fit", help="fit on all snapshots; write model, trajectories (npz, csv), PNG, params")
    _common(f)
    f.add_argument("--out", required=True, type=output_folder(), help="output folder")
    f.add_argument("--n", type=integer(), default=500, help="trajectories to write")
    f.add_argument("--seed", type=seed, default=0)
    f.add_argument("--fresh", action="store_true",
                   help="fit from the start, discarding an interrupted fit's state in --out (fit_state.pt)")
    f.set_defaults(func=_fit, resumes=True)
    s = verbs.add_parser("simulate", help="write snapshot npz from a reference class with known parameters")
    s.add_argument("--reference", required=True, choices=SIMULATE_REFERENCES,
                   help="the drift with known parameters (--params) the data are simulated from")
    s.add_argument("--params", default=None,
                   help='JSON with every parameter of the drift, e.g. \'{"alpha": 1, "beta": 0.4, "gamma": 0.4, '
                        '"delta": 0.1}\' or \'{"A": [[-1, 0], [0, -1]], "b": [0, 0]}\' (stored in the npz)')
    s.add_argument("--box", nargs=2, required=True, metavar=("LOW", "HIGH"), help="initial box, e.g. 5,4 5.1,4.1")
    s.add_argument("--sigma", type=number(0), default=0.02)
    s.add_argument("--noise", default="multiplicative")
    s.add_argument("--times", default=None, help="comma-separated observation times (default 0..10)")
    s.add_argument("--n", type=integer(), default=200, help="particles per snapshot")
    s.add_argument("--dt", type=positive(), default=0.01)
    s.add_argument("--seed", type=seed, default=0)
    s.add_argument("--out", required=True, type=output_file(".npz"), help="snapshots .npz")
    s.set_defaults(func=_simulate)
