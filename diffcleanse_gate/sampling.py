"""Run a diffusers scheduler's reverse process over a batch of starting noises."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

import diffusers
import torch
from diffusers import SchedulerMixin, UNet2DModel

from .errors import UnsupportedModelError

SAMPLERS = {
    "ddpm": "DDPMScheduler",
    "ddim": "DDIMScheduler",
    "pndm": "PNDMScheduler",
    "dpm-solver": "DPMSolverMultistepScheduler",
    "unipc": "UniPCMultistepScheduler",
    "euler": "EulerDiscreteScheduler",
    "heun": "HeunDiscreteScheduler",
}


def build_scheduler(config: Mapping[str, Any], sampler: str | None = None) -> SchedulerMixin:
    """Build a scheduler from a model's scheduler config, optionally as another sampler class.

    ``sampler`` is a short name from ``SAMPLERS`` or ``None`` for the class the config names.
    """
    class_name = SAMPLERS[sampler] if sampler else config.get("_class_name")
    scheduler_class = getattr(diffusers, str(class_name), None)
    if not (isinstance(scheduler_class, type) and issubclass(scheduler_class, SchedulerMixin)):
        raise UnsupportedModelError(f"scheduler config names no known diffusers scheduler class: {class_name!r}")
    return scheduler_class.from_config(dict(config))


# A scheduler's output clamps (diffusers' defaults for DDPM and DDIM clip the x0-estimate to [-1, 1]) are
# a sampling setting, not part of the weights: with them, the fixture backdoors do not fire (attack success
# 0-5 %, from 82-100 % without), yet the same weights under another scheduler config fire. Probes of what
# the weights do therefore sample without them.
OUTPUT_CLAMPS = ("clip_sample", "thresholding")


def probe_scheduler(config: Mapping[str, Any], sampler: str | None = None) -> SchedulerMixin:
    """``build_scheduler``'s scheduler with its output clamps (``OUTPUT_CLAMPS``) turned off."""
    scheduler = build_scheduler(config, sampler)
    clamps = {name: False for name in OUTPUT_CLAMPS if scheduler.config.get(name)}
    return type(scheduler).from_config(scheduler.config, **clamps) if clamps else scheduler


def sampler_name(scheduler: SchedulerMixin) -> str:
    """The short name of a scheduler's sampler, or its class name when it has none."""
    class_name = type(scheduler).__name__
    return next((name for name, cls in SAMPLERS.items() if cls == class_name), class_name)


def run_sampler(
    unet: UNet2DModel,
    scheduler: SchedulerMixin,
    x_start: torch.Tensor,
    num_inference_steps: int,
    generator: torch.Generator | None = None,
    on_step: Callable[[], None] | None = None,
) -> torch.Tensor:
    """Denoise ``x_start`` (noise at the scheduler's first timestep) down to images.

    Gradients flow through the whole chain when the caller has them enabled. ``x_start`` is taken
    as given: the caller scales it by ``scheduler.init_noise_sigma`` when the sampler needs that.
    """
    scheduler.set_timesteps(num_inference_steps, device=x_start.device)
    accepts_generator = "generator" in inspect.signature(scheduler.step).parameters
    step_kwargs = {"generator": generator} if accepts_generator else {}
    sample = x_start
    for t in scheduler.timesteps:
        model_input = scheduler.scale_model_input(sample, t)
        noise_pred = unet(model_input, t).sample
        sample = scheduler.step(noise_pred, t, sample, **step_kwargs).prev_sample
        if on_step is not None:
            on_step()
    return sample
