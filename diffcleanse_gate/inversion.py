"""Trigger inversion: search for input shifts that the model answers the way a backdoor would.

A clean denoiser takes a shift of its input for more noise (``threat`` module). A backdoored one
answers its trigger with a distinct gain: about 0.5 at the noisiest step for ancestral-sampler
attacks, above 1 in mid trajectory for ODE-sampler attacks. For each such probe we look for
directions whose mean response has that gain (after Elijah's premise, extended to the ODE case).
Each candidate is held on a sphere of fixed per-pixel RMS, so the trivial answers (a shift that
shrinks to 0, or a huge uniform one) are out of reach; all probes, radii and random restarts run as
one batch with fresh noise every step. Which candidate, at which size, truly makes the sampler
collapse is decided afterwards by :mod:`diffcleanse_gate.detection`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .counting import CountingUNet
from .progress import ProgressCallback, no_progress
from .threat import Probe


@dataclass(frozen=True)
class InversionConfig:
    """Settings of the direction search; the defaults suit models from 8x8 to 32x32."""

    radii: tuple[float, ...] = (0.5, 0.75, 1.0, 1.5)
    restarts: int = 2
    steps: int = 130
    batch_size: int = 16
    learning_rate: float = 0.05
    min_anomaly: float = 0.25
    eval_noises: int = 64


@dataclass
class Candidates:
    """The search's result: one row per candidate, ordered probe-major, then radius, then restart."""

    directions: torch.Tensor  # [N, C, H, W], unit per-pixel RMS
    losses: torch.Tensor  # [N], relative mismatch on held-out noises
    radii: torch.Tensor  # [N], the RMS each candidate was searched at
    probe_index: torch.Tensor  # [N], which probe each candidate answers


def _rms(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(1).pow(2).mean(1).sqrt().view(-1, *([1] * (x.dim() - 1)))


class _ProbeBatch:
    """Evaluates, for every candidate, how far its mean response is from its probe's gain."""

    def __init__(self, unet: CountingUNet, alphas_cumprod: torch.Tensor, probes: list[Probe], config: InversionConfig):
        device = next(unet.parameters()).device
        self.unet = unet
        self.probes = len(probes)
        self.per_probe = len(config.radii) * config.restarts
        self.radii = torch.tensor(config.radii, device=device).repeat_interleave(config.restarts).repeat(len(probes))
        self.probe_index = torch.arange(len(probes), device=device).repeat_interleave(self.per_probe)
        self.timesteps = torch.tensor([p.timestep for p in probes], device=device)
        self.sigma = (1.0 - alphas_cumprod.to(device)[self.timesteps]).sqrt().view(-1, 1, 1, 1, 1)
        self.gains = torch.tensor([p.gain for p in probes], device=device).view(-1, 1, 1, 1, 1)

    def mismatch(self, direction: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Relative squared mismatch per candidate, ``[N]``, on the given noises."""
        batch, shape = noise.shape[0], noise.shape[1:]
        noisy = self.sigma * noise.unsqueeze(0)  # [P, B, C, H, W]
        with torch.no_grad():
            baseline = self.unet(noisy.flatten(0, 1), self.timesteps.repeat_interleave(batch)).sample
        baseline = baseline.view(self.probes, 1, batch, *shape)
        delta = direction / _rms(direction) * self.radii.view(-1, 1, 1, 1)
        delta = delta.view(self.probes, self.per_probe, 1, *shape)
        shifted = (noisy.unsqueeze(1) + delta).flatten(0, 2)
        t = self.timesteps.repeat_interleave(self.per_probe * batch)
        predicted = self.unet(shifted, t).sample.view(self.probes, self.per_probe, batch, *shape)
        response = (predicted - baseline).mean(2)
        expected = delta.squeeze(2) / self.sigma
        mismatch = response - self.gains * expected
        return (mismatch.flatten(2).pow(2).sum(2) / expected.flatten(2).pow(2).sum(2)).flatten()


def invert_directions(
    unet: CountingUNet,
    shape: tuple[int, int, int],
    alphas_cumprod: torch.Tensor,
    probes: list[Probe],
    config: InversionConfig,
    generator: torch.Generator,
    progress: ProgressCallback = no_progress,
) -> Candidates:
    """Search candidate trigger directions for every probe.

    The returned losses are measured afresh on ``config.eval_noises`` noises the search never saw.
    """
    device = next(unet.parameters()).device
    probe_batch = _ProbeBatch(unet, alphas_cumprod, probes, config)
    count = probe_batch.per_probe * len(probes)
    direction = torch.randn((count, *shape), generator=generator).to(device).requires_grad_(True)
    optimizer = torch.optim.Adam([direction], lr=config.learning_rate)
    for step in range(config.steps):
        noise = torch.randn((config.batch_size, *shape), generator=generator).to(device)
        losses = probe_batch.mismatch(direction, noise)
        optimizer.zero_grad(set_to_none=True)
        losses.sum().backward()
        optimizer.step()
        progress("inversion", step + 1, config.steps)
    with torch.no_grad():
        direction = direction / _rms(direction)
        held_out = torch.randn((config.eval_noises, *shape), generator=generator).to(device)
        losses = probe_batch.mismatch(direction, held_out)
    return Candidates(direction.detach(), losses, probe_batch.radii, probe_batch.probe_index)
