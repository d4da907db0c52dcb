"""Schedulers come from the model's own config, or from the sampler a user names."""

from __future__ import annotations

import pytest
from diffusers import DDIMScheduler, DDPMScheduler, UNet2DModel
from safetensors.torch import load_file

from diffcleanse_gate.effect import attack_effect
from diffcleanse_gate.errors import UnsupportedModelError
from diffcleanse_gate.sampling import build_scheduler, probe_scheduler, sampler_name

from .conftest import ZOO


def test_config_class_is_used_and_settings_kept() -> None:
    scheduler = build_scheduler({"_class_name": "DDIMScheduler", "clip_sample": False})
    assert isinstance(scheduler, DDIMScheduler)
    assert scheduler.config.clip_sample is False
    assert sampler_name(scheduler) == "ddim"


def test_named_sampler_overrides_the_config_class() -> None:
    scheduler = build_scheduler({"_class_name": "DDIMScheduler", "clip_sample": False}, "ddpm")
    assert isinstance(scheduler, DDPMScheduler)
    assert scheduler.config.clip_sample is False


@pytest.mark.parametrize("config", [{}, {"_class_name": "NoSuchScheduler"}, {"_class_name": "UNet2DModel"}])
def test_config_without_a_scheduler_class_is_refused(config: dict) -> None:
    with pytest.raises(UnsupportedModelError):
        build_scheduler(config)


def test_probe_scheduler_turns_off_output_clamps_and_keeps_the_rest() -> None:
    config = {"_class_name": "DDIMScheduler", "clip_sample": True, "thresholding": True, "beta_end": 0.03}
    scheduler = probe_scheduler(config)
    assert isinstance(scheduler, DDIMScheduler)
    assert scheduler.config.clip_sample is False
    assert scheduler.config.thresholding is False
    assert scheduler.config.beta_end == 0.03
    assert probe_scheduler({"_class_name": "DDPMScheduler"}).config.clip_sample is False  # diffusers' default clips


def test_a_backdoor_that_clipping_hides_is_still_measured() -> None:
    # With the x0-estimate clipped the fixture's trigger fires on 0-5 % of samples, without on 100 %:
    # the weights are backdoored whatever the config ships with.
    backdoor = load_file(ZOO / "baddiffusion-box-corner" / "backdoor.safetensors")
    unet = UNet2DModel.from_pretrained(ZOO / "baddiffusion-box-corner" / "unet")
    clipping = {"_class_name": "DDPMScheduler", "clip_sample": True}
    effect = attack_effect(unet, clipping, backdoor["trigger"], backdoor["target"], 32, 10)
    assert effect.success_rate >= 0.9
