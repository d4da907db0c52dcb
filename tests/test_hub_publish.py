"""Publishing a cleaned model: one commit pinned to the scanned sha, as a pull request or a branch, never stale."""

from __future__ import annotations

import pytest
import torch
from diffusers import DDPMPipeline

from diffcleanse_gate.errors import (
    HubAccessError,
    HubError,
    StaleRevisionError,
    UsageError,
)
from diffcleanse_gate.hub.card import END, START, card_section, merge_card
from diffcleanse_gate.hub.download import download
from diffcleanse_gate.hub.publish import publish_cleaned
from diffcleanse_gate.hub.refs import HubRef
from diffcleanse_gate.loading import load_local
from diffcleanse_gate.scan import ScanConfig, scan

from .conftest import ZOO
from .hub_env import READ_TOKEN, WRITE_TOKEN
from .hub_server import HubServer

CLEANED = ZOO / "clean-a"  # stands in for a cleaned model: a clean diffusers folder
FIGURES = {"verdict": {"before": "backdoored", "after": "clean"}, "score_before": 0.93, "score_after": 0.04,
           "attack_mse": {"before": 0.002, "after": 0.21}, "fidelity": 0.987}


def _section(sha: str) -> str:
    return card_section(found="a BadDiffusion-style trigger (collapse score 0.93)",
                        removed="12 channels pruned, 200 repair steps", figures=FIGURES, scanned_sha=sha)


def _publish(repo: str, sha: str, **kwargs):
    kwargs.setdefault("token", WRITE_TOKEN)
    return publish_cleaned(CLEANED, repo, sha, card_section=_section(sha), commit_message="Remove backdoor",
                           **kwargs)


def test_card_section_renders_every_figure_and_merges_once() -> None:
    section = _section("a" * 40)
    for text in ("| verdict | backdoored | clean |", "| score | 0.93 | 0.04 |", "| attack mse | 0.002 | 0.21 |",
                 "| fidelity |  | 0.987 |", "diffcleanse-gate 0.1.0", "a" * 40, "12 channels pruned"):
        assert text in section
    card = merge_card("---\nlicense: mit\n---\n# Model\n", section)
    again = merge_card(card, section.replace("0.93", "0.95"))
    assert again.startswith("---\nlicense: mit\n---\n# Model\n")
    assert again.count(START) == 1 and again.count(END) == 1 and "0.95" in again and "| 0.93 |" not in again
    assert merge_card(None, section).startswith("---\nlibrary_name: diffusers")


def test_push_as_pull_request_downloads_loads_and_scans_clean(hub: HubServer) -> None:
    parent = hub.state.repos["org/backdoored"].refs["refs/heads/main"]
    result = _publish("org/backdoored", parent, mode="pr")
    assert result.revision == "refs/pr/1" and result.pr_url and result.pr_url.startswith(hub.endpoint)
    repo = hub.state.repos["org/backdoored"]
    assert repo.refs["refs/heads/main"] == parent  # main untouched
    pushed = repo.commits[result.commit_sha]
    assert pushed.parent == parent
    assert "README.md" in pushed.files and START in pushed.files["README.md"].content.decode()
    snapshot = download(HubRef("org/backdoored", result.revision))
    assert snapshot.sha == result.commit_sha
    loaded = load_local(snapshot.folder)
    pipeline = DDPMPipeline.from_pretrained(snapshot.folder)  # stock diffusers loads it too
    expected = load_local(CLEANED).unet.state_dict()
    for name, tensor in pipeline.unet.state_dict().items():
        assert torch.equal(tensor.float(), expected[name].float()), name
    outcome = scan(loaded, ScanConfig(second_look=False))  # the weights are equal already; the scan reads them
    assert outcome.verdict == "clean"


def test_push_to_a_branch_keeps_the_card_and_a_second_push_replaces_the_section(hub: HubServer) -> None:
    repo = hub.state.repos["org/clean-a"]
    parent = repo.refs["refs/heads/main"]
    result = _publish("org/clean-a", parent, mode="branch", branch="cleaned")
    assert result.revision == "cleaned" and repo.refs["refs/heads/cleaned"] == result.commit_sha
    assert repo.refs["refs/heads/main"] == parent
    card = repo.commits[result.commit_sha].files["README.md"].content.decode()
    assert card.startswith("---\nlicense: mit\n---\n# clean-a\n") and card.count(START) == 1
    snapshot = download(HubRef("org/clean-a", "cleaned"))
    assert snapshot.sha == result.commit_sha
    load_local(snapshot.folder)
    # cleaning the branch's new head again updates the section instead of adding a second one
    second = _publish("org/clean-a", result.commit_sha, mode="branch", branch="cleaned")
    assert repo.commits[second.commit_sha].parent == result.commit_sha
    assert repo.commits[second.commit_sha].files["README.md"].content.decode().count(START) == 1


def test_stale_parent_is_refused_and_nothing_changes(hub: HubServer) -> None:
    repo = hub.state.repos["org/clean-a"]
    scanned = repo.refs["refs/tags/v1"]  # main has moved on since
    before = dict(repo.refs)
    with pytest.raises(StaleRevisionError, match=r"org/clean-a: main has moved past the scanned commit"):
        _publish("org/clean-a", scanned, mode="main")
    with pytest.raises(StaleRevisionError, match="branch 'dev' exists at"):
        _publish("org/clean-a", repo.refs["refs/heads/main"], mode="branch", branch="dev")
    assert repo.refs == before


def test_main_only_when_asked_and_still_at_the_scanned_sha(hub: HubServer) -> None:
    repo = hub.state.repos["org/backdoored"]
    parent = repo.refs["refs/heads/main"]
    result = _publish("org/backdoored", parent, mode="main")
    assert repo.refs["refs/heads/main"] == result.commit_sha and repo.commits[result.commit_sha].parent == parent
    with pytest.raises(UsageError):
        _publish("org/backdoored", parent, mode="branch", branch="main")


def test_a_read_token_cannot_push_and_the_branch_is_not_left_behind(hub: HubServer) -> None:
    repo = hub.state.repos["org/backdoored"]
    before = dict(repo.refs)
    with pytest.raises(HubAccessError) as caught:
        _publish("org/backdoored", before["refs/heads/main"], mode="branch", branch="cleaned", token=READ_TOKEN)
    assert READ_TOKEN not in str(caught.value)
    assert repo.refs == before


def test_a_failed_commit_removes_the_branch_it_created(hub: HubServer) -> None:
    repo = hub.state.repos["org/backdoored"]
    before = dict(repo.refs)
    hub.state.refuse_commits = "storage backend unavailable"
    with pytest.raises(HubError, match="answered 500: storage backend unavailable"):
        _publish("org/backdoored", before["refs/heads/main"], mode="branch", branch="cleaned")
    assert ("POST", "/api/models/org/backdoored/branch/cleaned") in hub.state.requests
    assert repo.refs == before  # the branch made for the push is gone again
