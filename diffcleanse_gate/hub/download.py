"""Download the files a scan needs from a Hub repo at a revision, into the standard cache; know the exact sha."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import HfApi, constants, snapshot_download

from ..errors import NotADiffusersModelError, UnsafeWeightsError
from ..loading import PICKLE_WEIGHTS, SAFE_WEIGHTS
from ..report.files import write_text_atomic
from .errors import hub_errors
from .refs import HubRef

# What a scan reads, relative to the model's root: the pipeline index, the UNet and the scheduler config
# (or a bare UNet's config and weights). Offline, without a file listing, these patterns select them.
OFFLINE_PATTERNS = ("model_index.json", "config.json", "diffusion_pytorch_model*", "unet/config.json",
                    "unet/diffusion_pytorch_model*", "scheduler/scheduler_config.json")


@dataclass(frozen=True)
class HubSnapshot:
    """A downloaded model: the local folder to load, and exactly which commit of which repo it is."""

    folder: Path
    ref: HubRef
    sha: str


def _weights(files: set[str], folder: str, allow_pickle: bool, where: str) -> list[str]:
    """The UNet weights file to fetch from ``folder`` (the first that loading.py would pick)."""
    for name in SAFE_WEIGHTS:
        if f"{folder}{name}" in files:
            return [f"{folder}{name}"]
    for name in PICKLE_WEIGHTS:
        if f"{folder}{name}" in files:
            if not allow_pickle:
                raise UnsafeWeightsError(f"{where}: weights only in pickle form ({folder}{name}); refusing to "
                                         "download and load them (pass --allow-pickle)")
            return [f"{folder}{name}"]
    raise NotADiffusersModelError(f"{where}: no diffusion_pytorch_model weights under {folder or 'the repo root'}")


def needed_files(files: list[str], subfolder: str, allow_pickle: bool, where: str) -> list[str]:
    """The repo files a scan of the model at ``subfolder`` reads; a typed error when they are not there."""
    present = set(files)
    root = f"{subfolder}/" if subfolder else ""
    if f"{root}model_index.json" in present:
        if f"{root}unet/config.json" not in present:
            raise NotADiffusersModelError(f"{where}: pipeline has no unet/ component")
        wanted = [f"{root}model_index.json", f"{root}unet/config.json"]
        wanted += _weights(present, f"{root}unet/", allow_pickle, where)
        if f"{root}scheduler/scheduler_config.json" in present:
            wanted.append(f"{root}scheduler/scheduler_config.json")
        return wanted
    if f"{root}config.json" in present:
        return [f"{root}config.json", *_weights(present, root, allow_pickle, where)]
    raise NotADiffusersModelError(
        f"{where}: not a diffusers model (expected model_index.json with unet/, or a UNet2DModel config.json)"
    )


def _remember_ref(snapshot: Path, revision: str, sha: str) -> None:
    """Record ``revision -> sha`` in the cache's refs/ (as snapshot_download does), so HF_HUB_OFFLINE=1 finds it.

    The download itself is pinned to the sha resolved first, so that the files and the recorded sha agree.
    """
    refs = snapshot.parent.parent / "refs" / revision
    refs.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(refs, sha)


def resolve_sha(ref: HubRef, token: str | None = None) -> str:
    """The commit sha that ``ref``'s revision points at now (one metadata call, no download)."""
    with hub_errors(ref.repo_id, ref.revision, token):
        sha = HfApi().model_info(ref.repo_id, revision=ref.revision, token=token).sha
    assert sha is not None
    return sha


def download(ref: HubRef, token: str | None = None, allow_pickle: bool = False) -> HubSnapshot:
    """Fetch only the files a scan needs (standard cache, HF_TOKEN unless ``token``); HF_HUB_OFFLINE=1 reads the cache."""
    where = str(ref)
    with hub_errors(ref.repo_id, ref.revision, token):
        if constants.HF_HUB_OFFLINE:
            prefix = f"{ref.subfolder}/" if ref.subfolder else ""
            folder = Path(snapshot_download(ref.repo_id, revision=ref.revision, token=token,
                                            allow_patterns=[prefix + p for p in OFFLINE_PATTERNS]))
            sha = folder.name  # the cache keeps every snapshot under snapshots/<commit sha>
        else:
            info = HfApi().model_info(ref.repo_id, revision=ref.revision, token=token)
            assert info.sha is not None
            sha = info.sha
            files = needed_files([s.rfilename for s in info.siblings or []], ref.subfolder, allow_pickle, where)
            folder = Path(snapshot_download(ref.repo_id, revision=sha, token=token, allow_patterns=files))
            if ref.revision != sha:
                _remember_ref(folder, ref.revision, sha)
    root = folder / ref.subfolder if ref.subfolder else folder
    if not root.is_dir():
        raise NotADiffusersModelError(f"{where}: no folder {ref.subfolder!r} in the repo")
    return HubSnapshot(root, ref, sha)
