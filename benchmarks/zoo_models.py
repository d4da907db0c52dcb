"""The models of a zoo that count: every folder with a ``fixture.json`` whose attack implanted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def counted_models(zoo: Path) -> list[tuple[Path, dict[str, Any]]]:
    """Each counted model's folder and ``fixture.json`` record, by name; ``"counted": false`` (an attack
    that did not implant) leaves a model out."""
    records = ((path, json.loads((path / "fixture.json").read_text()))
               for path in sorted(zoo.iterdir()) if (path / "fixture.json").is_file())
    return [(path, record) for path, record in records if record.get("counted", True)]
