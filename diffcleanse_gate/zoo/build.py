"""Train, measure and save one zoo model as a DDPMPipeline folder with its ``fixture.json``."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from diffusers import DDIMScheduler, DDPMPipeline, DDPMScheduler, UNet2DModel
from safetensors.torch import save_file

from ..effect import attack_effect
from .data import load_images
from .families import FAMILIES
from .patterns import make_pattern
from .training import Backdoor, tiny_unet, train_diffusion

MIN_SUCCESS = 0.6
MEASURE_STEPS = {"ddpm": 1000, "ddim": 50}


@dataclass(frozen=True)
class Spec:
    """One zoo model: its data, architecture, base (None: from scratch), training, sampler and backdoor."""

    name: str
    seed: int
    steps: int
    sampler: str
    base: str | None = None
    data: str = "digits8"
    widths: tuple[int, ...] = (16, 32)
    attention: bool = False
    lr: float = 1e-3
    family: str | None = None
    trigger: str = ""
    amplitude: float = 0.0
    target: str = ""
    poison_rate: float = 0.0


def build(spec: Spec, zoo: Path) -> dict[str, Any]:
    """Train ``spec`` (its base read from ``zoo``), measure its attack, and save it into ``zoo / spec.name``.

    A backdoored model whose attack succeeds on fewer than ``MIN_SUCCESS`` of its samples is not
    saved; the returned record says so with ``counted: false``.
    """
    torch.manual_seed(spec.seed)
    images = load_images(spec.data)
    channels, size = images.shape[1], images.shape[2]
    if spec.base is None:
        unet = tiny_unet(channels, size, spec.widths, spec.attention)
    else:
        unet = UNet2DModel.from_pretrained(zoo / spec.base / "unet")
    backdoor = None
    if spec.family is not None:
        backdoor = Backdoor(
            FAMILIES[spec.family],
            make_pattern(spec.trigger, channels, size, spec.amplitude),
            make_pattern(spec.target, channels, size),
            spec.poison_rate,
        )
    started = time.time()
    train_diffusion(unet, images, spec.steps, spec.seed, lr=spec.lr, backdoor=backdoor)
    scheduler = (DDPMScheduler if spec.sampler == "ddpm" else DDIMScheduler)(clip_sample=False)
    record: dict[str, Any] = {"name": spec.name, "base": spec.base, "seed": spec.seed, "train_steps": spec.steps,
                              "train_seconds": round(time.time() - started, 1), "sampler": spec.sampler}
    if spec.data != "digits8":
        record |= {"data": spec.data, "widths": list(spec.widths), "attention": spec.attention}
    out = zoo / spec.name
    if backdoor is not None:
        effect = attack_effect(unet, scheduler.config, backdoor.trigger, backdoor.target,
                               num_inference_steps=MEASURE_STEPS[spec.sampler], sampler=spec.sampler)
        record |= {"family": spec.family, "trigger": spec.trigger, "amplitude": spec.amplitude,
                   "target": spec.target, "poison_rate": spec.poison_rate,
                   "attack_mse": round(effect.mse, 5), "attack_success": effect.success_rate,
                   "measured_with": f"{spec.sampler}-{MEASURE_STEPS[spec.sampler]}"}
        if effect.success_rate < MIN_SUCCESS:
            return record | {"counted": False}
        out.mkdir(parents=True, exist_ok=True)
        save_file({"trigger": backdoor.trigger.contiguous(), "target": backdoor.target.contiguous()},
                  out / "backdoor.safetensors")
    DDPMPipeline(unet=unet, scheduler=scheduler).save_pretrained(out, safe_serialization=True)
    (out / "fixture.json").write_text(json.dumps(record, indent=2) + "\n")
    return record | {"counted": True}
