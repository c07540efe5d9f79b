"""The action-chunk policy: conditional flow matching over chunks of controls with a 1-D temporal U-Net.

A chunk is ``horizon`` held controls normalised to [-1, 1] per channel, shape (B, horizon, 2). The condition is
encoded once per query from the egocentric occupancy crop (a small CNN) and the proprioceptive vector (speed,
steering, target bearing and distance in the robot frame); the U-Net maps (noisy chunk, flow time, condition)
to a velocity. Sampling integrates the learned field from Gaussian noise with a few Euler steps.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ...core.flow_matching import FlowMatcher
from ...core.random import randn
from ...core.solvers import Euler
from ...domains.robots import PROPRIO_DIM, LocalObservation
from ...nn.unet1d import UNet1D
from .problem import ActionSampler, Problem

__all__ = ["ChunkPolicyNet", "PolicySampler", "sample_chunks"]


class ChunkPolicyNet(nn.Module):
    """Velocity field v(chunk_t, t | crop, proprio).

    encode(crop (B, S, S), proprio (B, PROPRIO_DIM)) -> cond (B, cond_dim);
    forward(x (B, H, 2), t (B,), cond (B, cond_dim)) -> (B, H, 2).
    """

    symmetry = "none"

    def __init__(self, horizon: int = 16, obs_size: int = 20, widths: tuple[int, ...] = (32, 64),
                 kernel_size: int = 3, map_dim: int = 64, cond_dim: int = 64, blocks: int = 1) -> None:
        super().__init__()
        self.horizon = horizon
        self.map_enc = nn.Sequential(
            nn.Conv2d(1, 16, 3, stride=2, padding=1), nn.SiLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.SiLU(), nn.Flatten(),
            nn.Linear(32 * ((obs_size + 3) // 4) ** 2, map_dim), nn.SiLU())
        self.cond = nn.Sequential(nn.Linear(map_dim + PROPRIO_DIM, cond_dim), nn.SiLU(), nn.Linear(cond_dim, cond_dim))
        self.unet = UNet1D(2, cond_dim, widths, kernel_size=kernel_size, blocks=blocks)

    def encode(self, crop: Tensor, proprio: Tensor) -> Tensor:
        m = self.map_enc(crop.unsqueeze(1).to(proprio.dtype))
        return self.cond(torch.cat([m, proprio], dim=-1))

    def forward(self, x: Tensor, t: Tensor, cond: Tensor) -> Tensor:
        return self.unet(x.transpose(1, 2), t, cond).transpose(1, 2)


def sample_chunks(net: ChunkPolicyNet, cond: Tensor, steps: int, generator: torch.Generator | None) -> Tensor:
    """(B, cond_dim) -> (B, H, 2) normalised chunks, integrating the flow from N(0, I) with ``steps`` Euler steps."""
    x0 = randn((cond.shape[0], net.horizon, 2), generator=generator, device=cond.device, dtype=cond.dtype)
    traj = FlowMatcher.sample(net, x0, Euler(), steps=steps, cond={"cond": cond}, generator=generator, keep="last")
    return traj.states[-1]


class PolicySampler(ActionSampler):
    """DiTree's action sampler: a chunk from the policy at the node, conditioned on the target; the first
    ``execute`` controls are propagated."""

    def __init__(self, net: ChunkPolicyNet, obs: LocalObservation, execute: int = 8, steps: int = 4) -> None:
        self.net, self.obs, self.execute, self.steps = net, obs, int(execute), int(steps)

    def conditions(self, problem: Problem, states: Tensor, targets: Tensor) -> Tensor:
        crop = self.obs.crop(problem.world, states)
        return self.net.encode(crop, self.obs.proprio(problem.car.p, states, targets))

    def sample(self, problem: Problem, states: Tensor, targets: Tensor,
               generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
        with torch.no_grad():
            chunk = sample_chunks(self.net, self.conditions(problem, states, targets), self.steps, generator)
        controls = problem.car.denormalize_controls(chunk[:, : self.execute])
        return controls, torch.full((states.shape[0],), self.execute, dtype=torch.long, device=states.device)
