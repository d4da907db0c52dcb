"""Model references: a local folder, or a Hub repo written ORG/NAME[@REVISION]."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

REPO_RE = re.compile(r"^(?P<repo>[A-Za-z0-9][\w.-]*/[\w.-]+)(?:@(?P<revision>[^\s@]+))?$")


@dataclass(frozen=True)
class HubRef:
    """A Hub model: repo id, the revision asked for (a branch, tag, ref or sha), and a subfolder."""

    repo_id: str
    revision: str = "main"
    subfolder: str = ""

    def __str__(self) -> str:
        text = f"{self.repo_id}@{self.revision}"
        return f"{text}:{self.subfolder}" if self.subfolder else text


def parse_hub_ref(text: str, revision: str | None = None, subfolder: str | None = None) -> HubRef | None:
    """The Hub repo ``text`` names, or None when it is a local path (an existing path always wins).

    ``revision`` (from ``--revision``) overrides an ``@REVISION`` suffix only when they agree or one is missing.
    """
    if Path(text).exists():
        return None
    match = REPO_RE.match(text)
    if match is None or text.startswith((".", "/", "~")):
        return None
    suffix = match["revision"]
    if suffix and revision and suffix != revision:
        from ..errors import UsageError

        raise UsageError(f"{text} names revision {suffix!r} but --revision says {revision!r}")
    return HubRef(match["repo"], revision or suffix or "main", (subfolder or "").strip("/"))
