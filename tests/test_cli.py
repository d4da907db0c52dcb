"""The `diffcleanse` command as a user runs it: exit codes, one-line errors, JSON and images."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
from diffusers import UNet2DModel

from diffcleanse_gate.cli import main

from .conftest import ZOO

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "diffcleanse_gate", *args], check=False, capture_output=True, text=True, env=ENV,
        timeout=600,
    )


def call_cli(*args: str) -> subprocess.CompletedProcess:
    """``main`` called in this process, its output captured: for errors raised before any scan, where a fresh
    interpreter would spend seconds importing torch and diffusers (the subprocess tests cover that path)."""
    stdout, stderr = io.StringIO(), io.StringIO()
    with redirect_stdout(stdout), redirect_stderr(stderr):
        try:
            code = main(list(args))
        except SystemExit as exit_:  # argparse's usage errors
            code = exit_.code
    return subprocess.CompletedProcess(args, code, stdout.getvalue(), stderr.getvalue())


def assert_one_line_error(result: subprocess.CompletedProcess, words: str) -> None:
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("diffcleanse: error:")]
    assert len(lines) == 1 and words in lines[0], result.stderr


def test_backdoored_model_exits_1_with_report_and_images(tmp_path: Path) -> None:
    result = run_cli("scan", str(ZOO / "baddiffusion-box-corner"), "--json", str(tmp_path / "r.json"),
                     "--report-dir", str(tmp_path / "report"), "--quiet")
    assert result.returncode == 1, result.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["verdict"] == "backdoored"
    assert report["score"] >= report["threshold"]
    for key in ("model", "sampler", "seed", "unet_evaluations", "timings", "artefacts", "gain_anomaly", "evidence"):
        assert key in report
    assert report["model"]["content_hash"].startswith("sha256:")
    assert report["unet_evaluations"] > 0
    for path in report["artefacts"].values():
        assert Path(path).is_file() and Path(path).stat().st_size > 0
    assert "BACKDOORED" in result.stdout


def test_clean_model_exits_0_and_one_look_is_asked_for(tmp_path: Path) -> None:
    result = run_cli("scan", str(ZOO / "clean-a"), "--json", str(tmp_path / "r.json"), "--quiet", "--no-second-look")
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["verdict"] == "clean"
    assert report["second_look"] is False and report["settings"]["second_look"] is False
    assert not [probe for probe in report["probes"] if probe["name"].endswith(("-held", "-carrying"))]


def test_missing_path_exits_2(tmp_path: Path) -> None:
    assert_one_line_error(run_cli("scan", str(tmp_path / "missing")), "no such file")


def test_not_a_diffusers_folder_exits_2(tmp_path: Path) -> None:
    (tmp_path / "weights.txt").write_text("x")
    assert_one_line_error(call_cli("scan", str(tmp_path)), "not a diffusers model")


def test_corrupted_safetensors_exits_2(tmp_path: Path) -> None:
    shutil.copytree(ZOO / "clean-a", tmp_path / "m")
    weights = tmp_path / "m" / "unet" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(b"\x00" * 64)
    assert_one_line_error(call_cli("scan", str(tmp_path / "m"), "--json", str(tmp_path / "r.json")), "safetensors")
    assert not (tmp_path / "r.json").exists()


def test_pickle_only_weights_exit_2(tmp_path: Path) -> None:
    UNet2DModel.from_pretrained(ZOO / "clean-a" / "unet").save_pretrained(tmp_path / "p", safe_serialization=False)
    assert_one_line_error(call_cli("scan", str(tmp_path / "p")), "pickle")


def test_bad_image_size_exits_2() -> None:
    assert_one_line_error(call_cli("scan", str(ZOO / "clean-a"), "--resolution", "7"), "not divisible")


@pytest.mark.parametrize("option", ["--threshold", "--gain-threshold"])
@pytest.mark.parametrize("value", ["2", "-3"])
def test_out_of_range_threshold_exits_2(option: str, value: str) -> None:
    assert_one_line_error(call_cli("scan", str(ZOO / "clean-a"), option, value), option)


def test_unknown_option_is_a_usage_error() -> None:
    result = call_cli("scan", str(ZOO / "clean-a"), "--sampler", "nonsense")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
