"""Read the Action's INPUT_* variables with github-action-utils and check them into typed settings."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import github_action_utils as gha

from ..errors import ModelNotFoundError, UsageError
from ..sampling import SAMPLERS

MODES = ("scan", "clean", "sweep")
PUSH_TARGETS = ("none", "pr", "branch")
DEVICES = ("auto", "cpu", "cuda")
DEFAULT_REPORT_DIR = "diffcleanse-report"
DEFAULT_MANIFEST = ".github/diffcleanse-models.txt"
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")

# Every input action.yml declares; the entrypoint reads each one (a test holds the two lists together).
INPUT_NAMES = (
    "model", "revision", "threshold", "gain-threshold", "sampler", "device", "seed", "mode", "push", "branch",
    "hf-token", "fail-on-backdoor", "report-dir", "sarif", "manifest", "sweep-state", "image",
)


@dataclass(frozen=True)
class ActionInputs:
    """The Action's inputs after checking: paths resolved against the workspace, numbers parsed."""

    model: str  # mode sweep: repos and list files, separated by newlines or commas
    local_model: Path | None  # the model folder in the workspace, or None for a Hub id (and in mode sweep)
    revision: str | None
    threshold: float | None
    gain_threshold: float | None
    sampler: str | None
    device: str
    seed: int
    mode: str
    push: str
    branch: str | None
    hf_token: str | None
    fail_on_backdoor: bool
    report_dir: Path
    sarif: Path | None
    manifest: str
    sweep_state: Path | None
    image: str | None
    workspace: Path


def read_token() -> str | None:
    """The Hub token, or None; read on its own so that it can be masked before anything is printed."""
    return _text("hf-token")


def workspace() -> Path:
    """The runner's workspace (GITHUB_WORKSPACE), or the working directory outside a runner."""
    return Path(os.environ.get("GITHUB_WORKSPACE") or os.getcwd()).resolve()


def read_inputs() -> ActionInputs:
    """Read and check every input; raise UsageError or ModelNotFoundError naming the input at fault."""
    root = workspace()
    model = _text("model")
    if model is None:
        raise UsageError("input 'model' is required: a Hub id (ORG/NAME) or a folder in the workspace "
                         "(mode sweep: repos or a list file)")
    mode = _choice("mode", MODES, "scan")
    report_dir = _workspace_path(root, _text("report-dir") or DEFAULT_REPORT_DIR, "report-dir")
    sarif, sweep_state = _text("sarif"), _text("sweep-state")
    return ActionInputs(
        model=model,
        local_model=_local_model(root, model) if mode != "sweep" else None,
        revision=_text("revision"),
        threshold=_score("threshold"),
        gain_threshold=_score("gain-threshold"),
        sampler=_choice("sampler", tuple(sorted(SAMPLERS)), None),
        device=_choice("device", DEVICES, "auto"),
        seed=_integer("seed", 0),
        mode=mode,
        push=_choice("push", PUSH_TARGETS, "none"),
        branch=_text("branch"),
        hf_token=read_token(),
        fail_on_backdoor=_boolean("fail-on-backdoor", True),
        report_dir=report_dir,
        sarif=_workspace_path(root, sarif, "sarif") if sarif else None,
        manifest=_text("manifest") or DEFAULT_MANIFEST,
        sweep_state=_workspace_path(root, sweep_state, "sweep-state") if sweep_state else None,
        image=_text("image"),
        workspace=root,
    )


def _text(name: str) -> str | None:
    value = gha.get_user_input(name, trim_whitespace=True)
    return value or None


def _choice(name: str, allowed: tuple[str, ...], default: str | None) -> str | None:
    value = _text(name)
    if value is None:
        return default
    if value not in allowed:
        raise UsageError(f"input '{name}' must be one of {', '.join(allowed)}; got {value!r}")
    return value


def _score(name: str) -> float | None:
    value = _text(name)
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        raise UsageError(f"input '{name}' must be a number in [-1, 1]; got {value!r}") from None
    if not -1.0 <= number <= 1.0:
        raise UsageError(f"input '{name}' must lie in [-1, 1]; got {value}")
    return number


def _integer(name: str, default: int) -> int:
    value = _text(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise UsageError(f"input '{name}' must be an integer; got {value!r}") from None


def _boolean(name: str, default: bool) -> bool:
    if not _text(name):
        return default
    try:
        return bool(gha.get_boolean_input(name))
    except ValueError:
        raise UsageError(f"input '{name}' must be true or false; got {_text(name)!r}") from None


def _workspace_path(root: Path, value: str, name: str) -> Path:
    """Resolve ``value`` against the workspace; refuse paths that leave it."""
    path = (root / value).resolve()
    if not path.is_relative_to(root):
        raise UsageError(f"input '{name}' must be a path inside the workspace; got {value!r}")
    return path


def _local_model(root: Path, model: str) -> Path | None:
    """The model's folder in the workspace, None for a Hub id, or an error when it is neither."""
    path = _workspace_path(root, model, "model")
    if path.exists():
        return path
    if HUB_ID.match(model):
        return None
    raise ModelNotFoundError(f"input 'model': no such file or directory in the workspace: {model}")
