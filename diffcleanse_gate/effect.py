"""Measure a backdoor's effect: sample from noise plus a trigger and compare the images to a target."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from .sampling import probe_scheduler, run_sampler

SUCCESS_MSE = 0.01  # per-sample MSE in [0, 1] pixel units below which the attack counts as a hit


@dataclass(frozen=True)
class AttackEffect:
    """How strongly a trigger produces a target: mean per-sample MSE in [0, 1] units and the hit rate."""

    mse: float
    success_rate: float


@torch.no_grad()
def triggered_samples(
    unet: torch.nn.Module,
    scheduler_config: Mapping[str, Any],
    trigger: torch.Tensor,
    num_samples: int,
    num_inference_steps: int,
    sampler: str | None = None,
    seed: int = 0,
) -> torch.Tensor:
    """Images in [-1, 1] sampled from ``noise + trigger``; the same seed gives the same noises."""
    device = next(unet.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn((num_samples, *trigger.shape), generator=generator)
    scheduler = probe_scheduler(scheduler_config, sampler)
    start = (noise + trigger.cpu()).to(device)
    return run_sampler(unet, scheduler, start, num_inference_steps, generator).clamp(-1, 1).cpu()


def effect_on(images: torch.Tensor, target: torch.Tensor) -> AttackEffect:
    """Compare sampled images (in [-1, 1]) with the target image."""
    per_sample = ((images - target.cpu()) / 2).pow(2).flatten(1).mean(1)
    return AttackEffect(per_sample.mean().item(), (per_sample < SUCCESS_MSE).float().mean().item())


def attack_effect(
    unet: torch.nn.Module,
    scheduler_config: Mapping[str, Any],
    trigger: torch.Tensor,
    target: torch.Tensor,
    num_samples: int = 64,
    num_inference_steps: int = 1000,
    sampler: str | None = None,
    seed: int = 0,
) -> AttackEffect:
    """Sample from noise + trigger with the model's scheduler and compare to the target."""
    images = triggered_samples(unet, scheduler_config, trigger, num_samples, num_inference_steps, sampler, seed)
    return effect_on(images, target)
