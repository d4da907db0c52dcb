"""The two losses removal weighs channels by: the backdoor's response to a trigger, and clean denoising.

Backdoor loss: a clean denoiser answers an input shift ``s_t * r`` with a noise-prediction shift of
``s_t * r / sigma_t`` (it takes the shift for noise, :mod:`diffcleanse_gate.threat`). The loss is the
squared departure from that answer at the timesteps where the probe that found the trigger says a
backdoor departs from it; it measures the backdoor's behaviour itself, with the inverted trigger only.
Clean loss: the ordinary DDPM noise-prediction loss on clean images.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from diffusers import UNet2DModel

from ..threat import Probe, trigger_schedule


@dataclass(frozen=True)
class NoiseSchedule:
    """The model's discrete noise schedule: ``sqrt(ab_t)`` and ``sigma_t = sqrt(1 - ab_t)``."""

    signal: torch.Tensor
    sigma: torch.Tensor

    @classmethod
    def from_alphas_cumprod(cls, alphas_cumprod: torch.Tensor, device: torch.device) -> NoiseSchedule:
        """Build from a scheduler's ``alphas_cumprod``."""
        ab = alphas_cumprod.to(device=device, dtype=torch.float32)
        return cls(ab.sqrt(), (1.0 - ab).sqrt())

    @property
    def steps(self) -> int:
        """Number of training timesteps T."""
        return len(self.sigma)

    def noised(self, images: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The forward process ``x_t = sqrt(ab_t) x_0 + sigma_t eps``."""
        return _per_row(self.signal[t]) * images + _per_row(self.sigma[t]) * noise


def _per_row(values: torch.Tensor) -> torch.Tensor:
    return values.view(-1, 1, 1, 1)


class BackdoorObjective:
    """The backdoor loss for one inverted trigger and the probe that found it."""

    def __init__(self, trigger: torch.Tensor, probe: Probe, betas: torch.Tensor, schedule: NoiseSchedule):
        scale, _ = trigger_schedule(probe.form, probe.sampler_kind, betas)
        self.scale = scale.to(schedule.sigma.device)
        self.trigger = trigger.to(schedule.sigma.device)
        self.schedule = schedule
        # From the probe's timestep down to half of it: where the trigger still weighs on x_t.
        self.timesteps = torch.arange(probe.timestep // 2, probe.timestep + 1, device=schedule.sigma.device)

    def loss(self, unet: UNet2DModel, batch: int, generator: torch.Generator) -> torch.Tensor:
        """Mean squared departure of the trigger response from a clean model's, on fresh noise."""
        device = self.trigger.device
        pick = torch.randint(len(self.timesteps), (batch,), generator=generator).to(device)
        t = self.timesteps[pick]
        noise = torch.randn((batch, *self.trigger.shape), generator=generator).to(device)
        sigma = _per_row(self.schedule.sigma[t])
        noisy = sigma * noise
        shift = _per_row(self.scale[t]) * self.trigger
        response = unet(noisy + shift, t).sample - unet(noisy, t).sample
        return (response - shift / sigma).pow(2).mean()


    def suppression_loss(self, student: torch.nn.Module, teacher: torch.nn.Module, clean: CleanObjective,
                         batch: int, generator: torch.Generator) -> torch.Tensor:
        """Teach ``student`` a clean model's answer to the trigger on clean inputs: the teacher's answer
        without the trigger, plus the shift taken for noise."""
        images = clean.images[torch.randint(len(clean.images), (batch,), generator=generator).to(clean.images.device)]
        t = self.timesteps[torch.randint(len(self.timesteps), (batch,), generator=generator).to(self.trigger.device)]
        noise = torch.randn(images.shape, generator=generator).to(images.device)
        noisy = self.schedule.noised(images, noise, t)
        shift = _per_row(self.scale[t]) * self.trigger
        with torch.no_grad():
            wanted = teacher(noisy, t).sample + shift / _per_row(self.schedule.sigma[t])
        return (student(noisy + shift, t).sample - wanted).pow(2).mean()


class CleanObjective:
    """The DDPM loss on clean images (the repair set)."""

    def __init__(self, images: torch.Tensor, schedule: NoiseSchedule):
        self.images = images
        self.schedule = schedule

    def draw(self, batch: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """A batch of ``(x_t, t, eps)`` from the clean images."""
        device = self.images.device
        index = torch.randint(len(self.images), (batch,), generator=generator).to(device)
        t = torch.randint(self.schedule.steps, (batch,), generator=generator).to(device)
        noise = torch.randn((batch, *self.images.shape[1:]), generator=generator).to(device)
        return self.schedule.noised(self.images[index], noise, t), t, noise

    def loss(self, unet: UNet2DModel, batch: int, generator: torch.Generator) -> torch.Tensor:
        """Mean squared noise-prediction error."""
        noisy, t, noise = self.draw(batch, generator)
        return (unet(noisy, t).sample - noise).pow(2).mean()
