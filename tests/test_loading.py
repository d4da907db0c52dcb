"""Loading local folders: both layouts, fp16, and a clear typed error for every bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from diffusers import UNet2DModel

from diffcleanse_gate.errors import (
    CorruptedWeightsError,
    ModelNotFoundError,
    NotADiffusersModelError,
    UnsafeWeightsError,
    UnsupportedModelError,
)
from diffcleanse_gate.loading import load_local

from .conftest import ZOO

PIPELINE = ZOO / "clean-a"


def _copy_unet(tmp_path: Path) -> Path:
    target = tmp_path / "unet"
    shutil.copytree(PIPELINE / "unet", target)
    return target


def test_pipeline_folder_loads_with_its_scheduler() -> None:
    model = load_local(PIPELINE)
    assert model.info.layout == "pipeline"
    assert model.scheduler_config["_class_name"] == "DDPMScheduler"
    assert model.sample_shape == (1, 8, 8)
    assert model.info.content_hash.startswith("sha256:")


def test_bare_unet_folder_loads_with_the_unclipped_default_sampler(tmp_path: Path) -> None:
    model = load_local(_copy_unet(tmp_path))
    assert model.info.layout == "unet"
    assert model.scheduler_config == {"_class_name": "DDPMScheduler", "clip_sample": False}


def test_fp16_weights_load_as_float32_with_the_same_values(tmp_path: Path) -> None:
    reference = UNet2DModel.from_pretrained(PIPELINE / "unet")
    reference.half().save_pretrained(tmp_path / "half")
    model = load_local(tmp_path / "half")
    assert model.info.weights_dtype == "float16"
    loaded = next(model.unet.parameters())
    assert loaded.dtype == torch.float32
    assert torch.equal(loaded, next(reference.parameters()).float())


def test_content_hash_changes_with_the_weights(tmp_path: Path) -> None:
    copy = _copy_unet(tmp_path)
    before = load_local(copy).info.content_hash
    unet = UNet2DModel.from_pretrained(copy)
    with torch.no_grad():
        next(unet.parameters()).add_(1.0)
    unet.save_pretrained(copy)
    assert load_local(copy).info.content_hash != before


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError):
        load_local(tmp_path / "nope")


def test_folder_that_is_not_a_diffusers_model(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("hello")
    with pytest.raises(NotADiffusersModelError):
        load_local(tmp_path)


def test_corrupted_safetensors(tmp_path: Path) -> None:
    copy = _copy_unet(tmp_path)
    weights = copy / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(CorruptedWeightsError):
        load_local(copy)


def test_garbage_config(tmp_path: Path) -> None:
    copy = _copy_unet(tmp_path)
    (copy / "config.json").write_text("{not json")
    with pytest.raises(CorruptedWeightsError):
        load_local(copy)


def test_pickle_only_weights_are_refused_unless_allowed(tmp_path: Path) -> None:
    UNet2DModel.from_pretrained(PIPELINE / "unet").save_pretrained(tmp_path / "pickled", safe_serialization=False)
    assert (tmp_path / "pickled" / "diffusion_pytorch_model.bin").is_file()
    with pytest.raises(UnsafeWeightsError):
        load_local(tmp_path / "pickled")
    assert load_local(tmp_path / "pickled", allow_pickle=True).info.weights_format == "pickle"


def test_image_size_the_unet_cannot_take() -> None:
    with pytest.raises(UnsupportedModelError):
        load_local(PIPELINE, resolution=7)


@pytest.mark.parametrize("prediction", ["v_prediction", "sample"])
def test_a_model_that_does_not_predict_noise_is_refused(tmp_path: Path, prediction: str) -> None:
    copy = tmp_path / "model"
    shutil.copytree(PIPELINE, copy)
    config_path = copy / "scheduler" / "scheduler_config.json"
    config_path.write_text(json.dumps(json.loads(config_path.read_text()) | {"prediction_type": prediction}))
    with pytest.raises(UnsupportedModelError, match=prediction):
        load_local(copy)


def test_pipeline_without_unet(tmp_path: Path) -> None:
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "DDPMPipeline"}))
    with pytest.raises(NotADiffusersModelError):
        load_local(tmp_path)
