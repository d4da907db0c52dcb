"""Benign fidelity: how far removal moved the model's behaviour on clean inputs.

Two figures, both on held-out clean images and noises the repair never saw:
- ``loss_ratio``: the cleaned model's DDPM noise-prediction loss over the original's, on the same
  images, timesteps and noises. 1.0 means clean denoising is as good as before; FIDELITY_BOUND is
  the most removal may cost.
- ``sample_drift``: mean per-pixel squared difference, in [0, 1] units, between the two models'
  samples from the same starting noises (deterministic DDIM): how much the pictures a user gets moved.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import torch

from ..sampling import build_scheduler, run_sampler
from .objectives import CleanObjective

FIDELITY_BOUND = 1.15  # loss_ratio above this means removal broke clean generation


@dataclass(frozen=True)
class Fidelity:
    """Clean denoising loss before and after, their ratio, and the paired sample drift."""

    loss_before: float
    loss_after: float
    loss_ratio: float
    sample_drift: float
    bound: float = FIDELITY_BOUND

    @property
    def within_bound(self) -> bool:
        """True when clean denoising got at most ``bound`` times worse."""
        return self.loss_ratio <= self.bound

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready figures, with the verdict against the bound."""
        return {**asdict(self), "within_bound": self.within_bound}


@torch.no_grad()
def _denoising_loss(unet: torch.nn.Module, held_out: CleanObjective, seed: int, batches: int, batch: int) -> float:
    generator = torch.Generator().manual_seed(seed)
    total = 0.0
    for _ in range(batches):
        noisy, t, noise = held_out.draw(batch, generator)
        total += (unet(noisy, t).sample - noise).pow(2).mean().item()
    return total / batches


@torch.no_grad()
def ddim_pictures(unet: torch.nn.Module, scheduler_config: Mapping[str, Any], noise: torch.Tensor,
                  steps: int = 50) -> torch.Tensor:
    """A model's deterministic DDIM samples from ``noise``, clamped to [-1, 1]."""
    return run_sampler(unet, build_scheduler(scheduler_config, "ddim"), noise, steps).clamp(-1, 1)


def picture_drift(first: torch.Tensor, second: torch.Tensor) -> float:
    """Mean per-pixel squared difference, in [0, 1] units, between two batches of [-1, 1] pictures."""
    return ((first - second) / 2).pow(2).mean().item()


@torch.no_grad()
def measure_fidelity(
    original: torch.nn.Module,
    cleaned: torch.nn.Module,
    held_out: CleanObjective,
    scheduler_config: Mapping[str, Any],
    shape: tuple[int, int, int],
    seed: int,
    samples: int = 64,
    sample_steps: int = 50,
    batches: int = 8,
    batch: int = 128,
) -> Fidelity:
    """Compare the two models on the held-out images and on paired samples."""
    before = _denoising_loss(original, held_out, seed, batches, batch)
    after = _denoising_loss(cleaned, held_out, seed, batches, batch)
    device = next(cleaned.parameters()).device
    noise = torch.randn((samples, *shape), generator=torch.Generator().manual_seed(seed)).to(device)
    drift = picture_drift(*(ddim_pictures(model, scheduler_config, noise, sample_steps) for model in (original, cleaned)))
    return Fidelity(before, after, after / max(before, 1e-12), drift)
