"""The jobs the shells run: each joins a source, the scan (or removal) and the formats into one call.

The command line and the GitHub Action's entrypoint both build a job from their inputs and call it, so
they cannot drift apart.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .hub.source import load_source
from .loading import LoadedModel
from .progress import ProgressCallback, no_progress
from .report.artefacts import write_artefacts
from .report.json_report import scan_report, write_json
from .scan import ScanConfig, ScanResult, scan


@dataclass(frozen=True)
class ScanJob:
    """What to scan, how, and where the report and images go."""

    model: str
    config: ScanConfig
    allow_pickle: bool = False
    resolution: int | None = None
    report_dir: Path | None = None
    json_path: Path | None = None
    revision: str | None = None  # Hub models: ORG/NAME plus a branch, tag or sha (or ORG/NAME@REV)
    subfolder: str | None = None
    token: str | None = field(default=None, repr=False)  # never printed; None means HF_TOKEN or none


@dataclass
class ScanOutcome:
    """A finished scan: the loaded model, the result and the JSON-ready report."""

    model: LoadedModel
    result: ScanResult
    report: dict[str, Any]


def run_scan_job(job: ScanJob, progress: ProgressCallback = no_progress) -> ScanOutcome:
    """Load the model, scan it, write the images and JSON report asked for, return all of it."""
    started = time.perf_counter()
    model = load_source(job.model, revision=job.revision, subfolder=job.subfolder, token=job.token,
                        allow_pickle=job.allow_pickle, resolution=job.resolution)
    load_seconds = time.perf_counter() - started
    result = scan(model, job.config, progress)
    artefacts = write_artefacts(result, job.report_dir) if job.report_dir else {}
    report = scan_report(result, model.info, artefacts, load_seconds)
    if job.json_path:
        write_json(report, job.json_path)
    return ScanOutcome(model, result, report)
