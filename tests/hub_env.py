"""Test helpers for the Hub: start the loopback server with fixture repos, and point huggingface_hub at it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from huggingface_hub import constants

from .conftest import ZOO
from .hub_server import HubServer

WRITE_TOKEN, READ_TOKEN = "hf_testwritetoken0123456789", "hf_testreadtoken0123456789"


def start_hub() -> HubServer:
    """A running server with: org/clean-a (tag v1, branch dev), org/backdoored, org/gated, org/not-diffusers."""
    server = HubServer({WRITE_TOKEN: "write", READ_TOKEN: "read"}).__enter__()
    state = server.state
    first = state.add_repo("org/clean-a", ZOO / "clean-a", files={"README.md": b"---\nlicense: mit\n---\n# clean-a\n"})
    state.tag("org/clean-a", "v1", first)
    state.repos["org/clean-a"].refs["refs/heads/dev"] = first
    state.commit_files("org/clean-a", "main", {"notes.txt": b"second commit\n"}, "add notes")
    state.add_repo("org/backdoored", ZOO / "baddiffusion-box-corner")
    state.add_repo("org/gated", ZOO / "clean-b", gated=True)
    state.add_repo("org/not-diffusers", files={"README.md": b"just text\n", "weights.txt": b"x"})
    return server


def hub_environ(server: HubServer, home: Path, **extra: str) -> dict[str, str]:
    """Environment for a `diffcleanse` subprocess talking to ``server`` with its cache under ``home``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    env.update(HF_ENDPOINT=server.endpoint, HF_HUB_DISABLE_XET="1", HF_HOME=str(home), OMP_NUM_THREADS="1",
               PYTHONWARNINGS="ignore", HF_HUB_DISABLE_TELEMETRY="1", NO_PROXY="127.0.0.1", no_proxy="127.0.0.1")
    env.update(extra)
    return env


def run_cli(env: dict[str, str], *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "diffcleanse_gate", *args], check=False, capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=600)


def use_hub_in_process(monkeypatch: pytest.MonkeyPatch, server: HubServer, home: Path) -> None:
    """Point the already-imported huggingface_hub at ``server`` (it reads its settings at import time)."""
    monkeypatch.setattr(constants, "ENDPOINT", server.endpoint)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", server.endpoint + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(home / "token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(home / "stored_tokens"))
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
