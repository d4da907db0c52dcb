"""Schedulers come from the model's own config, or from the sampler a user names."""

from __future__ import annotations

import pytest
from diffusers import DDIMScheduler, DDPMScheduler

from diffcleanse_gate.errors import UnsupportedModelError
from diffcleanse_gate.sampling import build_scheduler, sampler_name


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
