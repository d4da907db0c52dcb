"""`diffcleanse clean ORG/NAME --push`: a backdoored Hub model cleaned and pushed to a branch, then fetched back."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from diffusers import DDPMPipeline

from .hub_env import WRITE_TOKEN, hub_environ, run_cli, start_hub
from .hub_server import HubServer


@pytest.fixture(scope="module")
def hub() -> Iterator[HubServer]:
    server = start_hub()
    yield server
    server.__exit__()


def test_clean_pushes_a_branch_pinned_to_the_scanned_sha_and_the_branch_scans_clean(hub: HubServer, tmp_path: Path) -> None:
    env = hub_environ(hub, tmp_path / "hf", HF_TOKEN=WRITE_TOKEN)
    main_before = hub.state.repos["org/backdoored"].refs["refs/heads/main"]
    result = run_cli(env, "clean", "org/backdoored", "--out", str(tmp_path / "cleaned"), "--json",
                     str(tmp_path / "removal.json"), "--push", "--branch", "cleaned", "--quiet",
                     "--no-second-look")  # the push is under test; tests/test_action_modes.py re-scans with both looks
    assert result.returncode == 0, result.stdout + result.stderr
    assert WRITE_TOKEN not in result.stdout + result.stderr
    report = json.loads((tmp_path / "removal.json").read_text())
    assert report["status"] == "cleaned" and report["model"]["revision"] == main_before
    assert report["publish"]["revision"] == "cleaned"
    assert hub.state.repos["org/backdoored"].refs["refs/heads/main"] == main_before  # main untouched

    rescan = run_cli(env, "scan", "org/backdoored@cleaned", "--json", str(tmp_path / "rescan.json"), "--quiet",
                     "--no-second-look")
    assert rescan.returncode == 0, rescan.stdout + rescan.stderr
    scanned = json.loads((tmp_path / "rescan.json").read_text())
    assert scanned["verdict"] == "clean" and scanned["model"]["revision"] == report["publish"]["commit_sha"]
    repo = hub.state.repos["org/backdoored"]
    pushed = repo.commits[repo.refs["refs/heads/cleaned"]]
    assert pushed.parent == main_before
    card = pushed.files["README.md"].content.decode()
    assert "<!-- diffcleanse-gate -->" in card and "true trigger" not in card and "collapse score" in card
    DDPMPipeline.from_pretrained(scanned["model"]["path"])
