"""Turn huggingface_hub's typed errors into this project's errors, each one clear line without the token."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from huggingface_hub import constants
from huggingface_hub import errors as hf

from ..errors import (
    DiffCleanseError,
    HubAccessError,
    HubError,
    ModelNotFoundError,
    NotADiffusersModelError,
    RevisionNotFoundError,
)

BAD_CREDENTIALS = "Invalid credentials in Authorization header"


def redact(text: str, token: str | None) -> str:
    """``text`` with the token (if any) replaced, so that it never reaches an output."""
    return text.replace(token, "***") if token else text


def _server_line(error: hf.HfHubHTTPError) -> str:
    """The Hub's own one-line reason, or the HTTP status when it gave none."""
    if error.server_message:
        return error.server_message.strip().splitlines()[0]
    status = error.response.status_code if error.response is not None else "?"
    return f"HTTP {status}"


def translate(error: Exception, repo: str, revision: str | None, token: str | None) -> DiffCleanseError:
    """Our error for a huggingface_hub (or connection) error raised while working on ``repo``."""
    where = f"{repo}@{revision}" if revision else repo
    if isinstance(error, hf.GatedRepoError):
        if token:
            return HubAccessError(f"{repo} is a gated repo and this token has no access to it: "
                                  "accept its conditions on the Hub with the token's account")
        return HubAccessError(f"{repo} is a gated repo: accept its conditions on the Hub, then pass --token or "
                              "set HF_TOKEN")
    if isinstance(error, hf.RevisionNotFoundError):
        return RevisionNotFoundError(f"{repo}: revision {revision!r} not found (no such branch, tag or commit)")
    if isinstance(error, hf.RepositoryNotFoundError):
        hint = "" if token else " (a private repo needs --token or HF_TOKEN)"
        return ModelNotFoundError(f"{repo}: no such local folder, and no such repository on the Hub{hint}")
    if isinstance(error, (hf.LocalEntryNotFoundError, hf.OfflineModeIsEnabled)):
        if constants.HF_HUB_OFFLINE:
            return ModelNotFoundError(f"{where}: not in the local Hugging Face cache, and HF_HUB_OFFLINE=1 "
                                      "forbids downloading it")
        return HubError(f"{where}: cannot reach the Hub at {constants.ENDPOINT} and the model is not cached")
    if isinstance(error, hf.EntryNotFoundError):
        return NotADiffusersModelError(f"{where}: not a diffusers model (a file it needs is missing)")
    if isinstance(error, hf.HFValidationError):
        return ModelNotFoundError(f"{repo}: not a valid Hub repo id or revision")
    if isinstance(error, hf.HfHubHTTPError):
        status = error.response.status_code if error.response is not None else None
        reason = _server_line(error)
        if status == 401 and BAD_CREDENTIALS in str(error):
            return HubAccessError("the Hub refused the token (invalid credentials): check --token or HF_TOKEN")
        if status == 403:
            return HubAccessError(f"{repo}: the Hub refused access with this token: {redact(reason, token)}")
        return HubError(f"{where}: the Hub answered {status}: {redact(reason, token)}")
    if isinstance(error, OSError):  # connection errors (httpx's are OSError-free, caught below)
        return HubError(f"{where}: {redact(str(error), token)}")
    return HubError(f"{where}: cannot talk to the Hub at {constants.ENDPOINT}: {type(error).__name__}")


@contextmanager
def hub_errors(repo: str, revision: str | None, token: str | None) -> Iterator[None]:
    """Re-raise any Hub or network error inside the block as one of our typed errors."""
    try:
        yield
    except DiffCleanseError:
        raise
    except (hf.HfHubHTTPError, hf.EntryNotFoundError, hf.HFValidationError, OSError) as error:
        raise translate(error, repo, revision, token) from None
    except Exception as error:  # httpx transport errors carry no common base with the above
        if type(error).__module__.startswith(("httpx", "httpcore")):
            raise translate(error, repo, revision, token) from None
        raise
