"""Trigger inversion: search for input shifts that a backdoored model answers abnormally.

A clean denoiser treats a shift ``tau`` of its noisiest input as more noise: its mean noise
prediction moves by about ``tau``. A model trained to fire on ``eps + r`` predicts ``eps + c_T r``
with ``c_T`` near 0.5 for the ancestral-sampler attacks (DESIGN.md section 2). We look for
directions where the model's mean response is ``response_gain * tau``. Each candidate is held on a
sphere of fixed per-pixel RMS, so the trivial answers (``tau -> 0`` or a huge uniform shift) are out
of reach; several radii and random restarts run as one batch. Which candidate, at which scale, truly
makes the sampler collapse is decided afterwards by :mod:`diffcleanse_gate.detection`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .counting import CountingUNet
from .progress import ProgressCallback, no_progress


@dataclass(frozen=True)
class InversionConfig:
    """Settings of the direction search; the defaults suit models from 8x8 to 32x32."""

    radii: tuple[float, ...] = (0.5, 0.75, 1.0, 1.5)
    restarts: int = 2
    steps: int = 150
    batch_size: int = 16
    learning_rate: float = 0.05
    response_gain: float = 0.5


def _rms(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(1).pow(2).mean(1).sqrt().view(-1, *([1] * (x.dim() - 1)))


def invert_directions(
    unet: CountingUNet,
    shape: tuple[int, int, int],
    timestep: int,
    config: InversionConfig,
    generator: torch.Generator,
    progress: ProgressCallback = no_progress,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return candidate trigger directions (unit RMS, ``[N, C, H, W]``) and their final losses."""
    device = next(unet.parameters()).device
    radii = torch.tensor(config.radii, device=device).repeat_interleave(config.restarts)
    radii = radii.view(-1, 1, 1, 1)
    count = radii.shape[0]
    direction = torch.randn((count, *shape), generator=generator).to(device).requires_grad_(True)
    optimizer = torch.optim.Adam([direction], lr=config.learning_rate)
    t = torch.tensor(timestep, device=device)
    losses = torch.zeros(count, device=device)
    for step in range(config.steps):
        noise = torch.randn((config.batch_size, *shape), generator=generator).to(device)
        with torch.no_grad():
            baseline = unet(noise, t).sample
        tau = direction / _rms(direction) * radii
        shifted = (noise.unsqueeze(0) + tau.unsqueeze(1)).flatten(0, 1)
        predicted = unet(shifted, t).sample.view(count, config.batch_size, *shape)
        response = (predicted - baseline.unsqueeze(0)).mean(1)
        mismatch = response - config.response_gain * tau
        losses = mismatch.flatten(1).pow(2).sum(1) / tau.flatten(1).pow(2).sum(1)
        optimizer.zero_grad(set_to_none=True)
        losses.sum().backward()
        optimizer.step()
        progress("inversion", step + 1, config.steps)
    with torch.no_grad():
        return (direction / _rms(direction)).detach(), losses.detach()
