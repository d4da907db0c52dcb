"""Typed errors raised by the library; the shells turn each into one line and an exit code."""

from __future__ import annotations


class DiffCleanseError(Exception):
    """Base class of every error a user can act on. ``exit_code`` is what the CLI exits with."""

    exit_code = 2


class ModelNotFoundError(DiffCleanseError):
    """The path or repository does not exist."""


class NotADiffusersModelError(DiffCleanseError):
    """The folder is not a diffusers pipeline or UNet2DModel folder."""


class UnsafeWeightsError(DiffCleanseError):
    """The weights exist only in pickle form and the user did not opt in to loading them."""


class CorruptedWeightsError(DiffCleanseError):
    """A weights or config file cannot be read."""


class UnsupportedModelError(DiffCleanseError):
    """The model loads but cannot be scanned as asked (image size, channels, sampler)."""


class UsageError(DiffCleanseError):
    """An option has a value the tool cannot use."""


class RevisionNotFoundError(ModelNotFoundError):
    """The repository exists but the branch, tag or commit asked for does not."""


class HubAccessError(DiffCleanseError):
    """The Hub refused access: a gated repo without a token, or a token it does not accept."""


class HubError(DiffCleanseError):
    """The Hub could not be reached or answered with an error the tool cannot work around."""


class PublishError(DiffCleanseError):
    """A cleaned model could not be published; nothing was changed on the Hub."""


class StaleRevisionError(PublishError):
    """The target revision moved past the scanned commit, so publishing would overwrite someone's change."""
