"""Unit quaternions for the block modes (``walk_blocks``, ``volpath_blocks``): many scatterings of one path at once.

A frame F carried along a path maps +z to its propagation direction w. A Henyey-Greenstein scattering by polar
angle theta and uniform azimuth phi is F <- F Rz(phi) Ry(theta), so the directions after K scatterings are the
images of +z under the prefix products F r_1 ... r_k, computed by an odd-even scan (about 2 K products in
2 log2 K passes) instead of K dependent steps. Any frame about w gives the same law for the new direction, since
phi is uniform and independent of everything else. Quaternions are stored component first: (4, ...) as
(w, x, y, z), directions as (3, ...).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from .phase import hg_sample_half_angle

__all__ = ["axis_z", "block_length", "frame_of", "hg_frames", "hg_rotations", "prefix_products", "qmul"]


def qmul(a: Tensor, b: Tensor) -> Tensor:
    """Hamilton products of quaternions stored as components (4, ...) (w, x, y, z)."""
    a0, a1, a2, a3 = a.unbind(0)
    b0, b1, b2, b3 = b.unbind(0)
    out = torch.empty(torch.broadcast_shapes(a.shape, b.shape), dtype=a.dtype, device=a.device)
    torch.mul(a0, b0, out=out[0]).addcmul_(a1, b1, value=-1).addcmul_(a2, b2, value=-1).addcmul_(a3, b3, value=-1)
    torch.mul(a0, b1, out=out[1]).addcmul_(a1, b0).addcmul_(a2, b3).addcmul_(a3, b2, value=-1)
    torch.mul(a0, b2, out=out[2]).addcmul_(a1, b3, value=-1).addcmul_(a2, b0).addcmul_(a3, b1)
    torch.mul(a0, b3, out=out[3]).addcmul_(a1, b2).addcmul_(a2, b1, value=-1).addcmul_(a3, b0)
    return out


def prefix_products(x: Tensor) -> Tensor:
    """Inclusive prefix products x[:, 0] x[:, 1] ... x[:, i] (in that order) of quaternions x (4, L, S): the
    odd-even (Blelloch-style) scan, about 2 L products in 2 log2 L passes."""
    L = x.shape[1]
    if L == 1:
        return x
    half = L // 2
    pairs = prefix_products(qmul(x[:, 0:2 * half:2], x[:, 1:2 * half:2]))    # prefixes ending at odd i
    out = torch.empty_like(x)
    out[:, 0] = x[:, 0]
    out[:, 1::2] = pairs
    if L > 2:
        out[:, 2::2] = qmul(pairs[:, :(L - 1) // 2], x[:, 2::2])
    return out


def axis_z(q: Tensor) -> Tensor:
    """The image of +z (3, ...) under the rotation of unit quaternions q (4, ...)."""
    w, x, y, z = q.unbind(0)
    out = torch.empty((3, *q.shape[1:]), dtype=q.dtype, device=q.device)
    torch.mul(x, z, out=out[0]).addcmul_(w, y).mul_(2)
    torch.mul(y, z, out=out[1]).addcmul_(w, x, value=-1).mul_(2)
    torch.mul(x, x, out=out[2]).addcmul_(y, y).mul_(-2).add_(1)
    return out


def frame_of(W: Tensor) -> Tensor:
    """A unit quaternion (4, S) rotating +z to the unit directions W (3, S): the shortest arc from +z where
    w_z >= 0, else a half turn about x and the shortest arc from -z (never near the singular half turn)."""
    x, y, z = W.double().unbind(0)
    up = z >= 0
    q = torch.stack([torch.where(up, 1 + z, -y), torch.where(up, -y, 1 - z), torch.where(up, x, 0.0),
                     torch.where(up, 0.0, x)], 0)
    return (q / q.norm(dim=0, keepdim=True)).to(W.dtype)


def hg_rotations(g: Tensor | float, xi_cos: Tensor, xi_phi: Tensor) -> Tensor:
    """Quaternions (4, ...) of Rz(phi) Ry(theta) for Henyey-Greenstein scatterings: theta from the inverse CDF
    of ``phase.hg_sample_cos`` (as half angles) for the uniforms ``xi_cos``, phi = 2 pi ``xi_phi``."""
    ch, sh = hg_sample_half_angle(g, xi_cos)
    half = xi_phi * math.pi
    cp, sp = torch.cos(half), torch.sin(half)
    r = torch.empty((4, *xi_cos.shape), dtype=xi_cos.dtype, device=xi_cos.device)
    torch.mul(cp, ch, out=r[0])
    torch.mul(sp, sh, out=r[1]).neg_()
    torch.mul(cp, sh, out=r[2])
    torch.mul(sp, ch, out=r[3])
    return r


def hg_frames(F: Tensor, g: Tensor | float, xi_cos: Tensor, xi_phi: Tensor) -> Tensor:
    """The frames (4, K, S) after each of K Henyey-Greenstein scatterings of paths with unit frames F (4, S)
    (uniforms ``xi_cos``, ``xi_phi`` (K, S), one pair per scattering), renormalised to unit length (products of
    thousands of float32 rotations drift off it). ``axis_z`` of entry k is the direction after k + 1 scatterings."""
    r = hg_rotations(g, xi_cos, xi_phi)
    r[:, 0] = qmul(F, r[:, 0])
    frames = prefix_products(r)
    n2 = frames[0] * frames[0]                  # squared norms summed by hand: norm over the leading dim is slow
    for i in range(1, 4):
        n2.addcmul_(frames[i], frames[i])
    return frames.mul_(n2.rsqrt_())


def block_length(n: int, budget: int, k_max: int) -> int:
    """Events per block for ``n`` paths: the power of two nearest below ``budget / n``, within [16, ``k_max``]."""
    k = 1 << max(0, (budget // max(n, 1)).bit_length() - 1)
    return int(min(max(k, 16), k_max))
