"""Training of lenGen, pathGen and scatGen with the core Trainer (one resumable run per model)."""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ...core.errors import InputError, check_finite
from ...core.random import rand, randint, seeded
from ...core.training import TrainConfig, Trainer
from ...domains.photons.conditions import check_conditions
from ...domains.photons.fields import N_EVENTS, SIGMA_R, G
from ..base import check_train_config
from .model import MODEL_NAMES, ScatteringCVAEs

__all__ = ["encode_dataset", "fit_models", "fit_priors", "train_from_folder"]


def encode_dataset(model: ScatteringCVAEs, walks: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Model coordinates of every walk (computed once; lenGen's dequantisation noise is drawn per batch)."""
    check_conditions(walks[SIGMA_R], walks[G], walks.get("albedo"))
    enc = model.adapter.encode(walks)
    for k, v in enc.items():
        check_finite(f"dataset.{k}", v)
    enc[N_EVENTS] = walks[N_EVENTS].long()
    enc[SIGMA_R], enc[G] = walks[SIGMA_R].float(), walks[G].float()
    return enc


def _inputs(name: str, adapter: Any, rows: Mapping[str, Tensor], gen: torch.Generator | None
            ) -> tuple[Tensor, Tensor]:
    """(x, c) of CVAE ``name`` for encoded walk rows (lenGen's dequantisation noise drawn from ``gen``)."""
    if name == "len":
        u = rand((rows["cond"].shape[0],), generator=gen, device=rows["cond"].device)
        return adapter.len_encode(rows[N_EVENTS], rows[SIGMA_R], rows[G], u), rows["cond"]
    if name == "path":
        return rows["path"], rows["walk"]
    return rows["scat"], rows["scat_cond"]


def _rows(name: str, model: ScatteringCVAEs, data: dict[str, Tensor]) -> tuple[str, str] | None:
    """The subset mask CVAE ``name`` learns from, and the error when it is empty (None: every row)."""
    if name in ("len", "path") and model.config()["exact_single"]:
        # single-scattering walks are drawn exactly; lenGen and pathGen learn the walks with N >= 2
        return "multi", "no walk has N >= 2; lenGen and pathGen have nothing to learn"
    if name == "scat":                # with an exactly drawn first event, scatGen learns events k >= 2 only
        return "scat_keep", "no walk keeps an event k >= 2; scatGen has nothing to learn"
    return None


def _loss_and_batch(name: str, model: ScatteringCVAEs, data: dict[str, Tensor], batch_size: int,
                    free_bits: float = 0.0):
    m = data["cond"].shape[0]

    def sample_batch(gen: torch.Generator) -> dict[str, Tensor]:
        i = randint(m, (batch_size,), generator=gen)
        return {k: v[i] for k, v in data.items()}

    adapter = model.adapter

    def loss_fn(net: torch.nn.Module, b: dict[str, Tensor], gen: torch.Generator):
        x, c = _inputs(name, adapter, b, gen)
        return net.loss(x, c, generator=gen, free_bits=free_bits)

    return loss_fn, sample_batch


def _subset(cache: dict[str, dict[str, Tensor]], data: dict[str, Tensor], mask: str, empty: str
            ) -> dict[str, Tensor]:
    """The rows of ``data`` where ``data[mask]`` holds, computed once per mask (lenGen and pathGen share one)."""
    if mask not in cache:
        keep = data[mask]
        if not bool(keep.any()):
            raise InputError(f"walks: {empty}")
        cache[mask] = {k: v[keep] for k, v in data.items()}
    return cache[mask]


def _check_checkpoint(path: Path | None, run_config: dict[str, Any]) -> None:
    """A checkpoint is resumed only by the run that made it: other model settings, free bits or data would
    otherwise be trained on (or, when it is finished, saved) under the new settings."""
    if path is None or not path.is_file():
        return
    from ...core.files import changed_keys
    from ...core.training import load_checkpoint
    from ...core.training.checkpoint import plain
    changed = changed_keys(load_checkpoint(path).get("run_config", {}), plain(run_config))
    if changed:
        raise InputError(f"checkpoint: {path} was made with other settings ({', '.join(changed)} differ); delete it "
                         "or give another --checkpoints folder to train afresh")


def _check_only(only: Iterable[str] | None) -> list[str] | None:
    """The CVAE names of ``only`` (None: all), an unknown one refused before anything else is checked."""
    if only is None:
        return None
    names = [only] if isinstance(only, str) else list(only)
    bad = [n for n in names if n not in MODEL_NAMES]
    if bad:
        raise InputError(f"only: unknown model(s) {bad}; choose from {list(MODEL_NAMES)}")
    return names


def fit_models(model: ScatteringCVAEs, walks: Mapping[str, Tensor], config: TrainConfig, *,
               batch_size: int = 1024, device: str | torch.device | None = "cpu",
               checkpoint_dir: str | Path | None = None, only: Iterable[str] | None = None,
               free_bits: float = 0.0) -> dict[str, Any]:
    """Train each CVAE for ``config.steps`` steps on the walk records; EMA weights are kept at the end.

    ``free_bits``: minimum KL per latent dimension in the loss (0: plain ELBO; see ``CVAE.loss``)."""
    config = check_train_config(config)
    names = _check_only(only) or list(MODEL_NAMES)
    if int(batch_size) < 1:
        raise InputError(f"batch_size: must be >= 1, got {batch_size}")
    data = encode_dataset(model, walks)
    summary: dict[str, Any] = {"n_walks": int(data["cond"].shape[0]), "batch_size": int(batch_size)}
    subsets: dict[str, dict[str, Tensor]] = {}
    for name in names:
        # every CVAE trains with the config's seed, whether alone (--only) or with the others, so a checkpoint
        # of one resumes in either way (the shipped models were each trained alone with seed 0)
        cfg = dataclasses.replace(config, desc=f"{name}Gen")
        ck = Path(checkpoint_dir) / f"{name}.pt" if checkpoint_dir is not None else None
        sel = _rows(name, model, data)
        rows = data if sel is None else _subset(subsets, data, *sel)
        if sel is not None:
            summary[f"{name}_walks"] = int(rows["cond"].shape[0])
        loss_fn, sample_batch = _loss_and_batch(name, model, rows, int(batch_size), float(free_bits))
        run_config = {"method": model.name, "model": name, **model.config(), "free_bits": float(free_bits),
                      "n_walks": int(rows["cond"].shape[0])}
        _check_checkpoint(ck, run_config)
        trainer = Trainer(model.model[name], loss_fn, cfg, device=device, checkpoint_path=ck, run_config=run_config)
        res = trainer.fit(sample_batch)
        trainer.averaged_model()
        model.model[name].cpu()
        summary[name] = {"steps": res.steps, "seconds": res.seconds, "final_loss": res.final_loss,
                         "history": res.history}
    # merged into what a loaded model already records, so retraining one CVAE keeps the others' entries
    model.info["train"] = {**model.info.get("train", {}),
                           **{k: (v if not isinstance(v, dict) else {kk: vv for kk, vv in v.items() if kk != "history"})
                              for k, v in summary.items()}}
    return summary


def train_from_folder(data: str | Path, out: str | Path, *, steps: int = 20000, batch_size: int = 1024,
                      lr: float = 2e-3, seed: int = 0, device: str = "cpu", checkpoint_dir: str | Path | None = None,
                      only: Iterable[str] | None = None, max_walks: int | None = None,
                      free_bits: float = 0.0, scat_coords: str = "depth", exact_single: bool = True,
                      partial: bool = False) -> dict[str, Any]:
    """Load a walk dataset folder (or several: a list), train (or resume), and save the method to ``out``.
    ``partial``: also take folders whose generation did not finish (the chunks present; see
    ``load_walk_dataset``).

    With ``only``, the models not listed are taken from ``out/model.pt`` when it exists. Switching scatGen's
    ``scat_coords`` needs scat retrained; switching ``exact_single`` needs len and path retrained."""
    from ...data.scattering import load_walk_dataset
    only = _check_only(only)                  # an unknown name first, not a complaint about ``out`` or the data
    folders = list(data) if isinstance(data, (list, tuple)) else [data]
    walks = load_walk_dataset(folders, max_walks=max_walks, partial=bool(partial))
    out = Path(out)
    want = {"scat_coords": scat_coords, "exact_single": bool(exact_single)}
    if only and not (out / "model.pt").is_file():
        raise InputError(f"only: {out} holds no model.pt to take the CVAEs not retrained from (the others would be "
                         "saved untrained); train all three first, or pass the folder of a trained model as out")
    if only:
        old = ScatteringCVAEs.load(out)
        needs = {"scat_coords": ("scat",), "exact_single": ("len", "path")}
        for key, models in needs.items():
            if old.config()[key] != want[key] and not set(models) <= set(only):
                raise InputError(f"{key}: {out} holds {key}={old.config()[key]!r} weights; retrain "
                                 f"{' and '.join(models)} (--only {' '.join(models)}) to switch to {want[key]!r}")
        with seeded(int(seed)):                 # initial weights from the seed, not torch's global stream
            model = ScatteringCVAEs(**{**old.config(), **want})
        for name in MODEL_NAMES:
            if name not in only:
                model.model[name].load_state_dict(old.model[name].state_dict())
        model.info = dict(old.info)
    else:
        with seeded(int(seed)):
            model = ScatteringCVAEs(**want)
    cfg = TrainConfig(steps=int(steps), lr=float(lr), lr_schedule="cosine", warmup_steps=min(500, int(steps) // 10),
                      min_lr_ratio=0.02, ema_decay=0.999, grad_clip=1.0, seed=int(seed),
                      checkpoint_every=1000)
    t0 = time.perf_counter()
    summary = fit_models(model, walks, cfg, batch_size=batch_size, device=device, checkpoint_dir=checkpoint_dir,
                         only=only, free_bits=free_bits)
    model.info["data"] = {"folder": [str(f) for f in folders], "n_walks": summary["n_walks"]}
    model.save(out)
    summary["seconds_total"] = time.perf_counter() - t0
    summary["saved"] = str(out)
    return summary


def fit_priors(model: ScatteringCVAEs, walks: Mapping[str, Tensor], names: Iterable[str] = ("len",), *,
               steps: int = 3000, batch_size: int = 4096, lr: float = 3e-3, seed: int = 0) -> ScatteringCVAEs:
    """A copy of ``model`` whose CVAEs ``names`` draw their latent from a conditional prior fitted on ``walks``
    (``CVAE.fit_prior``); encoders and decoders are unchanged. Prefer walks the CVAEs were not trained on (an
    encoder may map its own training walks closer to N(0, I); docs/scattering.md). Each CVAE is fitted on the rows it
    models (lenGen and pathGen: walks with N >= 2 when single scattering is exact; scatGen: events k >= 2)."""
    names = sorted(set(names))
    bad = [n for n in names if n not in MODEL_NAMES]
    if bad or not names:
        raise InputError(f"names: a non-empty subset of {list(MODEL_NAMES)}, got {names}")
    cfg = model.config()
    with seeded(int(seed)):                          # the new prior networks' first layers start from ``seed``
        new = ScatteringCVAEs(**{**cfg, "conditional_prior": sorted(set(cfg.get("conditional_prior", ())) | set(names))})
    for name in MODEL_NAMES:
        new.model[name].load_state_dict(model.model[name].state_dict(), strict=False)
    new.info = dict(model.info)
    data = encode_dataset(new, walks)
    gen = torch.Generator().manual_seed(int(seed))
    fits, subsets = {}, {}
    for name in names:
        sel = _rows(name, new, data)
        x, c = _inputs(name, new.adapter, data if sel is None else _subset(subsets, data, *sel), gen)
        t0 = time.perf_counter()
        hist = new.model[name].fit_prior(x, c, steps=steps, batch_size=batch_size, lr=lr, generator=gen)
        fits[name] = {"rows": int(x.shape[0]), "steps": int(steps), "kl_first": hist[0], "kl_last": hist[-1],
                      "seconds": time.perf_counter() - t0}
    new.info["prior_fit"] = fits
    return new
