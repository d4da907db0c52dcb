"""`diffcleanse sweep`: many repos, one broken or gone without stopping the rest, a state file that skips shas."""

from __future__ import annotations

import json
from pathlib import Path

from diffcleanse_gate.sweep import SweepEntry, SweepState, read_repo_list

from .hub_env import hub_environ, run_cli, start_hub
from .hub_server import HubServer
from .test_cli import call_cli


def test_state_file_matches_repo_and_sha_only(tmp_path: Path) -> None:
    state = SweepState(tmp_path / "state.json")
    state.record(SweepEntry("org/a", "1" * 40, "clean", 0.01, None, "2025-01-01T00:00:00+00:00"))
    reread = SweepState(tmp_path / "state.json")
    assert reread.lookup("org/a", "1" * 40)["verdict"] == "clean"
    assert reread.lookup("org/a", "2" * 40) is None and reread.lookup("org/b", "1" * 40) is None
    (tmp_path / "list.txt").write_text("# models\norg/a\n\norg/b@v1  # pinned\n")
    assert read_repo_list(tmp_path / "list.txt") == ["org/a", "org/b@v1"]


def test_sweep_reports_failures_goes_on_and_skips_unchanged_shas(tmp_path: Path) -> None:
    listing = tmp_path / "repos.txt"
    listing.write_text("org/backdoored\norg/not-diffusers\norg/missing\norg/gated\n")
    state, out = tmp_path / "state.json", tmp_path / "out"
    with start_hub() as server:
        env = hub_environ(server, tmp_path / "hf")
        sha = server.state.repos["org/backdoored"].refs["refs/heads/main"]
        first = run_cli(env, "sweep", "--list", str(listing), "--state", str(state), "--json", str(out / "1.json"),
                        "--markdown", str(out / "1.md"))
        scanned_files = sum(1 for method, path in server.state.requests if "/resolve/" in path)
        # second run: the repo found through list_models (search), at the same sha, is not scanned again
        second = run_cli(env, "sweep", "--search", "backdoored", "--state", str(state), "--json", str(out / "2.json"),
                         "--markdown", str(out / "2.md"))
        downloads_after = sum(1 for method, path in server.state.requests if "/resolve/" in path)
    assert first.returncode == 1, first.stderr
    report = json.loads((out / "1.json").read_text())
    entries = {entry["repo"]: entry for entry in report["repos"]}
    assert entries["org/backdoored"]["verdict"] == "backdoored" and entries["org/backdoored"]["sha"] == sha
    assert entries["org/backdoored"]["report"]["model"]["revision"] == sha
    assert "not a diffusers model" in entries["org/not-diffusers"]["error"]
    assert "no such repository" in entries["org/missing"]["error"]
    assert "gated" in entries["org/gated"]["error"]
    assert report["summary"] == {"repos": 4, "backdoored": 1, "clean": 0, "error": 3, "reused": 0}
    assert "| org/backdoored |" in (out / "1.md").read_text() and "**BACKDOORED**" in (out / "1.md").read_text()
    recorded = json.loads(state.read_text())["repos"]
    assert set(recorded) == {"org/backdoored"}  # failures are retried next time, not remembered
    assert recorded["org/backdoored"]["sha"] == sha and recorded["org/backdoored"]["verdict"] == "backdoored"
    assert scanned_files > 0
    assert second.returncode == 1, second.stderr
    again = json.loads((out / "2.json").read_text())
    assert [entry["repo"] for entry in again["repos"]] == ["org/backdoored"]
    assert again["repos"][0]["reused"] is True and again["repos"][0]["score"] == recorded["org/backdoored"]["score"]
    assert downloads_after == scanned_files  # nothing downloaded for an unchanged sha
    assert "unchanged" in (out / "2.md").read_text()


def test_sweep_without_repos_is_a_usage_error(hub: HubServer, tmp_path: Path) -> None:
    result = call_cli("sweep", "--author", "nobody", "--state", str(tmp_path / "s.json"))
    assert result.returncode == 2 and "nothing to sweep" in result.stderr and "Traceback" not in result.stderr
