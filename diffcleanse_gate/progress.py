"""How the library reports progress: a callback the shells connect to rich (or nothing)."""

from __future__ import annotations

from collections.abc import Callable

# progress(stage, completed, total): called as a long stage advances.
ProgressCallback = Callable[[str, int, int], None]


def no_progress(stage: str, completed: int, total: int) -> None:
    """The default callback: stay quiet."""


def prefixed(progress: ProgressCallback, prefix: str) -> ProgressCallback:
    """The same callback with ``prefix`` before every stage name (a re-scan's stages stay apart)."""

    def report(stage: str, completed: int, total: int) -> None:
        progress(f"{prefix}{stage}", completed, total)

    return report
