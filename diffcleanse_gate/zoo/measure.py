"""Measure whether an implanted backdoor fires: MSE of triggered samples to the target."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import torch
from diffusers import UNet2DModel

from ..sampling import build_scheduler, run_sampler

SUCCESS_MSE = 0.01  # per-sample MSE in [0, 1] pixel units below which the attack counts as a hit


@dataclass(frozen=True)
class AttackEffect:
    """How strongly a trigger produces a target: mean MSE in [0, 1] units and the hit rate."""

    mse: float
    success_rate: float


@torch.no_grad()
def attack_effect(
    unet: UNet2DModel,
    scheduler_config: Mapping[str, Any],
    trigger: torch.Tensor,
    target: torch.Tensor,
    num_samples: int = 64,
    num_inference_steps: int = 1000,
    sampler: str | None = None,
    seed: int = 0,
) -> AttackEffect:
    """Sample from noise + trigger with the model's scheduler and compare to the target."""
    generator = torch.Generator().manual_seed(seed)
    shape = (num_samples, *target.shape)
    noise = torch.randn(shape, generator=generator)
    scheduler = build_scheduler(scheduler_config, sampler)
    images = run_sampler(unet, scheduler, noise + trigger, num_inference_steps, generator)
    per_sample = ((images.clamp(-1, 1) - target) / 2).pow(2).flatten(1).mean(1)
    return AttackEffect(per_sample.mean().item(), (per_sample < SUCCESS_MSE).float().mean().item())
