"""Regression losses of flow matching and of score / noise matching."""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from .errors import InputError
from .paths.base import PathSample

__all__ = ["TimeWeighting", "cfm_loss", "per_row_mse", "reduce_rows", "score_loss"]

#: w(t): (B,) -> (B,) non-negative weight of each row's loss.
TimeWeighting = Callable[[Tensor], Tensor]


def per_row_mse(pred: Tensor, target: Tensor) -> Tensor:
    """(B,) mean squared error over all but the first axis."""
    if pred.shape != target.shape:
        raise InputError(f"pred/target: shapes differ, {tuple(pred.shape)} vs {tuple(target.shape)}")
    return (pred - target).pow(2).reshape(pred.shape[0], -1).mean(dim=1)


def reduce_rows(row_loss: Tensor, batch: Tensor | None = None, weight: Tensor | None = None) -> Tensor:
    """Mean of per-row losses (B,); with ``batch`` (graph index per row) each graph that has rows counts once,
    whatever its size. ``weight`` (B,) multiplies each row's loss."""
    rows = row_loss.shape[0]
    if weight is not None:
        if weight.shape != (rows,):
            raise InputError(f"weight: expected one weight per row, shape ({rows},), got {tuple(weight.shape)}")
        row_loss = row_loss * weight
    if batch is None:
        return row_loss.mean()
    if batch.shape != (rows,) or batch.dtype not in (torch.int64, torch.int32):
        raise InputError(f"batch: expected an integer graph index per row, shape ({rows},), got "
                         f"{tuple(batch.shape)} {batch.dtype}")
    n = int(batch.max()) + 1
    sums = torch.zeros(n, dtype=row_loss.dtype, device=row_loss.device).index_add_(0, batch, row_loss)
    counts = torch.zeros(n, dtype=row_loss.dtype, device=row_loss.device).index_add_(
        0, batch, torch.ones_like(row_loss))
    present = counts > 0                               # an index with a gap leaves graphs without rows
    return (sums[present] / counts[present]).mean()


def cfm_loss(pred: Tensor, target: Tensor, t: Tensor | None = None, *, weighting: TimeWeighting | None = None,
             batch: Tensor | None = None) -> Tensor:
    """Conditional flow-matching regression E_t w(t) ||v_theta(x_t, t) - u_t||^2.

    pred, target: (B, ...) predicted and conditional velocities; t: (B,) times (needed with ``weighting``);
    batch: (B,) graph index when rows are nodes of a ragged batch.
    """
    if weighting is None and batch is None:  # every row has the same size: one mean over all entries
        if pred.shape != target.shape:
            raise InputError(f"pred/target: shapes differ, {tuple(pred.shape)} vs {tuple(target.shape)}")
        return (pred - target).pow(2).mean()
    w = None
    if weighting is not None:
        if t is None:
            raise InputError("t: a time weighting needs the times of the rows")
        w = weighting(t)
    return reduce_rows(per_row_mse(pred, target), batch, w)


def score_loss(pred: Tensor, sample: PathSample, *, parametrization: str = "noise",
               batch: Tensor | None = None) -> Tensor:
    """Denoising score matching on a Gaussian path.

    ``noise``: pred estimates the standard normal draw eps, loss ||pred - eps||^2.
    ``score``: pred estimates grad log p_t, loss ||sigma_t pred + eps||^2 (the usual lambda = sigma^2 weighting,
    finite where sigma_t -> 0).
    """
    if parametrization == "noise":
        rows = per_row_mse(pred, sample.noise)
    elif parametrization == "score":
        rows = per_row_mse(sample.sigma * pred, -sample.noise)
    else:
        raise InputError(f"parametrization: expected 'noise' or 'score', got {parametrization!r}")
    return reduce_rows(rows, batch)
