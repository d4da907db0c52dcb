"""Hub models as a scan source: downloads at a branch, tag and sha, the recorded sha, offline use, and errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from huggingface_hub import constants

from diffcleanse_gate.errors import ModelNotFoundError, NotADiffusersModelError
from diffcleanse_gate.hub.download import download
from diffcleanse_gate.hub.refs import HubRef, parse_hub_ref
from diffcleanse_gate.loading import load_local

from .conftest import ZOO
from .hub_env import READ_TOKEN, hub_environ, run_cli, start_hub
from .hub_server import HubServer
from .test_cli import assert_one_line_error, call_cli


def _sha(server: HubServer, repo: str, revision: str) -> str:
    sha = server.state.repos[repo].resolve(revision)
    assert sha is not None
    return sha


def test_refs_parse_repo_revision_and_keep_local_paths(tmp_path: Path) -> None:
    assert parse_hub_ref("org/name@v1") == HubRef("org/name", "v1")
    assert parse_hub_ref("org/name", "dev", "/unet/") == HubRef("org/name", "dev", "unet")
    assert parse_hub_ref(str(ZOO / "clean-a")) is None
    assert parse_hub_ref("./org/name") is None
    (tmp_path / "org" / "name").mkdir(parents=True)
    monkey_cwd = Path.cwd()
    try:
        import os

        os.chdir(tmp_path)
        assert parse_hub_ref("org/name") is None  # an existing folder wins over a repo id
    finally:
        os.chdir(monkey_cwd)


@pytest.mark.parametrize("revision", ["dev", "v1", "main", "sha"])
def test_download_at_branch_tag_and_sha_records_the_exact_commit(hub: HubServer, revision: str) -> None:
    first, head = _sha(hub, "org/clean-a", "v1"), _sha(hub, "org/clean-a", "main")
    assert first != head
    asked = first if revision == "sha" else revision
    snapshot = download(HubRef("org/clean-a", asked))
    assert snapshot.sha == (head if revision == "main" else first)
    files = sorted(p.relative_to(snapshot.folder).as_posix() for p in snapshot.folder.rglob("*") if p.is_file())
    # only what the scan reads: no README, fixture record or notes
    assert files == ["model_index.json", "scheduler/scheduler_config.json", "unet/config.json",
                     "unet/diffusion_pytorch_model.safetensors"]
    assert Path(constants.HF_HUB_CACHE) in snapshot.folder.parents
    original = (ZOO / "clean-a" / "unet" / "diffusion_pytorch_model.safetensors").read_bytes()
    assert (snapshot.folder / "unet" / "diffusion_pytorch_model.safetensors").read_bytes() == original
    load_local(snapshot.folder)


def test_subfolder_and_gated_repo_with_token(hub: HubServer) -> None:
    hub.state.add_repo("org/nested", files={f"models/a/{p.relative_to(ZOO / 'clean-a').as_posix()}": p.read_bytes()
                                            for p in (ZOO / "clean-a").rglob("*") if p.is_file()})
    snapshot = download(HubRef("org/nested", "main", "models/a"))
    assert snapshot.folder.name == "a" and (snapshot.folder / "model_index.json").is_file()
    gated = download(HubRef("org/gated"), token=READ_TOKEN)
    assert gated.sha == _sha(hub, "org/gated", "main")


def test_offline_reads_the_filled_cache(hub: HubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    online = download(HubRef("org/clean-a", "v1"))
    hub.__exit__()  # nothing answers any more
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    offline = download(HubRef("org/clean-a", "v1"))
    assert offline.sha == online.sha and offline.folder == online.folder
    with pytest.raises(ModelNotFoundError, match="HF_HUB_OFFLINE"):
        download(HubRef("org/backdoored"))


def test_not_a_diffusers_repo_is_refused_before_download(hub: HubServer) -> None:
    with pytest.raises(NotADiffusersModelError, match="org/not-diffusers@main: not a diffusers model"):
        download(HubRef("org/not-diffusers"))
    assert not any(path.endswith("/resolve") or "/resolve/" in path
                   for _, path in hub.state.requests if "not-diffusers" in path)


@pytest.mark.parametrize(("args", "extra_env", "words"), [
    (["org/missing"], {}, "org/missing: no such local folder, and no such repository on the Hub"),
    (["org/clean-a@nope"], {}, "revision 'nope' not found"),
    (["org/clean-a", "--revision", "0" * 40], {}, "not found"),
    (["org/gated"], {}, "org/gated is a gated repo"),
    (["org/clean-a"], {"HF_TOKEN": "hf_wrongtoken_abcdef123456"}, "refused the token"),
    (["org/clean-a", "--token", "hf_wrongtoken_abcdef123456"], {}, "refused the token"),
    (["org/not-diffusers"], {}, "not a diffusers model"),
    (["org/clean-a@v1", "--revision", "dev"], {}, "--revision says 'dev'"),
])
def test_hub_errors_are_one_line_exit_2_without_the_token(hub: HubServer, monkeypatch: pytest.MonkeyPatch,
                                                         args: list[str], extra_env: dict[str, str], words: str) -> None:
    for name, value in extra_env.items():
        monkeypatch.setenv(name, value)
    result = call_cli("scan", *args, "--quiet")
    assert_one_line_error(result, words)
    assert "hf_wrongtoken_abcdef123456" not in result.stderr + result.stdout


def test_cli_scans_a_hub_repo_and_records_the_sha_then_works_offline(tmp_path: Path) -> None:
    with start_hub() as server:
        first = _sha(server, "org/clean-a", "v1")
        env = hub_environ(server, tmp_path / "hf")
        result = run_cli(env, "scan", "org/clean-a@v1", "--json", str(tmp_path / "r.json"), "--quiet",
                         "--no-second-look")  # the source is under test, not the search
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["verdict"] == "clean"
    assert report["model"]["repo_id"] == "org/clean-a" and report["model"]["revision"] == first
    assert report["model"]["extra"]["requested_revision"] == "v1"
    assert first in result.stdout
    # the server is gone: HF_HUB_OFFLINE=1 scans from the cache (a short scan: the source is under test)
    offline = run_cli({**env, "HF_HUB_OFFLINE": "1"}, "scan", "org/clean-a@v1", "--json", str(tmp_path / "o.json"),
                      "--quiet", "--iterations", "2")
    assert offline.returncode in (0, 1), offline.stderr
    assert json.loads((tmp_path / "o.json").read_text())["model"]["revision"] == first
