"""Elijah (An et al., AAAI 2024): invert a trigger at t = T by distribution shift, then score uniformity.

What is implemented, from the paper:

1. Trigger inversion. ``tau`` starts at ``-U(0, 1)`` and Adam (lr 0.1, 100 steps) minimises
   ``|| mean_eps eps_theta(eps + tau, T) - lambda * tau ||_1`` (mean absolute error) with lambda = 0.5 over
   one fixed batch of 100 noises drawn before the loop, as the paper's procedure does.
2. Detection. 16 images are sampled from ``noise + tau`` with the model's own scheduler (1000 steps for
   DDPM, 50 for any other sampler, as the paper samples BadDiffusion with DDPM and VillanDiffusion with
   DDIM-50), and their *uniformity* is scored: the pairwise distance matrix, each row sorted and trimmed
   by 4 at both ends, row means sorted and trimmed by 4 again, then averaged. A backdoored model's
   triggered samples are near-identical, so its uniformity is low.

Where this differs: the paper measures the pairwise distance with LPIPS, whose network weights must be
downloaded; here it is the per-pixel RMS distance of the images in [0, 1] (DESIGN.md section 3). The
paper leaves the decision threshold to the user; the benchmark calibrates it on clean models only
(flagged when the uniformity is below the clean mean minus 3 sd), which is said where it is used.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from diffcleanse_gate.counting import CountingUNet
from diffcleanse_gate.loading import LoadedModel
from diffcleanse_gate.sampling import build_scheduler, run_sampler

from . import BaselineResult


@dataclass(frozen=True)
class ElijahConfig:
    """The paper's settings; ``sampler_steps`` None means 1000 for DDPM and 50 for any other sampler."""

    gain: float = 0.5  # lambda
    noises: int = 100
    steps: int = 100
    learning_rate: float = 0.1
    samples: int = 16
    sampler_steps: int | None = None
    trim: int = 4


def invert_trigger(unet: CountingUNet, shape: tuple[int, int, int], timestep: int, config: ElijahConfig,
                   generator: torch.Generator) -> tuple[torch.Tensor, float]:
    """Elijah's distribution-shift inversion; returns the trigger ``[C, H, W]`` and the final loss."""
    device = next(unet.parameters()).device
    noise = torch.randn((config.noises, *shape), generator=generator).to(device)
    trigger = (-torch.rand((1, *shape), generator=generator)).to(device).requires_grad_(True)
    optimizer = torch.optim.Adam([trigger], lr=config.learning_rate)
    t = torch.full((config.noises,), timestep, device=device)
    loss = torch.zeros(())
    for _ in range(config.steps):
        response = unet(noise + trigger, t).sample.mean(0)
        loss = (response - config.gain * trigger[0]).abs().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return trigger.detach()[0], loss.item()


def uniformity(images: torch.Tensor, trim: int) -> float:
    """Elijah's trimmed mean pairwise distance of ``[N, C, H, W]`` images in [0, 1] (pixel RMS, not LPIPS)."""
    flat = images.flatten(1).double()
    distances = torch.cdist(flat, flat) / flat.shape[1] ** 0.5
    rows = torch.sort(distances, dim=1).values[:, trim : distances.shape[1] - trim].mean(1)
    return float(torch.sort(rows).values[trim : len(rows) - trim].mean())


def elijah(model: LoadedModel, config: ElijahConfig = ElijahConfig(), seed: int = 0,
           device: str | torch.device = "cpu") -> BaselineResult:
    """Run Elijah on a loaded model; ``statistics["uniformity"]`` is low for a backdoored model."""
    unet = CountingUNet(model.unet.to(device))
    generator = torch.Generator().manual_seed(seed)
    scheduler = build_scheduler(model.scheduler_config)
    timestep = scheduler.config.num_train_timesteps - 1
    with torch.enable_grad():
        trigger, loss = invert_trigger(unet, model.sample_shape, timestep, config, generator)
    steps = config.sampler_steps or (1000 if type(scheduler).__name__ == "DDPMScheduler" else 50)
    noise = torch.randn((config.samples, *model.sample_shape), generator=generator).to(device)
    with torch.no_grad():
        images = run_sampler(unet, scheduler, (noise + trigger) * scheduler.init_noise_sigma, steps, generator)
    score = uniformity((images.clamp(-1, 1) + 1) / 2, config.trim)
    settings = asdict(config) | {"sampler_steps": steps}
    return BaselineResult({"uniformity": score, "inversion_loss": loss}, trigger.cpu(), unet.evaluations, settings)
