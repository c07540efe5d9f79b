"""Explicit randomness (principle 7): every draw goes through a ``torch.Generator``.

A generator lives on one device; these helpers draw on the generator's device and move the result, so a CPU
generator drives CUDA work reproducibly (the same numbers on every device).
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import Tensor

from .errors import InputError

__all__ = ["check_generator", "make_generator", "multinomial", "rand", "randint", "randn", "randn_like", "randperm", "seeded"]


def make_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A new generator on ``device`` seeded with ``seed``."""
    g = torch.Generator(device=device)
    g.manual_seed(int(seed))
    return g


def check_generator(generator: object, name: str = "generator") -> torch.Generator | None:
    """Return ``generator`` if it is a ``torch.Generator`` or None, else raise InputError naming ``name`` (a seed
    is not a generator: build one with ``make_generator(seed)``)."""
    if generator is not None and not isinstance(generator, torch.Generator):
        raise InputError(f"{name}: expected a torch.Generator or None, got {type(generator).__name__}; use "
                         f"sciflow.core.random.make_generator(seed)")
    return generator


def _gen_device(generator: torch.Generator | None, fallback: torch.device) -> torch.device:
    return check_generator(generator).device if generator is not None else fallback


def randn(shape: Sequence[int], *, generator: torch.Generator | None = None, device: torch.device | str = "cpu",
          dtype: torch.dtype = torch.float32) -> Tensor:
    device = torch.device(device)
    out = torch.randn(tuple(shape), generator=generator, device=_gen_device(generator, device), dtype=dtype)
    return out.to(device)


def randn_like(x: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
    return randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)


def rand(shape: Sequence[int], *, generator: torch.Generator | None = None, device: torch.device | str = "cpu",
         dtype: torch.dtype = torch.float32) -> Tensor:
    device = torch.device(device)
    out = torch.rand(tuple(shape), generator=generator, device=_gen_device(generator, device), dtype=dtype)
    return out.to(device)


def randint(high: int, shape: Sequence[int], *, generator: torch.Generator | None = None,
            device: torch.device | str = "cpu") -> Tensor:
    device = torch.device(device)
    out = torch.randint(int(high), tuple(shape), generator=generator, device=_gen_device(generator, device))
    return out.to(device)


def randperm(n: int, *, generator: torch.Generator | None = None, device: torch.device | str = "cpu") -> Tensor:
    device = torch.device(device)
    return torch.randperm(int(n), generator=generator, device=_gen_device(generator, device)).to(device)


def multinomial(probs: Tensor, num_samples: int, *, replacement: bool = True,
                generator: torch.Generator | None = None) -> Tensor:
    """``torch.multinomial`` drawn on the generator's device (rows of ``probs`` need not be normalised)."""
    dev = _gen_device(generator, probs.device)
    out = torch.multinomial(probs.to(dev, torch.float64 if probs.dtype == torch.float64 else torch.float32),
                            int(num_samples), replacement=replacement, generator=generator)
    return out.to(probs.device)


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run code that draws from torch's global CPU stream (a network's initial weights) from ``seed``, leaving
    the global stream as it was afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        yield
