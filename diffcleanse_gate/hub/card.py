"""The model card section a published cleaned model carries, merged into the repo's existing card."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .. import __version__

START, END = "<!-- diffcleanse-gate -->", "<!-- /diffcleanse-gate -->"
DEFAULT_CARD = "---\nlibrary_name: diffusers\ntags:\n- diffcleanse-gate\n---\n"
_SECTION_RE = re.compile(re.escape(START) + r".*?" + re.escape(END) + r"\n?", re.DOTALL)


def _cell(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value).lower()
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("|", "\\|")


def _rows(figures: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """(name, before, after) rows from ``{name: {"before": x, "after": y}}``, ``name_before``/``name_after``
    keys, or plain ``name: value`` entries (shown in the after column)."""
    rows: dict[str, list[Any]] = {}
    for key, value in figures.items():
        if isinstance(value, Mapping) and ("before" in value or "after" in value):
            rows[key] = [value.get("before"), value.get("after")]
            continue
        for suffix, column in (("_before", 0), ("_after", 1)):
            if key.endswith(suffix):
                rows.setdefault(key[: -len(suffix)], [None, None])[column] = value
                break
        else:
            if not isinstance(value, Mapping):
                rows.setdefault(key, [None, None])[1] = value
    return [(name.replace("_", " "), before, after) for name, (before, after) in rows.items()]


def card_section(*, found: str, removed: str, figures: Mapping[str, Any], scanned_sha: str | None = None,
                 tool_version: str = __version__) -> str:
    """The marked Markdown section: what was found, what was removed, before/after figures, the tool version."""
    lines = [START, "## Backdoor scan and removal (diffcleanse-gate)", ""]
    if scanned_sha:
        lines += [f"This revision was cleaned from commit `{scanned_sha}`.", ""]
    lines += [f"- **Found:** {found}", f"- **Removed:** {removed}",
              f"- **Tool:** diffcleanse-gate {tool_version}", ""]
    rows = _rows(figures)
    if rows:
        lines += ["| figure | before | after |", "|---|---|---|"]
        lines += [f"| {name} | {_cell(before)} | {_cell(after)} |" for name, before, after in rows]
        lines.append("")
    lines.append(END)
    return "\n".join(lines) + "\n"


def merge_card(existing: str | None, section: str) -> str:
    """The repo's card with ``section`` in place of an earlier one, or appended; a minimal card if none."""
    card = existing if existing and existing.strip() else DEFAULT_CARD
    if _SECTION_RE.search(card):
        return _SECTION_RE.sub(lambda _: section, card, count=1)
    return card.rstrip("\n") + "\n\n" + section
