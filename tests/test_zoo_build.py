"""Zoo models are saved only when their attack was measured to work, and then load as pipelines; their photo data."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from diffusers import DDIMScheduler, DDPMPipeline

from diffcleanse_gate.zoo.build import Spec, build
from diffcleanse_gate.zoo.data import load_images


def test_an_attack_that_did_not_implant_is_recorded_and_not_saved(tmp_path: Path) -> None:
    spec = Spec("villandiffusion-untrained", seed=5, steps=2, sampler="ddim", family="villandiffusion",
                trigger="glasses", amplitude=2.0, target="ring", poison_rate=0.2)
    record = build(spec, tmp_path)
    assert record["counted"] is False and record["attack_success"] < 0.6
    assert not (tmp_path / spec.name).exists()


def test_a_built_clean_model_loads_as_a_pipeline_with_its_record(tmp_path: Path) -> None:
    spec = Spec("clean-tiny", seed=6, steps=2, sampler="ddim", widths=(8, 16), attention=True)
    record = build(spec, tmp_path)
    assert record["counted"] is True
    pipeline = DDPMPipeline.from_pretrained(tmp_path / spec.name)
    assert isinstance(pipeline.scheduler, DDIMScheduler)
    assert pipeline.unet.config.down_block_types == ["DownBlock2D", "AttnDownBlock2D"]
    assert json.loads((tmp_path / spec.name / "fixture.json").read_text())["name"] == "clean-tiny"


def test_photo_patches_are_colour_windows_of_the_photographs_the_same_on_every_call() -> None:
    patches = load_images("photos16")
    assert patches.shape == (5000, 3, 16, 16) and patches.min() >= -1 and patches.max() <= 1
    assert torch.equal(patches, load_images("photos16"))
    assert len(torch.unique(patches.flatten(1), dim=0)) > 3500  # windows, not copies of a few (4,051 distinct)
    spread = patches.std(dim=(2, 3)).mean(0)
    assert (spread > 0.05).all(), spread  # texture within a patch, in every channel
