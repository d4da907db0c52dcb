"""Shared test set-up: one torch thread (DESIGN.md section 7) and the fixture zoo's location."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import torch

if TYPE_CHECKING:
    from .hub_server import HubServer

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
torch.set_num_threads(1)

ZOO = Path(__file__).parent / "fixtures" / "zoo"


def fixture_names() -> list[str]:
    """Every model in the zoo, sorted."""
    return sorted(path.name for path in ZOO.iterdir() if (path / "fixture.json").is_file())


def fixture_record(name: str) -> dict:
    """The training record of a zoo model (family, trigger, measured attack, ...)."""
    return json.loads((ZOO / name / "fixture.json").read_text())


@pytest.fixture(scope="session")
def zoo() -> Path:
    """The folder holding the fixture models."""
    return ZOO


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[HubServer]:
    """A fresh loopback Hub for one test, with the in-process huggingface_hub pointed at it."""
    from .hub_env import start_hub, use_hub_in_process

    server = start_hub()
    use_hub_in_process(monkeypatch, server, tmp_path / "hf")
    yield server
    server.__exit__()


# The test files that take minutes, longest first (durations: `pytest --durations=0`). With
# `--dist loadfile` a file runs on one worker; one of these started last keeps a worker busy for
# minutes while the other idles. .ci/run keeps this order (xdist's `--no-loadscope-reorder`).
LONGEST_FIRST = ("test_scan_zoo.py", "test_removal.py", "test_detection.py", "test_clean_hub.py",
                 "test_action_modes.py", "test_removal_outcomes.py", "test_cli.py", "test_action_entrypoint.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the longest test files first; the rest, and the tests within a file, keep their order."""
    rank = {name: index for index, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))
