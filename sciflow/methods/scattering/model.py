"""ScatteringCVAEs: lenGen, pathGen and scatGen, three small conditional VAEs that replace a random walk in a
sphere of homogeneous medium (Leonard, Hoehlein & Westermann, CGF 40(2), 2021).

- lenGen  (sigma_r, g)                           -> number of scattering events N
- pathGen (sigma_r, g, N)                        -> exit position and exit direction
- scatGen (sigma_r, g, albedo term, N, exit)     -> a representative in-path event (position, direction)

Walks are expressed in the frame of the incoming direction (+z), in a unit sphere; the photon's first
scattering event is at the centre. Survival albedo^N and the next-event weight sum_k albedo^k follow
analytically from N.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ...core.errors import InputError, check_count
from ...core.fields import COND
from ...core.random import rand
from ...core.trajectory import Trajectory
from ...domains.photons.conditions import SIGMA_MAX, check_conditions
from ...domains.photons.encoding import (
    COND_DIM,
    LEN_DIM,
    PATH_DIM,
    SCAT_COND_DIM,
    WALK_DIM,
    PhotonAdapter,
)
from ...domains.photons.fields import (
    ALBEDO,
    EXIT_DIR,
    EXIT_POS,
    N_EVENTS,
    NEE_WEIGHT,
    SCATTER_DIR,
    SCATTER_POS,
    SIGMA_R,
    SURVIVAL,
    G,
)
from ...domains.photons.frames import rotate_z
from ...domains.photons.walks import nee_weight, survival
from ...nn.cvae import CVAE
from ..base import Method

__all__ = ["MODEL_NAMES", "ScatteringCVAEs"]

MODEL_NAMES = ("len", "path", "scat")
#: The paper's point: decoders cheap enough to run per path segment.
MAX_DECODER_LAYERS, MAX_DECODER_UNITS = 3, 16



def _check_trained_range(sigma_r: Tensor) -> None:
    big = torch.as_tensor(sigma_r) > SIGMA_MAX
    if bool(big.any()):
        raise InputError(f"sigma_r: the CVAEs were trained on sigma_r <= {SIGMA_MAX:g} mean free paths, got "
                         f"{float(torch.as_tensor(sigma_r).max()):g}; split the medium into smaller spheres (the "
                         "renderer's max_sigma_r) or simulate the walks")


def _numbers(name: str, value: Any) -> Tensor:
    """``value`` (a number, sequence, array or tensor of real numbers) as float64, else an ``InputError`` naming
    ``name``: strings, None, booleans and complex numbers are not conditions."""
    bad = isinstance(value, (str, bytes, bool)) or value is None or \
        (torch.is_tensor(value) and (value.dtype == torch.bool or value.is_complex()))
    if not bad:
        try:
            return torch.as_tensor(value, dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError):
            pass
    text = repr(value)
    text = text if len(text) <= 80 else text[:77] + "..."
    raise InputError(f"{name}: expected real numbers, got {type(value).__name__} {text}")


class ScatteringCVAEs(Method):
    """The three CVAEs and the sampler that chains them (the Generator protocol).

    Args:
        latent_dims: latent sizes of (lenGen, pathGen, scatGen), each in [2, 5].
        decoder_hidden: hidden widths of every decoder (at most 3 layers of at most 16 units).
        encoder_hidden: hidden widths of the encoders (used in training only).
        scat_coords: scatGen's event coordinates: "depth" (radius as a normal quantile, directions relative to
            the exit, first event drawn exactly; see ``domains.photons.events``), "depth-logit" (the same with
            logit(radius)) or "ball" (the first release's).
        exact_single: draw the single-scattering walks exactly: N = 1 with its closed-form probability
            exp(-sigma_r) (the first flight from the centre leaves the sphere), and then the exit is the
            Henyey-Greenstein direction of that event (exit point = exit direction). lenGen and pathGen then
            learn walks with N >= 2 only. False reproduces the first release (every N from the CVAEs).
        conditional_prior: names of the CVAEs ("len", "path", "scat") that draw their latent from a fitted
            conditional prior p(z | c) (``CVAE.fit_prior``; a small c -> 16 -> 2 x latent network, run once per
            sample like the decoder) instead of N(0, I).
    """

    name = "scattering"
    #: files written before ``scat_coords`` existed hold "ball" scatGen weights; files written before
    #: ``exact_single`` existed sample every N from the CVAEs
    legacy_config: ClassVar[dict[str, Any]] = {"scat_coords": "ball", "exact_single": False}

    def __init__(self, latent_dims: Sequence[int] = (2, 3, 4), decoder_hidden: Sequence[int] = (16, 16, 16),
                 encoder_hidden: Sequence[int] = (64, 64), activation: str = "silu",
                 scat_coords: str = "depth", exact_single: bool = True,
                 conditional_prior: Sequence[str] = ()) -> None:
        super().__init__()
        conditional_prior = sorted({str(v) for v in conditional_prior})
        if set(conditional_prior) - set(MODEL_NAMES):
            raise InputError(f"conditional_prior: names from {list(MODEL_NAMES)}, got {conditional_prior}")
        latent_dims, decoder_hidden = [int(v) for v in latent_dims], [int(v) for v in decoder_hidden]
        if len(latent_dims) != 3 or not all(2 <= v <= 5 for v in latent_dims):
            raise InputError(f"latent_dims: expected three sizes in [2, 5], got {latent_dims}")
        if len(decoder_hidden) > MAX_DECODER_LAYERS or not decoder_hidden or max(decoder_hidden) > MAX_DECODER_UNITS:
            raise InputError(f"decoder_hidden: at most {MAX_DECODER_LAYERS} layers of at most {MAX_DECODER_UNITS} "
                             f"units, got {decoder_hidden}")
        self._config = {"latent_dims": latent_dims, "decoder_hidden": decoder_hidden,
                        "encoder_hidden": [int(v) for v in encoder_hidden], "activation": activation,
                        "scat_coords": scat_coords, "exact_single": bool(exact_single)}
        if conditional_prior:                 # absent from the config of files written before it existed
            self._config["conditional_prior"] = conditional_prior
        kw = {"decoder_hidden": decoder_hidden, "encoder_hidden": encoder_hidden, "activation": activation}
        self.adapter = PhotonAdapter(scat_coords)
        self.model = nn.ModuleDict({
            name: CVAE(x_dim, c_dim, latent, conditional_prior=name in conditional_prior, **kw)
            for name, x_dim, c_dim, latent in (("len", LEN_DIM, COND_DIM, latent_dims[0]),
                                               ("path", PATH_DIM, WALK_DIM, latent_dims[1]),
                                               ("scat", self.adapter.scat_dim, SCAT_COND_DIM, latent_dims[2]))})

    def config(self) -> dict[str, Any]:
        return dict(self._config)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    # -- sampling ------------------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, sigma_r: Tensor, g: Tensor, albedo: Tensor, *, generator: torch.Generator | None = None,
               check: bool = True, events: int = 1) -> dict[str, Tensor]:
        """One learned walk per row of (B,) conditions, in the incoming frame (+z) of a unit sphere.

        Returns the condition fields, ``n_events`` (B,), ``exit_pos`` / ``exit_dir`` / ``scatter_pos`` /
        ``scatter_dir`` (B, 3), ``nee_weight`` and ``survival`` (B,) (float64), on the model's device.
        ``events`` > 1 draws that many representative events per walk, independently given its N and exit
        (``scatter_pos`` / ``scatter_dir`` are then (B, events, 3)): averaging their next-event estimates lowers
        the variance and keeps the mean.
        """
        self.warn_if_untrained()
        if check:
            shapes = [tuple(x.shape) if torch.is_tensor(x) else None for x in (sigma_r, g, albedo)]
            if None in shapes or len(shapes[0]) != 1 or len(set(shapes)) != 1:
                raise InputError(f"sigma_r, g, albedo: expected three (B,) tensors of one shape, got {shapes}")
            check_conditions(sigma_r, g, albedo)
            _check_trained_range(sigma_r)
        if int(events) < 1:
            raise InputError(f"events: must be >= 1, got {events}")
        k = int(events)
        dev = self.device
        sig, gg = sigma_r.to(dev, torch.float32), g.to(dev, torch.float32)
        alb = albedo.to(dev)
        A = self.adapter
        cf = A.cond_features(sig, gg)
        n = A.len_decode(self.model["len"].sample(cf, generator=generator), sig, gg)
        if self._config["exact_single"]:
            single = rand(n.shape, generator=generator, device=dev, dtype=torch.float64) < torch.exp(-sig.double())
            n = torch.where(single, torch.ones_like(n), n.clamp_min(2))
        wf = A.walk_features(cf, n, sig, gg)
        py = self.model["path"].sample(wf, generator=generator)
        pos, dirn = A.path_decode(py)
        if self._config["exact_single"]:
            py, pos, dirn = A.single_scatter(gg, single, py, pos, dirn, generator=generator)
        weight = nee_weight(alb, n)
        sc, pos_k, alb_k, weight_k = A.scat_cond(wf, n, alb, py), pos, alb, weight
        if k > 1:
            sc, pos_k, alb_k, weight_k = (v.repeat_interleave(k, 0) for v in (sc, pos, alb, weight))
        spos, sdir = A.scat_decode(self.model["scat"].sample(sc, generator=generator), pos_k)
        if A.exact_first_event:
            # the kept event is the first one (the centre, arriving along +z) with probability albedo / weight
            p1 = torch.where(weight_k > 0, alb_k.double() / weight_k.clamp_min(1e-300), torch.ones_like(weight_k))
            first = (rand((spos.shape[0],), generator=generator, device=dev, dtype=torch.float64) < p1).unsqueeze(-1)
            spos = torch.where(first, torch.zeros_like(spos), spos)
            sdir = torch.where(first, torch.tensor([0.0, 0.0, 1.0], dtype=sdir.dtype, device=dev), sdir)
        phi = rand((sig.shape[0],), generator=generator, device=dev) * (2 * math.pi)
        c, s = torch.cos(phi), torch.sin(phi)
        if k > 1:
            ck, sk = c.repeat_interleave(k), s.repeat_interleave(k)
            spos, sdir = rotate_z(spos, ck, sk).reshape(-1, k, 3), rotate_z(sdir, ck, sk).reshape(-1, k, 3)
        else:
            spos, sdir = rotate_z(spos, c, s), rotate_z(sdir, c, s)
        return {SIGMA_R: sig, G: gg, ALBEDO: alb, N_EVENTS: n, EXIT_POS: rotate_z(pos, c, s),
                EXIT_DIR: rotate_z(dirn, c, s), SCATTER_POS: spos, SCATTER_DIR: sdir,
                NEE_WEIGHT: weight, SURVIVAL: survival(alb, n)}

    @staticmethod
    def _condition(condition: Any, n: int) -> tuple[Tensor, Tensor, Tensor]:
        if isinstance(condition, Mapping):
            missing = [k for k in (SIGMA_R, G, ALBEDO) if k not in condition]
            unknown = sorted(str(k) for k in condition if k not in (SIGMA_R, G, ALBEDO))
            if unknown:
                raise InputError(f"condition: unknown key(s) {', '.join(unknown)} (expected sigma_r, g, albedo)")
            if missing:
                raise InputError(f"condition: missing {', '.join(missing)} (expected sigma_r, g, albedo)")
            parts = [_numbers(f"condition.{k}", condition[k]) for k in (SIGMA_R, G, ALBEDO)]
        else:
            if condition is None:
                raise InputError("condition: expected {sigma_r, g, albedo} (a mapping) or a (3,) / (n, 3) tensor of "
                                 "(sigma_r, g, albedo), got None")
            c = _numbers("condition", condition)
            if c.shape not in ((3,), (1, 3), (n, 3)):
                raise InputError(f"condition: expected (sigma_r, g, albedo) as shape (3,), (1, 3) or ({n}, 3), "
                                 f"got {tuple(c.shape)}")
            parts = list(c.unbind(-1))
        check_conditions(*parts)
        _check_trained_range(parts[0])
        out = []
        for name, p in zip((SIGMA_R, G, ALBEDO), parts):
            p = p.reshape(-1)
            if p.numel() not in (1, n):
                raise InputError(f"condition.{name}: expected 1 or {n} values, got {p.numel()}")
            out.append(p.expand(n).clone())
        return out[0], out[1], out[2]

    def generate(self, condition: Any, n: int, *, generator: torch.Generator | None = None) -> Trajectory:
        """n learned walks for ``condition`` = {sigma_r, g, albedo} (scalars or (n,)) or a (3,) / (n, 3) tensor.

        Returns a Trajectory with times [0, 1] and states (2, n, 6) = [position, direction] at entry (the
        centre, +z) and at exit; extras hold the conditions, ``n_events``, ``scatter_pos``, ``scatter_dir``,
        ``nee_weight`` and ``survival``.
        """
        n = check_count("n", n)
        sig, g, alb = self._condition(condition, n)
        rec = self.sample(sig, g, alb, generator=generator, check=False)
        entry = torch.zeros(n, 6, device=rec[EXIT_POS].device)
        entry[:, 5] = 1
        states = torch.stack([entry, torch.cat([rec[EXIT_POS], rec[EXIT_DIR]], dim=-1)])
        extras = {k: rec[k] for k in (N_EVENTS, SCATTER_POS, SCATTER_DIR, NEE_WEIGHT, SURVIVAL)}
        extras[COND] = torch.stack([rec[SIGMA_R], rec[G], rec[ALBEDO].float()], dim=-1)
        return Trajectory(torch.tensor([0.0, 1.0]).to(states.device), states, extras=extras,
                          info={"method": self.name, "frame": "incoming direction +z, unit sphere",
                                "state_fields": "exit_pos(3), exit_dir(3)"})

    # -- training ------------------------------------------------------------------------------------
    def fit(self, dataset: Mapping[str, Tensor], config: Any, **kw: Any) -> dict[str, Any]:
        """Train the three CVAEs on walk records (see ``training.fit_models``)."""
        from .training import fit_models
        return fit_models(self, dataset, config, **kw)
