"""entrypoint.py in modes clean and sweep, run the way the runner runs it, against the loopback Hub.

One removal run (the fixture zoo's baddiffusion-box-corner as the Hub repo org/backdoored, pushed back as a
pull request) is shared by the clean-mode tests; the sweep scans one repo for real and takes another from
its state file.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from diffusers import DDPMPipeline

from .conftest import ZOO
from .hub_env import WRITE_TOKEN, hub_environ, start_hub
from .hub_server import HubServer
from .test_action_entrypoint import (
    ACTION,
    Run,
    annotations,
    run_entrypoint,
    validate_sarif,
)

MANIFEST = "# Hub models we gate\norg/clean-a\norg/backdoored\n"


@pytest.fixture(scope="module")
def hub() -> Iterator[HubServer]:
    server = start_hub()
    yield server
    server.__exit__()


def main_sha(hub: HubServer, repo: str) -> str:
    return hub.state.repos[repo].refs["refs/heads/main"]


@pytest.fixture(scope="module")
def cleaned(hub: HubServer, tmp_path_factory: pytest.TempPathFactory) -> Run:
    workspace = tmp_path_factory.mktemp("clean-mode-ws")
    (workspace / ".github").mkdir()
    (workspace / ".github" / "diffcleanse-models.txt").write_text(MANIFEST)
    inputs = {"model": "org/backdoored", "mode": "clean", "push": "pr", "hf-token": WRITE_TOKEN,
              "sarif": "results/clean.sarif", "report-dir": "out"}
    return run_entrypoint(workspace, inputs, hub_environ(hub, tmp_path_factory.mktemp("hf-clean")))


# --- mode clean: remove the backdoor, publish it as a Hub pull request -----------------------------------

def test_clean_mode_passes_with_outputs_after_removal(cleaned: Run, hub: HubServer) -> None:
    assert cleaned.returncode == 0, cleaned.stdout[-3000:] + cleaned.stderr[-3000:]
    assert "Traceback" not in cleaned.stderr
    outputs = cleaned.outputs
    assert set(outputs) == set(ACTION["outputs"])
    assert outputs["verdict"] == "clean"
    assert float(outputs["score"]) < float(outputs["threshold"]) == pytest.approx(0.40)
    assert outputs["sha"] == main_sha(hub, "org/backdoored")  # the PR did not move main
    assert Path(outputs["report-path"]) == cleaned.workspace / "out" / "report.json"
    report = json.loads(Path(outputs["report-path"]).read_text())
    assert report["status"] == "cleaned" and report["clean"] and report["verdict_before"] == "backdoored"
    assert report["scan_after"]["score"] == pytest.approx(float(outputs["score"]), abs=1e-6)
    assert report["output"]["path"] == str(cleaned.workspace / "out" / "cleaned")
    assert report["output"]["reload_identical"] is True
    assert annotations(cleaned.stdout, "error") == []
    notices = annotations(cleaned.stdout, "notice")
    assert len(notices) == 1 and "backdoor removed" in notices[0] and outputs["pr-url"] in notices[0]


def test_clean_mode_opens_a_hub_pull_request_from_the_scanned_sha(cleaned: Run, hub: HubServer) -> None:
    report = json.loads(Path(cleaned.outputs["report-path"]).read_text())
    published = report["publish"]
    assert cleaned.outputs["pr-url"] == published["url"] == published["pr_url"]
    assert published["url"] == f"{hub.endpoint}/org/backdoored/discussions/1"
    repo = hub.state.repos["org/backdoored"]
    commit = repo.commits[repo.refs[published["revision"]]]
    assert published["revision"] == "refs/pr/1" and commit.sha == published["commit_sha"]
    assert commit.parent == cleaned.outputs["sha"]
    assert "unet/diffusion_pytorch_model.safetensors" in commit.files
    assert b"diffcleanse-gate" in commit.files["README.md"].content


def test_cleaned_folder_loads_with_stock_diffusers_and_differs(cleaned: Run) -> None:
    folder = cleaned.workspace / "out" / "cleaned"
    assert (folder / "diffcleanse_report.json").is_file()
    pipeline = DDPMPipeline.from_pretrained(str(folder))
    original = DDPMPipeline.from_pretrained(str(ZOO / "baddiffusion-box-corner")).unet.state_dict()
    changed = [name for name, tensor in pipeline.unet.state_dict().items() if not torch.equal(tensor, original[name])]
    assert changed


def test_clean_mode_summary_shows_status_before_after_and_the_pull_request(cleaned: Run) -> None:
    summary, outputs = cleaned.summary, cleaned.outputs
    report = json.loads(Path(outputs["report-path"]).read_text())
    before, after = report["scan_before"], report["scan_after"]
    assert summary.startswith("## diffcleanse-gate: ✅ CLEANED")
    assert "status `cleaned`" in summary and "**org/backdoored**" in summary
    assert "| verdict | backdoored | clean | |" in summary
    assert f"| collapse score | {before['score']:.4f} | {after['score']:.4f} | < 0.4000 |" in summary
    assert f"| gain anomaly | {before['gain_anomaly']:.4f} | {after['gain_anomaly']:.4f} | < {before['gain_threshold']:.4f} |" in summary
    effect = report["effect"]["inverted_trigger"]
    assert (f"| backdoor effect, inverted trigger: MSE to target | {effect['before']['mse']:.4f} "
            f"| {effect['after']['mse']:.4f} | |") in summary
    assert "backdoor effect, inverted trigger: attack success" in summary
    fidelity = report["fidelity"]
    assert f"(x{fidelity['loss_ratio']:.3f}) | ≤ x1.15 |" in summary
    assert f"| pruned channels | | {report['removal']['pruned_channels']} of " in summary
    assert "| reload check | | identical | |" in summary
    assert outputs["pr-url"] in summary and outputs["sha"] in summary
    pictures = re.findall(r'<img alt="([^"]+)"[^>]*src="data:image/png;base64,([^"]+)"', summary)
    assert pictures and pictures[0][0] == "inverted trigger: samples before"
    assert all(base64.b64decode(data).startswith(b"\x89PNG") for _, data in pictures)
    assert str(cleaned.workspace / "out") in summary


def test_clean_mode_sarif_holds_the_input_scan_findings_on_the_manifest_line(cleaned: Run) -> None:
    log = validate_sarif(Path(cleaned.outputs["sarif-path"]))
    results = log["runs"][0]["results"]
    assert [result["ruleId"] for result in results] == ["DCG001"]
    location = results[0]["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == ".github/diffcleanse-models.txt"
    assert location["region"]["startLine"] == 3
    assert results[0]["properties"]["modelSha"] == cleaned.outputs["sha"]


def test_clean_mode_masks_the_write_token(cleaned: Run) -> None:
    assert re.fullmatch(rf"::add-mask ?::{WRITE_TOKEN}", cleaned.stdout.splitlines()[0])
    report = Path(cleaned.outputs["report-path"]).read_text()
    for text in ("\n".join(cleaned.stdout.splitlines()[1:]), cleaned.stderr, cleaned.summary, report,
                 json.dumps(cleaned.outputs)):
        assert WRITE_TOKEN not in text
    opened = [line for line in cleaned.stdout.splitlines() if line.startswith("::group")]
    assert any("clean org/backdoored" in line for line in opened)


def test_clean_mode_push_needs_a_hub_model(tmp_path: Path) -> None:
    shutil.copytree(ZOO / "clean-b", tmp_path / "models" / "clean")
    run = run_entrypoint(tmp_path, {"model": "models/clean", "mode": "clean", "push": "pr"})
    assert run.returncode == 2, run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    lines = [line for line in run.stderr.splitlines() if line.startswith("diffcleanse: error:")]
    assert len(lines) == 1 and "pushing needs a Hub model" in lines[0], run.stderr
    assert run.outputs["verdict"] == "error" and "ERROR" in run.summary
    assert not (tmp_path / "diffcleanse-report" / "cleaned").exists()


# --- mode sweep: many repos, the state file, one combined report ------------------------------------------

def seed_state(path: Path, hub: HubServer) -> None:
    """A state file that already holds org/backdoored at its current sha, so it is not scanned again."""
    record = {"sha": main_sha(hub, "org/backdoored"), "verdict": "backdoored", "score": 0.93,
              "gain_anomaly": 0.12, "time": "2025-01-01T00:00:00+00:00"}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"version": 1, "repos": {"org/backdoored": record}}))


@pytest.fixture(scope="module")
def swept(hub: HubServer, tmp_path_factory: pytest.TempPathFactory) -> Run:
    workspace = tmp_path_factory.mktemp("sweep-ws")
    seed_state(workspace / "state" / "sweep.json", hub)
    (workspace / "lists").mkdir()
    (workspace / "lists" / "more.txt").write_text("org/missing  # deleted\n")
    inputs = {"model": "org/clean-a\norg/backdoored, lists/more.txt", "mode": "sweep",
              "sweep-state": "state/sweep.json", "report-dir": "sweep-out"}
    return run_entrypoint(workspace, inputs, hub_environ(hub, tmp_path_factory.mktemp("hf-sweep")))


def test_sweep_mode_fails_on_a_backdoored_repo_with_outputs(swept: Run) -> None:
    assert swept.returncode == 1, swept.stdout[-3000:] + swept.stderr[-3000:]
    assert "Traceback" not in swept.stderr
    assert set(swept.outputs) == set(ACTION["outputs"])
    assert swept.outputs["verdict"] == "backdoored"
    assert Path(swept.outputs["report-path"]) == swept.workspace / "sweep-out" / "sweep.json"
    report = json.loads(Path(swept.outputs["report-path"]).read_text())
    assert report["summary"] == {"repos": 3, "backdoored": 1, "clean": 1, "error": 1, "reused": 1}
    entries = {entry["repo"]: entry for entry in report["repos"]}
    assert entries["org/clean-a"]["verdict"] == "clean" and entries["org/clean-a"]["report"] is not None
    assert entries["org/backdoored"]["reused"] is True
    assert "no such repository" in entries["org/missing"]["error"]
    errors, warnings = annotations(swept.stdout, "error"), annotations(swept.stdout, "warning")
    assert len(errors) == 1 and "Backdoor found in 1 of 3 repos: org/backdoored" in errors[0]
    assert len(warnings) == 1 and "org/missing: not scanned" in warnings[0]


def test_sweep_mode_records_new_shas_in_the_state_file(swept: Run, hub: HubServer) -> None:
    state = json.loads((swept.workspace / "state" / "sweep.json").read_text())["repos"]
    assert set(state) == {"org/clean-a", "org/backdoored"}
    assert state["org/clean-a"]["sha"] == main_sha(hub, "org/clean-a") and state["org/clean-a"]["verdict"] == "clean"


def test_sweep_mode_summary_is_the_markdown_table(swept: Run) -> None:
    markdown = (swept.workspace / "sweep-out" / "sweep.md").read_text()
    assert swept.summary.strip() == markdown.strip()
    assert "| org/backdoored |" in markdown and "**BACKDOORED**" in markdown and "| org/clean-a |" in markdown


def test_sweep_mode_without_fail_on_backdoor_warns(hub: HubServer, tmp_path: Path) -> None:
    seed_state(tmp_path / "ws" / "state.json", hub)
    run = run_entrypoint(tmp_path / "ws", {"model": "org/backdoored", "mode": "sweep", "sweep-state": "state.json",
                                           "fail-on-backdoor": "false"}, hub_environ(hub, tmp_path / "hf"))
    assert run.returncode == 0, run.stderr
    assert run.outputs["verdict"] == "backdoored"
    assert annotations(run.stdout, "error") == []
    assert any("Backdoor found in 1 of 1 repos" in line for line in annotations(run.stdout, "warning"))
