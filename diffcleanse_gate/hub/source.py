"""Where a model comes from: a local folder as it is, or a Hub repo downloaded first; then load it."""

from __future__ import annotations

from pathlib import Path

from ..errors import UsageError
from ..loading import LoadedModel, load_local
from .download import download
from .refs import parse_hub_ref


def load_source(model: str, *, revision: str | None = None, subfolder: str | None = None,
                token: str | None = None, allow_pickle: bool = False,
                resolution: int | None = None) -> LoadedModel:
    """Load ``model`` (a folder, or ORG/NAME[@REVISION]); a Hub model's info records the repo and the exact sha."""
    ref = parse_hub_ref(model, revision, subfolder)
    if ref is None:
        if revision:
            raise UsageError(f"{model}: --revision applies to Hub repos, and this is a local path")
        folder = Path(model) / subfolder if subfolder else Path(model)
        return load_local(folder, allow_pickle=allow_pickle, resolution=resolution)
    snapshot = download(ref, token=token, allow_pickle=allow_pickle)
    loaded = load_local(snapshot.folder, allow_pickle=allow_pickle, resolution=resolution)
    loaded.info.repo_id = ref.repo_id
    loaded.info.revision = snapshot.sha
    loaded.info.extra.update(requested_revision=ref.revision, subfolder=ref.subfolder or None)
    return loaded
