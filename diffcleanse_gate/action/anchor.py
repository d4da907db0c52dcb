"""Where in the repository a finding about a model is shown: its config file, or its line in a manifest."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .inputs import ActionInputs

# Files of a diffusers folder that say what the model is, in the order a finding is anchored to them.
CONFIG_FILES = ("model_index.json", "config.json", "unet/config.json")


@dataclass(frozen=True)
class Anchor:
    """A repository file (relative to the workspace, forward slashes) and a 1-based line in it."""

    path: str
    line: int = 1
    exists: bool = True


def model_anchor(inputs: ActionInputs) -> Anchor:
    """Anchor a local model to its config file; a Hub model to its line in the manifest (line 1 if absent)."""
    if inputs.local_model is not None:
        folder = inputs.local_model
        target = next((folder / name for name in CONFIG_FILES if (folder / name).is_file()), folder)
        return Anchor(target.relative_to(inputs.workspace).as_posix())
    manifest = inputs.workspace / inputs.manifest
    if not manifest.is_file():
        return Anchor(Path(inputs.manifest).as_posix(), 1, exists=False)
    return Anchor(Path(inputs.manifest).as_posix(), _manifest_line(manifest, inputs.model))


def _manifest_line(manifest: Path, model: str) -> int:
    """The first line that names ``model`` (alone or as ``model@revision``), else 1."""
    for number, line in enumerate(manifest.read_text(errors="replace").splitlines(), start=1):
        entry = line.split("#", 1)[0].strip()
        if entry == model or entry.startswith(model + "@"):
            return number
    return 1
