"""`diffcleanse clean`: the backdoor pruned out of one model per family, reported and saved as a pipeline."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from diffusers import DDPMPipeline, UNet2DModel

from .conftest import ZOO
from .test_cli import run_cli

ONE_PER_FAMILY = ["baddiffusion-box-corner", "trojdiff-bar-frame", "villandiffusion-stop-corner"]


@pytest.fixture(scope="module", params=ONE_PER_FAMILY)
def cleaned(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, subprocess.CompletedProcess, dict, Path]:
    name = request.param
    work = tmp_path_factory.mktemp(name)
    # The first look flags each of these; the re-scan after removal takes one look here (the removal is
    # under test), both looks in tests/test_action_modes.py.
    result = run_cli("clean", str(ZOO / name), "--out", str(work / "cleaned"), "--json", str(work / "report.json"),
                     "--report-dir", str(work / "images"), "--true-trigger", str(ZOO / name / "backdoor.safetensors"),
                     "--quiet", "--no-second-look")
    report = json.loads((work / "report.json").read_text()) if (work / "report.json").is_file() else {}
    return name, result, report, work / "cleaned"


def test_backdoor_is_removed_and_rescan_is_clean(cleaned: tuple[str, subprocess.CompletedProcess, dict, Path]) -> None:
    name, result, report, _ = cleaned
    assert result.returncode == 0, result.stdout + result.stderr
    assert report["status"] == "cleaned" and report["clean"] and report["changed"]
    assert report["verdict_before"] == "backdoored" and report["verdict_after"] == "clean"
    after = report["scan_after"]
    assert after["score"] < after["threshold"] and after["gain_anomaly"] < after["gain_threshold"]
    true = report["effect"]["true_trigger"]
    assert true["after"]["mse"] >= 10 * true["before"]["mse"], (name, true)
    assert true["after"]["mse"] > 0.01
    assert true["after"]["success_rate"] <= 0.10, (name, true)
    # What hits remain, the same noises also reach without the trigger (a memorised target), but for one at most.
    assert true["after"]["success_rate"] - true["without_trigger"]["after"]["success_rate"] <= 1 / 64, (name, true)
    assert report["fidelity"]["within_bound"], report["fidelity"]
    assert 0 < report["removal"]["pruned_channels"] < report["removal"]["total_channels"]


def test_cleaned_folder_is_a_stock_diffusers_pipeline(cleaned: tuple[str, subprocess.CompletedProcess, dict, Path]) -> None:
    name, _, report, folder = cleaned
    assert report["output"]["reload_identical"] is True
    assert (folder / "model_index.json").is_file() and (folder / "scheduler" / "scheduler_config.json").is_file()
    assert not [p for p in folder.rglob("*") if p.suffix in (".bin", ".pt", ".pth", ".ckpt", ".pkl")]
    assert json.loads((folder / "diffcleanse_report.json").read_text())["status"] == "cleaned"
    pipeline = DDPMPipeline.from_pretrained(folder)
    original = UNet2DModel.from_pretrained(ZOO / name / "unet")
    assert pipeline.unet.config.block_out_channels == original.config.block_out_channels
    images = report["artefacts"]
    for key in ("true_trigger_before_png", "true_trigger_after_png", "plain_before_png", "plain_after_png"):
        assert Path(images[key]).stat().st_size > 0
