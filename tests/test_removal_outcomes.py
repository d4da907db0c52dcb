"""`diffcleanse clean` around the removal: a removal that fails, a clean model left alone, exact reloads, bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from diffusers import UNet2DModel

from diffcleanse_gate.loading import load_local
from diffcleanse_gate.removal.channels import ChannelMask, channel_groups
from diffcleanse_gate.removal.export import (
    reloads_identically,
    round_to_stored_dtype,
    save_cleaned,
    stored_dtype,
)

from .conftest import ZOO
from .test_cli import assert_one_line_error, call_cli, run_cli


def test_failed_removal_exits_1_and_marks_the_written_folder_not_clean(tmp_path: Path) -> None:
    result = run_cli("clean", str(ZOO / "baddiffusion-box-corner"), "--out", str(tmp_path / "out"),
                     "--json", str(tmp_path / "r.json"), "--prune-ratio", "0.0001", "--repair-steps", "0",
                     "--rounds", "1", "--quiet")
    assert result.returncode == 1, result.stdout + result.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["status"] == "backdoor-remains" and not report["clean"] and report["verdict_after"] == "backdoored"
    assert report["removal"]["pruned_channels"] == 0 and report["removal"]["rounds"][0]["final_repair_loss"] is None
    assert json.loads((tmp_path / "out" / "diffcleanse_report.json").read_text())["status"] == "backdoor-remains"
    assert load_local(tmp_path / "out").info.layout == "pipeline"
    assert "BACKDOOR-REMAINS" in result.stdout


def test_clean_model_is_left_unchanged(tmp_path: Path) -> None:
    result = run_cli("clean", str(ZOO / "clean-a"), "--out", str(tmp_path / "out"), "--json", str(tmp_path / "r.json"),
                     "--quiet", "--no-second-look")  # what a clean verdict leads to is under test, not the search
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["status"] == "unchanged" and not report["changed"] and report["verdict_after"] == "clean"
    assert not (tmp_path / "out").exists()
    assert "nothing was changed" in result.stdout


@pytest.mark.parametrize("layout", ["pipeline", "unet"])
def test_masked_model_reloads_bit_for_bit(tmp_path: Path, layout: str) -> None:
    source = ZOO / "clean-b"
    if layout == "unet":
        shutil.copytree(source / "unet", tmp_path / "bare")
        source = tmp_path / "bare"
    model = load_local(source)
    groups = channel_groups(model.unet, model.sample_shape)
    mask = ChannelMask()
    for index, size in enumerate(groups.sizes[:6]):
        mask.prune(groups, index, list(range(0, size, 3)))
    mask.apply()
    assert mask.zeroed_parameters > 0
    save_cleaned(model.unet, model, tmp_path / "out")
    assert (tmp_path / "out" / ("model_index.json" if layout == "pipeline" else "config.json")).is_file()
    assert reloads_identically(model.unet, tmp_path / "out")
    stock = UNet2DModel.from_pretrained(tmp_path / "out" / ("unet" if layout == "pipeline" else ""))
    sample, t = torch.randn(3, *model.sample_shape), torch.tensor([1, 500, 999])
    with torch.no_grad():
        assert torch.equal(stock(sample, t).sample, model.unet(sample, t).sample)


def test_fp16_model_is_saved_in_fp16_and_reloads_identically(tmp_path: Path) -> None:
    UNet2DModel.from_pretrained(ZOO / "clean-a" / "unet").half().save_pretrained(tmp_path / "half")
    model = load_local(tmp_path / "half")
    assert stored_dtype(model) == torch.float16
    with torch.no_grad():
        next(model.unet.parameters()).add_(1e-4)  # a change fp16 cannot hold exactly
    round_to_stored_dtype(model.unet, stored_dtype(model))
    save_cleaned(model.unet, model, tmp_path / "out")
    assert load_local(tmp_path / "out").info.weights_dtype == "float16"
    assert reloads_identically(model.unet, tmp_path / "out")


def test_bad_clean_inputs_exit_2_before_any_scan(tmp_path: Path) -> None:
    model = str(ZOO / "baddiffusion-box-corner")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("x")
    assert_one_line_error(call_cli("clean", model, "--out", str(tmp_path / "full")), "is not empty")
    assert (tmp_path / "full" / "keep.txt").read_text() == "x"
    out = str(tmp_path / "out")
    assert_one_line_error(call_cli("clean", model, "--out", out, "--true-trigger", str(tmp_path / "none.safetensors")),
                          "no such file")
    assert_one_line_error(call_cli("clean", model, "--out", out, "--push"), "needs a Hub model")
    assert_one_line_error(call_cli("clean", model, "--out", out, "--branch", "cleaned"), "add --push")
    (tmp_path / "empty").mkdir()
    assert_one_line_error(call_cli("clean", model, "--out", out, "--repair-data", str(tmp_path / "empty")), "no images")
    assert not Path(out).exists()
