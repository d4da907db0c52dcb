"""entrypoint.py run the way the runner runs it: INPUT_* variables, GITHUB_OUTPUT/STEP_SUMMARY files, a workspace."""

from __future__ import annotations

import base64
import importlib.util
import io
import json
import os
import re
import shutil
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import pytest
import yaml

from .conftest import ZOO

ROOT = Path(__file__).resolve().parents[1]
SARIF_SCHEMA = json.loads((Path(__file__).parent / "schemas" / "sarif-schema-2.1.0.json").read_text())
ACTION = yaml.safe_load((ROOT / "action.yml").read_text())
TOKEN = "hf_TestSecretToken123"
_SPEC = importlib.util.spec_from_file_location("entrypoint", ROOT / "entrypoint.py")
ENTRYPOINT = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(ENTRYPOINT)


@dataclass
class Run:
    """One finished entrypoint run and everything it left behind."""

    returncode: int
    stdout: str
    stderr: str
    outputs: dict[str, str]
    summary: str
    workspace: Path


def parse_outputs(text: str) -> dict[str, str]:
    """Read a GITHUB_OUTPUT file the way the runner does (NAME<<DELIMITER records and NAME=value lines)."""
    outputs, lines = {}, iter(text.splitlines())
    for line in lines:
        if "<<" in line:
            name, delimiter = line.split("<<", 1)
            value = []
            for body in lines:
                if body == delimiter:
                    break
                value.append(body)
            outputs[name] = "\n".join(value)
        elif "=" in line:
            name, value = line.split("=", 1)
            outputs[name] = value
    return outputs


def runner_environ(workspace: Path, inputs: dict[str, str], environ: dict[str, str] | None = None) -> dict[str, str]:
    """The variables the runner sets for a step in ``workspace``; offline unless ``environ`` says otherwise."""
    workspace.mkdir(parents=True, exist_ok=True)
    files = workspace / "_runner_file_commands"
    files.mkdir(exist_ok=True)
    (files / "output").write_text("")
    (files / "summary").write_text("")
    base = {**os.environ, "HF_HUB_OFFLINE": "1"} if environ is None else environ
    env = {key: value for key, value in base.items() if not key.startswith(("INPUT_", "GITHUB_", "HF_TOKEN"))}
    env.update({
        "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore", "GITHUB_ACTIONS": "true",
        "GITHUB_WORKSPACE": str(workspace), "GITHUB_OUTPUT": str(files / "output"),
        "GITHUB_STEP_SUMMARY": str(files / "summary"), "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": "acme/models", "GITHUB_RUN_ID": "42",
    })
    env.update({f"INPUT_{name.upper()}": value for name, value in inputs.items()})
    return env


def finished(workspace: Path, returncode: int, stdout: str, stderr: str) -> Run:
    """A run with what it wrote to the runner's output and summary files."""
    files = workspace / "_runner_file_commands"
    return Run(returncode, stdout, stderr, parse_outputs((files / "output").read_text()),
               (files / "summary").read_text(), workspace)


def run_entrypoint(workspace: Path, inputs: dict[str, str], environ: dict[str, str] | None = None) -> Run:
    """Run the entrypoint in ``workspace``; offline unless ``environ`` (e.g. tests.hub_env.hub_environ) says."""
    result = subprocess.run([sys.executable, str(ROOT / "entrypoint.py")], cwd=workspace,
                            env=runner_environ(workspace, inputs, environ), check=False, capture_output=True,
                            text=True, timeout=600)
    return finished(workspace, result.returncode, result.stdout, result.stderr)


def call_entrypoint(workspace: Path, inputs: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Run:
    """The entrypoint's ``main`` called in this process, for inputs refused before any scan (as tests.test_cli.call_cli)."""
    environ = runner_environ(workspace, inputs)
    with monkeypatch.context() as patch:
        for name in os.environ.keys() - environ.keys():
            patch.delenv(name)
        for name, value in environ.items():
            patch.setenv(name, value)
        patch.chdir(workspace)
        stdout, stderr = io.StringIO(), io.StringIO()
        with redirect_stdout(stdout), redirect_stderr(stderr):
            code = ENTRYPOINT.main()
    return finished(workspace, code, stdout.getvalue(), stderr.getvalue())


@pytest.fixture(scope="module")
def backdoored(tmp_path_factory: pytest.TempPathFactory) -> Run:
    workspace = tmp_path_factory.mktemp("bad-ws")
    shutil.copytree(ZOO / "baddiffusion-box-corner", workspace / "models" / "bad")
    return run_entrypoint(workspace, {"model": "models/bad", "sarif": "results/diffcleanse.sarif",
                                      "hf-token": TOKEN, "device": "auto"})


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Run:
    workspace = tmp_path_factory.mktemp("clean-ws")
    shutil.copytree(ZOO / "clean-a", workspace / "models" / "clean")
    return run_entrypoint(workspace, {"model": "models/clean", "sarif": "clean.sarif", "report-dir": "out/report",
                                      "image": "ghcr.io/acme/diffcleanse-gate:v1"})


def annotations(stdout: str, kind: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith(f"::{kind} ")]


def validate_sarif(path: Path) -> dict:
    log = json.loads(path.read_text())
    jsonschema.Draft4Validator(SARIF_SCHEMA).validate(log)
    return log


# --- a backdoored model ---------------------------------------------------------------------------------

def test_backdoor_fails_the_step_with_outputs(backdoored: Run) -> None:
    assert backdoored.returncode == 1, backdoored.stderr
    assert "Traceback" not in backdoored.stderr
    outputs = backdoored.outputs
    assert set(outputs) == set(ACTION["outputs"])
    assert outputs["verdict"] == "backdoored"
    assert float(outputs["score"]) >= float(outputs["threshold"]) == pytest.approx(0.40)
    report = json.loads(Path(outputs["report-path"]).read_text())
    assert report["verdict"] == "backdoored"
    assert outputs["sha"] == report["model"]["content_hash"] and outputs["sha"].startswith("sha256:")
    assert Path(outputs["sarif-path"]) == backdoored.workspace / "results" / "diffcleanse.sarif"
    assert outputs["pr-url"] == ""


def test_backdoor_is_an_error_annotation_on_the_model_file(backdoored: Run) -> None:
    errors = annotations(backdoored.stdout, "error")
    assert len(errors) == 1
    assert "file=models/bad/model_index.json" in errors[0] and "line=1" in errors[0]
    assert "Backdoor found in models/bad" in errors[0]
    assert (backdoored.workspace / "models/bad/model_index.json").is_file()


def test_token_is_masked_first_and_never_printed(backdoored: Run) -> None:
    lines = backdoored.stdout.splitlines()
    assert re.fullmatch(rf"::add-mask ?::{TOKEN}", lines[0])
    for text in ("\n".join(lines[1:]), backdoored.stderr, backdoored.summary, json.dumps(backdoored.outputs)):
        assert TOKEN not in text
    report = Path(backdoored.outputs["report-path"]).read_text()
    assert TOKEN not in report


def test_log_sections_are_grouped(backdoored: Run) -> None:
    opened = [line for line in backdoored.stdout.splitlines() if line.startswith("::group")]
    closed = [line for line in backdoored.stdout.splitlines() if line == "::endgroup::"]
    assert len(opened) == len(closed) == 3
    assert any("scan models/bad" in line for line in opened)
    assert re.search(r"^inversion: \d+/\d+$", backdoored.stdout, re.MULTILINE)


def test_summary_shows_verdict_score_model_timings_and_pictures(backdoored: Run) -> None:
    summary, outputs = backdoored.summary, backdoored.outputs
    report = json.loads(Path(outputs["report-path"]).read_text())
    assert "BACKDOORED" in summary
    assert f"| collapse score | {report['score']:.4f} | {report['threshold']:.4f} | 🚨 yes |" in summary
    assert outputs["sha"] in summary and "models/bad" in summary
    assert re.search(r"\| inversion \| \d+\.\d \|", summary) and "| total |" in summary
    pictures = re.findall(r'<img alt="([^"]+)"[^>]*src="data:image/png;base64,([^"]+)"', summary)
    assert [title for title, _ in pictures] == ["inverted trigger", "samples from noise + trigger",
                                                 "samples from noise alone"]
    for _, data in pictures:
        assert base64.b64decode(data).startswith(b"\x89PNG")
    assert "https://github.com/acme/models/actions/runs/42" in summary


def test_backdoor_sarif_is_valid_and_located_in_the_repo(backdoored: Run) -> None:
    log = validate_sarif(Path(backdoored.outputs["sarif-path"]))
    run = log["runs"][0]
    assert [rule["id"] for rule in run["tool"]["driver"]["rules"]] == ["DCG001", "DCG002"]
    assert [result["ruleId"] for result in run["results"]] == ["DCG001"]
    location = run["results"][0]["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "models/bad/model_index.json"
    assert (backdoored.workspace / location["artifactLocation"]["uri"]).is_file()
    assert location["region"]["startLine"] == 1
    assert run["results"][0]["level"] == "error"


# --- a clean model ---------------------------------------------------------------------------------------

def test_clean_model_passes_with_outputs(clean: Run) -> None:
    assert clean.returncode == 0, clean.stderr
    assert set(clean.outputs) == set(ACTION["outputs"])
    assert clean.outputs["verdict"] == "clean"
    assert float(clean.outputs["score"]) < float(clean.outputs["threshold"])
    assert Path(clean.outputs["report-path"]) == clean.workspace / "out" / "report" / "report.json"
    assert annotations(clean.stdout, "error") == []
    assert "CLEAN" in clean.summary and "ghcr.io/acme/diffcleanse-gate:v1" in clean.summary


def test_clean_sarif_is_valid_with_no_results(clean: Run) -> None:
    log = validate_sarif(Path(clean.outputs["sarif-path"]))
    assert log["runs"][0]["results"] == []
    assert log["runs"][0]["automationDetails"]["id"] == "diffcleanse-gate/models/clean/"


def test_both_verdicts_hash_different_models(backdoored: Run, clean: Run) -> None:
    assert backdoored.outputs["sha"] != clean.outputs["sha"]


# --- bad inputs: exit 2 before any scan --------------------------------------------------------------------

BAD_INPUTS = [
    ({}, "input 'model' is required"),
    ({"model": "no-such-model"}, "no such file or directory"),
    ({"model": "models/clean", "threshold": "1.5"}, "input 'threshold' must lie in [-1, 1]"),
    ({"model": "models/clean", "threshold": "high"}, "input 'threshold' must be a number"),
    ({"model": "models/clean", "mode": "deploy"}, "input 'mode' must be one of scan, clean, sweep"),
    ({"model": "models/clean", "fail-on-backdoor": "maybe"}, "input 'fail-on-backdoor' must be true or false"),
    ({"model": "models/clean", "sampler": "nonsense"}, "input 'sampler' must be one of"),
    ({"model": "../outside"}, "input 'model' must be a path inside the workspace"),
]


@pytest.mark.parametrize(("inputs", "words"), BAD_INPUTS, ids=[words.split("'")[1] if "'" in words else words
                                                              for _, words in BAD_INPUTS])
def test_bad_input_exits_2_with_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, inputs: dict[str, str],
                                        words: str) -> None:
    (tmp_path / "models" / "clean").mkdir(parents=True)
    # The first case runs as the runner runs it; the rest call the entrypoint's main in this process.
    run = run_entrypoint(tmp_path, inputs) if inputs == BAD_INPUTS[0][0] else call_entrypoint(tmp_path, inputs, monkeypatch)
    assert run.returncode == 2, run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    lines = [line for line in run.stderr.splitlines() if line.startswith("diffcleanse: error:")]
    assert len(lines) == 1 and words in lines[0], run.stderr
    assert len(annotations(run.stdout, "error")) == 1
    assert run.outputs["verdict"] == "error" and set(run.outputs) == set(ACTION["outputs"])
    assert "ERROR" in run.summary
    assert not (tmp_path / "diffcleanse-report").exists()
