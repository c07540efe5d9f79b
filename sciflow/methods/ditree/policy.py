"""The action-chunk policy: conditional flow matching over chunks of controls with a 1-D temporal U-Net.

A chunk is ``horizon`` held controls normalised to [-1, 1] per channel, shape (B, horizon, 2). The condition is
encoded once per query from the egocentric occupancy crop (a small CNN) and the proprioceptive vector (speed,
steering, target bearing and distance in the robot frame); the U-Net maps (noisy chunk, flow time, condition)
to a velocity. Sampling integrates the learned field from Gaussian noise with a few Euler steps.

Optionally the net carries a distilled flow map (``FlowMapHead``, see ``distill.py``): a small MLP trained to
reproduce, in one call, where the Euler sampler takes a given noise draw under a given condition, so that
sampling costs three matrix products instead of ``steps`` U-Net evaluations.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.nn.modules import module as _m

from ...core.flow_matching import FlowMatcher
from ...core.random import randn
from ...core.solvers import Euler
from ...domains.robots import PROPRIO_DIM, CarParams, LocalObservation
from ...nn.mlp import MLP
from ...nn.unet1d import UNet1D
from .problem import ActionSampler, Problem

__all__ = ["ChunkPolicyNet", "FlowMapHead", "PolicySampler", "integrate_chunks", "sample_chunks"]


def _no_hooks(m: nn.Module) -> bool:
    return not (m._forward_hooks or m._forward_pre_hooks or m._backward_hooks or m._backward_pre_hooks)


def _run(seq: nn.Sequential, x: Tensor) -> Tensor:
    """``seq(x)``; without autograd, the layers of the kinds the policy uses are applied as the functional calls
    their ``forward`` makes (the same kernels on the same tensors, so the same values), skipping ~4 us of module
    call bookkeeping per layer (about 20 layer calls per DiTree iteration). Hooks, autograd, or another kind of
    layer: the ordinary module call."""
    if torch.is_grad_enabled() or not _no_hooks(seq) or _global_hooks():
        return seq(x)
    for m in seq:
        kind = type(m)
        if not _no_hooks(m):
            x = m(x)
        elif kind is nn.Linear:                     # (_parameters: what m.weight reads, without __getattr__)
            x = F.linear(x, m._parameters["weight"], m._parameters["bias"])
        elif kind is nn.SiLU:
            x = F.silu(x, inplace=m.inplace)
        elif kind is nn.Conv2d and m.padding_mode == "zeros" and not isinstance(m.padding, str):
            x = F.conv2d(x, m._parameters["weight"], m._parameters["bias"], m.stride, m.padding, m.dilation,
                         m.groups)
        elif kind is nn.Flatten:
            x = x.flatten(m.start_dim, m.end_dim)
        else:
            x = m(x)
    return x


def _global_hooks() -> bool:
    return bool(_m._global_forward_hooks or _m._global_forward_pre_hooks or _m._global_backward_hooks
                or _m._global_backward_pre_hooks or getattr(_m, "_global_forward_hooks_always_called", None))


class FlowMapHead(nn.Module):
    """The sampler's flow map in one call: (noise x0 (B, H, 2), cond (B, cond_dim)) -> chunk (B, H, 2).

    An MLP on [x0 flattened, cond] that predicts the chunk relative to x0 (the flow map at zero velocity is the
    identity); trained by ``distill.distill_head`` to match the Euler sampler of the U-Net it belongs to."""

    symmetry = "none"

    def __init__(self, horizon: int, cond_dim: int, hidden: tuple[int, ...] = (256, 256)) -> None:
        super().__init__()
        self.horizon, self.hidden = int(horizon), tuple(int(h) for h in hidden)
        self.mlp = MLP(2 * self.horizon + cond_dim, 2 * self.horizon, self.hidden)

    def forward(self, x0: Tensor, cond: Tensor) -> Tensor:
        b = x0.shape[0]
        z = torch.cat([x0.reshape(b, -1), cond.to(x0.dtype)], dim=-1)
        # the fast path runs the MLP's layers (``MLP.forward`` is ``net(z)``); a replaced or hooked ``mlp``: its own call
        fast = type(self.mlp) is MLP and _no_hooks(self.mlp)
        return x0 + (_run(self.mlp.net, z) if fast else self.mlp(z)).reshape(b, self.horizon, 2)


class ChunkPolicyNet(nn.Module):
    """Velocity field v(chunk_t, t | crop, proprio).

    encode(crop (B, S, S), proprio (B, PROPRIO_DIM)) -> cond (B, cond_dim);
    forward(x (B, H, 2), t (B,), cond (B, cond_dim)) -> (B, H, 2).
    ``head_hidden``: also build a ``FlowMapHead`` (``head``) with these hidden widths; None: no head.
    """

    symmetry = "none"

    def __init__(self, horizon: int = 16, obs_size: int = 20, widths: tuple[int, ...] = (32, 64),
                 kernel_size: int = 3, map_dim: int = 64, cond_dim: int = 64, blocks: int = 1,
                 head_hidden: tuple[int, ...] | None = None) -> None:
        super().__init__()
        self.horizon, self.map_dim = horizon, map_dim
        self.map_enc = nn.Sequential(
            nn.Conv2d(1, 16, 3, stride=2, padding=1), nn.SiLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.SiLU(), nn.Flatten(),
            nn.Linear(32 * ((obs_size + 3) // 4) ** 2, map_dim), nn.SiLU())
        self.cond = nn.Sequential(nn.Linear(map_dim + PROPRIO_DIM, cond_dim), nn.SiLU(), nn.Linear(cond_dim, cond_dim))
        self.unet = UNet1D(2, cond_dim, widths, kernel_size=kernel_size, blocks=blocks)
        self.head = FlowMapHead(horizon, cond_dim, tuple(head_hidden)) if head_hidden else None

    def encode(self, crop: Tensor, proprio: Tensor) -> Tensor:
        return self.condition(self.encode_map(crop.to(proprio.dtype)), proprio)

    def encode_map(self, crop: Tensor) -> Tensor:
        """(B, S, S) crops -> (B, map_dim) map features (depend on the robot's pose only, not on the target)."""
        return _run(self.map_enc, crop.unsqueeze(1))

    def condition(self, map_features: Tensor, proprio: Tensor) -> Tensor:
        """Map features and proprioception -> (B, cond_dim) condition."""
        return _run(self.cond, torch.cat([map_features.to(proprio.dtype), proprio], dim=-1))

    def forward(self, x: Tensor, t: Tensor, cond: Tensor) -> Tensor:
        return self.unet(x.transpose(1, 2), t, cond).transpose(1, 2)


def integrate_chunks(net: ChunkPolicyNet, x0: Tensor, cond: Tensor, steps: int) -> Tensor:
    """Where ``steps`` Euler steps of the U-Net's flow take the noise ``x0`` (B, H, 2) under ``cond``."""
    traj = FlowMatcher.sample(net, x0, Euler(), steps=steps, cond={"cond": cond}, keep="last")
    return traj.states[-1]


def sample_chunks(net: ChunkPolicyNet, cond: Tensor, steps: int, generator: torch.Generator | None,
                  head: bool = False) -> Tensor:
    """(B, cond_dim) -> (B, H, 2) normalised chunks, integrating the flow from N(0, I) with ``steps`` Euler steps
    (``head``: the net's distilled flow map in one call instead)."""
    x0 = randn((cond.shape[0], net.horizon, 2), generator=generator, device=cond.device, dtype=cond.dtype)
    if head:
        if net.head is None:
            raise ValueError("sample_chunks: head=True but this policy has no distilled head")
        return net.head(x0, cond)
    return integrate_chunks(net, x0, cond, steps)


class PolicySampler(ActionSampler):
    """DiTree's action sampler: a chunk from the policy at the node, conditioned on the target; the first
    ``execute`` controls are propagated.

    A tree expands the same node many times (75-83 % of the policy's expansions in the benchmark's OOD maps
    start from a node expanded before), and the crop and its encoding depend on the world and the node's state
    alone, so when the caller passes ``nodes`` (indices into its tree) they are computed once per node and kept.
    An entry is reused only for the same world object and the very state it was computed for, so another
    scenario or tree never sees stale features; ``reset`` frees the cache.
    """

    def __init__(self, net: ChunkPolicyNet, obs: LocalObservation, execute: int = 8, steps: int = 4,
                 head: bool = False, robot: CarParams | None = None) -> None:
        if head and net.head is None:
            raise ValueError("PolicySampler: head=True but the policy has no distilled head")
        self.net, self.obs, self.execute, self.steps, self.head = net, obs, int(execute), int(steps), bool(head)
        self.robot = robot                        # the car the policy was trained for (None: not checked)
        self._robot_checked: Problem | None = None
        self.reset()

    def reset(self) -> None:
        self._world = None                        # the world the cache belongs to
        self._maps: Tensor | None = None          # (capacity, map_dim) map features per node
        self._keys: Tensor | None = None          # (capacity, 5) the state each entry was computed for

    def map_features(self, problem: Problem, states: Tensor, nodes: Tensor | None = None) -> Tensor:
        """(B, map_dim) encoded crops at ``states``; cached per node index when ``nodes`` (B,) is given (one entry
        per index: the state it was computed for; a row whose state differs from its entry's is recomputed)."""
        if not torch.is_inference_mode_enabled():    # (the planners call it inside inference mode already)
            with torch.inference_mode():
                return self._map_features(problem, states, nodes)
        return self._map_features(problem, states, nodes)

    def _map_features(self, problem: Problem, states: Tensor, nodes: Tensor | None) -> Tensor:
        if nodes is None:
            return self.net.encode_map(self.obs.crop(problem.world, states))
        if self._world is not problem.world or (self._keys is not None and (
                self._keys.dtype != states.dtype or self._keys.device != states.device)):
            self.reset()
            self._world = problem.world
        if not nodes.numel():
            return states.new_zeros((0, self.net.map_dim))
        have = 0 if self._maps is None else self._maps.shape[0]
        # a node beyond the cache is a miss; one read-back tells both whether anything is missing and how far
        # the cache must then reach (a node beyond it always makes a miss, so the cache grows as it did when
        # both were read separately)
        if have:
            miss = (nodes >= have) | (self._keys[nodes.clamp_max(have - 1)] != states).any(dim=-1)
        else:
            miss = torch.ones(nodes.shape, dtype=torch.bool, device=nodes.device)
        top, any_miss = torch.stack([nodes.max(), miss.any().to(nodes.dtype)]).tolist()
        if not any_miss:
            return self._maps[nodes]
        need = int(top) + 1
        if have < need:
            cap = max(need, 2 * have, 1024)
            maps = states.new_zeros((cap, self.net.map_dim))
            keys = states.new_full((cap, states.shape[1]), float("nan"))           # NaN never equals a state
            if have:
                maps[:have], keys[:have] = self._maps, self._keys
            self._maps, self._keys = maps, keys
        # a batch often asks for the same node several times (early in a search nearly every row does), so
        # each missing node is cropped and encoded once, from one of its rows (in a tree they hold the same state)
        # (the missing nodes in increasing order, each from its last missing row: what a scatter of row numbers
        # into a table of all ``need`` nodes gave on the CPU, in O(B) instead of O(tree size) per call)
        m_rows = miss.nonzero().flatten()
        new, inv = torch.unique(nodes[m_rows], sorted=True, return_inverse=True)
        rows = m_rows.new_full(new.shape, -1).scatter_reduce_(0, inv, m_rows, "amax")
        fresh = states[rows]
        self._maps[new] = self.net.encode_map(self.obs.crop(problem.world, fresh))
        self._keys[new] = fresh
        out = self._maps[nodes]
        odd = (self._keys[nodes] != states).any(dim=-1)      # a node index given with two different states
        if bool(odd.any()):
            out[odd] = self.net.encode_map(self.obs.crop(problem.world, states[odd]))
        return out

    def check_robot(self, problem: Problem) -> None:
        """Refuse a scenario whose car differs from the one the policy was trained for (once per problem)."""
        if self.robot is None or problem is self._robot_checked:
            return
        problem.scenario.check_robot(self.robot)
        self._robot_checked = problem

    def conditions(self, problem: Problem, states: Tensor, targets: Tensor, nodes: Tensor | None = None) -> Tensor:
        self.check_robot(problem)
        proprio = self.obs.proprio(problem.car.p, states, targets)
        return self.net.condition(self.map_features(problem, states, nodes), proprio)

    def sample(self, problem: Problem, states: Tensor, targets: Tensor,
               generator: torch.Generator | None, nodes: Tensor | None = None) -> tuple[Tensor, Tensor]:
        if torch.is_inference_mode_enabled():     # (inside the planners' loop: entering it again costs ~5 us)
            chunk = sample_chunks(self.net, self.conditions(problem, states, targets, nodes), self.steps, generator,
                                  self.head)
        else:
            with torch.inference_mode():
                chunk = sample_chunks(self.net, self.conditions(problem, states, targets, nodes), self.steps,
                                      generator, self.head)
        controls = problem.car.denormalize_controls(chunk[:, : self.execute])
        return controls, torch.full((states.shape[0],), self.execute, dtype=torch.long, device=states.device)
