"""Publish a cleaned diffusers folder to the Hub in one commit pinned to the scanned sha: a PR, a branch, or main."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from huggingface_hub import (
    CommitOperationAdd,
    CommitOperationDelete,
    HfApi,
    hf_hub_download,
)
from huggingface_hub import errors as hf

from ..errors import PublishError, StaleRevisionError, UsageError
from ..loading import load_local
from .card import merge_card
from .errors import hub_errors

PublishMode = Literal["pr", "branch", "main"]
UPLOADED_SUFFIXES = (".json", ".safetensors")
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
WEIGHT_SUFFIXES = (*PICKLE_SUFFIXES, ".safetensors", ".msgpack", ".onnx", ".h5")


@dataclass(frozen=True)
class PublishResult:
    """Where the cleaned model went: a URL to show, the revision to download it by, and its commit sha."""

    url: str
    revision: str  # "refs/pr/N", the branch name, or "main"
    commit_sha: str
    pr_url: str | None = None


def _operations(folder: Path, files_at_parent: list[str], card: str,
                path_in_repo: str) -> list[CommitOperationAdd | CommitOperationDelete]:
    """Every file of the cleaned folder, the merged card, and deletions of weights the cleaned model does not have."""
    prefix = f"{path_in_repo.strip('/')}/" if path_in_repo.strip("/") else ""
    local = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
    pickled = [p for p in local if p.suffix in PICKLE_SUFFIXES]
    if pickled:
        raise PublishError(f"{pickled[0]}: refusing to publish pickled weights (safetensors only)")
    adds = {prefix + p.relative_to(folder).as_posix(): p for p in local if p.suffix in UPLOADED_SUFFIXES}
    operations: list[CommitOperationAdd | CommitOperationDelete] = [
        CommitOperationAdd(path_in_repo=path, path_or_fileobj=source) for path, source in adds.items()
    ]
    operations.append(CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=card.encode()))
    # weights left from the scanned model (another variant or format) would still carry the backdoor
    operations += [CommitOperationDelete(path_in_repo=path) for path in files_at_parent
                   if path.startswith(prefix) and path.endswith(WEIGHT_SUFFIXES) and path not in adds]
    return operations


def _existing_card(api: HfApi, repo_id: str, parent_sha: str, files: list[str], token: str | None,
                   folder: Path) -> str | None:
    if "README.md" in files:
        path = hf_hub_download(repo_id, "README.md", revision=parent_sha, token=token)
        return Path(path).read_text(encoding="utf-8")
    local = folder / "README.md"
    return local.read_text(encoding="utf-8") if local.is_file() else None


def _stale(repo_id: str, target: str, parent_sha: str) -> StaleRevisionError:
    return StaleRevisionError(f"{repo_id}: {target} has moved past the scanned commit {parent_sha[:12]}; nothing "
                              "was pushed (scan the new head and clean it again)")


def publish_cleaned(folder: Path, repo_id: str, parent_sha: str, *, mode: PublishMode = "pr",
                    branch: str | None = None, token: str | None = None, card_section: str,
                    commit_message: str, path_in_repo: str = "") -> PublishResult:
    """Upload a cleaned diffusers folder (safetensors, json, and README.md with ``card_section`` merged into the
    repo's card) in ONE commit whose parent is ``parent_sha``.

    ``mode="pr"`` opens a pull request from ``parent_sha``; ``"branch"`` commits to ``branch`` (created at
    ``parent_sha`` if missing; an existing branch must point at ``parent_sha``); ``"main"`` commits to main and
    only if main is still at ``parent_sha``. A failed push leaves nothing behind (a branch it created is deleted)
    and raises a typed error with one clear line.
    """
    if mode not in ("pr", "branch", "main"):
        raise UsageError(f"publish mode must be pr, branch or main, got {mode!r}")
    if mode == "branch" and (not branch or branch == "main"):
        raise UsageError("publishing to a branch needs a branch name other than main (--branch NAME)")
    folder = Path(folder)
    load_local(folder)  # never publish what stock diffusers cannot load
    api = HfApi(token=token)
    target = {"pr": "a pull request", "branch": f"branch {branch!r}", "main": "main"}[mode]
    with hub_errors(repo_id, parent_sha, token):
        files = api.list_repo_files(repo_id, revision=parent_sha)
        card = merge_card(_existing_card(api, repo_id, parent_sha, files, token, folder), card_section)
        operations = _operations(folder, files, card, path_in_repo)
        created_branch = False
        if mode == "branch":
            refs = {ref.name: ref.target_commit for ref in api.list_repo_refs(repo_id).branches}
            if branch in refs and refs[branch] != parent_sha:
                raise StaleRevisionError(f"{repo_id}: branch {branch!r} exists at {refs[branch][:12]}, not at the "
                                         f"scanned commit {parent_sha[:12]}; nothing was pushed (choose another "
                                         "--branch or delete it)")
            if branch not in refs:
                api.create_branch(repo_id, branch=branch, revision=parent_sha)
                created_branch = True
        try:
            info = api.create_commit(
                repo_id, operations, commit_message=commit_message, parent_commit=parent_sha,
                revision=branch if mode == "branch" else "main", create_pr=mode == "pr",
            )
        except (hf.HfHubHTTPError, OSError) as error:
            if created_branch:
                try:
                    api.delete_branch(repo_id, branch=branch)
                except (hf.HfHubHTTPError, OSError):
                    pass  # the commit's own error is the one to report
            status = getattr(getattr(error, "response", None), "status_code", None)
            if status in (409, 412):
                raise _stale(repo_id, target, parent_sha) from None
            raise
    if mode == "pr":
        assert info.pr_url is not None and info.pr_revision is not None
        return PublishResult(info.pr_url, info.pr_revision, info.oid, info.pr_url)
    return PublishResult(info.commit_url, branch if mode == "branch" else "main", info.oid)
