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
    steps: int = 150
    batch_size: int = 16
    learning_rate: float = 0.05
    min_anomaly: float = 0.25


def _rms(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(1).pow(2).mean(1).sqrt().view(-1, *([1] * (x.dim() - 1)))


def invert_directions(
    unet: CountingUNet,
    shape: tuple[int, int, int],
    alphas_cumprod: torch.Tensor,
    probes: list[Probe],
    config: InversionConfig,
    generator: torch.Generator,
    progress: ProgressCallback = no_progress,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return candidate trigger directions (unit RMS, ``[N, C, H, W]``) and their final losses.

    Candidates are ordered probe-major, then radius, then restart.
    """
    device = next(unet.parameters()).device
    per_probe = len(config.radii) * config.restarts
    count = per_probe * len(probes)
    radii = torch.tensor(config.radii, device=device).repeat_interleave(config.restarts).repeat(len(probes))
    timesteps = torch.tensor([p.timestep for p in probes], device=device)
    sigma = (1.0 - alphas_cumprod.to(device)[timesteps]).sqrt()
    gains = torch.tensor([p.gain for p in probes], device=device)
    direction = torch.randn((count, *shape), generator=generator).to(device).requires_grad_(True)
    optimizer = torch.optim.Adam([direction], lr=config.learning_rate)
    losses = torch.zeros(count, device=device)
    batch = config.batch_size
    for step in range(config.steps):
        noise = torch.randn((batch, *shape), generator=generator).to(device)
        noisy = sigma.view(-1, 1, 1, 1, 1) * noise.unsqueeze(0)  # [P, B, C, H, W]
        with torch.no_grad():
            baseline = unet(noisy.flatten(0, 1), timesteps.repeat_interleave(batch)).sample
        baseline = baseline.view(len(probes), 1, batch, *shape)
        delta = (direction / _rms(direction) * radii.view(-1, 1, 1, 1)).view(len(probes), per_probe, 1, *shape)
        shifted = (noisy.unsqueeze(1) + delta).flatten(0, 2)
        t = timesteps.repeat_interleave(per_probe * batch)
        predicted = unet(shifted, t).sample.view(len(probes), per_probe, batch, *shape)
        response = (predicted - baseline).mean(2)
        expected = delta.squeeze(2) / sigma.view(-1, 1, 1, 1, 1)
        mismatch = response - gains.view(-1, 1, 1, 1, 1) * expected
        losses = (mismatch.flatten(2).pow(2).sum(2) / expected.flatten(2).pow(2).sum(2)).flatten()
        optimizer.zero_grad(set_to_none=True)
        losses.sum().backward()
        optimizer.step()
        progress("inversion", step + 1, config.steps)
    with torch.no_grad():
        return (direction / _rms(direction)).detach(), losses.detach()
