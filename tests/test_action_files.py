"""The Action's files checked offline: action.yml and the example workflows against GitHub's schemas, the
Dockerfile with hadolint, the composite step's launcher with a stand-in docker, and the input/output lists."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from diffcleanse_gate.action import inputs as action_inputs

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ACTION = yaml.safe_load((ROOT / "action.yml").read_text())
WORKFLOWS = sorted((ROOT / "examples" / "workflows").glob("*.yml"))
LAUNCHER = ROOT / "docker" / "run-image.sh"


def check_jsonschema(schema: str, *files: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, *map(str, files)],
                          check=False, capture_output=True, text=True, timeout=120)


def test_action_yml_matches_the_github_actions_schema() -> None:
    result = check_jsonschema("vendor.github-actions", ROOT / "action.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_schema_check_rejects_a_broken_action(tmp_path: Path) -> None:
    broken = dict(ACTION, runs={"using": "composite"})  # a composite action without steps
    (tmp_path / "action.yml").write_text(yaml.safe_dump(broken))
    assert check_jsonschema("vendor.github-actions", tmp_path / "action.yml").returncode != 0


def test_example_workflows_match_the_github_workflows_schema() -> None:
    assert [path.name for path in WORKFLOWS] == ["gate-model-pr.yml", "nightly-sweep.yml", "publish-cleaned.yml"]
    result = check_jsonschema("vendor.github-workflows", *WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_example_workflows_use_the_action() -> None:
    for path in WORKFLOWS:
        steps = [step for job in yaml.safe_load(path.read_text())["jobs"].values() for step in job["steps"]]
        gates = [step for step in steps if step.get("uses", "").startswith("OWNER/diffcleanse-gate@")]
        assert len(gates) == 1, path.name
        assert set(gates[0]["with"]) <= set(ACTION["inputs"]), path.name
    sweep = yaml.safe_load((ROOT / "examples/workflows/nightly-sweep.yml").read_text())["jobs"]["scan"]
    assert "fromJSON" in str(sweep["strategy"]["matrix"]["repo"])


def test_dockerfile_passes_hadolint() -> None:
    result = subprocess.run([str(BIN / "hadolint"), "--failure-threshold", "info", str(ROOT / "Dockerfile")],
                            check=False, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_catches_a_bad_dockerfile(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM python:latest\nRUN pip install torch\n")
    result = subprocess.run([str(BIN / "hadolint"), str(tmp_path / "Dockerfile")], check=False, capture_output=True,
                            text=True)
    assert result.returncode != 0 and "DL3007" in result.stdout


def test_dockerfile_is_multi_stage_non_root_with_pinned_cuda_torch() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert text.count("\nFROM ") + text.startswith("FROM ") == 2
    final = text.rsplit("\nFROM ", 1)[1]
    assert "USER 1000:1000" in final and 'ENTRYPOINT ["/opt/venv/bin/python", "/app/entrypoint.py"]' in final
    assert "pip uninstall --yes pip setuptools wheel" in final
    assert '"torch==2.11.0+cu128"' in text and "download.pytorch.org/whl/cu128" in text
    constraints = (ROOT / "docker" / "constraints.txt").read_text().splitlines()
    pins = [line for line in constraints if line and not line.startswith("#")]
    assert pins and all("==" in line for line in pins)


# --- inputs and outputs: action.yml, the step that forwards them, the launcher and the entrypoint agree -----

def test_every_action_input_is_declared_for_the_entrypoint() -> None:
    assert set(ACTION["inputs"]) == set(action_inputs.INPUT_NAMES)


def test_every_action_input_is_forwarded_by_the_composite_step() -> None:
    (step,) = ACTION["runs"]["steps"]
    assert ACTION["runs"]["using"] == "composite" and step["id"] == "gate"
    assert step["env"] == {f"INPUT_{name.upper()}": f"${{{{ inputs.{name} }}}}" for name in ACTION["inputs"]}


def test_every_action_output_comes_from_the_step() -> None:
    assert list(ACTION["outputs"]) == ["verdict", "score", "threshold", "sha", "report-path", "sarif-path", "pr-url"]
    for name, output in ACTION["outputs"].items():
        assert output["value"] == f"${{{{ steps.gate.outputs.{name} }}}}"


class RecordingEnviron(dict):
    """os.environ that remembers which names were looked up."""

    def __init__(self, values: dict[str, str]) -> None:
        super().__init__(values)
        self.read: set[str] = set()

    def get(self, key, default=None):  # type: ignore[no-untyped-def]
        self.read.add(key)
        return super().get(key, default)

    def __getitem__(self, key):  # type: ignore[no-untyped-def]
        self.read.add(key)
        return super().__getitem__(key)


def test_entrypoint_reads_every_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "model").mkdir()
    environ = RecordingEnviron({"GITHUB_WORKSPACE": str(tmp_path), "INPUT_MODEL": "model"})
    monkeypatch.setattr(os, "environ", environ)
    read = action_inputs.read_inputs()
    assert read.local_model == tmp_path / "model" and read.mode == "scan" and read.fail_on_backdoor
    assert {f"INPUT_{name.upper()}" for name in ACTION["inputs"]} <= environ.read


# --- the launcher: GPU when the runner has one, every input forwarded, nothing secret on the command line --

def fake_tools(folder: Path, gpu: bool) -> Path:
    folder.mkdir()
    (folder / "docker").write_text('#!/usr/bin/env bash\nprintf "%s\\n" "$@" > "$FAKE_LOG.$1"\n')
    if gpu:
        (folder / "nvidia-smi").write_text('#!/bin/sh\necho "GPU 0: NVIDIA H100"\n')
    for tool in folder.iterdir():
        tool.chmod(0o755)
    return folder


def launch(tmp_path: Path, gpu: bool, inputs: dict[str, str]) -> tuple[subprocess.CompletedProcess, Path]:
    tools = fake_tools(tmp_path / "bin", gpu)
    workspace, commands = tmp_path / "workspace", tmp_path / "runner" / "file_commands"
    workspace.mkdir()
    commands.mkdir(parents=True)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("INPUT_", "GITHUB_", "DIFFCLEANSE"))}
    # a PATH without any real nvidia-smi or docker: the stand-ins and the basic tools only
    env.update(PATH=f"{tools}:/usr/bin:/bin", FAKE_LOG=str(tmp_path / "docker"), GITHUB_WORKSPACE=str(workspace),
               GITHUB_OUTPUT=str(commands / "output"), GITHUB_STEP_SUMMARY=str(commands / "summary"))
    env.update({f"INPUT_{name.upper()}": value for name, value in inputs.items()})
    result = subprocess.run(["bash", str(LAUNCHER)], env=env, check=False, capture_output=True, text=True, timeout=60)
    return result, tmp_path / "docker"


def test_launcher_uses_the_gpu_when_the_runner_has_one(tmp_path: Path) -> None:
    result, log = launch(tmp_path, gpu=True, inputs={"model": "m", "hf-token": "hf_secret", "image": "img:v1"})
    assert result.returncode == 0, result.stderr
    args = Path(f"{log}.run").read_text().splitlines()
    assert args[args.index("--gpus") + 1] == "all"
    assert args[-1] == "img:v1"
    assert not Path(f"{log}.build").exists()
    workspace = tmp_path / "workspace"
    assert f"{workspace}:{workspace}" in args and args[args.index("--workdir") + 1] == str(workspace)
    commands = tmp_path / "runner" / "file_commands"
    assert f"{commands}:{commands}" in args
    forwarded = {args[i + 1] for i, arg in enumerate(args) if arg == "--env"}
    assert {f"INPUT_{name.upper()}" for name in ACTION["inputs"]} <= forwarded
    assert {"GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY", "GITHUB_WORKSPACE"} <= forwarded
    assert not any("hf_secret" in arg for arg in args)
    assert result.stdout.splitlines()[0] == "::add-mask::hf_secret"


def test_launcher_runs_on_the_cpu_without_a_gpu_and_builds_the_image(tmp_path: Path) -> None:
    result, log = launch(tmp_path, gpu=False, inputs={"model": "m"})
    assert result.returncode == 0, result.stderr
    args = Path(f"{log}.run").read_text().splitlines()
    assert "--gpus" not in args
    build = Path(f"{log}.build").read_text().splitlines()
    assert build[-1] == str(ROOT) and args[-1] == build[build.index("--tag") + 1]


def test_launcher_keeps_device_cpu_off_the_gpu(tmp_path: Path) -> None:
    result, log = launch(tmp_path, gpu=True, inputs={"model": "m", "device": "cpu", "image": "img:v1"})
    assert result.returncode == 0, result.stderr
    assert "--gpus" not in Path(f"{log}.run").read_text().splitlines()


def test_launcher_inside_the_image_runs_the_entrypoint_directly(tmp_path: Path) -> None:
    """The job-container recipe: the step runs in the image, so no docker; a bad input still exits 2."""
    tools = fake_tools(tmp_path / "bin", gpu=False)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("INPUT_", "GITHUB_"))}
    env.update(PATH=f"{BIN}:{tools}:/usr/bin:/bin", FAKE_LOG=str(tmp_path / "docker"),
               DIFFCLEANSE_ENTRYPOINT=str(ROOT / "entrypoint.py"), GITHUB_WORKSPACE=str(tmp_path),
               INPUT_MODEL="missing-model", OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    result = subprocess.run(["bash", str(LAUNCHER)], env=env, check=False, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "no such file or directory" in result.stderr
    assert not list(tmp_path.glob("docker.*"))
