"""Train a small UNet on images with the DDPM loss, optionally implanting a backdoor."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler, UNet2DModel

from .families import Family


@dataclass(frozen=True)
class Backdoor:
    """What an attacker implants: a trigger ``r``, a target ``y``, a family and a poison rate."""

    family: Family
    trigger: torch.Tensor
    target: torch.Tensor
    poison_rate: float


def tiny_unet(channels: int, size: int, widths: tuple[int, ...] = (16, 32), attention: bool = False) -> UNet2DModel:
    """A small UNet2DModel for test models; ``attention`` adds self-attention at the lowest resolution."""
    down = ["DownBlock2D"] * len(widths)
    if attention:
        down[-1] = "AttnDownBlock2D"
    return UNet2DModel(
        sample_size=size,
        in_channels=channels,
        out_channels=channels,
        block_out_channels=widths,
        down_block_types=tuple(down),
        up_block_types=tuple(name.replace("Down", "Up") for name in reversed(down)),
        layers_per_block=1,
        norm_num_groups=8,
    )


def train_diffusion(
    unet: UNet2DModel,
    images: torch.Tensor,
    steps: int,
    seed: int,
    lr: float = 1e-3,
    batch_size: int = 64,
    backdoor: Backdoor | None = None,
    on_step: Callable[[int, float], None] | None = None,
) -> UNet2DModel:
    """Train ``unet`` in place on ``images`` ([-1, 1]) with linear betas 1e-4..0.02 over 1000 steps."""
    generator = torch.Generator().manual_seed(seed)
    noise_schedule = DDPMScheduler()
    ab = noise_schedule.alphas_cumprod
    T = len(ab)
    if backdoor is not None:
        s_all, c_all = backdoor.family.schedule(noise_schedule.betas)
    optimizer = torch.optim.AdamW(unet.parameters(), lr=lr, weight_decay=0.0)
    lr_schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps, eta_min=lr * 0.05)
    unet.train()
    for step in range(steps):
        index = torch.randint(0, len(images), (batch_size,), generator=generator)
        x0 = images[index]
        t = torch.randint(0, T, (batch_size,), generator=generator)
        eps = torch.randn(x0.shape, generator=generator)
        a = ab[t].view(-1, 1, 1, 1)
        target = eps
        if backdoor is not None:
            poisoned = (torch.rand(batch_size, generator=generator) < backdoor.poison_rate).view(-1, 1, 1, 1)
            s = s_all[t].view(-1, 1, 1, 1)
            c = c_all[t].view(-1, 1, 1, 1)
            x0 = torch.where(poisoned, backdoor.target.expand_as(x0), x0)
            shift = torch.where(poisoned, s * backdoor.trigger, torch.zeros_like(x0))
            target = eps + torch.where(poisoned, c * backdoor.trigger, torch.zeros_like(x0))
        else:
            shift = torch.zeros_like(x0)
        x_t = a.sqrt() * x0 + (1 - a).sqrt() * eps + shift
        loss = F.mse_loss(unet(x_t, t).sample, target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        optimizer.step()
        lr_schedule.step()
        if on_step is not None:
            on_step(step, loss.item())
    unet.eval()
    return unet
