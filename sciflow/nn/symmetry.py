"""Symmetry is a tested contract (principle 4): shared checks of E(3) and permutation equivariance.

Every check runs the function twice, on inputs and on transformed inputs, in float64, and compares.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from torch import Tensor

__all__ = ["assert_e3_equivariant", "assert_permutation_equivariant", "random_rotation"]


def random_rotation(generator: torch.Generator | None = None, *, reflect: bool = False,
                    dtype: torch.dtype = torch.float64) -> Tensor:
    """(3, 3) uniformly random rotation (det +1), or an improper one (det -1) with ``reflect``."""
    a = torch.randn(3, 3, generator=generator, dtype=dtype)
    q, r = torch.linalg.qr(a)
    q = q * torch.sign(torch.diagonal(r))
    if torch.det(q) < 0:
        q[:, 0] = -q[:, 0]
    if reflect:
        q = q @ torch.diag(torch.tensor([1.0, 1.0, -1.0], dtype=dtype))
    return q


def assert_e3_equivariant(fn: Callable[[dict[str, Tensor]], Tensor], inputs: Mapping[str, Tensor], *,
                          positions: Sequence[str], vectors: Sequence[str] = (), output: str = "vector",
                          reflect: bool = True, translate: bool = True, generator: torch.Generator | None = None,
                          atol: float = 1e-8, rtol: float = 1e-6) -> None:
    """Check fn(g . inputs) == g . fn(inputs) for a random rotation (and reflection, translation) g.

    positions: keys of (N, 3) points (rotated and translated); vectors: keys of (N, 3) directions (rotated only).
    output: "vector" (rotates, does not translate), "position" (rotates and translates), "invariant" (unchanged).
    """
    inputs = {k: (v.to(torch.float64) if torch.is_tensor(v) and v.is_floating_point() else v)
              for k, v in inputs.items()}
    rot = random_rotation(generator, reflect=reflect)
    shift = torch.randn(3, generator=generator, dtype=torch.float64) * 3.0 if translate else torch.zeros(3,
                                                                                            dtype=torch.float64)
    dev = next((inputs[k].device for k in (*positions, *vectors)), rot.device)
    rot, shift = rot.to(dev), shift.to(dev)        # drawn on the generator's device, applied on the inputs'
    moved = dict(inputs)
    for k in positions:
        moved[k] = inputs[k] @ rot.T + shift
    for k in vectors:
        moved[k] = inputs[k] @ rot.T
    out, out_moved = fn(dict(inputs)), fn(moved)
    if output == "vector":
        expected = out @ rot.T
    elif output == "position":
        expected = out @ rot.T + shift
    elif output == "invariant":
        expected = out
    else:
        raise ValueError(f"output: expected vector, position or invariant, got {output!r}")
    torch.testing.assert_close(out_moved, expected, atol=atol, rtol=rtol,
                               msg=lambda m: f"not E(3)-equivariant (reflect={reflect}): {m}")


def assert_permutation_equivariant(fn: Callable[[dict[str, Tensor]], Tensor], inputs: Mapping[str, Tensor], *,
                                   node_keys: Sequence[str], perm: Tensor, invariant: bool = False,
                                   atol: float = 1e-8, rtol: float = 1e-6) -> None:
    """Check fn(inputs with nodes permuted) == fn(inputs) permuted (or unchanged with ``invariant``).

    perm must keep nodes inside their graph when inputs hold a ragged batch.
    """
    inputs = {k: (v.to(torch.float64) if torch.is_tensor(v) and v.is_floating_point() else v)
              for k, v in inputs.items()}
    moved = dict(inputs)
    for k in node_keys:
        moved[k] = inputs[k][perm]
    out, out_moved = fn(dict(inputs)), fn(moved)
    expected = out if invariant else out[perm]
    torch.testing.assert_close(out_moved, expected, atol=atol, rtol=rtol,
                               msg=lambda m: f"not permutation-{'in' if invariant else 'equi'}variant: {m}")
