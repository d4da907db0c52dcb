"""How the library reports progress: a callback the shells connect to rich (or nothing)."""

from __future__ import annotations

from collections.abc import Callable

# progress(stage, completed, total): called as a long stage advances.
ProgressCallback = Callable[[str, int, int], None]


def no_progress(stage: str, completed: int, total: int) -> None:
    """The default callback: stay quiet."""
