"""Adaptive Dormand-Prince 5(4) with error control (the ``dopri5`` of most ODE libraries)."""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..errors import InputError, SciflowError, check_in_range
from .base import Field, Keep, Solver

__all__ = ["Dopri5"]

_C = (0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0)
_A = (
    (),
    (1 / 5,),
    (3 / 40, 9 / 40),
    (44 / 45, -56 / 15, 32 / 9),
    (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
    (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
    (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84),
)
_B5 = (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0.0)
_B4 = (5179 / 57600, 0.0, 7571 / 16695, 393 / 640, -92097 / 339200, 187 / 2100, 1 / 40)


def _rms(x: Tensor) -> Tensor:
    """The largest per-row RMS (over all but the first axis): each sample (each node of a graph batch) is held
    to the tolerance by itself, so its accuracy does not depend on the other rows of the batch (a batch-wide RMS
    let one hard sample among many easy ones miss its tolerance many times over)."""
    if not x.numel():
        return x.new_zeros(())
    if x.dim() < 2:
        return x.abs().max()
    return x.pow(2).flatten(1).mean(1).sqrt().max()


class Dopri5(Solver):
    """Dormand-Prince 5(4): steps land exactly on every grid time; the step size adapts so that the RMS of
    err / (atol + rtol * max(|x|, |x_new|)) over each row stays below 1 for every row (the norm is the largest
    per-row RMS). ``info`` reports accepted and rejected steps."""

    name = "dopri5"

    def __init__(self, rtol: float = 1e-5, atol: float = 1e-5, max_steps: int = 10_000,
                 safety: float = 0.9, first_step: float | None = None) -> None:
        super().__init__()
        self.rtol = check_in_range("rtol", rtol, 0.0, low_open=True)
        self.atol = check_in_range("atol", atol, 0.0, low_open=True)
        if int(max_steps) < 1:
            raise InputError(f"max_steps: must be >= 1, got {max_steps}")
        self.max_steps = int(max_steps)
        self.safety = check_in_range("safety", safety, 0.0, 1.0, low_open=True)
        self.first_step = None if first_step is None else check_in_range("first_step", first_step, 0.0,
                                                                           low_open=True)

    def _scale(self, x: Tensor, y: Tensor) -> Tensor:
        return self.atol + self.rtol * torch.maximum(x.abs(), y.abs())

    def _initial_step(self, field: Field, x: Tensor, t: Tensor, f0: Tensor, direction: float,
                      cond: dict[str, Any]) -> Tensor:
        # Hairer, Norsett & Wanner, Solving ODEs I, section II.4
        scale = self._scale(x, x)
        d0, d1 = _rms(x / scale), _rms(f0 / scale)
        h0 = torch.where((d0 < 1e-5) | (d1 < 1e-5), torch.full_like(d0, 1e-6), 0.01 * d0 / d1)
        f1 = self._eval(field, x + direction * h0 * f0, t + direction * h0, cond)
        d2 = _rms((f1 - f0) / scale) / h0
        big = torch.maximum(d1, d2)
        h1 = torch.where(big <= 1e-15, torch.maximum(torch.full_like(h0, 1e-6), h0 * 1e-3), (0.01 / big) ** 0.2)
        return torch.minimum(100 * h0, h1)

    def _integrate(self, field: Field, x0: Tensor, grid: Tensor, cond: dict[str, Any],
                   generator: torch.Generator | None, keep: Keep) -> tuple[list[Tensor], dict[str, Any]]:
        grid = grid.to(x0.dtype)
        direction = 1.0 if bool(grid[-1] > grid[0]) else -1.0
        x, t = x0, grid[0]
        k1 = self._eval(field, x, t, cond)
        h = (torch.as_tensor(self.first_step, dtype=x.dtype, device=x.device) if self.first_step
             else self._initial_step(field, x, t, k1, direction, cond))
        states = [x0] if keep == "all" else []
        accepted = rejected = blown = 0
        for target in grid[1:]:
            while direction * float(target - t) > 0:
                if accepted + rejected >= self.max_steps:
                    raise SciflowError(f"Dopri5: exceeded max_steps={self.max_steps} at t={float(t):.6g}; "
                                       "loosen rtol/atol or raise max_steps")
                remaining = (target - t).abs()
                hs = direction * torch.minimum(h, remaining)
                ks = [k1]
                for i in range(1, 7):
                    xi = x
                    for aij, kj in zip(_A[i], ks):
                        if aij:
                            xi = xi + (hs * aij) * kj
                    ks.append(self._eval(field, xi, t + _C[i] * hs, cond))
                x_new = x
                err = torch.zeros_like(x)
                for b5, b4, ki in zip(_B5, _B4, ks):
                    if b5:
                        x_new = x_new + (hs * b5) * ki
                    if b5 != b4:
                        err = err + (hs * (b5 - b4)) * ki
                err_norm = _rms(err / self._scale(x, x_new))
                if not bool(torch.isfinite(err_norm)):
                    # a step too long can overflow and is retried shorter; 50 such steps mean the field itself
                    # returns non-finite values (each retry shortens the step 5x, so t creeps up to that point)
                    blown += 1
                    if blown >= 50:
                        raise SciflowError(f"field: returned non-finite values near t={float(t):.6g} (states "
                                           f"finite: {bool(torch.isfinite(x).all())}); no step size avoids them")
                    err_norm = torch.full_like(err_norm, float("inf"))
                if err_norm <= 1:
                    accepted += 1
                    t = target if bool(remaining <= h) else t + hs
                    x, k1 = x_new, ks[6]
                else:
                    rejected += 1
                factor = torch.where(err_norm == 0, torch.full_like(err_norm, 10.0),
                                     self.safety * err_norm.clamp_min(1e-10) ** -0.2)
                h = hs.abs() * factor.clamp(0.2, 10.0)
            if keep == "all":
                states.append(x)
        if keep == "last":
            states = [x]
        return states, {"accepted_steps": accepted, "rejected_steps": rejected}
