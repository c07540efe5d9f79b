"""Exponential moving average of model weights."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from ..errors import check_in_range

__all__ = ["EMA"]


class EMA:
    """shadow <- d * shadow + (1 - d) * param after each step, with d = min(decay, (1 + n) / (10 + n)) so
    the average is not dominated by the random initialisation early on. Buffers are copied as they are."""

    def __init__(self, model: nn.Module, decay: float = 0.999) -> None:
        self.decay = check_in_range("ema_decay", decay, 0.0, 1.0)
        self.num_updates = 0
        self.shadow = [p.detach().clone() for p in model.parameters()]

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.num_updates += 1
        d = min(self.decay, (1 + self.num_updates) / (10 + self.num_updates))
        params = [p.detach().to(s.dtype) for s, p in zip(self.shadow, model.parameters())]
        torch._foreach_mul_(self.shadow, d)                  # one kernel per group on an accelerator, not per tensor
        torch._foreach_add_(self.shadow, params, alpha=1 - d)

    @torch.no_grad()
    def copy_to(self, model: nn.Module) -> None:
        """Overwrite the model's parameters with the averaged ones."""
        for s, p in zip(self.shadow, model.parameters()):
            p.copy_(s)

    def swap_in(self, model: nn.Module) -> list[torch.Tensor]:
        """Copy the averaged weights into ``model``; return the weights they replaced (for ``put_back``)."""
        backup = [p.detach().clone() for p in model.parameters()]
        self.copy_to(model)
        return backup

    @staticmethod
    @torch.no_grad()
    def put_back(model: nn.Module, weights: list[torch.Tensor]) -> None:
        """Copy ``weights`` (from ``swap_in``) back into ``model``."""
        for w, p in zip(weights, model.parameters()):
            p.copy_(w)

    @contextmanager
    def applied(self, model: nn.Module) -> Iterator[nn.Module]:
        """Temporarily swap the averaged weights into ``model``."""
        backup = self.swap_in(model)
        try:
            yield model
        finally:
            self.put_back(model, backup)

    def state_dict(self) -> dict[str, Any]:
        return {"decay": self.decay, "num_updates": self.num_updates, "shadow": list(self.shadow)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.decay = float(state["decay"])
        self.num_updates = int(state["num_updates"])
        for s, v in zip(self.shadow, state["shadow"]):
            s.copy_(v)
