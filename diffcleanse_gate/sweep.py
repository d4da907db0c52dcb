"""Scan many Hub repos in one run, skipping any whose commit sha was already scanned (a state file)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from huggingface_hub import HfApi

from .errors import DiffCleanseError, UsageError
from .hub.download import resolve_sha
from .hub.errors import hub_errors, redact
from .hub.refs import parse_hub_ref
from .jobs import ScanJob, run_scan_job
from .report.files import write_text_atomic
from .scan import ScanConfig

STATE_VERSION = 1


@dataclass
class SweepEntry:
    """One repo's outcome: its sha, verdict and score, or the one-line reason it could not be scanned."""

    repo: str
    sha: str | None = None
    verdict: str = "error"  # "clean", "backdoored" or "error"
    score: float | None = None
    gain_anomaly: float | None = None
    scanned_at: str | None = None
    reused: bool = False  # the state file already held a verdict for this sha: not scanned again
    error: str | None = None
    report: dict[str, Any] | None = field(default=None, repr=False)


@dataclass
class SweepResult:
    """Every repo's entry, in the order they were swept, and when the sweep ran."""

    entries: list[SweepEntry]
    started_at: str
    finished_at: str

    @property
    def backdoored(self) -> bool:
        return any(entry.verdict == "backdoored" for entry in self.entries)

    def summary(self) -> dict[str, int]:
        counts = {"repos": len(self.entries), "backdoored": 0, "clean": 0, "error": 0}
        for entry in self.entries:
            counts[entry.verdict] += 1
        counts["reused"] = sum(entry.reused for entry in self.entries)
        return counts


class SweepState:
    """The state file: per repo the last sha scanned, its verdict, score and time. Errors are not kept."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.repos: dict[str, dict[str, Any]] = {}
        if path is not None and path.exists():
            try:
                data = json.loads(path.read_text())
                self.repos = dict(data["repos"])
            except (OSError, ValueError, KeyError, TypeError) as error:
                raise UsageError(f"{path}: not a readable sweep state file: {error}") from error

    def lookup(self, repo: str, sha: str) -> dict[str, Any] | None:
        record = self.repos.get(repo)
        return record if record is not None and record.get("sha") == sha else None

    def record(self, entry: SweepEntry) -> None:
        self.repos[entry.repo] = {"sha": entry.sha, "verdict": entry.verdict, "score": entry.score,
                                  "gain_anomaly": entry.gain_anomaly, "time": entry.scanned_at}
        if self.path is not None:
            write_text_atomic(self.path, json.dumps({"version": STATE_VERSION, "repos": self.repos}, indent=2) + "\n")


def read_repo_list(path: Path) -> list[str]:
    """Repos from a list file: one ORG/NAME[@REVISION] a line; blank lines and # comments ignored."""
    try:
        lines = path.read_text().splitlines()
    except OSError as error:
        raise UsageError(f"{path}: cannot read the repo list: {error.strerror or error}") from error
    return [line.split("#", 1)[0].strip() for line in lines if line.split("#", 1)[0].strip()]


def search_repos(author: str | None, search: str | None, token: str | None, limit: int | None = None) -> list[str]:
    """Repo ids the Hub lists for an author and/or a search text (``list_models``)."""
    with hub_errors(author or search or "list_models", None, token):
        models = HfApi().list_models(author=author, search=search, limit=limit, token=token)
        return [model.id for model in models]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _sweep_one(target: str, config: ScanConfig, state: SweepState, token: str | None,
               allow_pickle: bool) -> SweepEntry:
    ref = parse_hub_ref(target)
    if ref is None:
        raise UsageError(f"{target}: not a Hub repo (ORG/NAME[@REVISION])")
    sha = resolve_sha(ref, token)
    known = state.lookup(target, sha)
    if known is not None and known.get("verdict") in ("clean", "backdoored"):
        return SweepEntry(target, sha, known["verdict"], known.get("score"), known.get("gain_anomaly"),
                          known.get("time"), reused=True)
    # pin the scan to the sha just resolved, so the verdict recorded is for exactly that commit
    outcome = run_scan_job(ScanJob(model=ref.repo_id, revision=sha, token=token, config=config,
                                   allow_pickle=allow_pickle))
    report = outcome.report
    return SweepEntry(target, sha, report["verdict"], report["score"], report["gain_anomaly"], _now(),
                      report=report)


def run_sweep(targets: Iterable[str], config: ScanConfig, state: SweepState, *, token: str | None = None,
              allow_pickle: bool = False, on_entry: Callable[[SweepEntry], None] | None = None) -> SweepResult:
    """Scan every target (unless its sha is in the state); one repo's failure becomes an error entry."""
    started = _now()
    entries = []
    for target in dict.fromkeys(targets):  # each repo once, in the order given
        began = time.perf_counter()
        try:
            entry = _sweep_one(target, config, state, token, allow_pickle)
        except DiffCleanseError as error:
            entry = SweepEntry(target, error=redact(str(error), token))
        except Exception as error:  # a broken model must not stop the sweep  # noqa: BLE001
            first = (str(error).strip().splitlines() or [""])[0]
            entry = SweepEntry(target, error=redact(f"{type(error).__name__}: {first}", token))
        if entry.verdict != "error" and not entry.reused:
            state.record(entry)
        if entry.report is not None:
            entry.report["timings"]["sweep_s"] = round(time.perf_counter() - began, 3)
        entries.append(entry)
        if on_entry is not None:
            on_entry(entry)
    return SweepResult(entries, started, _now())


def entry_dict(entry: SweepEntry) -> dict[str, Any]:
    """A JSON-ready entry (the full scan report only for repos scanned in this run)."""
    return asdict(entry)
